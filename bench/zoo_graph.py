"""The checkpoint frozen as it is, the graph essentia's model zoo ships (msd-musicnn-1.pb).

Run: python -m bench.zoo_graph CHECKPOINT OUT.pb, CHECKPOINT being the files'
prefix (bench.throughput does, in a subprocess: it imports tensorflow). The
baselines run essentia on this graph, as an essentia user would, not on our rewritten one
(beetsplug/musicnn/freeze.py), which would speed essentia up too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OUTPUTS = ("model/Sigmoid", "model/dense/BiasAdd")
IS_TRAINING = "model/Placeholder_2"


def freeze(checkpoint: Path, out: Path) -> None:
    """The inference sub-graph of the meta graph, variables as Consts, is_training False."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from tensorflow.core.framework import attr_value_pb2, graph_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = meta_graph_pb2.MetaGraphDef()
    meta.ParseFromString(Path(f"{checkpoint}.meta").read_bytes())
    sub = tf.compat.v1.graph_util.extract_sub_graph(meta.graph_def, list(OUTPUTS))
    reader = tf.compat.v1.train.NewCheckpointReader(str(checkpoint))
    frozen = graph_pb2.GraphDef()
    frozen.versions.CopyFrom(sub.versions)
    for node in sub.node:
        new = frozen.node.add()
        if node.op in ("VariableV2", "Variable"):
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
    out.write_bytes(frozen.SerializeToString(deterministic=True))


if __name__ == "__main__":
    freeze(Path(sys.argv[1]), Path(sys.argv[2]))
