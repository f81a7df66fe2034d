"""The front end's CPU cost, today's code beside the new, in one run.

Run: .venv/bin/python -m bench.frontend [N] [SECONDS] [FFMPEG]
(default 3 tracks of 240 s per format, mp3, ogg and flac, written once
under bench/out/frontend; FFMPEG as the `ffmpeg` option, default the
system's). Every figure is CPU milliseconds per second of audio, the median
of REPEATS runs over all the tracks of a format:
  ffmpeg    the decoder's own CPU (getrusage of children), with today's
            arguments and with the new ones; their PCM must be bit-identical
  read      our process reading that output and hashing its fingerprint
  features  our process from decoded audio on: level, mel frames, patches,
            the chunks handed over as each version's reader gives them
            (today: a fresh bytes object per 8 s chunk; new: one reused buffer)
  total     the three together
Today's code is kept below only as this baseline; the package has the new.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import beetsplug.musicnn  # noqa: F401  before numpy: it sets its BLAS threads  # isort: skip
import numpy as np

from beetsplug.musicnn.decode import CHUNK_SECONDS, FINGERPRINT_SECONDS, Decoding, decoder_command
from beetsplug.musicnn.features import (
    _WINDOW,
    FRAME_SIZE,
    HOP_SIZE,
    MEL_BANDS,
    PATCH_SIZE,
    SAMPLE_RATE,
    MelStream,
    Patcher,
    mel_filterbank,
    resampler_gain,
)
from bench.common import FAMILIES, OUT
from tests.synth import Track, write

FORMATS = ("mp3", "ogg", "flac")
VERSIONS = ("today", "new")
PARTS = ("ffmpeg", "read", "features")
REPEATS = 5
CHUNK = CHUNK_SECONDS * SAMPLE_RATE


# ---- Today's front end (before this rework), kept only as the baseline ----


def today_args(command: tuple[str, ...], path: bytes) -> list[str | bytes]:
    return [
        *command, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-i", b"file:" + path, "-map", "0:a:0", "-vn", "-ac", "1", "-rematrix_maxval", "1.0",
        "-ar", str(SAMPLE_RATE), "-f", "f32le", "-",
    ]  # fmt: skip


def today_chunks(command: tuple[str, ...], path: bytes) -> Iterator[np.ndarray]:
    """Today's Decoding.chunks: a fresh bytes object per chunk, and the fingerprint."""
    proc = subprocess.Popen(
        today_args(command, path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    digest, hashed = hashlib.sha1(), 0
    while block := proc.stdout.read(CHUNK * 4):
        audio = np.frombuffer(block[: len(block) // 4 * 4], np.float32)
        if (wanted := FINGERPRINT_SECONDS * SAMPLE_RATE - hashed) > 0:
            head = audio[:wanted]
            digest.update(np.round(head * 32767).astype("<i2").tobytes())
            hashed += len(head)
        yield audio
    proc.wait()


_TODAY_FILTERS_T = np.ascontiguousarray((mel_filterbank() * resampler_gain()).T)


def today_mel_frames(frames: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    return np.log10(1 + 10000 * (power @ _TODAY_FILTERS_T))


class TodayMelStream:
    def __init__(self) -> None:
        self._buffer = np.zeros(FRAME_SIZE // 2, np.float32)
        self.samples = 0

    def feed(self, audio: np.ndarray) -> np.ndarray:
        self.samples += len(audio)
        self._buffer = np.concatenate((self._buffer, audio))
        return self._cut(max((len(self._buffer) - FRAME_SIZE) // HOP_SIZE + 1, 0))

    def finish(self) -> np.ndarray:
        total = -(-self.samples // HOP_SIZE) + 1
        remaining = total - (self.samples + FRAME_SIZE // 2 - len(self._buffer)) // HOP_SIZE
        if remaining <= 0:
            return np.empty((0, MEL_BANDS), np.float32)
        padded = np.zeros((remaining - 1) * HOP_SIZE + FRAME_SIZE, np.float32)
        kept = min(len(self._buffer), len(padded))
        padded[:kept] = self._buffer[:kept]
        self._buffer = padded
        return self._cut(remaining)

    def _cut(self, count: int) -> np.ndarray:
        if count == 0:
            return np.empty((0, MEL_BANDS), np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self._buffer, FRAME_SIZE)
        bands = today_mel_frames(view[: count * HOP_SIZE : HOP_SIZE])
        self._buffer = self._buffer[count * HOP_SIZE :]
        return bands


class TodayPatcher:
    def __init__(self) -> None:
        self._frames = np.empty((0, MEL_BANDS), np.float32)

    def feed(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        self._frames = np.concatenate((self._frames, frames))
        start = 0
        while start + PATCH_SIZE <= len(self._frames):
            yield self._frames[start : start + PATCH_SIZE]
            start += PATCH_SIZE
        self._frames = self._frames[start:]


# ---- The measurements ----


def bench_tracks(count: int, seconds: float) -> dict[str, list[Path]]:
    """``count`` synthesised tracks per format, written once under bench/out/frontend."""
    paths: dict[str, list[Path]] = {fmt: [] for fmt in FORMATS}
    for fmt in FORMATS:
        for i in range(count):
            family = FAMILIES[i % len(FAMILIES)]
            path = OUT / "frontend" / f"{i:02d}-{family}-{seconds:.0f}s.{fmt}"
            if not path.exists():
                write(Track(family, seconds, key=i % 12, tempo=80 + 7 * i, seed=i), path)
            paths[fmt].append(path)
    return paths


def new_chunks(command: tuple[str, ...], path: bytes) -> Iterator[np.ndarray]:
    with Decoding(path, command) as decoding:
        yield from decoding.chunks()
        assert decoding.fingerprint.digest


def decode(version: str, command: tuple[str, ...], paths: list[str]) -> dict[str, float]:
    """Read every track through: audio seconds, ffmpeg's CPU seconds and ours."""
    chunks = today_chunks if version == "today" else new_chunks
    audio = 0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = time.thread_time()
    for path in paths:
        for chunk in chunks(command, os.fsencode(path)):
            audio += len(chunk)
    ours = time.thread_time() - ours
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ffmpeg = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return {"audio": audio / SAMPLE_RATE, "ffmpeg": ffmpeg, "ours": ours}


def features(version: str, pcm: list[bytes]) -> list[list[np.ndarray]]:
    """What the analyzer does with each chunk: level, mel frames, patches (returned).

    Chunks come as each version's reader gives them: today a fresh bytes
    object per chunk, new the one buffer that Decoding.chunks reads into.
    """
    buffer = np.empty(CHUNK, np.float32)
    today = version == "today"
    out = []
    for track in pcm:
        mel, patcher = (TodayMelStream(), TodayPatcher()) if today else (MelStream(), Patcher())
        patches, energy = [], 0.0
        for start in range(0, len(track), CHUNK * 4):
            if today:
                audio = np.frombuffer(track[start : start + CHUNK * 4], np.float32)
            else:
                audio = buffer[: min(CHUNK, (len(track) - start) // 4)]
                audio[:] = np.frombuffer(track, np.float32, len(audio), start)
            energy += float(np.dot(audio, audio))
            patches.extend(patcher.feed(mel.feed(audio)))
        patches.extend(patcher.feed(mel.finish()))
        out.append(patches)
    return out


def timed_features(version: str, files: list[str]) -> dict[str, float]:
    pcm = [Path(f).read_bytes() for f in files]
    features(version, [pcm[0][: CHUNK * 4 * 2]])  # once-per-process costs (FFT plan, BLAS)
    start = time.thread_time()
    features(version, pcm)
    return {"audio": sum(map(len, pcm)) / 4 / SAMPLE_RATE, "ours": time.thread_time() - start}


def child(part: str, version: str, args: list[str]) -> dict[str, float]:
    """One measurement in a fresh process, in a worker thread as in the analyzer.

    A fresh process, because how much of today's features went to page
    faults depends on the memory allocator's history.
    """
    args = [sys.executable, "-m", "bench.frontend", "child", part, version, *args]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{part} {version} failed:\n{run.stderr}")
    return json.loads(run.stdout.splitlines()[-1])


def decoded_pcm(paths: list[Path], command: tuple[str, ...], folder: Path) -> list[str]:
    """Every track's PCM, written as raw f32; exits unless both arguments give the same bits."""
    files = []
    for path in paths:
        new = np.concatenate([c.copy() for c in new_chunks(command, os.fsencode(path))])
        if not np.array_equal(new, np.concatenate(list(today_chunks(command, os.fsencode(path))))):
            sys.exit(f"{path}: the new decoder arguments change the PCM")
        files.append(str(folder / f"{path.name}.f32"))
        new.tofile(files[-1])
    return files


def startup_ms(command: tuple[str, ...]) -> float:
    """ffmpeg's CPU for doing nothing (`-version`): its start-up, paid per file."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(10):
        subprocess.run([*command, "-version"], stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 100


def _cpu_name() -> str:
    with open("/proc/cpuinfo") as info:
        lines = info.read().splitlines()
    field = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[:30])}
    extra = "AVX-512" if "avx512f" in field.get("flags", "") else "no AVX-512"
    name = field.get("model name", platform.processor())
    return f"{name} (family {field.get('cpu family')}, {extra})"


def main(count: int = 3, seconds: float = 240, ffmpeg: str = "ffmpeg") -> None:
    command = decoder_command((ffmpeg,))
    paths = bench_tracks(count, seconds)
    print(f"{count} tracks of {seconds:.0f} s per format; {_cpu_name()}, {os.cpu_count()} cores")
    print(f"{command[0]}: {startup_ms(command):.1f} ms CPU per process to start")
    print(f"CPU ms per second of audio, median of {REPEATS} runs:")
    print(f"{'':18}{'today':>8}{'new':>8}{'today/new':>11}")
    gap = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            pcm = decoded_pcm(paths[fmt], command, Path(tmp))
            runs: dict[tuple[str, str], list[float]] = {}
            for _ in range(REPEATS):  # interleaved, so a busy moment hits both alike
                for version in VERSIONS:
                    dec = child("decode", version, [*command, "--", *map(str, paths[fmt])])
                    feat = child("features", version, pcm)
                    cpu = (dec["ffmpeg"], dec["ours"], feat["ours"])
                    for part, seconds in zip(PARTS, cpu, strict=True):
                        runs.setdefault((part, version), []).append(seconds / dec["audio"] * 1000)
            rows = {p: [statistics.median(runs[p, v]) for v in VERSIONS] for p in PARTS}
            rows["total"] = [sum(row[i] for row in rows.values()) for i in range(len(VERSIONS))]
            for part, (today, new) in rows.items():
                print(f"{fmt:5}{part:13}{today:8.3f}{new:8.3f}{today / new:10.2f}x", flush=True)
            tracks = [Path(f).read_bytes() for f in pcm]
            for a, b in zip(features("today", tracks), features("new", tracks), strict=True):
                gap = max(gap, float(np.abs(np.stack(a) - np.stack(b)).max()))
    print(f"PCM bit-identical with both arguments; patches within {gap:.1e} of today's")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        part, version, *args = sys.argv[2:]
        if part == "decode":
            split = args.index("--")
            work = partial(decode, version, tuple(args[:split]), args[split + 1 :])
        else:
            work = partial(timed_features, version, args)
        result: dict[str, float] = {}
        worker = threading.Thread(target=lambda: result.update(work()))
        worker.start()
        worker.join()
        print(json.dumps(result))
    else:
        main(*(t(a) for t, a in zip((int, float, str), sys.argv[1:], strict=False)))
