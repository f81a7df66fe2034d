"""The progress bar: drawn on a terminal only, with counts, rate and ETA."""

from __future__ import annotations

import io

from beetsplug.musicnn.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_on_a_terminal() -> None:
    screen = Terminal()
    bar = Progress(4, screen)
    for _ in range(4):
        bar.advance(30.0)
    bar.close()
    last = screen.getvalue().split("\r")[-1]
    assert "4/4" in last and "files/s" in last and "x realtime" in last and "ETA 0:00" in last
    assert last.endswith("\n")
    assert bar.line(elapsed=60.0).count("#") == bar.width  # full when done


def test_silent_elsewhere() -> None:
    pipe = io.StringIO()
    bar = Progress(3, pipe)
    bar.advance(10.0)
    bar.close()
    assert pipe.getvalue() == ""
    half = Progress(10, Terminal())
    half.done = 5
    assert "ETA 0:10" in half.line(elapsed=10.0)  # 5 more at 0.5 files/s
