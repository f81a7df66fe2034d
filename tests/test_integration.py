"""The plugin where beets touches it: import, albums, tag writing, remap, removal."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import ClassVar

import pytest
from beets import config
from beets.library import Item
from beets.test.helper import PluginTestHelper
from mediafile import MediaFile

from beetsplug.musicnn.store import Store
from tests.synth import Track, write

TRACKS = {
    "Soft One": Track("pad", 10, key=1, tempo=70, seed=31),
    "Loud One": Track("riff", 10, key=2, tempo=150, seed=32),
    "Beat One": Track("drums", 10, key=3, tempo=124, seed=33),
}


@pytest.fixture(scope="module")
def incoming(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An album folder of tagged files, one per format."""
    folder = tmp_path_factory.mktemp("incoming")
    for number, ((title, track), fmt) in enumerate(
        zip(TRACKS.items(), ("mp3", "ogg", "flac"), strict=True), 1
    ):
        path = write(track, folder / f"{number:02d}.{fmt}")
        tags = MediaFile(path)
        tags.update({"title": title, "artist": "Synth", "album": "Test Album", "track": number})
        tags.save()
    return folder


class Base(PluginTestHelper):
    plugin: ClassVar[str] = "musicnn"
    db_on_disk: ClassVar[bool] = True

    @pytest.fixture(autouse=True)
    def configure(self, setup: None, model_dir: Path, incoming: Path) -> None:
        config["musicnn"]["model_dir"] = str(model_dir)
        config["musicnn"]["threads"] = 2
        config["import"]["autotag"] = False
        config["import"]["quiet"] = True
        self.source = self.temp_path / "source"
        shutil.copytree(incoming, self.source)

    def store(self) -> Store:
        return Store(Path(os.fsdecode(self.lib.path)).with_name("musicnn.db"))

    def analyzed_at(self) -> dict[int, float]:
        stamps = self.store().stamps()
        model = next(iter(stamps.values())).model_id
        return {a.item_id: a.analyzed_at for a in self.store().analyses(model)}


class TestImport(Base):
    @pytest.mark.parametrize("singletons", [False, True], ids=["album", "singletons"])
    @pytest.mark.parametrize("mode", ["copy", "move", "in place"])
    def test_import_analyses_every_item_at_its_final_path(
        self, singletons: bool, mode: str
    ) -> None:
        config["import"]["copy"] = mode == "copy"
        config["import"]["move"] = mode == "move"
        self.run_command("import", *(["-s"] if singletons else []), str(self.source))

        items = list(self.lib.items())
        assert len(items) == len(TRACKS)
        stamps = self.store().stamps()
        for item in items:
            # analyzed by the time `beet import` returned, with the facts of
            # the file where it now lives: the next run will not even open it
            assert item["musicnn_genre"] and 0 <= item["musicnn_happy"] <= 1
            st = os.stat(item.path)
            assert (stamps[item.id].size, stamps[item.id].mtime) == (st.st_size, st.st_mtime)
            inside = item.path.startswith(os.fsencode(self.lib_path))
            assert inside == (mode != "in place")
        left = list(self.source.glob("*.*"))
        assert len(left) == (0 if mode == "move" else len(TRACKS))
        albums = list(self.lib.albums())
        if singletons:
            assert not albums
        else:
            assert albums[0]["musicnn_genre"] and "musicnn_happy" in albums[0]

        before = self.analyzed_at()
        self.run_command("musicnn")
        assert self.analyzed_at() == before

    def test_analysis_failure_never_fails_the_import(self) -> None:
        config["musicnn"]["ffmpeg"] = "false"  # a decoder that always fails
        self.run_command("import", str(self.source))
        assert len(self.lib.items()) == len(TRACKS)  # imported all the same
        assert len(self.store().failures()) == len(TRACKS)  # and each failure recorded


