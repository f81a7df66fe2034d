"""One analysis at a time per library.

An advisory ``flock`` on a file beside the plugin database: the kernel
drops it when its process ends, however it ends (even SIGKILL), so a
lock left by a killed run is simply taken over. The file names the
holder, for the message a second run shows.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import Busy


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the lock at ``path`` for the block, or raise Busy at once."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
            raise Busy(
                f"another `beet musicnn` is analyzing this library ({holder}); "
                "wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()}, started {started}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
