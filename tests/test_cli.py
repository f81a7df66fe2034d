"""Real `beet` processes: what a newcomer types, on a small library made here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.beet import beet, write_config
from tests.synth import demo_library


@pytest.fixture(scope="module")
def beetsdir(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("beet")
    demo_library(root / "incoming")
    return write_config(root, model_dir)


def test_enabling_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from beetsplug.musicnn import MusicnnPlugin\n"
        "print([m for m in ('numpy', 'tensorflow', 'essentia', 'psutil') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_numpy_gets_one_blas_thread_unless_the_user_chose() -> None:
    """OpenBLAS threads spinning on the small mel products took CPU from the model."""
    code = "import os\nimport beetsplug.musicnn\nprint(os.environ.get('OPENBLAS_NUM_THREADS'))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = [sys.executable, "-c", code]
    assert subprocess.run(run, capture_output=True, text=True, env=env).stdout.strip() == "1"
    env["OPENBLAS_NUM_THREADS"] = "3"
    assert subprocess.run(run, capture_output=True, text=True, env=env).stdout.strip() == "3"


def test_import_then_query(beetsdir: Path) -> None:
    """Import with auto analysis, then the queries the README promises."""
    imported = beet(beetsdir, "import", "-q", str(beetsdir / "incoming"))
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert "Traceback" not in imported.stderr

    listing = beet(beetsdir, "ls", "-f", "$title|$mood|$musicnn_genre|$musicnn_happy")
    rows = [line.split("|") for line in listing.stdout.splitlines()]
    assert len(rows) == 8
    for _title, _mood, genre, happy in rows:
        assert genre and len(happy.split(".")[1]) == 3

    # Happy scores are ranks: exactly the top quarter clears the default 0.75.
    happy = beet(beetsdir, "ls", "-f", "$title", "mood:happy").stdout.split("\n")
    ranked = beet(beetsdir, "ls", "-f", "$title", "musicnn_happy:0.75..").stdout.split("\n")
    assert 0 < len([t for t in happy if t]) < 8
    assert sorted(happy) == sorted(ranked)

    # Each genre query finds exactly the tracks listed with it (a substring
    # match, as beets' string queries are: "rock" also finds "indie rock").
    for genre in {row[2] for row in rows}:
        found = beet(beetsdir, "ls", "-f", "$title", f"musicnn_genre:{genre}").stdout.split("\n")
        assert sorted(t for t in found if t) == sorted(r[0] for r in rows if genre in r[2])


def test_rerun_is_quiet_and_fast(beetsdir: Path) -> None:
    beet(beetsdir, "musicnn")  # first run after import: fingerprints of the copies
    again = beet(beetsdir, "-v", "musicnn")
    assert again.returncode == 0
    assert "analyzed 0, up to date 8, failed 0" in again.stderr


def test_coexists_with_acousticbrainz(beetsdir: Path, tmp_path: Path) -> None:
    """beets checks field types lazily and caches them: only a fresh process tells."""
    base = (beetsdir / "config.yaml").read_text()
    alone = beet(beetsdir, "ls", "-f", "$title $musicnn_happy", "musicnn_happy:0.3..")
    assert alone.returncode == 0 and alone.stdout.strip()

    both = tmp_path / "both"
    both.mkdir()
    (both / "config.yaml").write_text(
        base.replace("plugins: musicnn", "plugins: [acousticbrainz, musicnn]")
    )
    together = beet(both, "ls", "-f", "$title $musicnn_happy", "musicnn_happy:0.3..")
    assert together.returncode == 0, together.stderr[-1000:]
    assert together.stdout == alone.stdout

    # Negative control: a plugin declaring one of our fields with another type.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "conflicting.py").write_text(
        "from beets.dbcore import types\n"
        "from beets.plugins import BeetsPlugin\n\n\n"
        "class Conflicting(BeetsPlugin):\n"
        "    item_types = {'musicnn_happy': types.STRING}\n"
    )
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "config.yaml").write_text(
        base.replace(
            "plugins: musicnn", f"pluginpath: [{plugins}]\nplugins: [conflicting, musicnn]"
        )
    )
    clashed = beet(clash, "ls", "musicnn_happy:0.3..")
    assert clashed.returncode != 0
    assert "musicnn_happy" in clashed.stderr


def test_essentia_backend_tags_alike(beetsdir: Path, tmp_path: Path, model_dir: Path) -> None:
    """`backend: essentia` (essentia's bundled TensorFlow, never the package) agrees
    with the tensorflow package, both f32 (bf16 could move close ranks)."""
    listings = []
    for backend in ("essentia", "tensorflow"):
        (tmp_path / backend).mkdir()
        root = write_config(tmp_path / backend, model_dir, f"auto: no, backend: {backend}")
        assert beet(root, "import", "-q", str(beetsdir / "incoming")).returncode == 0
        run = beet(root, "musicnn")
        assert run.returncode == 0, run.stderr[-1000:]
        assert "analyzed 8, up to date 0, failed 0" in run.stderr
        assert f"{backend} f32" in run.stderr  # the summary names what ran
        listings.append(beet(root, "ls", "-f", "$title|$musicnn_genre|$mood").stdout)
    assert listings[0] == listings[1] and len(listings[0].splitlines()) == 8

    (root / "config.yaml").write_text(
        (root / "config.yaml").read_text().replace("backend: tensorflow", "backend: onnx")
    )
    wrong = beet(root, "musicnn", "-f")
    assert wrong.returncode != 0 and "backend" in wrong.stderr and "Traceback" not in wrong.stderr


def test_damaged_file_sets_exit_status(beetsdir: Path) -> None:
    """A file damaged after import fails alone; the others stay analyzed."""
    path = Path(beet(beetsdir, "ls", "-p", "title:Dew").stdout.strip())
    path.write_bytes(os.urandom(path.stat().st_size))
    run = beet(beetsdir, "musicnn")
    assert run.returncode != 0
    assert "Dew" in run.stderr and "1 file(s) could not be analyzed" in run.stderr
    assert "Traceback" not in run.stderr
    assert "analyzed 0, up to date 7, failed 1" in run.stderr
    still = beet(beetsdir, "ls", "-f", "$musicnn_genre", "^title:Dew").stdout.split()
    assert len(still) == 7 and all(still)


def test_mtt_works_with_default_settings(beetsdir: Path, tmp_path: Path, model_dir: Path) -> None:
    """`model: mtt` alone: its own moods (no happy or sad in its tags), genre and tags."""
    root = write_config(tmp_path, model_dir, "model: mtt")
    run = beet(root, "import", "-q", str(beetsdir / "incoming"))
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert "analyzed 8," in run.stdout, run.stdout[-1000:]
    fields = "$musicnn_genre|$musicnn_relaxed|$musicnn_party|$musicnn_tags|$musicnn_model"
    rows = [r.split("|") for r in beet(root, "ls", "-f", fields).stdout.splitlines()]
    assert len(rows) == 8
    for genre, relaxed, party, tags, model in rows:
        assert genre and tags and model.startswith("mtt-musicnn-")
        assert 0 <= float(relaxed) <= 1 and 0 <= float(party) <= 1
    # happy is not declared for MTT: an unknown field, empty for every track
    assert beet(root, "ls", "musicnn_happy:0..").stdout == ""
