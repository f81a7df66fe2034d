"""Analysis speed, ours beside essentia's one-file-at-a-time path, in one run.

Run: .venv/bin/python -m bench.throughput [TRACKS] [SHORTEST] [LONGEST]
(default 20 tracks of 180 to 360 s, mp3 and ogg, written once under
bench/out/tracks). Every path runs in its own process, on the same files,
so each gets its own peak RSS:
  (a) essentia MonoLoader + TensorflowPredictMusiCNN per file, defaults (hop 93),
      on the checkpoint frozen as it is (essentia's model-zoo graph)
  (b) the same with hop 187
  (b') (b) on our rewritten graph: how much of the gain is the graph alone
  (c) the model alone on ready mel patches, at the best batch size and
      TensorFlow thread settings of a sweep (printed)
  (f) CPU seconds of decoding (ffmpeg, included) plus features per second of audio
  (d) our analyzer alone, default settings, hop 187, model already loaded
  (e) `beet musicnn -f` end to end on a beets library of the files,
      model loading and database writes included
Each as seconds of audio per second of wall time, then the machine's limit
L = 1 / (1/c + f/N) for N cores and the ratios. Compare figures within one
run only.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import beetsplug.musicnn  # noqa: F401  before numpy: it sets numpy's BLAS threads
from bench.common import MODELS, measure, python, tracks
from tests.beet import BEET

PARTS = {
    "a": "essentia per file, hop 93",
    "b": "essentia per file, hop 187",
    "b'": "(b) on our graph",
    "c": "model alone, best settings",
    "f": "decode + features (CPU)",
    "d": "our analyzer",
    "e": "beet musicnn -f, end to end",
}


def _graph() -> Path:
    from beetsplug.musicnn.provision import ModelInfo, provide

    return provide(ModelInfo.load("msd"), MODELS).path


def _zoo_graph() -> Path:
    """The checkpoint frozen as it is (essentia's model-zoo graph), made once."""
    from beetsplug.musicnn.provision import ModelInfo, provide

    return provide(ModelInfo.load("msd"), MODELS, structure="original").path


def part_essentia(paths: list[Path], hop: int, graph: Path) -> dict[str, float]:
    import essentia.standard as es

    audio_seconds = 0.0
    start = time.perf_counter()
    for path in paths:
        audio = es.MonoLoader(filename=str(path), sampleRate=16000)()
        es.TensorflowPredictMusiCNN(graphFilename=str(graph), patchHopSize=hop)(audio)
        audio_seconds += len(audio) / 16000
    return {"audio": audio_seconds, "wall": time.perf_counter() - start}


def _patches(paths: list[Path]) -> tuple[float, float, list]:
    """Audio seconds, CPU seconds (ours and ffmpeg's) to get every patch, the patches."""
    from beetsplug.musicnn.decode import Decoding
    from beetsplug.musicnn.features import MelStream, Patcher

    patches: list = []
    audio_seconds = 0.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time()
    for path in paths:
        mel, patcher = MelStream(), Patcher()
        with Decoding(os.fsencode(path)) as decoding:
            for chunk in decoding.chunks():
                patches.extend(patcher.feed(mel.feed(chunk)))
            audio_seconds += decoding.samples / 16000
        patches.extend(patcher.feed(mel.finish()))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ffmpeg = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return audio_seconds, (time.process_time() - cpu) + ffmpeg, patches


def part_frontend(paths: list[Path]) -> dict[str, float]:
    audio, cpu, _ = _patches(paths)
    return {"audio": audio, "cpu": cpu}


def _rate(model, patches: list, batch: int) -> float:
    """Patches per second over ``patches``, after one warm-up call."""
    import numpy as np

    model.predict(np.stack(patches[:batch]))
    start = time.perf_counter()
    for i in range(0, len(patches), batch):
        model.predict(np.stack(patches[i : i + batch]))
    return len(patches) / (time.perf_counter() - start)


def part_model(paths: list[Path]) -> dict[str, float]:
    from beetsplug.musicnn.inference import TensorflowPredictor
    from beetsplug.musicnn.provision import ModelInfo

    info, graph = ModelInfo.load("msd"), _graph()
    audio, _cpu, patches = _patches(paths)
    cores = os.cpu_count() or 1
    sample = patches[:64]
    default = TensorflowPredictor(graph, info, 0, 0)
    by_batch = {b: _rate(default, sample, b) for b in (1, 2, 4, 8, 16, 32, 64)}
    batch = max(by_batch, key=by_batch.__getitem__)
    sweep = {f"batch {b}, intra 0, inter 0": r for b, r in by_batch.items()}
    for intra, inter in ((cores, 1), (1, cores), (cores, cores)):
        model = TensorflowPredictor(graph, info, intra, inter)
        sweep[f"batch {batch}, intra {intra}, inter {inter}"] = _rate(model, sample, batch)
    best = max(sweep, key=sweep.__getitem__)
    for name, rate in sweep.items():
        print(f"    sweep {name}: {rate:.1f} patches/s", file=sys.stderr)
    batch, intra, inter = (int(word.split()[-1]) for word in best.split(", "))
    model = default if (intra, inter) == (0, 0) else TensorflowPredictor(graph, info, intra, inter)
    rate = _rate(model, patches, batch)
    return {"audio": audio, "wall": audio / (rate * audio / len(patches)), "best": best}


def part_analyzer(paths: list[Path]) -> dict[str, float]:
    from beetsplug.musicnn.analyzer import Analyzer, Job, Outcome, Result
    from beetsplug.musicnn.inference import shared_predictor
    from beetsplug.musicnn.provision import ModelInfo

    info, graph = ModelInfo.load("msd"), _graph()
    outcomes: list[Outcome] = []
    shared_predictor(graph, info)  # loaded before timing: (e) counts loading, (d) does not
    analyzer = Analyzer(lambda: shared_predictor(graph, info))
    start = time.perf_counter()
    analyzer.run([Job(i, os.fsencode(p)) for i, p in enumerate(paths)], outcomes.append)
    wall = time.perf_counter() - start
    audio = sum(o.seconds for o in outcomes if isinstance(o, Result))
    assert len(outcomes) == len(paths) and all(isinstance(o, Result) for o in outcomes)
    return {"audio": audio, "wall": wall, "threads": analyzer.threads}


def beets_library(root: Path, paths: list[Path], musicnn: str = "auto: no") -> Path:
    """A beets config dir at ``root`` whose library will hold ``paths`` in place.

    Nothing is written into the files (``write: no``): they are the cached
    bench tracks.
    """
    music = root / "music"
    music.mkdir(parents=True)
    for path in paths:
        (music / path.name).symlink_to(path.resolve())
    (root / "config.yaml").write_text(
        f"directory: {root / 'lib'}\nlibrary: {root / 'library.db'}\nplugins: musicnn\n"
        "import: {copy: no, autotag: no, write: no, duplicate_action: keep}\n"
        f"musicnn: {{model_dir: {MODELS}, {musicnn}}}\n"
    )
    return music


def part_beet(paths: list[Path], audio: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        music = beets_library(root, paths)
        env = {"BEETSDIR": str(root)}
        imported = measure([*BEET, "import", "-q", str(music)], env)
        assert imported.returncode == 0, imported.stderr
        run = measure([*BEET, "musicnn", "-f"], env)
        assert run.returncode == 0, run.stderr
        print(f"    {run.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        return {"audio": audio, "wall": run.wall, "peak_mb": run.peak_mb}


def _child(part: str, listing: Path) -> dict[str, float]:
    paths = [Path(line) for line in listing.read_text().splitlines()]
    if part in ("a", "b", "b'"):
        graph = _zoo_graph() if part != "b'" else _graph()
        return part_essentia(paths, 93 if part == "a" else 187, graph)
    return {"c": part_model, "f": part_frontend, "d": part_analyzer}[part](paths)


def main(count: int = 20, shortest: float = 180, longest: float = 360) -> None:
    paths = tracks(count, shortest, longest)
    _graph(), _zoo_graph()  # built once, before any timing
    print(f"{len(paths)} tracks of {shortest:.0f} to {longest:.0f} s (mp3, ogg); "
          f"{os.cpu_count()} cores")  # fmt: skip
    figures: dict[str, float] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listing:
        listing.write("\n".join(str(p) for p in paths))
        listing.flush()
        for part in ("a", "b", "b'", "c", "f", "d", "e"):
            if part == "e":
                result, peak = part_beet(paths, figures["audio"]), None
            else:
                run = measure(python("-m", "bench.throughput", "part", part, listing.name))
                if run.returncode != 0:
                    sys.exit(f"({part}) failed:\n{run.stderr}")
                sys.stderr.write("".join(ln + "\n" for ln in run.stderr.splitlines()
                                         if ln.startswith("    ")))  # fmt: skip
                result, peak = json.loads(run.stdout.splitlines()[-1]), run.peak_mb
            figures["audio"] = result["audio"]
            peak = peak or result["peak_mb"]
            if part == "f":
                figures["f"] = result["cpu"] / result["audio"]
                print(f"(f) {PARTS[part]:29}{figures['f'] * 1000:8.2f} ms CPU per s of audio"
                      f"   peak {peak:5.0f} MB")  # fmt: skip
                continue
            figures[part] = result["audio"] / result["wall"]
            extra = f"   [{result['best']}]" if "best" in result else ""
            extra += f"   [{result['threads']} threads]" if "threads" in result else ""
            print(f"({part}) {PARTS[part]:29}{figures[part]:8.1f} s of audio/s"
                  f"   peak {peak:5.0f} MB{extra}", flush=True)  # fmt: skip
    a, b, b_ours, c, d, e, f = (figures[k] for k in ("a", "b", "b'", "c", "d", "e", "f"))
    cores = os.cpu_count() or 1
    limit = 1 / (1 / c + f / cores)
    print(f"{figures['audio']:.0f} s of audio; limit L = 1/(1/c + f/{cores}) = {limit:.1f} s/s")
    print(f"e/L = {e / limit:.2f}  e/b = {e / b:.2f}  d/L = {d / limit:.2f}  d/b = {d / b:.2f}  "
          f"c/b = {c / b:.2f}  e/a = {e / a:.2f}  b'/b = {b_ours / b:.2f}  "
          f"f*c = {f * c:.2f}")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["part"]:
        print(json.dumps(_child(sys.argv[2], Path(sys.argv[3]))))
    else:
        main(*(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[1:])))
