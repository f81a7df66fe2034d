"""Shared fixtures: real audio made here, and the real model frozen once."""

from __future__ import annotations

from pathlib import Path

import pytest

from beetsplug.musicnn.provision import Graph, ModelInfo, provide
from tests.synth import Track, write

# Short tracks of clearly different character, in every format we support.
TRACKS = {
    "pad": (Track("pad", 14, key=2, tempo=70, seed=1), "flac"),
    "riff": (Track("riff", 12, key=0, tempo=150, seed=3), "mp3"),
    "drums": (Track("drums", 13, key=3, tempo=124, seed=5), "ogg"),
    "pluck": (Track("pluck", 12, key=4, tempo=96, seed=7), "wav"),
    "noise": (Track("noise", 9, seed=9, stereo=False), "ogg"),
    "tone": (Track("tone", 2.5, key=0, seed=11), "mp3"),  # shorter than one patch
}


@pytest.fixture(autouse=True, scope="session")
def essentia_before_tensorflow(request: pytest.FixtureRequest) -> None:
    """Model tests compare with essentia, which must come first in a process
    (see inference.import_tensorflow); a run of unit tests alone imports neither."""
    if any("unit" not in item.path.parts for item in request.session.items):
        import essentia.standard  # noqa: F401


@pytest.fixture(autouse=True)
def fresh_plugin_registry() -> None:
    """Forget field types and named queries of plugins loaded by earlier tests.

    beets caches them per class for the life of the process (one plugin set
    per `beet` run); tests load a new plugin instance each time.
    """
    from beets.util import cached_classproperty

    cached_classproperty.cache.clear()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def msd(model_dir: Path) -> tuple[ModelInfo, Graph]:
    info = ModelInfo.load("msd")
    return info, provide(info, model_dir)


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per family in TRACKS, written once for the whole session."""
    folder = tmp_path_factory.mktemp("audio")
    return {name: write(track, folder / f"{name}.{fmt}") for name, (track, fmt) in TRACKS.items()}
