"""A file whose permissions were removed, analysed by a real `beet` that they bind.

Root reads any file, so under root (as in CI) `beet musicnn` runs without the
two capabilities that bypass file permissions, and a file with mode 000 is
then unreadable to it as to anyone. It stays root rather than becoming
``nobody``: the virtualenv's interpreter may live where only root can reach it
(here it links into /root/.pyenv, and /root is 0700).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from beetsplug.musicnn.store import Store
from tests.beet import BEET, beet, write_config
from tests.synth import write
from tests.test_reliability import GOOD, stored


def bound_by_permissions(path: Path) -> list[str]:
    """A command prefix under which ``path``'s permissions apply (skips if none can)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without util-linux `setpriv` to drop DAC capabilities")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = [sys.executable, "-c", "import os, sys; print(os.access(sys.argv[1], os.R_OK))"]
    seen = subprocess.run([*prefix, *probe, str(path)], capture_output=True, text=True)
    if seen.stdout.strip() != "False":
        said = seen.stdout.strip() or seen.stderr.strip()[-300:]
        how = " ".join(prefix) or "a plain child process"
        pytest.skip(f"permissions cannot be taken away: {how} still reads mode 000 ({said})")
    return prefix


@pytest.mark.usefixtures("msd")  # the graph is frozen into model_dir
def test_unreadable_file_is_one_clear_failure(tmp_path: Path, model_dir: Path) -> None:
    incoming = tmp_path / "in"
    for name, track in GOOD.items():
        write(track, incoming / name)
    unreadable = Path(shutil.copy(incoming / "pad.mp3", incoming / "unreadable.mp3"))
    root = write_config(tmp_path, model_dir, "auto: no")
    imported = beet(root, "import", "-q", "-C", str(incoming))
    assert imported.returncode == 0, imported.stderr[-500:]
    unreadable.chmod(0)

    run = subprocess.run(
        [*bound_by_permissions(unreadable), *BEET, "musicnn"],
        capture_output=True, text=True, env={**os.environ, "BEETSDIR": str(root)}, timeout=600,
    )  # fmt: skip
    assert run.returncode != 0, run.stderr[-1000:]
    assert "1 file(s) could not be analyzed" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr[-2000:]

    failures = Store(root / "musicnn.db").failures()
    assert len(failures) == 1, failures
    ((path, error, _when),) = failures.values()
    assert path == os.fsencode(unreadable)
    assert "permission denied" in error
    rows = [line.split("|") for line in beet(root, "ls", "-f", "$id|$musicnn_genre").stdout.split()]
    genres = {int(item_id): genre for item_id, genre in rows}
    good = set(genres) - set(failures)
    assert len(good) == len(GOOD) and set(stored(root)) == good
    assert all(genres[item_id] for item_id in good), genres
