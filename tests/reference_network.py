"""Run musicnn's own network definition, restored from its checkpoint.

``python -m tests.reference_network MODEL PATCHES.npy OUT.npz`` rebuilds the
network with ``musicnn.models.define_model`` (as musicnn's extractor does),
restores the original checkpoint and saves the sigmoid and embedding
outputs. It needs tf_keras with TF_USE_LEGACY_KERAS=1, and runs in its own
process because it imports tensorflow without essentia first.
"""

from __future__ import annotations

import os
import sys

import numpy as np


def main(model: str, patches_file: str, out: str) -> None:
    import tensorflow as tf
    from musicnn import models

    tf.compat.v1.disable_eager_execution()
    patches = np.load(patches_file)
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[1], patches.shape[2]])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits = models.define_model(x, is_training, model, 50)[0]
        sigmoid = tf.nn.sigmoid(logits)
    graph = tf.compat.v1.get_default_graph()
    embedding = graph.get_tensor_by_name("model/dense/BiasAdd:0")
    with tf.compat.v1.Session() as sess:
        tf.compat.v1.train.Saver().restore(
            sess, os.path.join(os.path.dirname(models.__file__), model) + "/"
        )
        tags, emb = sess.run([sigmoid, embedding], {x: patches, is_training: False})
    np.savez(out, tags=tags, embeddings=emb)


if __name__ == "__main__":
    main(*sys.argv[1:])
