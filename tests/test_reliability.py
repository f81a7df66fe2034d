"""Fault injection: bad files, crashing and hanging decoders, Ctrl-C, SIGKILL,
concurrent commands, low memory, bad model files (unreadable files: in
test_unprivileged.py, since root reads anything). Each test checks that the
good files' results are all stored and correct, not only that nothing raised.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import psutil
import pytest
from beets import config
from beets.library import Item
from beets.test.helper import PluginTestHelper
from beets.ui import UserError

from beetsplug.musicnn.analyzer import Analyzer, Job, Result
from beetsplug.musicnn.inference import shared_predictor
from beetsplug.musicnn.provision import Graph, ModelInfo
from beetsplug.musicnn.store import Store
from tests.beet import beet, start_beet, write_config
from tests.synth import Track, write

FAULTY = Path(__file__).parent / "decoders" / "faulty.sh"
GOOD = {
    "pad.mp3": Track("pad", 10, key=2, seed=41),
    "riff.ogg": Track("riff", 10, key=4, seed=42),
    "drums.flac": Track("drums", 10, key=6, seed=43),
}


@pytest.fixture(scope="module")
def good_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("good")
    return {name: write(track, folder / name) for name, track in GOOD.items()}


@pytest.fixture(scope="module")
def reference(good_files: dict[str, Path], msd: tuple[ModelInfo, Graph]) -> dict[str, np.ndarray]:
    """Each good file analyzed alone: what the stored tags must equal."""
    info, graph = msd
    analyzer = Analyzer(lambda: shared_predictor(graph.path, info), threads=1)
    out = {}
    for name, path in good_files.items():
        result = analyzer.analyze(Job(0, os.fsencode(path)))
        assert isinstance(result, Result)
        out[name] = result.tags
    return out


def damage(kind: str, folder: Path, source: Path) -> tuple[Path, str | None]:
    """A damaged copy of ``source``, and the reason we expect (None: analysable)."""
    if kind == "truncated":
        path = folder / "truncated.mp3"
        path.write_bytes(source.read_bytes()[:300])
        return path, "cannot decode|no audio"
    if kind == "zeroed":
        path = folder / "zeroed.ogg"
        path.write_bytes(b"\0" * source.stat().st_size)
        return path, "cannot decode"
    if kind == "wrong extension":  # an mp3 called .flac: ffmpeg looks inside
        path = folder / "actually-mp3.flac"
        shutil.copy(source, path)
        return path, None
    if kind == "deleted":
        path = folder / "deleted.mp3"
        shutil.copy(source, path)
        return path, "file not found"
    if kind == "non-ascii name":
        path = folder / "Ünïcödé – 東京 ♫.mp3"  # noqa: RUF001 (the dash is the point)
        shutil.copy(source, path)
        return path, None
    assert kind == "long name"
    path = folder / ("x" * 236 + ".mp3")  # 240 characters
    shutil.copy(source, path)
    return path, None


class TestBadFiles(PluginTestHelper):
    plugin: ClassVar[str] = "musicnn"
    db_on_disk: ClassVar[bool] = True

    @pytest.fixture(autouse=True)
    def library(self, setup: None, good_files: dict[str, Path], model_dir: Path) -> None:
        config["musicnn"]["model_dir"] = str(model_dir)
        config["musicnn"]["threads"] = 2
        config["musicnn"]["backend"] = "tensorflow"  # what the reference ran (1e-5 apart)
        config["import"]["write"] = False
        self.good: dict[str, Item] = {}
        for name, source in good_files.items():
            path = self.lib_path / name
            shutil.copy(source, path)
            self.good[name] = self.add(path)

    def add(self, path: Path) -> Item:
        item = Item(path=os.fsencode(path), title=path.stem[:40])
        self.lib.add(item)
        return item

    def store(self) -> Store:
        return Store(Path(os.fsdecode(self.lib.path)).with_name("musicnn.db"))

    def assert_good_files_stored(self, reference: dict[str, np.ndarray]) -> None:
        analyses = {a.item_id: a for a in self.store().analyses(self.model_id())}
        for name, item in self.good.items():
            np.testing.assert_allclose(analyses[item.id].tags, reference[name], atol=1e-5)
            assert self.lib.get_item(item.id)["musicnn_genre"]

    def model_id(self) -> str:
        return next(iter(self.store().stamps().values())).model_id

    @pytest.mark.parametrize(
        "kind",
        ["truncated", "zeroed", "wrong extension", "deleted", "non-ascii name", "long name"],
    )
    def test_bad_input(
        self, kind: str, good_files: dict[str, Path], reference: dict[str, np.ndarray]
    ) -> None:
        path, reason = damage(kind, self.lib_path, good_files["pad.mp3"])
        item = self.add(path)
        if kind == "deleted":
            path.unlink()
        if reason is None:
            self.run_command("musicnn")
            analyses = {a.item_id: a for a in self.store().analyses(self.model_id())}
            np.testing.assert_allclose(analyses[item.id].tags, reference["pad.mp3"], atol=1e-5)
        else:
            with pytest.raises(UserError, match="1 file"):
                self.run_command("musicnn")
            _path, error, when = self.store().failures()[item.id]
            assert any(r in error for r in reason.split("|")), error
            assert abs(when - time.time()) < 600
        self.assert_good_files_stored(reference)

    def test_failures_are_listed_and_retried_only_when_asked(
        self, capsys: pytest.CaptureFixture[str], good_files: dict[str, Path]
    ) -> None:
        path, _ = damage("zeroed", self.lib_path, good_files["riff.ogg"])
        broken = self.add(path)
        with pytest.raises(UserError):
            self.run_command("musicnn")
        capsys.readouterr()
        self.run_command("musicnn", "--failed")
        listing = capsys.readouterr().out
        assert "zeroed.ogg: cannot decode" in listing and "1 failed item" in listing

        self.run_command("musicnn")  # not retried: succeeds, nothing to do
        assert broken.id in self.store().failures()

        shutil.copy(good_files["riff.ogg"], path)  # the user fixed the file
        self.run_command("musicnn", "--retry-failed")
        assert broken.id not in self.store().failures()
        assert self.lib.get_item(broken.id)["musicnn_genre"]

    def test_bad_model_file_is_a_clear_error(self, tmp_path: Path) -> None:
        bad = tmp_path / "msd-musicnn-1.pb"
        bad.write_bytes(b"\x08\x01garbage")
        config["musicnn"]["graph"] = str(bad)
        with pytest.raises(UserError, match=r"not a usable MusiCNN graph.*fix `musicnn\.graph`"):
            self.run_command("musicnn")


def test_low_memory_lowers_parallelism(
    good_files: dict[str, Path], msd: tuple[ModelInfo, Graph], reference: dict[str, np.ndarray]
) -> None:
    info, graph = msd
    notices: list[str] = []
    analyzer = Analyzer(
        lambda: shared_predictor(graph.path, info), threads=2, min_free_memory=1 << 60,
        notice=notices.append,
    )  # fmt: skip
    results = {}
    jobs = [Job(i, os.fsencode(p)) for i, p in enumerate(good_files.values())]
    analyzer.run(jobs, lambda o: results.__setitem__(o.key, o))
    assert notices and "lowering parallelism from 4 to 2" in notices[0]
    assert any("to 1 file" in n for n in notices)
    for i, name in enumerate(good_files):
        np.testing.assert_allclose(results[i].tags, reference[name], atol=1e-5)


# Real `beet` processes -----------------------------------------------------


@pytest.fixture(scope="module")
def long_tracks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("long")
    families = ["pad", "riff", "drums"]
    for i in range(6):
        write(Track(families[i % 3], 60, key=i, seed=50 + i), folder / f"{i}.ogg")
    return folder


@pytest.fixture
def long_library(tmp_path: Path, model_dir: Path, long_tracks: Path) -> Path:
    """Six 60 s tracks imported without analysis: a run long enough to interrupt."""
    root = write_config(tmp_path, model_dir, "auto: no, threads: 1")
    assert beet(root, "import", "-q", str(long_tracks)).returncode == 0
    return root


def stored(root: Path) -> dict[int, float]:
    with sqlite3.connect(root / "musicnn.db") as db:
        return dict(db.execute("SELECT item_id, analyzed_at FROM analyses"))


def wait_for_results(root: Path, count: int, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if (root / "musicnn.db").exists() and len(stored(root)) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {count} result(s) within {limit} s")


def decoders_of(root: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(root) in part for part in proc.info["cmdline"] or []) and "ffmpeg" in " ".join(
            proc.info["cmdline"]
        ):
            found.append(proc)
    return found


def test_ctrl_c_stops_promptly_and_keeps_work(long_library: Path) -> None:
    proc = start_beet(long_library, "musicnn")
    wait_for_results(long_library, 1)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - start < 5
    assert proc.returncode != 0
    assert "interrupted after" in err and "Traceback" not in err
    time.sleep(0.5)
    assert not decoders_of(long_library)
    kept = stored(long_library)
    assert 1 <= len(kept) < 6

    again = beet(long_library, "musicnn")
    assert again.returncode == 0, again.stderr[-500:]
    assert f"analyzed {6 - len(kept)}," in again.stderr
    after = stored(long_library)
    assert len(after) == 6 and all(after[k] == v for k, v in kept.items())


def test_sigkill_loses_only_files_in_flight(long_library: Path) -> None:
    proc = start_beet(long_library, "musicnn")
    wait_for_results(long_library, 2)
    proc.kill()
    proc.communicate()
    for db in ("musicnn.db", "library.db"):
        with sqlite3.connect(long_library / db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    kept = stored(long_library)
    assert len(kept) >= 2

    again = beet(long_library, "musicnn")
    assert again.returncode == 0, again.stderr[-500:]
    assert f"analyzed {6 - len(kept)}," in again.stderr
    after = stored(long_library)
    assert all(after[k] == v for k, v in kept.items())  # resumed, not redone
    genres = beet(long_library, "ls", "-f", "$musicnn_genre").stdout.split()
    assert len(genres) == 6 and all(genres)  # fields derived for every result


def test_crashing_and_hanging_decoders_cost_one_file(
    tmp_path: Path, model_dir: Path, good_files: dict[str, Path]
) -> None:
    root = write_config(tmp_path, model_dir, f"auto: no, timeout: 3, ffmpeg: {FAULTY}")
    incoming = tmp_path / "in"
    incoming.mkdir()
    for name, path in good_files.items():
        shutil.copy(path, incoming / name)
    shutil.copy(good_files["pad.mp3"], incoming / "crashme.mp3")
    shutil.copy(good_files["riff.ogg"], incoming / "slowpoke.ogg")
    assert beet(root, "import", "-q", "-C", str(incoming)).returncode == 0  # names kept

    start = time.monotonic()
    run = beet(root, "musicnn")
    assert time.monotonic() - start < 60  # the hanging decoder did not hold the run
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "crashme.mp3: decoder crashed (SIGSEGV)" in run.stderr
    assert "slowpoke.ogg: decoding took too long" in run.stderr
    assert "analyzed 3, up to date 0, failed 2" in run.stderr
    assert not decoders_of(root)
    listing = beet(root, "musicnn", "--failed").stdout
    assert "crashme" in listing and "slowpoke" in listing


def test_concurrent_commands(long_library: Path) -> None:
    proc = start_beet(long_library, "musicnn")
    wait_for_results(long_library, 1)
    holder = proc.pid

    start = time.monotonic()
    listing = beet(long_library, "ls", timeout=30)
    modified = beet(long_library, "modify", "-y", "title=Renamed meanwhile", "path::0.ogg")
    second = beet(long_library, "musicnn", timeout=30)
    assert time.monotonic() - start < 15
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 6
    assert modified.returncode == 0, modified.stderr[-500:]
    assert second.returncode != 0
    assert f"another `beet musicnn` is analyzing this library (pid {holder}" in second.stderr

    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-500:]
    titles = beet(long_library, "ls", "-f", "$title|$musicnn_genre").stdout.splitlines()
    assert "Renamed meanwhile" in {t.split("|")[0] for t in titles}  # not overwritten
    assert all(t.split("|")[1] for t in titles)
    assert len(stored(long_library)) == 6