class TestLibrary(Base):
    @pytest.fixture(autouse=True)
    def imported(self, configure: None) -> None:
        config["musicnn"]["auto"] = False
        self.unload_plugins()
        self.load_plugins()
        config["import"]["copy"] = True
        self.run_command("import", str(self.source))
        extra = self.lib_path / "single.ogg"
        write(Track("pluck", 8, seed=34), extra)
        self.single = Item.from_path(extra)
        self.lib.add(self.single)

    def test_album_option_and_album_queries(self) -> None:
        self.run_command("musicnn", "-a", "album:Test Album")
        album = self.lib.albums().get()
        items = list(album.items())
        assert all(i["musicnn_genre"] for i in items)
        single = self.lib.get_item(self.single.id)
        assert "musicnn_genre" not in single  # not in the album: not analyzed
        mean = sum(i["musicnn_happy"] for i in items) / len(items)
        assert album["musicnn_happy"] == pytest.approx(mean, abs=1e-3)
        low = album["musicnn_happy"] - 0.01
        assert len(self.lib.albums(f"musicnn_happy:{low}..")) == 1
        assert len(self.lib.albums(f"musicnn_happy:{album['musicnn_happy'] + 0.01}..")) == 0

        # Album mood labels follow the album's scores and thresholds.
        config["musicnn"]["moods"]["sad"]["threshold"] = album["musicnn_sad"] - 0.001
        self.run_command("musicnn", "--remap")
        assert "sad" in self.lib.albums().get()["mood"]
        assert len(self.lib.albums("mood:sad")) == 1

        # Re-analyzing an item moves its album's fields along.
        self.run_command("musicnn")  # the single joins: ranks change
        assert self.lib.albums().get()["musicnn_happy"] == pytest.approx(
            sum(self.lib.get_item(i.id)["musicnn_happy"] for i in items) / len(items), abs=1e-3
        )

    def test_write_puts_mood_in_the_file_and_update_keeps_it(self) -> None:
        config["musicnn"]["moods"]["party"]["threshold"] = 0.0  # everyone parties
        self.run_command("musicnn", "-w")
        before = self.analyzed_at()
        for item in self.lib.items():
            assert "party" in item["mood"]
            assert MediaFile(item.path).mood == item["mood"]
        self.run_command("update")
        for item in self.lib.items():
            assert "party" in item["mood"]
        self.run_command("musicnn")
        assert self.analyzed_at() == before  # our own writes cause no re-analysis
        assert self.store().stamps()[self.single.id].mtime == os.stat(self.single.path).st_mtime

    def test_user_mood_survives_unless_forced(self) -> None:
        tags = MediaFile(self.single.path)
        tags.mood = "melancholic"
        tags.save()
        self.run_command("musicnn", "-w")
        assert MediaFile(self.single.path).mood == "melancholic"
        self.run_command("musicnn", "-w", "-f", "title:Soft One")
        assert MediaFile(self.single.path).mood == "melancholic"  # not in the query
        config["musicnn"]["moods"]["party"]["threshold"] = 0.0
        self.run_command("musicnn", "-w", "-f")
        assert "party" in MediaFile(self.single.path).mood

    def test_nowrite_leaves_files_alone(self) -> None:
        config["musicnn"]["moods"]["party"]["threshold"] = 0.0
        self.run_command("musicnn", "-W")
        assert all(MediaFile(i.path).mood is None for i in self.lib.items())

    def test_remap_rederives_without_decoding(self) -> None:
        self.run_command("musicnn")
        before = self.analyzed_at()
        scores = sorted(i["musicnn_relaxed"] for i in self.lib.items())
        cut = scores[len(scores) // 2]
        config["musicnn"]["moods"]["relaxed"]["threshold"] = cut
        config["musicnn"]["ffmpeg"] = "false"  # any decoding would now fail
        self.run_command("musicnn", "--remap", "-W")
        relaxed = {i.id for i in self.lib.items("mood:relaxed")}
        assert relaxed == {i.id for i in self.lib.items() if i["musicnn_relaxed"] >= cut}
        assert 0 < len(relaxed) < len(self.lib.items())
        assert self.analyzed_at() == before

    def test_rm_forgets_the_analysis(self) -> None:
        self.run_command("musicnn", "-W")
        gone = self.lib.items("title:Soft One").get()
        self.run_command("rm", "-f", "title:Soft One")
        stamps = self.store().stamps()
        assert gone.id not in stamps
        assert len(stamps) == len(TRACKS)  # the others (and the single) stay
