"""A one-step install: the weights and an ffmpeg come with the package."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from beetsplug.musicnn.analyzer import Analyzer
from beetsplug.musicnn.decode import Decoding, decoder_command
from beetsplug.musicnn.errors import DecoderError
from beetsplug.musicnn.inference import shared_predictor
from beetsplug.musicnn.provision import (
    DATA,
    MODELS,
    Graph,
    ModelInfo,
    checkpoint,
    checkpoint_id,
    sha256,
)
from tests import test_analyzer
from tests.resampler import SHIPPED, measure, smoothed

ROOT = Path(__file__).parents[1]
FAULTY = ROOT / "tests" / "decoders" / "faulty.sh"
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
    # Build outputs go to tmp_path: a build/lib in the checkout would keep stale files.
    config = tmp_path / "build.cfg"
    config.write_text(f"[build]\nbuild_base = {tmp_path / 'build'}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, env={**os.environ, "DIST_EXTRA_CONFIG": str(config)},
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


@pytest.fixture
def bundled(tmp_path: Path) -> Iterator[str]:
    """The ffmpeg the plugin runs on a system without one (PATH hidden while resolving)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(tmp_path))
        patch.delenv("IMAGEIO_FFMPEG_EXE", raising=False)
        (command,) = decoder_command(("ffmpeg",))
    yield command


def test_default_decoder_is_the_system_ffmpeg_else_the_bundled_one(bundled: str) -> None:
    import imageio_ffmpeg

    assert decoder_command(("ffmpeg",)) == (shutil.which("ffmpeg"),)
    assert Path(bundled).is_absolute() and bundled == imageio_ffmpeg.get_ffmpeg_exe()
    assert bundled != shutil.which("ffmpeg")


def test_decoder_setting_keeps_its_extra_args(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decoder_command((str(FAULTY), "-threads", "1")) == (str(FAULTY), "-threads", "1")
    assert decoder_command(("false",)) == (shutil.which("false"),)
    monkeypatch.setenv("PATH", "")
    command, *extra = decoder_command(("ffmpeg", "-threads", "1"))
    assert Path(command).is_absolute() and extra == ["-threads", "1"]


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        (("/nonexistent/ffmpeg",), "/nonexistent/ffmpeg not found"),
        (("no-such-decoder", "-v"), "no-such-decoder not found"),
        ((str(ROOT / "README.md"),), "README.md is not executable"),
        ((), "(empty) not found"),
    ],
)
def test_unusable_decoder_is_one_line_naming_the_option(
    setting: tuple[str, ...], problem: str
) -> None:
    with pytest.raises(DecoderError) as raised:
        decoder_command(setting)
    message = str(raised.value)
    assert message.startswith("musicnn.ffmpeg: ") and problem in message, message
    assert "set musicnn.ffmpeg to its path" in message and "\n" not in message


def test_decoder_that_cannot_start_is_no_files_fault() -> None:
    with pytest.raises(DecoderError, match=r"musicnn\.ffmpeg: cannot start /nonexistent/ffmpeg"):
        Decoding(b"song.mp3", ("/nonexistent/ffmpeg",))


def test_resampler_correction_holds_for_the_bundled_ffmpeg(bundled: str) -> None:
    """models/frontend.json was measured with Debian's ffmpeg: the bundled one resamples alike."""
    pytest.importorskip("samplerate")
    shipped = np.array(json.loads(SHIPPED.read_text())["resampler_gain"])
    fresh = np.array(smoothed(measure(bundled, rate=48000, seconds=60)))
    assert np.abs(shipped - fresh).max() < 0.02


def test_agrees_with_essentia_with_the_bundled_ffmpeg(
    bundled: str, audio: dict[str, Path], msd: tuple[ModelInfo, Graph]
) -> None:
    """The analyzer's agreement check, its assertions as they are, decoding with our fallback."""
    info, graph = msd
    analyzer = Analyzer(lambda: shared_predictor(graph.path, info), threads=2, decoder=(bundled,))
    test_analyzer.test_agrees_with_essentia(analyzer, audio, msd)
