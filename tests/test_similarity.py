""" "More like this": nearest neighbours on real embeddings of real audio."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import ClassVar

import beets.plugins
import numpy as np
import pytest
from beets import config
from beets.library import Item
from beets.test.helper import PluginTestHelper
from beets.ui import UserError
from beets.util import cached_classproperty

from beetsplug.musicnn.analyzer import Analyzer, Job, Outcome, Result
from beetsplug.musicnn.inference import shared_predictor
from beetsplug.musicnn.provision import Graph, ModelInfo
from beetsplug.musicnn.similarity import Index
from tests.synth import Track, write

FAMILIES = ["pad", "riff", "drums", "pluck"]


def family_tracks(variations: int) -> list[tuple[str, Track]]:
    """Each family in several keys, tempos, lengths and loudnesses."""
    rng = np.random.default_rng(5)
    return [
        (
            family,
            Track(
                family,
                float(rng.uniform(8, 14)),
                key=int(rng.integers(12)),
                tempo=float(rng.uniform(70, 160)),
                loudness=float(rng.uniform(0.1, 0.4)),
                seed=100 + v,
            ),
        )
        for family in FAMILIES
        for v in range(variations)
    ]


@pytest.fixture(scope="module")
def family_files(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("families")
    formats = ["mp3", "ogg", "flac", "wav", "mp3"]
    return [
        (family, write(track, folder / f"{family}{i % 5}.{formats[i % 5]}"))
        for i, (family, track) in enumerate(family_tracks(5))
    ]


def test_neighbours_come_from_the_same_family(
    family_files: list[tuple[str, Path]], msd: tuple[ModelInfo, Graph]
) -> None:
    info, graph = msd
    outcomes: dict[int, Outcome] = {}
    jobs = [Job(i, os.fsencode(path)) for i, (_, path) in enumerate(family_files)]
    Analyzer(lambda: shared_predictor(graph.path, info), threads=2).run(
        jobs, lambda o: outcomes.__setitem__(o.key, o)
    )
    embeddings = []
    for i in range(len(family_files)):
        result = outcomes[i]
        assert isinstance(result, Result)
        embeddings.append(result.embedding)
    index = Index.build(np.arange(len(family_files)), np.stack(embeddings))
    families = [family for family, _ in family_files]
    precision = np.mean(
        [
            np.mean([families[j] == families[i] for j, _ in index.nearest([i], 3)])
            for i in range(len(families))
        ]
    )
    random = (5 - 1) / (len(families) - 1)
    print(f"precision@3 {precision:.3f} (random baseline {random:.3f})")
    assert precision >= 0.8


class TestSimilarCommandAndQuery(PluginTestHelper):
    plugin: ClassVar[str] = "musicnn"
    db_on_disk: ClassVar[bool] = True

    @pytest.fixture(autouse=True)
    def library(self, setup: None, family_files: list[tuple[str, Path]], model_dir: Path) -> None:
        config["musicnn"]["model_dir"] = str(model_dir)
        config["musicnn"]["threads"] = 2
        config["musicnn"]["similar_count"] = 3
        self.family: dict[int, str] = {}
        for family, source in family_files:
            if source.stem[-1] in "012":
                path = self.lib_path / source.name
                shutil.copy(source, path)
                item = Item.from_path(path)
                item.title = source.stem
                self.lib.add(item)
                self.family[item.id] = family

    def titles(self, query: str | list[str]) -> list[str]:
        return [item.title for item in self.lib.items(query)]

    def test_command_ranks_and_writes_m3u(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        self.run_command("musicnn", "-W")
        capsys.readouterr()
        playlist = tmp_path / "like-pad0.m3u"
        self.run_command("musicnn-similar", "-n", "2", "-o", str(playlist), "title:pad0")
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 2 and all("pad" in line for line in lines)  # its family first
        scores = [float(line.split()[0]) for line in lines]
        assert scores == sorted(scores, reverse=True)
        assert not any("pad0" in line for line in lines)  # seeds excluded
        entries = playlist.read_text().splitlines()
        assert entries[0] == "#EXTM3U" and len(entries) == 3
        assert all(Path(p).is_file() for p in entries[1:])

        self.run_command("musicnn-similar", "-n", "5", "--where", "title:drums", "title:pad0")
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 3 and all("drums" in line for line in lines)

    def test_named_query_alone_combined_and_in_smartplaylist(self, tmp_path: Path) -> None:
        self.run_command("musicnn", "-W")
        alone = self.titles("similar:title:riff1")
        assert len(alone) == 3 and "riff1" not in alone
        assert sum(t.startswith("riff") for t in alone) == 2  # both other riffs
        combined = self.titles(["similar:title:riff1", "title:riff"])
        assert sorted(combined) == sorted(t for t in alone if t.startswith("riff"))

        config["smartplaylist"]["playlist_dir"] = str(tmp_path)
        config["smartplaylist"]["playlists"] = [
            {"name": "like-riff1.m3u", "query": "similar:title:riff1"}
        ]
        self.unload_plugins()
        config["plugins"] = ["musicnn", "smartplaylist"]
        beets.plugins.load_plugins()
        cached_classproperty.cache.clear()  # the new instance's `similar:` query
        self.run_command("splupdate")
        written = (tmp_path / "like-riff1.m3u").read_text().splitlines()
        assert sorted(Path(p).stem for p in written if not p.startswith("#")) == sorted(alone)

    def test_unanalyzed_seeds_and_empty_library(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(UserError, match="no analyzed items yet"):
            self.run_command("musicnn-similar", "title:pad0")
        assert self.titles("similar:title:pad0") == []
        self.run_command("musicnn", "-W", "^title:pad0")
        with pytest.raises(UserError, match="analyzed yet, or each is silent: run `beet musicnn`"):
            self.run_command("musicnn-similar", "title:pad0")
        with pytest.raises(UserError, match="no item matches"):
            self.run_command("musicnn-similar", "title:nothing-like-this")
        with pytest.raises(UserError, match="-n 0: give a count of at least 1"):
            self.run_command("musicnn-similar", "-n", "0", "title:pad0")
