"""A one-step install: the weights come with the package."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beetsplug.musicnn.provision import (
    DATA,
    MODELS,
    ModelInfo,
    checkpoint,
    checkpoint_id,
    sha256,
)

ROOT = Path(__file__).parents[1]
# The identities libraries analyzed with musicnn's own package recorded:
# shipping the same bytes must keep them, or every track looks stale.
MODEL_IDS = {"msd": "msd-musicnn-8579734ee638", "mtt": "mtt-musicnn-041f3935e981"}
CHECKPOINT_FILES = (".index", DATA, ".meta")


@pytest.mark.parametrize("model", MODELS)
def test_shipped_weights_keep_their_identity(model: str) -> None:
    assert checkpoint_id(ModelInfo.load(model)) == MODEL_IDS[model]


@pytest.mark.parametrize("model", MODELS)
def test_shipped_weights_are_musicnns(model: str) -> None:
    """Byte for byte the checkpoint of musicnn 0.1.0 (installed for the tests only)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the musicnn package is not installed")
    info = ModelInfo.load(model)
    original = Path(next(iter(spec.submodule_search_locations))) / info.checkpoint
    assert f"{info.name}-{sha256(original / DATA)[:12]}" == MODEL_IDS[model]
    prefix = checkpoint(info)
    for ext in CHECKPOINT_FILES:
        assert Path(f"{prefix}{ext}").read_bytes() == (original / ext).read_bytes(), ext


def test_wheel_ships_the_weights_and_their_licence(tmp_path: Path) -> None:
    """What ``pip install .`` installs: setuptools' globs would silently skip a dotfile."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for model in MODELS:
            prefix = checkpoint(ModelInfo.load(model))
            for ext in CHECKPOINT_FILES:
                member = f"beetsplug/musicnn/models/{prefix.name}{ext}"
                assert archive.read(member) == Path(f"{prefix}{ext}").read_bytes(), member
        licence = archive.read("beetsplug/musicnn/models/LICENSE-musicnn").decode()
    assert "ISC" in licence and "Jordi Pons" in licence
