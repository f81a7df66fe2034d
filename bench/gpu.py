"""Backend torch on a GPU: the model alone, its accuracy there, and whole runs by decode workers.

Prepared for a lent GPU machine (docs/performance.md says how to run it
there, what to carry and what it costs); ``--device cpu`` with small sizes
checks the script anywhere. Run: python -m bench.gpu [options] (--help).

1. start-up: import torch, the weights onto the device, the first batch;
   then what the machine has (Python, torch, CUDA, the GPU, ffmpeg, cores);
2. the model alone: patches and seconds of audio per second at each
   precision over batch sizes, out-of-memory caught per size, peak GPU memory;
3. accuracy: tag and embedding means of real tracks on the device against
   torch f32 on the CPU (equal to TensorFlow, tests/test_torch.py);
4. per decode worker count: the host's limit (the analyzer with a model
   that costs nothing), then end to end with the GPU model, its busy
   fraction, its mean batch and the GPU's utilisation.

The tracks are synthesised (tests/synth.py), mp3 and ogg, 3 to 6 minutes:
a few distinct ones written in parallel once, analyzed over and over (the
decoder's work is the same; the page cache makes reading free either way).
Everything is printed as it is measured and written to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import beetsplug.musicnn  # noqa: F401  before numpy: it sets numpy's BLAS threads

# isort: split
import numpy as np

from beetsplug.musicnn.analyzer import Analyzer, Job, Result
from beetsplug.musicnn.decode import decoder_command
from beetsplug.musicnn.engine import SWEEP
from beetsplug.musicnn.features import HOP_SIZE, MEL_BANDS, PATCH_SIZE, SAMPLE_RATE
from beetsplug.musicnn.freeze import WEIGHTS
from beetsplug.musicnn.inference import Predictor
from beetsplug.musicnn.provision import ModelInfo, provide
from bench.common import FAMILIES, MODELS, OUT
from tests.synth import Track, write

PATCH_SECONDS = PATCH_SIZE * HOP_SIZE / SAMPLE_RATE  # audio per patch at the default hop
FULL_WORKERS = 16  # the worker count from which a run takes all --tracks


def synthesised(count: int, shortest: float, longest: float) -> list[Path]:
    """``count`` distinct tracks, mp3 and ogg in turn, lengths spread over the range.

    Written once under bench/out/gpu-tracks, in parallel: one process per core.
    """
    specs = []
    for i in range(count):
        seconds = shortest + (longest - shortest) * i / max(1, count - 1)
        family, fmt = FAMILIES[i % len(FAMILIES)], "mp3" if i % 2 == 0 else "ogg"
        path = OUT / "gpu-tracks" / f"{i:02d}-{family}-{seconds:.0f}s.{fmt}"
        specs.append((Track(family, seconds, key=i % 12, tempo=80 + 7 * i, seed=i), path))
    todo = [spec for spec in specs if not spec[1].exists()]
    if todo:
        with ProcessPoolExecutor() as pool:
            list(pool.map(write, *zip(*todo, strict=True)))
    return [path for _, path in specs]


class Timed:
    """A predictor that counts its calls, patches and seconds: the model thread's busy time."""

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        self.engine = predictor.engine
        self.busy = 0.0
        self.calls = 0
        self.patches = 0

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        out = self.predictor.predict(patches)
        self.busy += time.perf_counter() - start
        self.calls += 1
        self.patches += len(patches)
        return out


class NoModel:
    """A model that costs nothing: a run with it is the host's limit (decode, features)."""

    engine = "none"

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((len(patches), 50), np.float32), np.zeros((len(patches), 200), np.float32)


class Utilisation:
    """The GPU's utilisation (% of time a kernel ran), sampled every 0.2 s inside ``with``.

    NVML through torch where it has pynvml, else nvidia-smi; None on a CPU.
    """

    def __init__(self, device: str):
        self.read = _utilisation_reader(device)
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Utilisation:
        if self.read is not None:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        assert self.read is not None
        while not self._stop.wait(0.2):
            self.samples.append(self.read())

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def _utilisation_reader(device: str) -> Callable[[], float] | None:
    import torch

    if not device.startswith("cuda"):
        return None
    index = torch.device(device).index or 0
    try:
        torch.cuda.utilization(index)
        return lambda: float(torch.cuda.utilization(index))
    except Exception:  # no pynvml: ask nvidia-smi
        if shutil.which("nvidia-smi") is None:
            return None
        query = ["nvidia-smi", f"--id={index}", "--query-gpu=utilization.gpu",
                 "--format=csv,noheader,nounits"]  # fmt: skip
        return lambda: float(subprocess.run(query, capture_output=True, text=True).stdout)


