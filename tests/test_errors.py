"""What is no file's fault stops the run with one line, exit status 1, and records nothing.

Each case is a real `beet` process on a real library: a bad option, a
missing decoder, a damaged or full plugin database. Results committed
before the error are kept, and the library itself is never touched.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.beet import BEET, beet, write_config
from tests.fullfs import TinyFilesystem
from tests.synth import Track, write
from tests.test_reliability import GOOD


@pytest.fixture(scope="module")
def incoming(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("incoming")
    for name, track in GOOD.items():
        write(track, folder / name)
    return folder


@pytest.fixture
def library(tmp_path: Path, model_dir: Path, incoming: Path, msd: object) -> Path:
    """Three tracks imported without analysis; the graph already frozen."""
    root = write_config(tmp_path, model_dir, "auto: no")
    assert beet(root, "import", "-q", str(incoming)).returncode == 0
    assert beet(root, "musicnn", "-p").returncode == 0  # the default engine's graph, frozen
    (root / "musicnn.db").unlink()
    return root


def configure(root: Path, musicnn: str) -> None:
    """Add ``musicnn`` settings (YAML flow entries) to the library's config."""
    config = root / "config.yaml"
    config.write_text(config.read_text().replace("auto: no", f"auto: no, {musicnn}"))


def one_error_line(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr[-2000:]
    assert lines[0].startswith("error: ")
    return lines[0]


def failures(database: Path) -> int:
    if not database.exists():
        return 0
    with sqlite3.connect(database) as db:
        return db.execute("SELECT count(*) FROM failures").fetchone()[0]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("threads: -3", "musicnn.threads: -3 is not allowed: use a whole number at least 0"),
        ("patch_hop: 0", "musicnn.patch_hop: 0 is not allowed: use a whole number at least 1"),
        ("batch_size: abc", "musicnn.batch_size: 'abc' is not allowed: use auto or a whole number"),
        ("model: vgg", "musicnn.model: 'vgg' is not allowed: use one of msd, mtt"),
        ("backend: onnx", "musicnn.backend: 'onnx' is not allowed: use one of auto, openvino,"),
        ("timeout: -1", "musicnn.timeout: -1 is not allowed: use a number at least 0"),
        ("tag_threshold: 1.5", "musicnn.tag_threshold: 1.5 is not allowed: use a number at"),
        ("moods: {happy: {tags: [joy]}}", "musicnn.moods.happy: the model has no tag 'joy'"),
        ("thread: 4", "musicnn: unknown option 'thread' (did you mean threads?)"),
    ],
)
def test_a_bad_option_is_one_line(library: Path, setting: str, expected: str) -> None:
    configure(library, setting)
    line = one_error_line(beet(library, "musicnn"))
    assert line.startswith(f"error: {expected}")
    assert not (library / "musicnn.db").exists()  # nothing opened, nothing recorded
    listing = beet(library, "ls")  # other commands go on, with a warning
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == len(GOOD)
    assert expected in listing.stderr and "Traceback" not in listing.stderr


def test_a_missing_decoder_stops_before_any_file(library: Path, incoming: Path) -> None:
    configure(library, "ffmpeg: /nonexistent/ffmpeg")
    line = one_error_line(beet(library, "musicnn"))
    assert "/nonexistent/ffmpeg not found" in line and "musicnn.ffmpeg" in line
    assert failures(library / "musicnn.db") == 0

    configure(library, "auto: yes")  # now analysis on import
    imported = beet(library, "import", "-q", "-s", "-C", str(incoming))
    assert imported.returncode == 0 and "Traceback" not in imported.stderr
    assert "not analyzing during this import" in imported.stderr
    assert failures(library / "musicnn.db") == 0


def test_an_unusable_model_dir_is_one_line(library: Path) -> None:
    configure(library, "model_dir: /proc/none")
    line = one_error_line(beet(library, "musicnn"))
    assert line.startswith("error: musicnn: cannot keep the frozen model in /proc/none")
    assert "musicnn.model_dir" in line and not (library / "musicnn.db").exists()


def test_a_damaged_database_is_named_and_kept(library: Path) -> None:
    database = library / "musicnn.db"
    database.write_bytes(b"this is no SQLite database" * 100)
    damaged = database.read_bytes()
    line = one_error_line(beet(library, "musicnn"))
    assert f"the plugin database {database} is damaged" in line
    assert f"mv '{database}' '{database}.damaged'" in line
    assert database.read_bytes() == damaged  # never silently replaced

    removed = beet(library, "rm", "-f", "path::mp3$")  # removal goes on, with a warning
    assert removed.returncode == 0 and "Traceback" not in removed.stderr
    assert "its analysis stays in the plugin database" in removed.stderr
    assert len(beet(library, "ls").stdout.splitlines()) == len(GOOD) - 1


def test_rm_makes_no_database(library: Path) -> None:
    assert beet(library, "rm", "-f", "path::mp3$").returncode == 0
    assert not (library / "musicnn.db").exists()


def count(fs: TinyFilesystem, database: Path, table: str) -> int:
    code = f"import sqlite3; print(sqlite3.connect({str(database)!r}).execute(" \
        f"'SELECT count(*) FROM {table}').fetchone()[0])"  # fmt: skip
    out = fs.run([BEET[0], "-c", code])
    return int(out.stdout or 0)


def test_a_full_disk_stops_the_run_and_keeps_what_was_stored(
    tmp_path: Path, model_dir: Path, msd: object
) -> None:
    """The plugin database on a tiny filesystem that fills up during the run."""
    incoming = tmp_path / "long"
    for i in range(6):
        write(Track("pluck", 60, key=i, seed=70 + i), incoming / f"{i}.ogg")
    with TinyFilesystem(tmp_path / "small", 4 << 20) as fs:
        database = fs.path / "musicnn.db"
        root = write_config(tmp_path, model_dir, f"auto: no, threads: 1, database: {database}")
        env = {**os.environ, "BEETSDIR": str(root)}
        assert fs.run([*BEET, "import", "-q", str(incoming)], env=env).returncode == 0
        proc = subprocess.Popen(
            [*fs.prefix(), *BEET, "musicnn"], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while count(fs, database, "analyses") < 1 and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        fs.fill(leave=0)
        out, err = proc.communicate(timeout=300)
        run = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        kept = count(fs, database, "analyses")
        recorded = count(fs, database, "failures")
    error = [line for line in err.splitlines() if not line.startswith("20")]  # TF's own notices
    assert run.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert error == [
        f"error: musicnn: no space left for the plugin database {database}: free some space "
        "on that disk (or move it with the musicnn.database option); finished work is kept"
    ]
    assert 1 <= kept < 6 and recorded == 0
    assert len(beet(root, "ls").stdout.splitlines()) == 6
    assert beet(root, "ls", "musicnn_genre::.").stdout == ""  # the library was not touched
