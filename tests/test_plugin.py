"""`beet musicnn` on a real library of real files, with the real model."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from beets import config
from beets.library import Item
from beets.test.helper import PluginTestHelper
from beets.ui import UserError

from beetsplug.musicnn.store import Store
from tests.synth import Track, write

FAMILIES = ["pad", "riff", "drums", "pluck", "tone"]
MOODS = ["happy", "sad", "relaxed", "party"]


class TestMusicnnCommand(PluginTestHelper):
    plugin: ClassVar[str] = "musicnn"

    @pytest.fixture(autouse=True)
    def library(self, setup: None, audio: dict[str, Path], model_dir: Path) -> None:
        config["musicnn"]["model_dir"] = str(model_dir)
        config["musicnn"]["threads"] = 2
        self.items: dict[str, Item] = {}
        for name in FAMILIES:
            path = self.lib_path / audio[name].name
            shutil.copy(audio[name], path)
            item = Item.from_path(path)
            item.title = name
            self.lib.add(item)
            self.items[name] = item

    def store(self) -> Store:
        return Store(Path(config.config_dir()) / "musicnn.db")

    def analyzed_at(self) -> dict[int, float]:
        return {a.item_id: a.analyzed_at for a in self.store().analyses(self.model_id())}

    def model_id(self) -> str:
        return next(iter(self.store().stamps().values())).model_id

    def fresh(self, name: str) -> Item:
        item = self.lib.get_item(self.items[name].id)
        assert item is not None
        return item

    def test_fields_types_and_vectors(self) -> None:
        self.run_command("musicnn")
        vectors = {a.item_id: a for a in self.store().analyses(self.model_id())}
        assert set(vectors) == {i.id for i in self.items.values()}
        for name in FAMILIES:
            item = self.fresh(name)
            analysis = vectors[item.id]
            assert analysis.tags.shape == (50,) and analysis.embedding.shape == (200,)
            for mood in MOODS:
                assert isinstance(item[f"musicnn_{mood}"], float)
                assert 0 <= item[f"musicnn_{mood}"] <= 1
            assert item["musicnn_genre"]
            assert item["musicnn_model"].startswith("msd-musicnn-")
            assert abs(item["musicnn_analyzed"] - time.time()) < 600
            assert format(item, "$musicnn_happy").count(".") == 1
            assert len(format(item, "$musicnn_happy").split(".")[1]) == 3
        # percentile ranks spread over the whole 0..1 range
        happy = sorted(self.fresh(n)["musicnn_happy"] for n in FAMILIES)
        assert happy[0] == 0.0 and happy[-1] == 1.0

    def test_range_and_mood_queries(self) -> None:
        self.run_command("musicnn")
        scores = {n: self.fresh(n)["musicnn_party"] for n in FAMILIES}
        cut = sorted(scores.values())[len(scores) // 2]
        expected = {n for n, s in scores.items() if s >= cut}
        assert 0 < len(expected) < len(FAMILIES)
        found = {i.title for i in self.lib.items(f"musicnn_party:{cut}..")}
        assert found == expected

        # A threshold taken from the measured scores: mood lists exactly those.
        config["musicnn"]["moods"]["party"]["threshold"] = cut
        self.run_command("musicnn")
        assert {i.title for i in self.lib.items("mood:party")} == expected
        assert {i.title for i in self.lib.items("mood:=party")} <= expected
        for item in self.lib.items("mood:party"):
            labels = item["mood"].split(", ")
            assert "party" in labels
            ordered = [item[f"musicnn_{m}"] for m in labels]
            assert ordered == sorted(ordered, reverse=True)  # best first

    def test_rerun_skips_and_rederives(self) -> None:
        self.run_command("musicnn")
        before = self.analyzed_at()
        item = self.fresh("pad")
        genre = item["musicnn_genre"]
        del item["musicnn_genre"]
        del item["mood"]
        item.store()
        self.run_command("musicnn")
        assert self.analyzed_at() == before  # nothing analyzed again
        assert self.fresh("pad")["musicnn_genre"] == genre  # re-derived from the database

    def test_retag_and_move_do_not_reanalyze(self) -> None:
        self.run_command("musicnn")
        before = self.analyzed_at()
        item = self.fresh("riff")
        item.title = "a much longer title than before, so the tag block changes size"
        item.write()
        item.store()
        other = self.fresh("drums")
        moved = self.lib_path / "moved" / "drums.ogg"
        moved.parent.mkdir()
        os.rename(other.path, moved)
        other.path = os.fsencode(moved)
        other.store()
        self.run_command("musicnn")
        assert self.analyzed_at() == before
        stamps = self.store().stamps()
        assert stamps[item.id].size == os.path.getsize(item.path)  # new facts remembered

    def test_changed_audio_is_reanalyzed(self) -> None:
        self.run_command("musicnn")
        before = self.analyzed_at()
        old = {a.item_id: a.tags for a in self.store().analyses(self.model_id())}
        item = self.fresh("pluck")
        write(Track("riff", 12, key=5, tempo=140, seed=21), Path(os.fsdecode(item.path)))
        self.run_command("musicnn")
        after = self.analyzed_at()
        assert after[item.id] > before[item.id]
        assert {k for k in before if after[k] != before[k]} == {item.id}
        new = {a.item_id: a.tags for a in self.store().analyses(self.model_id())}
        assert np.abs(new[item.id] - old[item.id]).max() > 0.01

    def test_pretend_lists_and_analyses_nothing(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.run_command("musicnn", "-p", "title:pad")
        out = capsys.readouterr().out
        assert "pad" in out and "1 to analyze" in out
        assert not self.store().stamps()
        self.run_command("musicnn", "title:pad")
        self.run_command("musicnn", "-p")
        assert f"{len(FAMILIES) - 1} to analyze, 1 up to date" in capsys.readouterr().out

    def test_force_reanalyses(self) -> None:
        self.run_command("musicnn", "title:tone")
        before = self.analyzed_at()
        self.run_command("musicnn", "-f", "-t", "1", "title:tone")
        after = self.analyzed_at()
        assert set(after) == set(before) and all(after[k] > before[k] for k in before)

    def test_model_settings_reach_the_model(self) -> None:
        from beetsplug.musicnn import inference

        config["musicnn"]["model_threads"] = 1
        self.run_command("musicnn", "title:tone")
        assert self.fresh("tone")["musicnn_genre"]
        assert any(key[3] == 1 for key in inference._predictors)  # key[3]: the threads

    def test_bad_file_fails_the_file_not_the_run(self) -> None:
        bad = self.lib_path / "broken.mp3"
        bad.write_bytes(b"ID3" + os.urandom(5000))
        item = Item(path=os.fsencode(bad), title="broken")
        self.lib.add(item)
        with pytest.raises(UserError, match="1 file"):
            self.run_command("musicnn")
        analyzed = self.analyzed_at()
        assert set(analyzed) == {i.id for i in self.items.values()}
        assert item.id in self.store().failures()
        assert self.fresh("pad")["musicnn_genre"]

    def test_a_mood_switched_off_loses_its_field(self, caplog: pytest.LogCaptureFixture) -> None:
        self.run_command("musicnn")
        assert "musicnn_sad" in self.fresh("pad")
        config["musicnn"]["moods"]["sad"]["tags"] = []
        self.run_command("musicnn", "--remap")
        assert "fields derived from the stored analyses: updated on 5" in caplog.text
        for name in FAMILIES:
            item = self.fresh(name)
            assert "musicnn_sad" not in item and "sad" not in item["mood"].split(", ")
            assert "musicnn_happy" in item
