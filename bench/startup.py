"""What enabling the plugin costs every `beet` command: `beet version`, with and without.

Run: .venv/bin/python -m bench.startup [RUNS]
Both configurations run alternately in the same session; medians printed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(runs: int = 15) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for name, plugins in (("without", ""), ("with", "musicnn")):
            d = Path(tmp) / name
            d.mkdir()
            (d / "config.yaml").write_text(
                f"plugins: [{plugins}]\nlibrary: {d / 'lib.db'}\ndirectory: {d}\n"
            )
            dirs[name] = d
        times: dict[str, list[float]] = {name: [] for name in dirs}
        for _ in range(runs + 1):  # the first round warms the disk cache
            for name, d in dirs.items():
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "beets", "version"],
                    env={**os.environ, "BEETSDIR": str(d)},
                    check=True,
                    capture_output=True,
                )
                times[name].append(time.perf_counter() - start)
        without = statistics.median(times["without"][1:])
        with_ = statistics.median(times["with"][1:])
        print(f"beet version, median of {runs}: without plugin {without:.3f} s, "
              f"with musicnn {with_:.3f} s, difference {with_ - without:+.3f} s "
              f"(ratio {with_ / without:.2f})")  # fmt: skip


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
