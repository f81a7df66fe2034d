"""Analysis speed, ours beside essentia's one-file-at-a-time path, in one run.

Run: .venv/bin/python -m bench.throughput [TRACKS] [SHORTEST] [LONGEST]
(default 20 tracks of 180 to 360 s, mp3 and ogg, written once under
bench/out/tracks). Every path runs in its own process, on the same files,
so each gets its own peak RSS:
  (a) essentia MonoLoader + TensorflowPredictMusiCNN per file, defaults (hop 93),
      on the checkpoint frozen as it is (essentia's model-zoo graph)
  (b) the same with hop 187
  (b') (b) on our rewritten graph: how much of the gain is the graph alone
  (c) the default engine (``backend: auto`` here) alone on ready mel patches,
      at the best batch size of a sweep (printed)
  (f) CPU seconds of decoding (ffmpeg, included) plus features per second of audio
  (d) our analyzer alone, default settings, hop 187, model already loaded
  (e) `beet musicnn -f` end to end on a beets library of the files,
      model loading and database writes included: (h), the default engine
  (g) (e) with `backend: tensorflow`: the engine's own gain is e/g
Each as seconds of audio per second of wall time, then the machine's limit
L = 1 / (1/c + f/N) for N cores and the ratios; (e) and (g) also give their
start-up (a whole `beet musicnn -f` of one 3 s track). Compare figures within
one run only; bench/engines.py sweeps every engine alone.
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
from bench.common import MODELS, OUT, measure, python, tracks
from tests.beet import BEET
from tests.synth import Track, write

BEET_RUNS = {"e": "backend: auto", "g": "backend: tensorflow"}  # their musicnn settings
PARTS = {
    "a": "essentia per file, hop 93",
    "b": "essentia per file, hop 187",
    "b'": "(b) on our graph",
    "c": "model alone, best settings",
    "f": "decode + features (CPU)",
    "d": "our analyzer",
    "e": "beet musicnn -f, end to end",
    "g": "(e) with backend: tensorflow",
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


def _default_engine() -> tuple[object, object, Path]:
    """The engine ``backend: auto`` runs here, its predictor and its graph (loaded)."""
    from beetsplug.musicnn.engine import choose
    from beetsplug.musicnn.inference import shared_predictor
    from beetsplug.musicnn.provision import ModelInfo, provide

    info = ModelInfo.load("msd")
    engine = choose("auto", "auto", None, print)
    graph = provide(info, MODELS, structure=engine.structure).path
    predictor = shared_predictor(
        graph, info, engine.backend, engine.precision, 0, MODELS / "openvino"
    )
    return engine, predictor, graph


def part_model(paths: list[Path]) -> dict[str, float]:
    """(c) the default engine alone on ready patches, at its best batch size (printed)."""
    engine, predictor, _graph = _default_engine()
    audio, _cpu, patches = _patches(paths)
    sample = patches[:128]
    by_batch = {b: _rate(predictor, sample, b) for b in (1, 2, 4, 8, 16, 32, 64)}
    for batch, rate in by_batch.items():
        print(f"    sweep {engine.backend} {engine.precision} batch {batch}: {rate:.1f} patches/s",
              file=sys.stderr)  # fmt: skip
    batch = max(by_batch, key=by_batch.__getitem__)
    rate = _rate(predictor, patches, batch)
    best = f"{predictor.engine}, batch {batch}; engine.py chose batch {engine.batch_size}"
    return {"audio": audio, "wall": audio / (rate * audio / len(patches)), "best": best}


def part_analyzer(paths: list[Path]) -> dict[str, float]:
    """(d) our analyzer with the default engine, loaded before timing."""
    from beetsplug.musicnn.analyzer import Analyzer, Job, Outcome, Result

    engine, predictor, _graph = _default_engine()
    outcomes: list[Outcome] = []
    analyzer = Analyzer(lambda: predictor, batch_size=engine.batch_size)
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


def part_beet(paths: list[Path], audio: float, musicnn: str) -> dict[str, float]:
    """`beet musicnn -f` end to end with these settings, and its start-up alone.

    Start-up is a whole `beet musicnn -f` of one 3 s track (one patch): from
    launch to the first patch predicted, plus a near-empty derivation and
    exit, with the model cached and the disk warm (it runs twice).
    """
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        music = beets_library(root, paths, f"auto: no, {musicnn}")
        env = {"BEETSDIR": str(root)}
        imported = measure([*BEET, "import", "-q", str(music)], env)
        assert imported.returncode == 0, imported.stderr
        run = measure([*BEET, "musicnn", "-f"], env)
        assert run.returncode == 0, run.stderr
        print(f"    {run.stderr.strip().splitlines()[-1]}", file=sys.stderr)
        tiny = measure([*BEET, "musicnn", "-f", f"path:{paths[0]}"], env)  # warm
        tiny = measure([*BEET, "musicnn", "-f", f"path:{_one_patch(root)}"], env)
        return {"audio": audio, "wall": run.wall, "peak_mb": run.peak_mb, "startup": tiny.wall}


def _one_patch(root: Path) -> Path:
    """A 3 s track added to the library at ``root`` (imported in place)."""
    path = OUT / "tracks" / "one-patch.ogg"
    if not path.exists():
        write(Track("tone", 3), path)
    link = root / "music" / path.name
    if not link.exists():
        link.symlink_to(path.resolve())
        env = {"BEETSDIR": str(root)}
        assert measure([*BEET, "import", "-q", "-s", str(link)], env).returncode == 0
    return link


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
        for part in ("a", "b", "b'", "c", "f", "d", "e", "g"):
            if part in BEET_RUNS:
                result, peak = part_beet(paths, figures["audio"], BEET_RUNS[part]), None
                figures[f"{part} start"] = result["startup"]
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
            extra += f"   [start-up {result['startup']:.1f} s]" if "startup" in result else ""
            print(f"({part}) {PARTS[part]:29}{figures[part]:8.1f} s of audio/s"
                  f"   peak {peak:5.0f} MB{extra}", flush=True)  # fmt: skip
    a, b, b_ours, c, d, e, f, g = (figures[k] for k in ("a", "b", "b'", "c", "d", "e", "f", "g"))
    cores = os.cpu_count() or 1
    limit = 1 / (1 / c + f / cores)
    print(f"{figures['audio']:.0f} s of audio; limit L = 1/(1/c + f/{cores}) = {limit:.1f} s/s")
    print(f"e/L = {e / limit:.2f}  e/g = {e / g:.2f}  e/a = {e / a:.2f}  e/b = {e / b:.2f}  "
          f"d/L = {d / limit:.2f}  c/b = {c / b:.2f}  b'/b = {b_ours / b:.2f}  "
          f"f*c = {f * c:.2f}  start-up e {figures['e start']:.1f} s, "
          f"g {figures['g start']:.1f} s")  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["part"]:
        print(json.dumps(_child(sys.argv[2], Path(sys.argv[3]))))
    else:
        main(*(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[1:])))
