"""A one-line progress bar with rate and ETA, drawn only on a terminal.

Off a terminal (cron, pipes, CI logs) it stays silent and the run's log
lines and closing summary tell the story instead.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24):
        self.total = total
        self.done = 0
        self.audio = 0.0
        self.stream = stream or sys.stderr
        self.enabled = total > 0 and self.stream.isatty()
        self.width = width
        self.started = time.monotonic()
        self._drawn = 0.0

    def advance(self, audio_seconds: float = 0.0) -> None:
        self.done += 1
        self.audio += audio_seconds
        now = time.monotonic()
        if self.enabled and (now - self._drawn > 0.2 or self.done == self.total):
            self._drawn = now
            self.stream.write("\r" + self.line(now - self.started))
            self.stream.flush()

    def line(self, elapsed: float) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(fraction * self.width)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        return (
            f"musicnn [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
            f"{rate:.2f} files/s, {self.audio / max(elapsed, 1e-9):.0f}x realtime, "
            f"ETA {_clock(eta)} "
        )

    def close(self) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
