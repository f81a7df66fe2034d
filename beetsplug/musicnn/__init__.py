"""beets-musicnn: moods, genres and tags from the MusiCNN network, for beets."""

import os
import sys

# The features are many small matrix products (the mel filterbank, once per
# chunk). OpenBLAS splits each over its threads, which then spin: that cost
# 4 ms of CPU per second of audio, three times the features themselves, and
# took the cores from the model (bench/throughput.py (f)). One BLAS thread,
# unless the user set one or numpy is already loaded (then it is too late).
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .plugin import MusicnnPlugin

__all__ = ["MusicnnPlugin"]
