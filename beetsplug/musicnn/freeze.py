"""Freeze a musicnn TF1 checkpoint into an essentia-compatible graph.

Run as ``python -m beetsplug.musicnn.freeze CHECKPOINT_DIR OUT.pb``. It is
always run in a subprocess: it imports tensorflow, and tensorflow imported
before essentia aborts the whole process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OUTPUTS = ("model/Sigmoid", "model/dense/BiasAdd")
IS_TRAINING = "model/Placeholder_2"


def freeze(checkpoint_dir: Path, out: Path) -> None:
    """Write the inference sub-graph with every variable baked in as a Const.

    The raw meta graph holds training ops (Adam, savers) that do not import,
    so only the sub-graph feeding the outputs is kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, graph_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString((checkpoint_dir / ".meta").read_bytes())
    sub = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, list(OUTPUTS))
    # The `checkpoint` file names the author's machine; the real prefix is
    # the directory itself plus "/" (files are ".index", ".data-...").
    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint_dir) + "/")

    frozen = graph_pb2.GraphDef()
    frozen.versions.CopyFrom(sub.versions)
    for node in sub.node:
        new = frozen.node.add()
        if node.op in ("VariableV2", "Variable"):
            value = reader.get_tensor(node.name)
            new.name, new.op = node.name, "Const"
            new.attr["dtype"].CopyFrom(node.attr["dtype"])
            new.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(value)))
        elif node.name == IS_TRAINING:
            new.name, new.op = node.name, "Const"
            new.attr["dtype"].CopyFrom(attr_value_pb2.AttrValue(type=tf.bool.as_datatype_enum))
            new.attr["value"].CopyFrom(attr_value_pb2.AttrValue(tensor=tf.make_tensor_proto(False)))
        else:
            new.CopyFrom(node)
            new.device = ""
            if "_class" in new.attr:
                del new.attr["_class"]

    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(frozen.SerializeToString(deterministic=True))
    tmp.replace(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m beetsplug.musicnn.freeze CHECKPOINT_DIR OUT.pb", file=sys.stderr)
        return 2
    freeze(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
