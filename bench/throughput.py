"""Analysis speed, ours beside essentia's one-file-at-a-time path, in one run.

Run: .venv/bin/python -m bench.throughput [TRACKS] [SECONDS]

Builds TRACKS real-length tracks (mp3 and ogg, SECONDS long each, of
varied character) once under bench/out/, then measures on the same files:
  (a) essentia MonoLoader + TensorflowPredictMusiCNN per file, defaults (hop 93)
  (b) the same with hop 187
  (c) the model alone (TF session, batch 64) on ready mel patches
  (f) CPU seconds of decoding (ffmpeg) plus features per second of audio
  (d) our analyzer, default threads, hop 187
Each as seconds of audio per second of wall time, with ratios. Figures are
for this machine only: compare them within one run.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import essentia.standard as es  # before tensorflow (see inference.import_tensorflow)
import numpy as np

from beetsplug.musicnn.analyzer import Analyzer, Job, Outcome, Result, default_threads
from beetsplug.musicnn.decode import Decoding
from beetsplug.musicnn.features import MelStream, Patcher
from beetsplug.musicnn.inference import shared_model
from beetsplug.musicnn.provision import ModelInfo, provide
from tests.synth import Track, write

OUT = Path(__file__).parent / "out"
FAMILIES = ["pad", "riff", "drums", "pluck"]


def library(count: int, seconds: float) -> list[Path]:
    paths = []
    for i in range(count):
        fmt = "mp3" if i % 2 == 0 else "ogg"
        path = OUT / "tracks" / f"{i:02d}-{FAMILIES[i % 4]}-{int(seconds)}s.{fmt}"
        if not path.exists():
            track = Track(FAMILIES[i % 4], seconds, key=i % 12, tempo=80 + 7 * i, seed=i)
            write(track, path)
        paths.append(path)
    return paths


def essentia_run(paths: list[Path], graph: Path, hop: int) -> tuple[float, float]:
    audio_seconds = 0.0
    start = time.perf_counter()
    for path in paths:
        audio = es.MonoLoader(filename=str(path), sampleRate=16000)()
        es.TensorflowPredictMusiCNN(graphFilename=str(graph), patchHopSize=hop)(audio)
        audio_seconds += len(audio) / 16000
    return audio_seconds, time.perf_counter() - start


def frontend_cpu(paths: list[Path]) -> tuple[float, float, list[np.ndarray]]:
    """CPU seconds (ours and ffmpeg's) to get every patch, and the patches."""
    patches: list[np.ndarray] = []
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


def main(count: int = 20, seconds: float = 240) -> None:
    info = ModelInfo.load("msd")
    graph = provide(info, OUT / "models")
    paths = library(count, seconds)
    print(f"{len(paths)} tracks of {seconds:.0f} s (mp3, ogg); {os.cpu_count()} cores")

    audio, wall = essentia_run(paths, graph.path, 93)
    a = audio / wall
    print(f"(a) essentia per file, hop 93:   {a:7.1f} s of audio/s")
    audio, wall = essentia_run(paths, graph.path, 187)
    b = audio / wall
    print(f"(b) essentia per file, hop 187:  {b:7.1f} s of audio/s")

    audio, cpu, patches = frontend_cpu(paths)
    f = cpu / audio
    print(f"(f) decode + features:           {f * 1000:7.2f} ms CPU per s of audio")

    model = shared_model(graph.path, info)
    batch = np.stack(patches[:64])
    model.predict(batch)  # warm-up
    start = time.perf_counter()
    for i in range(0, len(patches), 64):
        model.predict(np.stack(patches[i : i + 64]))
    per_patch_audio = audio / len(patches)
    c = len(patches) * per_patch_audio / (time.perf_counter() - start)
    print(f"(c) model alone, batch 64:       {c:7.1f} s of audio/s")

    outcomes: list[Outcome] = []
    analyzer = Analyzer(lambda: model)
    start = time.perf_counter()
    analyzer.run([Job(i, os.fsencode(p)) for i, p in enumerate(paths)], outcomes.append)
    wall = time.perf_counter() - start
    d = sum(o.seconds for o in outcomes if isinstance(o, Result)) / wall
    print(f"(d) our analyzer, {analyzer.threads} threads:     {d:7.1f} s of audio/s")

    cores = default_threads()
    limit = 1 / (1 / c + f / cores)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"limit L = 1/(1/c + f/{cores}) = {limit:.1f} s of audio/s")
    print(f"d/L = {d / limit:.2f}   d/b = {d / b:.2f}   d/a = {d / a:.2f}   f*c = {f * c:.2f}")
    print(f"peak RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main(*(float(a) if i else int(a) for i, a in enumerate(sys.argv[1:])))
