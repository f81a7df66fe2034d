"""A really full filesystem for a test: a tiny tmpfs in a private mount namespace.

``TinyFilesystem(folder, size)`` mounts a tmpfs of ``size`` bytes on
``folder`` inside a new mount namespace (as root: ``unshare --mount``;
otherwise in a user namespace too, ``unshare --user --map-root-user
--mount``), held open by a process that lives as long as the ``with`` block.
Commands run through ``run`` (or after ``prefix()``) enter that namespace
(``nsenter``) and see the tmpfs at ``folder``; everything else, this process
included, still sees the plain directory, so nothing leaks onto the machine,
and the namespace goes away with the holder even if the test process is
killed. This process reaches the tmpfs through ``view``
(``/proc/<holder>/root/<folder>``), which ``fill`` uses to leave only a few
bytes free. Where no namespace can be made, the test is skipped with the
reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest


class TinyFilesystem:
    """``folder`` backed by a ``size``-byte tmpfs, for the commands given to ``run``."""

    def __init__(self, folder: Path, size: int) -> None:
        self.path = folder.absolute()
        self.size = size
        self.userns = os.geteuid() != 0  # without root, only a user namespace may mount

    def __enter__(self) -> TinyFilesystem:
        self.path.mkdir(parents=True, exist_ok=True)
        flags = ["--user", "--map-root-user", "--mount"] if self.userns else ["--mount"]
        script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && echo mounted && exec cat'
        if not (shutil.which("unshare") and shutil.which("nsenter")):
            pytest.skip("a tiny filesystem needs util-linux `unshare` and `nsenter`")
        self._holder = subprocess.Popen(
            ["unshare", *flags, "sh", "-c", script, "sh", str(self.size), str(self.path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self._holder.stdout is not None
        if self._holder.stdout.readline() != "mounted\n":
            _out, err = self._holder.communicate()
            pytest.skip(f"cannot mount a tmpfs here (unshare {' '.join(flags)}): {err.strip()}")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._holder.communicate()  # EOF ends `cat`, the last process in the namespace

    @property
    def view(self) -> Path:
        """The tmpfs as this process can open it (plain files only).

        It goes through a ``/proc`` link, which SQLite resolves to the path
        outside: open databases on the tmpfs from a command given to ``run``.
        """
        return Path(f"/proc/{self._holder.pid}/root") / self.path.relative_to("/")

    def prefix(self, cwd: Path | str | None = None) -> list[str]:
        """Run ``[*prefix(), *command]`` to have ``command`` see the tmpfs at ``path``.

        The command starts in ``cwd`` (default: ours) as the namespace sees it:
        nsenter's own ``--wd`` would keep a directory of the outside tree.
        """
        enter = ["nsenter", f"--target={self._holder.pid}", "--mount"]
        if self.userns:
            enter += ["--user", "--preserve-credentials"]
        return [*enter, "env", f"--chdir={Path(cwd or '.').absolute()}"]

    def run(
        self, command: list[str], cwd: Path | str | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """``subprocess.run`` in the namespace, text mode, output captured."""
        return subprocess.run(
            [*self.prefix(cwd), *command], capture_output=True, text=True, **kwargs
        )

    def free(self) -> int:
        """Bytes still available on the tmpfs."""
        stat = os.statvfs(self.view)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int) -> None:
        """Take the free space but ``leave`` bytes (rounded down to pages) with a filler."""
        with open(self.view / "filler", "ab") as filler:
            grow = self.free() - leave
            if grow > 0:
                os.posix_fallocate(filler.fileno(), os.fstat(filler.fileno()).st_size, grow)
