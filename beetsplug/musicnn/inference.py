"""One MusiCNN model per process, shared by every analyzer thread.

Three engines run the same frozen graph, a fourth the same weights
(``BACKENDS``; ``engine.choose`` picks one). ``OpenvinoPredictor``
(backend ``openvino``) compiles the graph with OpenVINO, which reads the
.pb itself, so that process never imports TensorFlow; it runs bf16 where
the CPU does. ``TensorflowPredictor`` (backend ``tensorflow``) uses the
tensorflow package. Both release the GIL while they compute.
``EssentiaPredictor`` (backend ``essentia``) uses essentia's bundled
TensorFlow, the path essentia's own ``TensorflowPredictMusiCNN`` takes:
the baseline, and a fallback. ``torch_model.TorchPredictor`` (backend
``torch``) runs the network on a CUDA GPU or the CPU; torch is imported
only for it. ``import_tensorflow`` is the only place tensorflow is
imported; after it, importing essentia (whose bundled TensorFlow aborts
the process in that order) raises ImportError instead.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from .errors import ModelError
from .features import MEL_BANDS, PATCH_SIZE
from .provision import ModelInfo

_lock = threading.Lock()
_predictors: dict[tuple[Path, str, str, int, Path | None, str], Predictor] = {}
loads = 0  # how many graphs this process has loaded; tests read it


class Predictor(Protocol):
    engine: str  # what really runs, e.g. "openvino bf16": stored with each analysis

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tag activations (n, classes) and embeddings (n, 200) of (n, 187, 96) patches."""
        ...


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hide what TF's C++ side prints at start-up (CUDA probes, absl notices).

    Those lines go straight to file descriptor 2, around Python; real
    failures still raise Python exceptions.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _NoEssentiaAfterTensorflow(importlib.abc.MetaPathFinder):
    """Turns the abort that essentia-after-tensorflow causes into an ImportError."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == "essentia" or fullname.startswith("essentia."):
            raise ImportError(
                "essentia cannot be imported after tensorflow in one process (its own "
                "TensorFlow would abort it): import essentia first"
            )


def import_tensorflow() -> ModuleType:
    """Import tensorflow, guarding against essentia being imported after it.

    The analyzer does not need essentia, and importing it first would cost
    every run about 200 MB and 1.7 s; instead a later ``import essentia``
    fails cleanly rather than aborting the process. Code that wants both
    imports essentia first, which is safe.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and "essentia" not in sys.modules:
        sys.meta_path.insert(0, _NoEssentiaAfterTensorflow())
    with _quiet_native_stderr():
        import tensorflow as tf

    return tf


class TensorflowPredictor:
    """A frozen MusiCNN graph in a TF session: patches in, tags and embeddings out."""

    def __init__(self, graph: Path, model_info: ModelInfo, intra_threads: int, inter_threads: int):
        global loads
        tf = import_tensorflow()
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(graph.read_bytes())
            tf_graph = tf.Graph()
            with tf_graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            self._input = tf_graph.get_tensor_by_name(model_info.input + ":0")
            self._outputs = [
                tf_graph.get_tensor_by_name(model_info.predictions + ":0"),
                tf_graph.get_tensor_by_name(model_info.embeddings + ":0"),
            ]
        except Exception as exc:  # protobuf and TF raise many kinds
            raise ModelError(
                f"{graph} is not a usable MusiCNN graph ({exc.__class__.__name__}): "
                "delete it or fix `musicnn.graph`"
            ) from exc
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra_threads,
            inter_op_parallelism_threads=inter_threads,
        )
        with _quiet_native_stderr():
            self._session = tf.compat.v1.Session(graph=tf_graph, config=config)
        self.classes = model_info.classes
        self.engine = "tensorflow f32"
        loads += 1

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tag activations (n, classes) and embeddings (n, 200) of (n, 187, 96) patches."""
        check_shape(patches)
        tags, embeddings = self._session.run(self._outputs, {self._input: patches})
        return tags, embeddings


class EssentiaPredictor:
    """The same graph run by essentia's bundled TensorFlow 2.5 (``backend: essentia``).

    It holds the GIL while it computes, so feature extraction waits for it,
    and it cannot share a process with the tensorflow package imported
    first: that is why it is not the default.
    """

    def __init__(self, graph: Path, model_info: ModelInfo):
        global loads
        try:
            with _quiet_native_stderr():
                import essentia
                import essentia.standard as es
        except ImportError as exc:
            raise ModelError(f"backend essentia is unavailable: {exc}") from exc
        essentia.log.infoActive = False
        self._pool = essentia.Pool
        self._input, self._outputs = (
            model_info.input,
            (model_info.predictions, model_info.embeddings),
        )
        try:
            with _quiet_native_stderr():
                self._run = es.TensorflowPredict(
                    graphFilename=str(graph), inputs=[model_info.input], outputs=list(self._outputs)
                )
                self.predict(np.zeros((1, PATCH_SIZE, MEL_BANDS), np.float32))  # its notices
        except RuntimeError as exc:
            raise ModelError(f"{graph} is not a usable MusiCNN graph for essentia: {exc}") from exc
        self.engine = "essentia f32"
        loads += 1

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As ``TensorflowPredictor.predict``; essentia wants 4-d tensors, (n, 1, 187, 96)."""
        check_shape(patches)
        pool = self._pool()
        pool.set(self._input, np.ascontiguousarray(patches[:, None], np.float32))
        out = self._run(pool)
        tags, embeddings = (out[name].reshape(len(patches), -1) for name in self._outputs)
        return tags, embeddings


