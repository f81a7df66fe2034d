"""Model provisioning: real checkpoints frozen, cached, verified, and equal to the original."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beetsplug.musicnn.errors import ModelError
from beetsplug.musicnn.inference import TensorflowPredictor, shared_predictor
from beetsplug.musicnn.provision import Graph, ModelInfo, provide

ROOT = Path(__file__).parents[1]


def test_metadata_matches_the_checkpoints() -> None:
    from musicnn import configuration

    for model, labels in (("msd", configuration.MSD_LABELS), ("mtt", configuration.MTT_LABELS)):
        info = ModelInfo.load(model)
        assert list(info.classes) == labels
        grouped = [tag for group in info.groups.values() for tag in group]
        assert sorted(grouped) == sorted(labels)  # every tag in exactly one group


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="choose one of msd, mtt"):
        ModelInfo.load("vgg")


def test_graph_is_cached_verified_and_rebuilt(msd: tuple[ModelInfo, Graph], tmp_path: Path) -> None:
    info, graph = msd
    manifest = json.loads(graph.path.with_suffix(".json").read_text())
    assert graph.model_id.startswith("msd-musicnn-")
    assert manifest["model_id"] == graph.model_id

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / graph.path.name).write_bytes(graph.path.read_bytes())
    (cache / "msd-musicnn.json").write_text(json.dumps(manifest))
    mtime = (cache / graph.path.name).stat().st_mtime_ns
    assert provide(info, cache) == Graph(cache / graph.path.name, graph.model_id)
    assert (cache / graph.path.name).stat().st_mtime_ns == mtime  # reused, not rebuilt

    # Truncated: the checksum fails and it is rebuilt, with the same identity.
    data = (cache / graph.path.name).read_bytes()
    (cache / graph.path.name).write_bytes(data[: len(data) // 2])
    messages: list[str] = []
    rebuilt = provide(info, cache, report=messages.append)
    assert rebuilt.model_id == graph.model_id
    assert "damaged" in messages[0]
    assert len(rebuilt.path.read_bytes()) == len(data)

    # Built by an older version of the builder: rebuilt, same identity.
    (cache / "msd-musicnn.json").write_text(json.dumps({**manifest, "builder": 1}))
    messages.clear()
    assert provide(info, cache, report=messages.append).model_id == graph.model_id
    assert "older version" in messages[0]
    assert json.loads((cache / "msd-musicnn.json").read_text())["builder"] == manifest["builder"]


def test_user_graph_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        provide(ModelInfo.load("msd"), tmp_path, tmp_path / "msd-musicnn-1.pb")


def test_corrupt_graph_says_how_to_fix_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"not a graph at all")
    with pytest.raises(ModelError, match="not a usable MusiCNN graph"):
        TensorflowPredictor(bad, ModelInfo.load("msd"), 0, 0)


def test_missing_weights_say_how_to_fix_them(tmp_path: Path) -> None:
    """Weights are package data: missing ones mean a broken install, to reinstall."""
    gone = dataclasses.replace(ModelInfo.load("msd"), name="gone-musicnn")
    with pytest.raises(ModelError, match=re.escape("gone-musicnn weights are missing")) as raised:
        provide(gone, tmp_path)
    assert "pip install --force-reinstall" in str(raised.value)


@pytest.mark.parametrize("model", ["msd", "mtt"])
def test_frozen_graph_equals_the_original_network(
    model: str, model_dir: Path, tmp_path: Path
) -> None:
    """The same patches through musicnn's own network and through our frozen graph."""
    pytest.importorskip("tf_keras")
    info = ModelInfo.load(model)
    graph = provide(info, model_dir)
    patches = np.random.default_rng(1).uniform(0, 3, (5, 187, 96)).astype(np.float32)
    np.save(tmp_path / "patches.npy", patches)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(
        [sys.executable, "-m", "tests.reference_network", info.checkpoint,
         str(tmp_path / "patches.npy"), str(tmp_path / "ref.npz")],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    reference = np.load(tmp_path / "ref.npz")
    tags, embeddings = shared_predictor(graph.path, info).predict(patches)
    assert np.abs(tags - reference["tags"]).max() < 1e-5
    scale = np.abs(reference["embeddings"]).max()
    assert np.abs(embeddings - reference["embeddings"]).max() < 1e-5 * max(scale, 1)
    assert tags.std() > 1e-3  # a real, input-dependent output


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )  # fmt: skip


def test_import_order_is_guarded() -> None:
    """tensorflow then essentia aborts a process; after ours, it is an ImportError."""
    guarded = _python(
        "from beetsplug.musicnn.inference import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "try:\n"
        "    import essentia.standard\n"
        "except ImportError as exc:\n"
        "    print('refused:', exc)\n"
        "print('alive', tf.__version__)"
    )
    assert guarded.returncode == 0, guarded.stderr[-500:]
    assert "refused: essentia cannot be imported after tensorflow" in guarded.stdout
    assert "alive" in guarded.stdout

    both = _python(
        "import essentia.standard as es, numpy as np\n"
        "from beetsplug.musicnn.inference import import_tensorflow\n"
        "import_tensorflow()\n"
        "print('bands', len(es.TensorflowInputMusiCNN()(np.ones(512, np.float32))))"
    )
    assert both.returncode == 0, both.stderr[-500:]
    assert "bands 96" in both.stdout  # essentia first: both work

    naive = _python("import tensorflow\nimport essentia.standard")
    assert naive.returncode != 0  # the hazard the guard exists for


def test_essentia_runs_our_frozen_graph(msd: tuple[ModelInfo, Graph]) -> None:
    """The frozen file is a drop-in for essentia's model-zoo msd-musicnn-1.pb."""
    import essentia.standard as es

    _info, graph = msd
    signal = np.random.default_rng(0).standard_normal(16000 * 8).astype(np.float32) * 0.1
    predict = es.TensorflowPredictMusiCNN(graphFilename=str(graph.path), output="model/Sigmoid")
    activations = predict(signal)
    assert activations.shape[1] == 50 and np.isfinite(activations).all()


def test_essentia_backend_equals_tensorflow(msd: tuple[ModelInfo, Graph]) -> None:
    """The same graph on essentia's bundled TensorFlow 2.5 and on the tensorflow package."""
    info, graph = msd
    patches = np.random.default_rng(2).uniform(0, 3, (6, 187, 96)).astype(np.float32)
    tags, embeddings = shared_predictor(graph.path, info).predict(patches)
    e_tags, e_embeddings = shared_predictor(graph.path, info, "essentia").predict(patches)
    assert e_tags.shape == tags.shape and e_embeddings.shape == embeddings.shape
    assert np.abs(e_tags - tags).max() < 1e-5
    assert np.abs(e_embeddings - embeddings).max() < 1e-5 * max(np.abs(embeddings).max(), 1)
    assert tags.std() > 1e-3
