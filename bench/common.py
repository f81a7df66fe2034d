"""What the benchmarks share: the real-length track library and measured child runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.synth import Track, write

OUT = Path(__file__).parent / "out"
MODELS = OUT / "models"
FAMILIES = ["pad", "riff", "drums", "pluck"]


def tracks(count: int, shortest: float, longest: float) -> list[Path]:
    """``count`` synthesised tracks, mp3 and ogg in turn, lengths spread over the range.

    Written once under bench/out/tracks and reused by later runs.
    """
    paths = []
    for i in range(count):
        seconds = shortest + (longest - shortest) * ((i * 7) % count) / max(1, count - 1)
        fmt = "mp3" if i % 2 == 0 else "ogg"
        family = FAMILIES[i % len(FAMILIES)]
        path = OUT / "tracks" / f"{i:02d}-{family}-{seconds:.0f}s.{fmt}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write(Track(family, seconds, key=i % 12, tempo=80 + 7 * i, seed=i), path)
        paths.append(path)
    return paths


@contextlib.contextmanager
def built(build: Callable[[Path, int], None], count: int) -> Iterator[Path]:
    """A temporary folder in which ``build(folder, count)`` made a library; says how long."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        build(root, count)
        print(f"built {count} analyzed items in {time.perf_counter() - start:.1f} s")
        yield root


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    peak_mb: float  # the child's own peak resident set (VmHWM), decoders not included
    stdout: str
    stderr: str
    returncode: int


def measure(args: list[str], env: dict[str, str] | None = None) -> Run:
    """Run a child process to the end: its wall time and its peak RSS.

    The peak is the kernel's high-water mark of the child's own memory,
    polled until it exits. (wait4's ru_maxrss would also count this parent's
    memory, copied into the child when it forks.)
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _high_water_kb(proc.pid))
            time.sleep(0.05)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return Run(wall, peak / 1024, out.read(), err.read(), proc.returncode)


def _high_water_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # it has just exited
        pass
    return 0


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
