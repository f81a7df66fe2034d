"""Silence is not a mood: tracks silent as a whole get no labels, ranks or neighbours."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import ClassVar

import pytest
from beets import config
from beets.library import Item
from beets.test.helper import PluginTestHelper

from tests.synth import Track, write

MUSIC = {
    "pad": Track("pad", 12, key=2, seed=61),
    "riff": Track("riff", 12, key=4, seed=62),
    "drums": Track("drums", 12, key=6, seed=63),
    "pluck": Track("pluck", 12, key=1, seed=64),
}
QUIET = {
    "silence": Track("noise", 30, loudness=0.0),  # digital silence
    "hush": Track("noise", 20, loudness=10 ** (-75 / 20), seed=65),  # -75 dBFS of noise
}
LABELS = ["mood", "musicnn_genre", "musicnn_tags", "musicnn_happy", "musicnn_party"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("silence")
    return {
        name: write(track, folder / f"{name}.flac") for name, track in {**MUSIC, **QUIET}.items()
    }


class TestSilence(PluginTestHelper):
    plugin: ClassVar[str] = "musicnn"
    db_on_disk: ClassVar[bool] = True

    @pytest.fixture(autouse=True)
    def library(self, setup: None, files: dict[str, Path], model_dir: Path) -> None:
        config["musicnn"]["model_dir"] = str(model_dir)
        config["musicnn"]["threads"] = 2
        self.items: dict[str, Item] = {}
        for name, source in files.items():
            path = self.lib_path / source.name
            shutil.copy(source, path)
            item = Item.from_path(path)
            item.title = name
            self.lib.add(item)
            self.items[name] = item

    def fresh(self, name: str) -> Item:
        item = self.lib.get_item(self.items[name].id)
        assert item is not None
        return item

    def test_silent_tracks_get_no_labels_ranks_or_neighbours(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        self.run_command("musicnn")
        assert "analyzed 6," in caplog.text and "silent 2 (no mood, genre or tags)" in caplog.text
        for name in QUIET:
            item = self.fresh(name)
            assert not [field for field in LABELS if field in item], name
            assert item["musicnn_model"].startswith("msd-musicnn-")  # analyzed all the same
        # Ranks among the four audible tracks only: exactly 0, 1/3, 2/3 and 1.
        happy = sorted(self.fresh(name)["musicnn_happy"] for name in MUSIC)
        assert happy == pytest.approx([0, 1 / 3, 2 / 3, 1], abs=1e-3)
        assert all(self.fresh(name)["musicnn_genre"] for name in MUSIC)
        # Never a neighbour, and nothing is near it.
        quiet_ids = {self.items[name].id for name in QUIET}
        neighbours = {item.id for item in self.lib.items("similar:title:pad")}
        assert neighbours and not neighbours & quiet_ids
        assert not list(self.lib.items("similar:title:silence"))

    def test_the_level_is_an_option_and_remap_applies_it(self) -> None:
        self.run_command("musicnn")
        assert "musicnn_genre" not in self.fresh("hush")
        config["musicnn"]["silence_level"] = -90  # -75 dBFS of noise now counts as sound
        self.run_command("musicnn", "--remap")
        assert self.fresh("hush")["musicnn_genre"]
        assert "musicnn_happy" in self.fresh("hush")
        assert "musicnn_genre" not in self.fresh("silence")  # digital silence stays silent
        assert self.items["hush"].id in {item.id for item in self.lib.items("similar:title:pad")}
