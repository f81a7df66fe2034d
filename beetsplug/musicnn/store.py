"""The plugin's own SQLite database: the source of truth for analyses.

It keeps what is too bulky for beets' flexible attributes (the whole tag
vector, the 200-d embedding) and what decides whether a file needs
analyzing again (size, mtime, audio fingerprint, model). Every result is
committed as soon as it is stored, so an interrupted run loses nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decode import Fingerprint

SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    item_id INTEGER PRIMARY KEY,
    path BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    digest TEXT NOT NULL,
    duration REAL,
    model TEXT NOT NULL,
    patch_hop INTEGER NOT NULL,
    patches INTEGER NOT NULL,
    seconds REAL NOT NULL,
    tags BLOB NOT NULL,
    embedding BLOB NOT NULL,
    analyzed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS written_moods (
    item_id INTEGER PRIMARY KEY,
    mood TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_model ON analyses (model);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters VALUES ('embeddings', 0);
CREATE TRIGGER IF NOT EXISTS embeddings_added AFTER INSERT ON analyses
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'embeddings'; END;
CREATE TRIGGER IF NOT EXISTS embeddings_removed AFTER DELETE ON analyses
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'embeddings'; END;
CREATE TRIGGER IF NOT EXISTS embeddings_changed AFTER UPDATE OF embedding, model ON analyses
BEGIN UPDATE counters SET value = value + 1 WHERE name = 'embeddings'; END;
CREATE TABLE IF NOT EXISTS failures (
    item_id INTEGER PRIMARY KEY,
    path BLOB NOT NULL,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Stamp:
    """What is checked before anything is decoded: cheap file facts and the model."""

    size: int
    mtime: float
    fingerprint: Fingerprint
    model: str
    patch_hop: int


@dataclass(frozen=True)
class Analysis:
    item_id: int
    model: str
    tags: np.ndarray
    embedding: np.ndarray
    analyzed_at: float


class Store:
    def __init__(self, path: Path | str):
        self.path = path
        # Used by one thread at a time, but not always the one that opened it
        # (import analysis stores from a background thread).
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def stamps(self) -> dict[int, Stamp]:
        """Every item's stamp, read in one query (no vectors)."""
        rows = self._db.execute(
            "SELECT item_id, size, mtime, digest, duration, model, patch_hop FROM analyses"
        )
        return {
            row[0]: Stamp(row[1], row[2], Fingerprint(row[3], row[4]), row[5], row[6])
            for row in rows
        }

    def analyses(self, model: str, ids: Iterable[int] | None = None) -> list[Analysis]:
        """The stored results of ``model`` (for ``ids`` only, if given)."""
        query = "SELECT item_id, model, tags, embedding, analyzed_at FROM analyses WHERE model = ?"
        rows = self._db.execute(query, (model,)).fetchall()
        wanted = None if ids is None else set(ids)
        return [
            Analysis(
                r[0], r[1], np.frombuffer(r[2], np.float32), np.frombuffer(r[3], np.float32), r[4]
            )
            for r in rows
            if wanted is None or r[0] in wanted
        ]

    def model_ids(self, prefix: str) -> list[str]:
        """Models whose names start with ``prefix``, most used first."""
        rows = self._db.execute(
            "SELECT model FROM analyses WHERE model LIKE ? GROUP BY model ORDER BY count(*) DESC",
            (prefix.replace("%", "") + "%",),
        )
        return [r[0] for r in rows]

    def embeddings(self, model: str) -> tuple[np.ndarray, np.ndarray]:
        """All item ids and their embeddings for ``model``, as one matrix."""
        rows = self._db.execute(
            "SELECT item_id, embedding FROM analyses WHERE model = ? ORDER BY item_id", (model,)
        ).fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        if not rows:
            return ids, np.empty((0, 0), np.float32)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), np.float32)
        return ids, matrix.reshape(len(rows), -1)

    def version(self) -> int:
        """A counter that triggers raise whenever any embedding is added, changed or removed."""
        row = self._db.execute("SELECT value FROM counters WHERE name = 'embeddings'").fetchone()
        return int(row[0])

    def save(
        self,
        item_id: int,
        path: bytes,
        size: int,
        mtime: float,
        fingerprint: Fingerprint,
        model: str,
        patch_hop: int,
        patches: int,
        seconds: float,
        tags: np.ndarray,
        embedding: np.ndarray,
    ) -> float:
        """Store one result and commit it; return its timestamp."""
        now = time.time()
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO analyses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    item_id, path, size, mtime, fingerprint.digest, fingerprint.duration,
                    model, patch_hop, patches, seconds,
                    tags.astype(np.float32).tobytes(), embedding.astype(np.float32).tobytes(), now,
                ),
            )  # fmt: skip
            self._db.execute("DELETE FROM failures WHERE item_id = ?", (item_id,))
        return now

    def touch(self, item_id: int, path: bytes, size: int, mtime: float) -> None:
        """The file changed on disk but not its audio: remember its new facts."""
        with self._db:
            self._db.execute(
                "UPDATE analyses SET path = ?, size = ?, mtime = ? WHERE item_id = ?",
                (path, size, mtime, item_id),
            )

    def fail(self, item_id: int, path: bytes, error: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?,?,?,?)",
                (item_id, path, error, time.time()),
            )

    def failures(self) -> dict[int, tuple[bytes, str, float]]:
        rows = self._db.execute("SELECT item_id, path, error, failed_at FROM failures")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def written_moods(self) -> dict[int, str]:
        """The mood tag the plugin last wrote into each file."""
        return dict(self._db.execute("SELECT item_id, mood FROM written_moods"))

    def set_written_mood(self, item_id: int, mood: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO written_moods VALUES (?, ?)", (item_id, mood))

    def remove(self, item_ids: Iterable[int]) -> None:
        ids = [(i,) for i in item_ids]
        with self._db:
            for table in ("analyses", "failures", "written_moods"):
                self._db.executemany(f"DELETE FROM {table} WHERE item_id = ?", ids)
