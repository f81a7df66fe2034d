"""The similarity index: ranking, restriction, and following the database."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beetsplug.musicnn.analyzer import Result
from beetsplug.musicnn.decode import Fingerprint
from beetsplug.musicnn.similarity import Index, load_index
from beetsplug.musicnn.store import Stamp, Store


def test_index_ranks_restricts_and_excludes_seeds() -> None:
    embeddings = np.array([[1, 0, 0], [0.9, 0.1, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    index = Index.build(np.array([10, 11, 12, 13, 14]), embeddings.astype(np.float32))
    ranked = index.nearest([10], 3)
    assert [i for i, _ in ranked] == [11, 12, 13]
    assert ranked[0][1] > ranked[1][1] > ranked[2][1]
    assert [i for i, _ in index.nearest([10], 5, allowed={13, 14})] == [13, 14]
    assert [i for i, _ in index.nearest([10, 13], 1)] == [12]  # the centroid of two seeds
    assert index.nearest([99], 3) == []  # an unknown seed
    assert len(index.nearest([10], 50)) == 4


def test_index_follows_the_database(tmp_path: Path) -> None:
    """Cached in memory and on disk, reloaded as soon as an embedding changes."""
    store = Store(tmp_path / "musicnn.db")
    rng = np.random.default_rng(0)

    def save(item_id: int, embedding: np.ndarray) -> None:
        fingerprint = Fingerprint("0" * 20, 1.0)
        result = Result(item_id, b"/x", np.zeros(50), embedding, 1, 1.0, fingerprint, -20.0)
        store.save(result, Stamp(1, 1.0, fingerprint, "m", 187), "tensorflow f32")

    for i in range(1, 4):
        save(i, rng.normal(size=200))
    first = load_index(store, "m")
    assert len(first) == 3 and load_index(store, "m") is first  # cached
    assert Path(f"{store.path}.m.npz").is_file()
    save(4, rng.normal(size=200))
    assert 4 in load_index(store, "m")
    store.remove([2])
    assert 2 not in load_index(store, "m")
    store.touch(1, b"/moved", 2, 2.0)  # file facts only: same index
    assert load_index(store, "m") is load_index(store, "m")
    store.mark_silent("m", {3})  # the derivation found it silent: no neighbour
    assert 3 not in load_index(store, "m") and 1 in load_index(store, "m")
    store.mark_silent("m", set())
    assert 3 in load_index(store, "m")
