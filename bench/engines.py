"""The engine sweep: patches per second of every engine, precision, structure and batch.

Run: .venv/bin/python -m bench.engines [SECONDS]   (default 1.5 s per measurement)

Each engine runs in its own process (OpenVINO's never imports TensorFlow),
on the same mel patches made from synthesised audio. Every batch size is
measured in three rounds, interleaved, and the best round counts, so a
busy neighbour costs less. It prints a table, the best batch size of each,
start-up (import, load and the first patch), peak RSS by batch size, how
far each engine's tag means over the patches are from TensorFlow f32's,
and what ``engine.py`` chooses on this CPU kind: where the table disagrees
with the choice, ``engine.SWEEP`` is the place to record it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import beetsplug.musicnn  # noqa: F401  before numpy: it sets numpy's BLAS threads
from bench.common import MODELS, measure, python

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
ENGINES = [  # (backend, precision, structure)
    ("tensorflow", "f32", "band"),
    ("tensorflow", "f32", "original"),
    ("openvino", "f32", "band"),
    ("openvino", "f32", "original"),
    ("openvino", "bf16", "band"),
    ("openvino", "bf16", "original"),
]


def _patches(count: int) -> object:
    """``count`` real mel patches: those of a synthesised 40 s track, repeated."""
    import numpy as np

    from beetsplug.musicnn.features import MelStream, Patcher
    from tests.synth import Track

    audio = Track("riff", 40, seed=1).render().mean(1)
    # 16 kHz by plain interpolation: close enough to real features for timing
    audio = np.interp(np.arange(0, len(audio), 44100 / 16000), np.arange(len(audio)), audio)
    mel, patcher = MelStream(), Patcher()
    patches = np.stack(list(patcher.feed(mel.feed(audio.astype(np.float32)))))
    return np.resize(patches, (count, *patches.shape[1:]))


def child(backend: str, precision: str, structure: str, seconds: float) -> dict[str, object]:
    patches = _patches(max(BATCHES))
    from beetsplug.musicnn.provision import ModelInfo, provide

    info = ModelInfo.load("msd")
    graph = provide(info, MODELS, structure=structure)  # frozen once, before timing
    start = time.perf_counter()
    from beetsplug.musicnn.inference import shared_predictor

    predictor = shared_predictor(graph.path, info, backend, precision, 0, MODELS / "openvino")
    predictor.predict(patches[:1])  # type: ignore[index]
    startup = time.perf_counter() - start  # import, load (compiled model cached), first patch
    rates = dict.fromkeys(BATCHES, 0.0)
    peaks = {}
    for _round in range(3):
        for batch in BATCHES:  # growing: the high-water mark after one is its own peak
            sample = patches[:batch]  # type: ignore[index]
            predictor.predict(sample)
            done, began = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - began) < seconds / 3:
                predictor.predict(sample)
                done += batch
            rates[batch] = max(rates[batch], done / elapsed)
            peaks.setdefault(batch, _high_water_mb())
    means = predictor.predict(patches)[0].mean(0).tolist()  # type: ignore[union-attr]
    ran = predictor.engine
    return {"rates": rates, "peaks": peaks, "startup": startup, "ran": ran, "means": means,
            "tf": "tensorflow" in sys.modules}  # fmt: skip


def _high_water_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    status = Path("/proc/self/status").read_text()
    line = next(ln for ln in status.splitlines() if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main(seconds: float = 1.5) -> None:
    from beetsplug.musicnn.engine import choose, cpu_kind

    kind = cpu_kind()
    print(f"CPU kind: {kind}; {os.cpu_count()} cores; {seconds} s per measurement, best of 3")
    header = "".join(f"{b:>7}" for b in BATCHES)
    print(f"{'engine':31}{header}   best (patches/s)   start  (peak RSS in MB below)")
    best: dict[tuple[str, str], tuple[float, str, int]] = {}
    reference: list[float] | None = None  # TensorFlow f32's tag means on the same patches
    for backend, precision, structure in ENGINES:
        run = measure(python("-m", "bench.engines", "child", backend, precision, structure,
                             str(seconds)))  # fmt: skip
        if run.returncode != 0:
            print(f"{backend} {precision} {structure}: failed: {run.stderr.strip()[-300:]}")
            continue
        out = json.loads(run.stdout.splitlines()[-1])
        rates = {int(b): r for b, r in out["rates"].items()}
        top = max(rates, key=rates.__getitem__)
        name = f"{out['ran']} {structure}" + (
            " (TF imported)" if out["tf"] and backend != "tensorflow" else ""
        )
        cells = "".join(f"{rates[b]:7.1f}" for b in BATCHES)
        reference = reference or out["means"]
        off = max(abs(a - b) for a, b in zip(out["means"], reference, strict=True))
        print(f"{name:31}{cells}   {rates[top]:6.1f} at {top:<4}     {out['startup']:5.1f} s"
              f"   {off:.5f} off TF f32")  # fmt: skip
        peaks = "".join(f"{out['peaks'][str(b)]:7.0f}" for b in BATCHES)
        print(f"{'':31}{peaks}", flush=True)
        key = (backend, out["ran"].split()[-1])
        if rates[top] > best.get(key, (0.0, "", 0))[0]:
            best[key] = (rates[top], structure, top)
    print("best per engine:", ", ".join(f"{b} {p}: {s} batch {n} ({r:.1f}/s)"
                                        for (b, p), (r, s, n) in best.items()))  # fmt: skip
    chosen = choose("auto", "auto", None, print, kind)
    print(f"engine.py chooses here: {chosen} ({chosen.structure} structure)")
    tf = best.get(("tensorflow", "f32"))
    mine = best.get((chosen.backend, chosen.precision))
    if tf and mine:
        print(f"best of the chosen engine / best TensorFlow f32 = {mine[0] / tf[0]:.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        backend, precision, structure, seconds = sys.argv[2:6]
        print(json.dumps(child(backend, precision, structure, float(seconds))))
    else:
        main(*(float(a) for a in sys.argv[1:]))
