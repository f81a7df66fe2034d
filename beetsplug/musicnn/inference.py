"""One MusiCNN model per process, shared by every analyzer thread.

A TensorFlow session's ``run`` is thread-safe and releases the GIL, so one
loaded graph serves all workers. ``import_tensorflow`` is the only place
tensorflow is imported; after it, importing essentia (whose bundled
TensorFlow aborts the process in that order) raises ImportError instead.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from .features import MEL_BANDS, PATCH_SIZE
from .provision import ModelError, ModelInfo

_lock = threading.Lock()
_models: dict[tuple[Path, int, int], Model] = {}
loads = 0  # how many graphs this process has loaded; tests read it


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


class Model:
    """A frozen MusiCNN graph in a TF session: patches in, tags and embeddings out."""

    def __init__(self, graph: Path, info: ModelInfo, intra_threads: int, inter_threads: int):
        global loads
        tf = import_tensorflow()
        graph_def = tf.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(graph.read_bytes())
            tf_graph = tf.Graph()
            with tf_graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
            self._input = tf_graph.get_tensor_by_name(info.input + ":0")
            self._outputs = [
                tf_graph.get_tensor_by_name(info.predictions + ":0"),
                tf_graph.get_tensor_by_name(info.embeddings + ":0"),
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
        self.classes = info.classes
        loads += 1

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tag activations (n, classes) and embeddings (n, 200) of (n, 187, 96) patches."""
        if patches.shape[1:] != (PATCH_SIZE, MEL_BANDS):
            raise ValueError(f"patches must be (n, {PATCH_SIZE}, {MEL_BANDS}), not {patches.shape}")
        tags, embeddings = self._session.run(self._outputs, {self._input: patches})
        return tags, embeddings


def shared_model(
    graph: Path, info: ModelInfo, intra_threads: int = 0, inter_threads: int = 0
) -> Model:
    """The process-wide model for ``graph``, loaded on first use."""
    key = (graph, intra_threads, inter_threads)
    with _lock:
        if key not in _models:
            _models[key] = Model(graph, info, intra_threads, inter_threads)
        return _models[key]
