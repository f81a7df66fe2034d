"""Every engine on the same real audio: f32 engines agree, bf16 is bf16 and close.

OpenVINO runs the frozen graph in either structure; TensorFlow f32 is the
reference. Tag means are what the plugin stores, so they are compared.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from beetsplug.musicnn.analyzer import Analyzer, Job, Outcome, Result
from beetsplug.musicnn.engine import cpu_kind
from beetsplug.musicnn.inference import OpenvinoPredictor, Predictor, TensorflowPredictor
from beetsplug.musicnn.provision import Graph, ModelInfo, provide
from tests.beet import BEET, beet, imported_by, write_config

NAMES = ["pad", "riff", "drums", "pluck", "noise"]


def means(predictor: Predictor, audio: dict[str, Path]) -> list[Result]:
    """Each file's stored means, as the analyzer computes them with ``predictor``."""
    outcomes: dict[int, Outcome] = {}
    jobs = [Job(i, os.fsencode(audio[name])) for i, name in enumerate(NAMES)]
    Analyzer(lambda: predictor, threads=2, batch_size=16).run(
        jobs, lambda o: outcomes.__setitem__(o.key, o)
    )
    results = [outcomes[i] for i in range(len(NAMES))]
    assert all(isinstance(r, Result) for r in results)
    return results  # type: ignore[return-value]


@pytest.fixture(scope="module")
def reference(msd: tuple[ModelInfo, Graph], audio: dict[str, Path]) -> list[Result]:
    info, graph = msd
    return means(TensorflowPredictor(graph.path, info, 0, 0), audio)


@pytest.mark.parametrize("structure", ["band", "original"])
def test_openvino_f32_equals_tensorflow(
    structure: str, model_dir: Path, reference: list[Result], audio: dict[str, Path]
) -> None:
    info = ModelInfo.load("msd")
    graph = provide(info, model_dir, structure=structure)
    predictor = OpenvinoPredictor(graph.path, info, "f32", 0, model_dir / "openvino")
    assert predictor.engine == "openvino f32"
    for ours, ref in zip(means(predictor, audio), reference, strict=True):
        assert np.abs(ours.tags - ref.tags).max() < 1e-4
        assert np.abs(ours.embedding - ref.embedding).max() < 1e-3 * np.abs(ref.embedding).max()


@pytest.mark.skipif(cpu_kind() == "other", reason="this CPU has no native bf16 (AMX, AVX512_BF16)")
def test_openvino_bf16_runs_bf16_and_stays_close(
    msd: tuple[ModelInfo, Graph], model_dir: Path, reference: list[Result], audio: dict[str, Path]
) -> None:
    info, graph = msd
    predictor = OpenvinoPredictor(graph.path, info, "bf16", 0, model_dir / "openvino")
    assert predictor.precision == "bf16"  # what the compiled model reports it runs
    ours = means(predictor, audio)
    worst = max(np.abs(o.tags - r.tags).max() for o, r in zip(ours, reference, strict=True))
    print(f"bf16: largest tag-mean difference {worst:.4f}")
    assert 1e-5 < worst < 0.02  # it really computed differently, and stayed close
    for o, r in zip(ours, reference, strict=True):
        assert o.tags.argmax() == r.tags.argmax()
        cosine = (
            o.embedding @ r.embedding / np.linalg.norm(o.embedding) / np.linalg.norm(r.embedding)
        )
        assert cosine >= 0.999


def test_a_damaged_compile_cache_is_rebuilt(msd: tuple[ModelInfo, Graph], tmp_path: Path) -> None:
    info, graph = msd
    cache = tmp_path / "openvino"
    first = OpenvinoPredictor(graph.path, info, "f32", 0, cache)
    blobs = list(cache.glob("*.blob"))
    assert blobs
    for blob in blobs:
        blob.chmod(0o600)
        blob.write_bytes(b"damaged" * 100)
    patches = np.random.default_rng(0).normal(size=(2, 187, 96)).astype(np.float32)
    again = OpenvinoPredictor(graph.path, info, "f32", 0, cache)
    np.testing.assert_allclose(again.predict(patches)[0], first.predict(patches)[0], atol=1e-6)


@pytest.fixture(scope="module")
def library(
    tmp_path_factory: pytest.TempPathFactory, model_dir: Path, audio: dict[str, Path]
) -> Path:
    root = tmp_path_factory.mktemp("engines")
    write_config(root, model_dir, "auto: no")
    incoming = root / "in"
    incoming.mkdir()
    for name in NAMES:
        (incoming / audio[name].name).write_bytes(audio[name].read_bytes())
    assert beet(root, "import", "-q", str(incoming)).returncode == 0
    return root


def test_with_openvino_the_run_never_imports_tensorflow(library: Path) -> None:
    run, loaded = imported_by(library, ["musicnn", "-f"], ["tensorflow", "essentia"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert loaded == {"tensorflow": False, "essentia": False}
    assert "openvino" in run.stderr  # the summary names the engine that ran


def test_a_broken_openvino_falls_back_to_tensorflow(library: Path, tmp_path: Path) -> None:
    broken = tmp_path / "site" / "openvino"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('libopenvino.so: broken for the test')")
    run = subprocess.run(
        [*BEET, "-v", "musicnn", "-f"], capture_output=True, text=True, timeout=600,
        env={**os.environ, "BEETSDIR": str(library), "PYTHONPATH": str(tmp_path / "site")},
    )  # fmt: skip
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    warned = [line for line in run.stderr.splitlines() if "OpenVINO cannot run" in line]
    assert warned == [
        "musicnn: OpenVINO cannot run (ImportError: libopenvino.so: broken for the test): "
        "using TensorFlow instead"
    ]
    assert f"analyzed {len(NAMES)}," in run.stderr and "tensorflow f32" in run.stderr
