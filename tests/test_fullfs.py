"""The tiny filesystem of tests/fullfs.py is really full, and private to its commands."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from tests.fullfs import TinyFilesystem

SIZE = 256 << 10


def test_writing_past_the_size_runs_out_of_space(tmp_path: Path) -> None:
    with TinyFilesystem(tmp_path / "small", SIZE) as fs:
        assert 0 < fs.free() <= SIZE
        fs.fill(leave=16 << 10)
        assert fs.free() == 16 << 10
        big = fs.run(["sh", "-c", "head -c 65536 /dev/zero > small/big"], cwd=tmp_path)
        assert big.returncode != 0 and "No space left on device" in big.stderr
        with pytest.raises(OSError) as raised:
            (fs.view / "bigger").write_bytes(bytes(SIZE))
        assert raised.value.errno == errno.ENOSPC
        assert fs.free() == 0
    assert not any(fs.path.iterdir())  # all of it lived in the namespace
