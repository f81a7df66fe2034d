"""Build an inference graph for a musicnn TF1 checkpoint, every weight a Const.

Run as ``python -m beetsplug.musicnn.freeze CHECKPOINT OUT [STRUCTURE]``,
CHECKPOINT being the prefix of the ``.index``, ``.data-*`` and ``.meta``
files. It is always run in a subprocess: it imports tensorflow, and
tensorflow imported before essentia aborts the whole process. STRUCTURE
``weights`` writes no graph but the tensors of the inference graph as a
plain ``.npz``, for backend torch (``torch_model.py``), whose process then
never imports TensorFlow.

Two structures of the same network, whichever runs faster on an engine and
CPU (``engine.py`` chooses, from bench/engines.py's sweep): ``original`` is
the checkpoint's own graph frozen as it is (what essentia's model zoo
ships as msd-musicnn-1.pb); ``band`` is rewritten as follows.

The checkpoint's own graph computes each front-end block as conv, ReLU,
batch norm, then a max-pool over the whole frequency axis, so ReLU, batch
norm and pooling all run on the full (time, frequency, filters) tensor.
Here the same network is written with the pooling first: bias, ReLU and
batch norm are per-filter monotonic maps, so the max over frequency of
``s * relu(z + b) + o`` is ``s * relu(max(z) + b) + o`` (the min where a
filter's scale ``s`` is negative), and they run on a tensor up to 96 times
smaller. Batch norm becomes one multiply-add with constants. Outputs match
musicnn's own network to 1e-5 (tests/test_model.py) and the file stays a
drop-in for essentia's ``TensorflowPredictMusiCNN``: input
``model/Placeholder`` (n, 187, 96), outputs ``model/Sigmoid`` (tags) and
``model/dense/BiasAdd`` (the 200-d embedding).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

BUILDER = 2  # bump when the built graph changes: cached graphs are rebuilt
STRUCTURES = ("band", "original")
WEIGHTS = "weights"  # not a graph: the checkpoint's inference tensors, for backend torch
OUTPUTS = ("model/Sigmoid", "model/dense/BiasAdd")
IS_TRAINING = "model/Placeholder_2"  # the checkpoint graph's batch-norm switch
EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
TIME_PAD = [[0, 0], [3, 3], [0, 0]]
PATCH_FRAMES = 187  # musicnn pads time by 3 for its 7-frame kernels


def build(checkpoint: Path) -> Any:
    """The inference GraphDef of the musicnn network stored at the prefix ``checkpoint``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint))

    def weight(name: str) -> Any:
        return reader.get_tensor(name)

    def norm(index: int) -> tuple[Any, Any]:
        """Batch norm ``index`` (inference mode) as a scale and an offset."""
        name = "batch_normalization" + (f"_{index}" if index else "")
        gamma, beta, mean, variance = (
            weight(f"{name}/{key}") for key in ("gamma", "beta", "moving_mean", "moving_variance")
        )
        scale = gamma / np.sqrt(variance + EPSILON)
        return scale, beta - mean * scale

    def conv(index: int) -> tuple[Any, Any]:
        name = "conv2d" + (f"_{index}" if index else "")
        return weight(f"{name}/kernel"), weight(f"{name}/bias")

    def pooled(z: Any, axis: int, bias: Any, scale: Any, offset: Any) -> Any:
        """ReLU, batch norm, then max over frequency (``axis``), computed pooling first."""
        pooled = tf.reduce_max(z, axis=axis)
        if (scale < 0).any():
            pooled = tf.where(scale >= 0, pooled, tf.reduce_min(z, axis=axis))
        return tf.nn.relu(pooled + bias) * scale + offset  # (n, time, filters)

    def timbral(index: int, inputs: Any) -> Any:
        kernel, bias = conv(index)
        return pooled(tf.nn.conv2d(inputs, kernel, 1, "VALID"), 2, bias, *norm(index + 1))

    def temporal(indices: tuple[int, ...], inputs: Any) -> Any:
        """musicnn's temporal convs (k x 1 kernels, SAME) as one product with a band matrix.

        Along time, with one input channel, each conv is a product with a
        banded matrix per frequency bin. TensorFlow's conv kernels run such
        long single-channel kernels slowly (0.8 of the 1.5 s a batch of 16
        took); one matrix product of all three runs near the CPU's peak.
        """
        frames = PATCH_FRAMES
        kernels = [conv(i)[0][:, 0, 0, :] for i in indices]  # (k, filters) each
        band = np.zeros((frames, frames, sum(k.shape[1] for k in kernels)), np.float32)
        column = 0
        for kernel in kernels:
            size, filters = kernel.shape
            before = (size - 1) // 2  # TensorFlow's SAME padding
            for d in range(size):  # output t reads input t + d - before
                first, last = max(0, before - d), min(frames, frames + before - d)
                t = np.arange(first, last)
                band[t + d - before, t, column : column + filters] = kernel[d]
            column += filters
        by_bin = tf.reshape(tf.transpose(inputs, [0, 2, 1]), [-1, frames])  # (n * 96, 187)
        z = tf.reshape(tf.matmul(by_bin, band.reshape(frames, -1)), [-1, 96, frames, column])
        bias = np.concatenate([conv(i)[1] for i in indices])
        norms = [norm(i + 1) for i in indices]
        scale, offset = (np.concatenate([n[part] for n in norms]) for part in (0, 1))
        return pooled(z, 1, bias, scale, offset)

    def mid_block(conv_index: int, norm_index: int, inputs: Any) -> Any:
        """musicnn's mid-end conv (kernel 7 x all features) as a 1-d conv over time."""
        kernel, bias = conv(conv_index)
        scale, offset = norm(norm_index)
        kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], kernel.shape[3])
        z = tf.nn.conv1d(tf.pad(inputs, TIME_PAD), kernel, 1, "VALID")
        return tf.nn.relu(z + bias) * scale + offset

    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model/"):
            x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, 96], name="Placeholder")
        scale, offset = norm(0)
        normalised = x * scale + offset  # (n, 187, 96)
        padded = tf.expand_dims(tf.pad(normalised, TIME_PAD), 3)
        front = tf.concat(
            [
                timbral(0, padded),  # 7 x 38 kernels
                timbral(1, padded),  # 7 x 67
                temporal((2, 3, 4), normalised),  # 128, 64 and 32 x 1
            ],
            axis=2,
        )  # (n, 187, 561)
        cnn1 = mid_block(5, 6, front)
        res2 = mid_block(6, 7, cnn1) + cnn1
        res3 = mid_block(7, 8, res2) + res2
        features = tf.concat([front, cnn1, res2, res3], axis=2)  # (n, 187, 753)
        # musicnn flattens concat([max, mean], axis 2) of (n, 753, 1) tensors.
        pooled = tf.stack([tf.reduce_max(features, 1), tf.reduce_mean(features, 1)], axis=2)
        scale, offset = norm(9)
        flat = tf.reshape(pooled, [-1, 2 * 753]) * scale + offset
        with tf.name_scope("model/dense/"):
            embedding = tf.nn.bias_add(
                tf.matmul(flat, weight("dense/kernel")), weight("dense/bias"), name="BiasAdd"
            )
        scale, offset = norm(10)
        hidden = tf.nn.relu(embedding) * scale + offset
        logits = tf.matmul(hidden, weight("dense_1/kernel")) + weight("dense_1/bias")
        with tf.name_scope("model/"):
            tf.sigmoid(logits, name="Sigmoid")
    return graph.as_graph_def()