def analyze(
    paths: Sequence[Path], predictor: Predictor, workers: int, batch: int
) -> tuple[list[Result], float]:
    """Every file's result, in order, and the run's wall seconds (the model loaded before)."""
    outcomes = []
    analyzer = Analyzer(lambda: predictor, threads=workers, batch_size=batch)
    start = time.perf_counter()
    analyzer.run([Job(i, os.fsencode(p)) for i, p in enumerate(paths)], outcomes.append)
    wall = time.perf_counter() - start
    results = [o for o in outcomes if isinstance(o, Result)]
    if len(results) < len(outcomes):
        raise SystemExit(f"files failed: {[o for o in outcomes if not isinstance(o, Result)]}")
    return sorted(results, key=lambda r: r.key), wall


def startup(
    weights: Path, device: str, precision: str, batch: int
) -> tuple[Predictor, dict[str, float]]:
    """The predictor for the runs, and what a run pays once before its first result."""
    began = time.perf_counter()
    import torch

    imported = time.perf_counter()
    from beetsplug.musicnn.torch_model import TorchPredictor

    predictor = TorchPredictor(weights, precision, device)
    loaded = time.perf_counter()
    predictor.predict(np.zeros((batch, PATCH_SIZE, MEL_BANDS), np.float32))
    first = time.perf_counter()
    times = {"import_torch_s": imported - began, "load_s": loaded - imported,
             "first_batch_s": first - loaded}  # fmt: skip
    print(f"start-up: import torch {times['import_torch_s']:.2f} s, weights onto {device} "
          f"{times['load_s']:.2f} s, first batch of {batch} {times['first_batch_s']:.2f} s "
          f"(torch {torch.__version__})")  # fmt: skip
    return predictor, times


def machine(device: str) -> dict[str, Any]:
    """What the machine has: a lent one has no package registry, so check before planning."""
    import torch

    ffmpeg = decoder_command(("ffmpeg",))[0]
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout
    found = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cores": os.cpu_count(),
        "ffmpeg": f"{ffmpeg}: {version.splitlines()[0] if version else 'no version'}",
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        found["gpu"] = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
    for key, value in found.items():
        print(f"  {key}: {value}")
    return found


def sweep(
    weights: Path, device: str, precisions: Sequence[str], batches: Sequence[int], seconds: float
) -> dict[str, dict[int, dict[str, float]]]:
    """Patches/s of predict() (host to device and back, as in a run) per precision and batch."""
    import torch

    from beetsplug.musicnn.torch_model import TorchPredictor

    cuda = device.startswith("cuda")
    rng = np.random.default_rng(0)
    patches = rng.uniform(0, 3, (max(batches), PATCH_SIZE, MEL_BANDS)).astype(np.float32)
    results: dict[str, dict[int, dict[str, float]]] = {}
    for precision in precisions:
        predictor = TorchPredictor(weights, precision, device)
        rows = results.setdefault(precision, {})
        for batch in batches:
            sample = patches[:batch]
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            predictor.predict(sample)  # warm-up: an out-of-memory error splits the batch
            if predictor.limit < batch:
                rows[batch] = {"out_of_memory_split_to": predictor.limit}
                print(f"  {precision} batch {batch}: out of memory, split to {predictor.limit}")
                break
            done, began = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - began) < seconds or done < 2 * batch:
                predictor.predict(sample)
                done += batch
            rate = done / elapsed
            peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else 0.0
            rows[batch] = {"patches_per_s": rate, "audio_s_per_s": rate * PATCH_SECONDS,
                           "peak_gib": peak}  # fmt: skip
            print(f"  {precision} batch {batch:5}: {rate:8.0f} patches/s "
                  f"({rate * PATCH_SECONDS:7.0f} s of audio/s), peak {peak:.1f} GiB",
                  flush=True)  # fmt: skip
        del predictor
        if cuda:
            torch.cuda.empty_cache()
    return results


