"""Nearest neighbours on MusiCNN embeddings: "more like this".

Similarity is the cosine between a track's mean 200-d embedding and the
seeds' centroid. Chosen by measurement on families of test audio
(docs/discovery.md): plain cosine ranked same-family tracks best, ahead
of cosine after centring or standardising the embeddings, and far ahead
of comparing the 50 tag activations. The whole library is one float32
matrix of unit rows, loaded once per process and reloaded only when the
plugin database changes.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .store import Store


@dataclass(frozen=True)
class Index:
    ids: np.ndarray  # (n,) item ids
    matrix: np.ndarray  # (n, d) unit rows
    _rows: dict[int, int]

    @classmethod
    def build(cls, ids: np.ndarray, embeddings: np.ndarray) -> Index:
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        return cls.of_unit_rows(ids, embeddings / np.where(norms > 0, norms, 1.0))

    @classmethod
    def of_unit_rows(cls, ids: np.ndarray, unit: np.ndarray) -> Index:
        return cls(
            ids,
            unit.astype(np.float32, copy=False),
            dict(zip(ids.tolist(), range(len(ids)), strict=True)),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._rows

    def nearest(
        self, seeds: Iterable[int], count: int, allowed: Collection[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``count`` items most like the seeds' centroid, best first, seeds excluded.

        Seeds not in the index are ignored; ``allowed`` restricts the answer.
        """
        rows = [self._rows[s] for s in seeds if s in self._rows]
        if not rows or count <= 0:
            return []
        centroid = self.matrix[rows].mean(0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        scores = self.matrix @ centroid
        scores[rows] = -np.inf
        if allowed is not None:
            mask = np.isin(self.ids, np.fromiter(allowed, np.int64, len(allowed)))
            scores[~mask] = -np.inf
        count = min(count, int(np.isfinite(scores).sum()))
        if count == 0:
            return []
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[r]), float(scores[r])) for r in top]


_cache: dict[tuple[str, str], tuple[int, Index]] = {}
_lock = threading.Lock()


def load_index(store: Store, model_id: str) -> Index:
    """The library's index for ``model_id``, cached until the database changes.

    Cached in this process, and on disk beside the database (one .npz per
    model), since reading 100,000 embeddings from SQLite takes far longer
    than reading one array file.
    """
    key = (str(store.path), model_id)
    version = store.version()
    with _lock:
        cached = _cache.get(key)
        if cached is None or cached[0] != version:
            cached = (version, _from_disk(store, model_id, version))
            _cache[key] = cached
        return cached[1]


def _from_disk(store: Store, model_id: str, version: int) -> Index:
    path = Path(f"{store.path}.{model_id}.npz")
    try:
        with np.load(path) as saved:
            if int(saved["version"]) == version:
                return Index.of_unit_rows(saved["ids"], saved["unit"])
    except (OSError, ValueError, KeyError):
        pass
    index = Index.build(*store.embeddings(model_id))
    try:
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, version=version, ids=index.ids, unit=index.matrix)
        tmp.replace(path)
    except OSError:
        pass  # a read-only place only costs the speed-up
    return index