def _inference_graph(checkpoint: Path) -> tuple[Any, Any]:
    """The checkpoint's own graph cut to what computes ``OUTPUTS``, and its tensor reader."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString(Path(f"{checkpoint}.meta").read_bytes())
    sub = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, list(OUTPUTS))
    return sub, tf.compat.v1.train.NewCheckpointReader(str(checkpoint))


def _is_variable(node: Any) -> bool:
    return node.op in ("VariableV2", "Variable")


def export(checkpoint: Path) -> dict[str, Any]:
    """Every variable the inference graph reads (no optimizer state), by checkpoint name."""
    sub, reader = _inference_graph(checkpoint)
    return {node.name: reader.get_tensor(node.name) for node in sub.node if _is_variable(node)}


def build_original(checkpoint: Path) -> Any:
    """The checkpoint's own inference sub-graph, variables as Consts, is_training False."""
    sub, reader = _inference_graph(checkpoint)  # first: it quiets TensorFlow's import
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, graph_pb2

    frozen = graph_pb2.GraphDef()
    frozen.versions.CopyFrom(sub.versions)
    for node in sub.node:
        new = frozen.node.add()
        if _is_variable(node):
            new.name, new.op = node.name, "Const"
            new.attr["dtype"].CopyFrom(node.attr["dtype"])
            tensor = tf.make_tensor_proto(reader.get_tensor(node.name))
            new.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tensor))
        elif node.name == IS_TRAINING:
            new.name, new.op = node.name, "Const"
            new.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tf.bool.as_datatype_enum))
            new.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(False)))
        else:
            new.CopyFrom(node)
            new.device = ""
            if "_class" in new.attr:
                del new.attr["_class"]
    return frozen


def freeze(checkpoint: Path, out: Path, structure: str = "band") -> None:
    tmp = out.with_name(out.name + ".tmp")
    if structure == WEIGHTS:
        import numpy as np

        with open(tmp, "wb") as fh:  # a file object: savez would append .npz to a name
            np.savez(fh, **export(checkpoint))
    else:
        graph = build(checkpoint) if structure == "band" else build_original(checkpoint)
        tmp.write_bytes(graph.SerializeToString(deterministic=True))
    tmp.replace(out)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not set(argv[2:]) <= {*STRUCTURES, WEIGHTS}:
        print(
            "usage: python -m beetsplug.musicnn.freeze CHECKPOINT OUT [band|original|weights]",
            file=sys.stderr,
        )
        return 2
    freeze(Path(argv[0]), Path(argv[1]), *argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