class OpenvinoPredictor:
    """The graph compiled by OpenVINO for this CPU (``backend: openvino``).

    ``precision`` is the CPU plugin's inference precision hint; ``engine``
    says what the compiled model really runs (a CPU without bf16 runs f32).
    The compiled model is cached in ``cache_dir`` (OpenVINO's CACHE_DIR,
    keyed on the graph's content and the settings): a damaged cache is
    dropped and rebuilt. ``threads`` is OpenVINO's INFERENCE_NUM_THREADS
    (0: one per core).
    """

    def __init__(
        self,
        graph: Path,
        model_info: ModelInfo,
        precision: str = "f32",
        threads: int = 0,
        cache_dir: Path | None = None,
    ):
        global loads
        try:
            import openvino as ov
        except Exception as exc:  # a broken install raises anything
            raise ModelError(
                f"backend openvino is unavailable ({exc}): set musicnn.backend: tensorflow"
            ) from exc
        try:
            model = ov.convert_model(str(graph))
            ops = {op.get_friendly_name(): op for op in model.get_ops()}
            model.add_outputs(ops[model_info.embeddings].output(0))  # not a graph output
        except Exception as exc:  # the frontend raises many kinds
            raise ModelError(
                f"{graph} is not a usable MusiCNN graph for OpenVINO "
                f"({exc.__class__.__name__}): delete it or fix `musicnn.graph`"
            ) from exc
        config: dict[str, object] = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = _compile(lambda extra: ov.Core().compile_model(model, "CPU", config | extra),
                            cache_dir)  # fmt: skip
        self._request = compiled.create_infer_request()
        ran = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = "bf16" if "bf16" in str(ran) or "bfloat16" in str(ran) else "f32"
        self.engine = f"openvino {self.precision}"
        loads += 1

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As ``TensorflowPredictor.predict``."""
        check_shape(patches)
        out = self._request.infer({0: np.ascontiguousarray(patches, np.float32)})
        return out[0].copy(), out[1].copy()  # the request reuses its buffers


def _compile(compile_with: Callable[[dict[str, object]], object], cache_dir: Path | None) -> Any:
    """Compile with the cache in ``cache_dir``; a cache that fails is dropped, once."""
    if cache_dir is None:
        return compile_with({})
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        return compile_with({"CACHE_DIR": str(cache_dir)})
    except (OSError, RuntimeError):
        shutil.rmtree(cache_dir, ignore_errors=True)
    try:
        return compile_with({"CACHE_DIR": str(cache_dir)})
    except (OSError, RuntimeError) as exc:
        raise ModelError(f"OpenVINO cannot compile the model: {exc}".splitlines()[0]) from exc


def check_shape(patches: np.ndarray) -> None:
    if patches.shape[1:] != (PATCH_SIZE, MEL_BANDS):
        raise ValueError(f"patches must be (n, {PATCH_SIZE}, {MEL_BANDS}), not {patches.shape}")


def _torch(
    weights: Path, _info: ModelInfo, precision: str, threads: int, _cache: Path | None, device: str
) -> Predictor:
    global loads
    from .torch_model import TorchPredictor  # imports torch: only for backend torch

    predictor = TorchPredictor(weights, precision, device, threads)
    loads += 1
    return predictor


# Each: (graph or weights, model, precision, threads, compile cache, torch device).
BACKENDS: dict[str, Callable[[Path, ModelInfo, str, int, Path | None, str], Predictor]] = {
    "openvino": lambda graph, info, precision, threads, cache, _device: OpenvinoPredictor(
        graph, info, precision, threads, cache
    ),
    "tensorflow": lambda graph, info, _precision, threads, _cache, _device: TensorflowPredictor(
        graph, info, threads, 0
    ),
    "essentia": lambda graph, info, *_: EssentiaPredictor(graph, info),
    "torch": _torch,
}


def shared_predictor(
    graph: Path,
    model_info: ModelInfo,
    backend: str = "tensorflow",
    precision: str = "f32",
    threads: int = 0,
    cache_dir: Path | None = None,
    device: str = "cpu",
) -> Predictor:
    """The process-wide model for ``graph`` on ``backend``, loaded on first use.

    ``threads`` is the engine's own (0: its default); ``cache_dir`` keeps
    what an engine compiles (OpenVINO); ``device`` is torch's (``cpu``,
    ``cuda:N``).
    """
    key = (graph, backend, precision, threads, cache_dir, device)
    with _lock:
        if key not in _predictors:
            _predictors[key] = BACKENDS[backend](
                graph, model_info, precision, threads, cache_dir, device
            )
        return _predictors[key]
