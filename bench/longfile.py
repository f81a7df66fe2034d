"""Peak memory of `beet musicnn` on a short file and on a very long one.

Run: .venv/bin/python -m bench.longfile [HOURS]

Makes a HOURS-long file (default 3: a DJ mix) by looping one bench track
with ffmpeg (no re-encoding), then, in fresh beets libraries, times
`beet musicnn` on the loop's source track alone and on the long file alone,
with each process's peak RSS. Memory must not grow with track length.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import OUT, measure, tracks
from bench.throughput import beets_library
from tests.beet import BEET


def looped(source: Path, hours: float) -> Path:
    """``source`` repeated to at least ``hours``, stream-copied into one file."""
    seconds = float(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
             str(source)],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    loops = int(hours * 3600 / seconds) + 1
    path = OUT / f"mix-{hours:g}h{source.suffix}"
    if not path.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-stream_loop", str(loops - 1), "-i", str(source),
             "-c", "copy", str(path)],
            check=True,
        )  # fmt: skip
    return path


def main(hours: float = 3) -> None:
    source = tracks(20, 180, 360)[2]  # an mp3: ffmpeg loops it cleanly without re-encoding
    for path in (source, looped(source, hours)):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            beets_library(root, [path])
            env = {"BEETSDIR": str(root)}
            imported = measure([*BEET, "import", "-q", "-s", str(root / "music")], env)
            if imported.returncode != 0:
                sys.exit(imported.stderr)
            run = measure([*BEET, "musicnn"], env)
            if run.returncode != 0:
                sys.exit(run.stderr)
            print(f"{path.name}: {run.wall:6.1f} s, peak RSS {run.peak_mb:5.0f} MB", flush=True)
            print(f"    {run.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:]))
