"""Import with analysis (`auto: yes`) against importing first and analyzing after.

Run: .venv/bin/python -m bench.importing [TRACKS] [SHORTEST] [LONGEST]
(default: the 20 tracks of bench.throughput, 180 to 360 s). For 20
singletons (`beet import -s`) and for one 20-track album, each in a fresh
library that copies the files in, it times real `beet` processes:
  auto yes: `beet import` alone (analysis runs beside the import)
  auto no:  `beet import`, then `beet musicnn`
and prints their ratio (target: at most 1.2) with peak RSS.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from bench.common import MODELS, Run, measure, tracks
from tests.beet import BEET


def library(root: Path, paths: list[Path], auto: bool) -> tuple[dict[str, str], Path]:
    """A fresh beets config dir (copying import) and a folder holding the files."""
    source = root / "incoming"
    source.mkdir()
    for path in paths:
        shutil.copy(path, source / path.name)
    (root / "config.yaml").write_text(
        f"directory: {root / 'lib'}\nlibrary: {root / 'library.db'}\nplugins: musicnn\n"
        # Untagged synthesised files look like duplicates of each other.
        "import: {copy: yes, autotag: no, duplicate_action: keep}\n"
        f"musicnn: {{model_dir: {MODELS}, auto: {'yes' if auto else 'no'}}}\n"
    )
    return {"BEETSDIR": str(root)}, source


def _checked(run: Run) -> Run:
    if run.returncode != 0:
        sys.exit(run.stderr)
    return run


def main(count: int = 20, shortest: float = 180, longest: float = 360) -> None:
    paths = tracks(count, shortest, longest)
    print(f"{len(paths)} tracks of {shortest:.0f} to {longest:.0f} s (mp3, ogg)")
    for label, flags in (("singletons", ["-s"]), ("one album", [])):
        with tempfile.TemporaryDirectory() as yes_dir, tempfile.TemporaryDirectory() as no_dir:
            env, source = library(Path(yes_dir), paths, auto=True)
            together = _checked(measure([*BEET, "import", "-q", *flags, str(source)], env))
            env, source = library(Path(no_dir), paths, auto=False)
            imported = _checked(measure([*BEET, "import", "-q", *flags, str(source)], env))
            analyzed = _checked(measure([*BEET, "musicnn"], env))
        after = imported.wall + analyzed.wall
        print(f"{label}: auto yes {together.wall:6.1f} s (peak {together.peak_mb:4.0f} MB)   "
              f"auto no {imported.wall:5.1f} s + musicnn {analyzed.wall:6.1f} s "
              f"(peak {analyzed.peak_mb:4.0f} MB) = {after:6.1f} s   "
              f"ratio {together.wall / after:.2f}", flush=True)  # fmt: skip
        output = (together.stdout + together.stderr).splitlines()
        said = [ln for ln in output if ln.startswith("musicnn:")]
        print(f"    {said[-1] if said else 'no summary'}")


if __name__ == "__main__":
    main(*(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[1:])))
