"""Backend torch: the hand-written network equals the frozen TensorFlow graph on real patches.

The patches are the features of the synthesised tracks of every family
(tests/synth.py). Skipped only where torch cannot be imported: scripts/setup.sh
installs its CPU build, so `bash scripts/test.sh` runs these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from beetsplug.musicnn.decode import Decoding, decoder_command
from beetsplug.musicnn.errors import ModelError
from beetsplug.musicnn.features import MelStream, Patcher
from beetsplug.musicnn.freeze import WEIGHTS
from beetsplug.musicnn.inference import shared_predictor
from beetsplug.musicnn.provision import Graph, ModelInfo, provide
from tests.beet import beet, imported_by, write_config

torch = pytest.importorskip("torch")
from beetsplug.musicnn.torch_model import TorchPredictor  # noqa: E402 (needs torch)

FAMILIES = ["pad", "riff", "drums", "pluck", "noise", "tone"]


def patches_of(path: Path, hop: int) -> np.ndarray:
    """The patches the analyzer would feed the model for ``path``."""
    mel, patcher, patches = MelStream(), Patcher(hop), []
    with Decoding(os.fsencode(path), decoder_command(("ffmpeg",))) as decoding:
        for chunk in decoding.chunks():
            patches.extend(patcher.feed(mel.feed(chunk)))
    patches.extend([*patcher.feed(mel.finish()), *patcher.finish()])
    return np.stack(patches)


@pytest.fixture(scope="module")
def tracks(audio: dict[str, Path]) -> list[np.ndarray]:
    """Each family's patches, 64 frames apart (46 in all)."""
    return [patches_of(audio[name], 64) for name in FAMILIES]


@pytest.fixture(scope="module")
def weights(model_dir: Path) -> dict[str, Graph]:
    return {m: provide(ModelInfo.load(m), model_dir, structure=WEIGHTS) for m in ("msd", "mtt")}


@pytest.mark.parametrize("model", ["msd", "mtt"])
def test_torch_equals_the_frozen_graph(
    model: str, model_dir: Path, weights: dict[str, Graph], tracks: list[np.ndarray]
) -> None:
    info = ModelInfo.load(model)
    graph = provide(info, model_dir, structure="original")  # the checkpoint's own graph
    assert weights[model].model_id == graph.model_id  # the same weights: the same identity
    patches = np.concatenate(tracks)
    ref_tags, ref_embeddings = shared_predictor(graph.path, info).predict(patches)
    predictor = shared_predictor(weights[model].path, info, "torch", device="cpu")
    assert predictor.engine == "torch f32 cpu"
    tags, embeddings = predictor.predict(patches)
    tag_diff = np.abs(tags - ref_tags).max()
    embedding_diff = np.abs(embeddings - ref_embeddings).max()
    scale = np.abs(ref_embeddings).max()
    print(f"{model}: {len(patches)} patches, largest difference: tags {tag_diff:.2g}, "
          f"embedding {embedding_diff:.2g} (its largest value {scale:.1f})")  # fmt: skip
    assert tag_diff < 1e-5
    assert embedding_diff < 1e-5 * max(scale, 1)
    assert tags.std() > 1e-3  # a real, input-dependent output


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_tag_means_stay_close(
    precision: str, weights: dict[str, Graph], tracks: list[np.ndarray]
) -> None:
    """The plugin stores per-track tag means: within 0.02 of f32, with the same top tag.

    Run on the CPU here (fp16 is for CUDA in the plugin): the rounding is
    the same, the kernels differ; bench/gpu.py checks the GPU's.
    """
    f32 = TorchPredictor(weights["msd"].path, "f32")
    half = TorchPredictor(weights["msd"].path, precision)
    worst = 0.0
    for patches in tracks:
        ours, ref = half.predict(patches)[0].mean(0), f32.predict(patches)[0].mean(0)
        worst = max(worst, float(np.abs(ours - ref).max()))
        assert ours.argmax() == ref.argmax()
    print(f"{precision}: largest tag-mean difference {worst:.4f}")
    assert 1e-5 < worst < 0.02  # it really computed differently, and stayed close


def test_out_of_memory_halves_the_batch_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, weights: dict[str, Graph], tracks: list[np.ndarray]
) -> None:
    """A simulated CUDA out-of-memory error above 5 patches, with the real model below it."""
    predictor = TorchPredictor(weights["msd"].path)
    patches = np.concatenate(tracks)[:12]
    expected = predictor.predict(patches)
    model, raised = predictor.model, []

    def limited(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) > 5:
            raised.append(len(x))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return model(x)

    monkeypatch.setattr(predictor, "model", limited)
    for got, want in zip(predictor.predict(patches), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6 * max(np.abs(want).max(), 1))
    assert raised == [12, 6] and predictor.limit == 3
    predictor.predict(patches)
    assert raised == [12, 6]  # later batches are split up front

    def full(_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(predictor, "model", full)
    with pytest.raises(torch.OutOfMemoryError):  # not even one patch fits: that batch fails
        predictor.predict(patches[:1])


def test_weights_are_cached_verified_and_rebuilt(weights: dict[str, Graph], tmp_path: Path) -> None:
    msd = weights["msd"]
    cache = tmp_path / "cache"
    cache.mkdir()
    manifest = msd.path.with_suffix(".json")
    for file in (msd.path, manifest):
        (cache / file.name).write_bytes(file.read_bytes())
    info = ModelInfo.load("msd")
    assert json.loads(manifest.read_text())["model_id"] == msd.model_id
    assert provide(info, cache, structure=WEIGHTS) == Graph(cache / msd.path.name, msd.model_id)

    (cache / msd.path.name).write_bytes(b"PK damaged")
    messages: list[str] = []
    rebuilt = provide(info, cache, report=messages.append, structure=WEIGHTS)
    assert rebuilt.model_id == msd.model_id and "damaged" in messages[0]
    assert set(np.load(rebuilt.path).files) == set(np.load(msd.path).files)


def test_unusable_weights_and_a_user_graph_say_what_to_do(
    msd: tuple[ModelInfo, Graph], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an archive")
    with pytest.raises(ModelError, match="holds no usable MusiCNN weights"):
        TorchPredictor(bad)
    info, graph = msd
    with pytest.raises(ModelError, match="backend torch cannot run the TensorFlow graph"):
        provide(info, tmp_path, graph.path, structure=WEIGHTS)


def test_a_torch_run_never_imports_tensorflow(
    model_dir: Path, audio: dict[str, Path], tmp_path: Path
) -> None:
    """`backend: torch` end to end (on the CPU here): analyses stored, engine named."""
    write_config(tmp_path, model_dir, "auto: no, backend: torch, device: cpu")
    incoming = tmp_path / "in"
    incoming.mkdir()
    for name in ("riff", "drums"):
        (incoming / audio[name].name).write_bytes(audio[name].read_bytes())
    assert beet(tmp_path, "import", "-q", str(incoming)).returncode == 0
    run, loaded = imported_by(tmp_path, ["musicnn"], ["tensorflow", "torch"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert loaded == {"tensorflow": False, "torch": True}
    assert "analyzed 2," in run.stderr and "torch f32 cpu, batch 16" in run.stderr
