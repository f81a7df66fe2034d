"""Similarity at library scale: a synthetic library of 100,000 analyzed items.

Run: .venv/bin/python -m bench.similar [ITEMS]

Builds a beets library and plugin database with ITEMS items (random
embeddings, real SQL rows), then times: loading the embedding matrix from
the database, one nearest-neighbour query after loading, and real
`beet ls 'similar:...'` and `beet musicnn-similar` processes end to end,
beside `beet version` as the floor of any beet command.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
from beets.library import Library

from beetsplug.musicnn.similarity import Index, load_index
from beetsplug.musicnn.store import Store
from bench.common import built
from tests.beet import timed_beet

MODEL = "msd-musicnn-benchmark0000"


def build(root: Path, count: int) -> None:
    lib = Library(str(root / "library.db"), str(root))
    lib._close()
    rows = [
        (i, f"{root}/t{i}.mp3".encode(), f"track {i}", f"artist {i % 997}")
        for i in range(1, count + 1)
    ]
    with sqlite3.connect(root / "library.db") as db:
        db.executemany("INSERT INTO items (id, path, title, artist) VALUES (?,?,?,?)", rows)
    Store(root / "musicnn.db").close()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 200)).astype(np.float32)
    with sqlite3.connect(root / "musicnn.db") as db:
        db.executemany(
            "INSERT INTO analyses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (_row(i, rng, centres) for i in range(1, count + 1)),
        )
    (root / "config.yaml").write_text(
        f"library: {root / 'library.db'}\ndirectory: {root}\nplugins: musicnn\n"
    )


def _row(i: int, rng: np.random.Generator, centres: np.ndarray) -> tuple[object, ...]:
    embedding = centres[i % 50] + rng.normal(size=200).astype(np.float32)
    tags = rng.random(50, np.float32)
    facts = (i, b"", 0, 0.0, "", 0.0, MODEL, 187, 1, 1.0)
    return (*facts, tags.tobytes(), embedding.tobytes(), 1.0 * i)


def main(count: int = 100_000) -> None:
    with built(build, count) as root:
        store = Store(root / "musicnn.db")
        start = time.perf_counter()
        index = load_index(store, MODEL)
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        Index.nearest(index, [12345 % count + 1], 20)
        query = time.perf_counter() - start
        start = time.perf_counter()
        load_index(store, MODEL)
        cached = time.perf_counter() - start
        print(f"load the {index.matrix.shape} matrix: {loaded:.2f} s; "
              f"nearest 20 after load: {query * 1000:.1f} ms; "
              f"cached load (version check): {cached * 1000:.1f} ms")  # fmt: skip

        floor, _ = timed_beet(root, "version")
        ls, out = timed_beet(root, "ls", "similar:title:track 12345")
        lines = len(out.stdout.splitlines())
        cmd, _ = timed_beet(root, "musicnn-similar", "-n", "20", "title:track 12345")
        print(f"beet ls 'similar:title:track 12345': {ls:.2f} s ({lines} items); "
              f"beet musicnn-similar: {cmd:.2f} s; beet version: {floor:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