def accuracy(
    weights: Path, device: str, precisions: Sequence[str], paths: Sequence[Path], batch: int
) -> dict[str, dict[str, float]]:
    """Per-track means on the device against torch f32 on the CPU, as the plugin stores them."""
    from beetsplug.musicnn.torch_model import TorchPredictor

    workers = len(paths)
    reference, _ = analyze(paths, TorchPredictor(weights, "f32", "cpu"), workers, batch)
    out = {}
    for precision in precisions:
        ours, _ = analyze(paths, TorchPredictor(weights, precision, device), workers, batch)
        pairs = list(zip(ours, reference, strict=True))
        out[precision] = {
            "tag_mean_diff": max(float(np.abs(o.tags - r.tags).max()) for o, r in pairs),
            "embedding_mean_diff": max(
                float(np.abs(o.embedding - r.embedding).max()) for o, r in pairs
            ),
            "same_top_tag": sum(o.tags.argmax() == r.tags.argmax() for o, r in pairs) / len(pairs),
        }
        print(f"  {precision} on {device}: tag means within {out[precision]['tag_mean_diff']:.2g} "
              f"of f32 on the CPU, embeddings {out[precision]['embedding_mean_diff']:.2g}, "
              f"same top tag {out[precision]['same_top_tag']:.0%}", flush=True)  # fmt: skip
    return out


def runs(
    predictor: Predictor, device: str, distinct: Sequence[Path], tracks: int,
    workers: Sequence[int], batch: int,
) -> dict[int, dict[str, float | None]]:  # fmt: skip
    """Per worker count: the host's limit without the model, then end to end with it.

    A count under FULL_WORKERS analyzes its share of ``tracks`` (at least
    four), so every run takes about as long.
    """
    out: dict[int, dict[str, float | None]] = {}
    for count in workers:
        jobs = min(tracks, max(4, tracks * count // FULL_WORKERS))
        paths = [distinct[i % len(distinct)] for i in range(jobs)]
        results, host_wall = analyze(paths, NoModel(), count, batch)
        audio = sum(r.seconds for r in results)
        timed = Timed(predictor)
        with Utilisation(device) as gpu:
            _, wall = analyze(paths, timed, count, batch)
        row = out[count] = {
            "tracks": jobs,
            "audio_s": audio,
            "host_limit": audio / host_wall,
            "end_to_end": audio / wall,
            "model_busy": timed.busy / wall,
            "mean_batch": timed.patches / max(timed.calls, 1),
            "gpu_utilisation": gpu.mean,
        }
        used = "n/a" if gpu.mean is None else f"{gpu.mean:.0f}%"
        print(f"  {count:2} workers, {jobs:3} tracks ({audio / 3600:.1f} h): host limit "
              f"{audio / host_wall:6.0f} s of audio/s, end to end {audio / wall:6.0f} "
              f"({host_wall / wall:.2f} of it); model busy {timed.busy / wall:.0%}, "
              f"mean batch {row['mean_batch']:.0f}, GPU utilisation {used}",
              flush=True)  # fmt: skip
    return out


def _numbers(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    parser.add_argument("--precision", default="bf16", help="of the runs (default bf16)")
    parser.add_argument("--precisions", default="f32,bf16", help="of the sweep (default f32,bf16)")
    parser.add_argument("--batches", type=_numbers, default=[64, 128, 256, 512, 1024, 2048, 4096])
    parser.add_argument("--batch", type=int, default=SWEEP[("cuda", "torch", "bf16")][1],
                        help="of the runs (default: engine.SWEEP's)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=1.5, help="per sweep point")
    parser.add_argument("--tracks", type=int, default=200, help="analyzed by the largest runs")
    parser.add_argument("--distinct", type=int, default=16, help="tracks synthesised")
    parser.add_argument("--length", type=_numbers, default=[180, 360], help="shortest,longest s")
    parser.add_argument("--workers", type=_numbers, default=[1, 4, 8, 16, 32])
    parser.add_argument("--check-tracks", type=int, default=4, help="for the accuracy check")
    parser.add_argument("--out", type=Path, default=OUT / "gpu.json")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    # The weights travel with their manifest: checked here, never rebuilt (no TensorFlow there).
    weights = provide(ModelInfo.load("msd"), MODELS, structure=WEIGHTS).path
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    predictor, report["startup"] = startup(weights, args.device, args.precision, args.batch)
    report["machine"] = machine(args.device)
    distinct = synthesised(args.distinct, *args.length)
    print(f"{len(distinct)} distinct tracks ready at {time.perf_counter() - began:.0f} s")
    print("the model alone:")
    precisions = args.precisions.split(",")
    report["model"] = sweep(weights, args.device, precisions, args.batches, args.seconds)
    print("accuracy:")
    checked = distinct[: args.check_tracks]
    every = sorted({*precisions, args.precision, "fp16"} if args.device != "cpu" else precisions)
    report["accuracy"] = accuracy(weights, args.device, every, checked, args.batch)
    print(f"runs ({args.precision}, batch {args.batch}):")
    report["runs"] = runs(predictor, args.device, distinct, args.tracks, args.workers, args.batch)
    report["wall_s"] = time.perf_counter() - began
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"done in {report['wall_s']:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
