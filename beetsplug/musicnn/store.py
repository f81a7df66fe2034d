"""The plugin's own SQLite database: the source of truth for analyses.

It keeps what is too bulky for beets' flexible attributes (the whole tag
vector, the 200-d embedding) and what decides whether a file needs
analyzing again (size, mtime, audio fingerprint, model). Every result is
committed as soon as it is stored, so an interrupted run loses nothing.
Any SQLite error becomes a ``StoreError`` that says the fix: a damaged or
full database stops the run and is never a file's failure.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

import numpy as np

from .decode import Fingerprint
from .errors import StoreError

if TYPE_CHECKING:
    from .analyzer import Result

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
# Schema changes since the first release, by PRAGMA user_version.
MIGRATIONS = [
    # Each track's loudness (dBFS; NULL: analyzed before it was measured), and
    # whether the last derivation found it silent (left out of `similar`).
    """
    ALTER TABLE analyses ADD COLUMN level REAL;
    ALTER TABLE analyses ADD COLUMN silent INTEGER NOT NULL DEFAULT 0;
    DROP TRIGGER embeddings_changed;
    CREATE TRIGGER embeddings_changed AFTER UPDATE OF embedding, model, silent ON analyses
    BEGIN UPDATE counters SET value = value + 1 WHERE name = 'embeddings'; END;
    """,
    # What ran the model ("openvino bf16"): bf16 and f32 results mix in one library.
    "ALTER TABLE analyses ADD COLUMN engine TEXT;",
    # The mood score fields the derivation writes, so a mood switched off (or a
    # model without it) has its field removed; earlier versions wrote these four.
    """
    CREATE TABLE mood_fields (name TEXT PRIMARY KEY);
    INSERT INTO mood_fields VALUES
        ('musicnn_happy'), ('musicnn_sad'), ('musicnn_relaxed'), ('musicnn_party');
    """,
]
COLUMNS = (
    "item_id, path, size, mtime, digest, duration, model, patch_hop, patches, seconds, "
    "tags, embedding, analyzed_at, level, engine"
)

P = ParamSpec("P")
R = TypeVar("R")


def _explain(path: Path | str, exc: sqlite3.Error) -> str:
    """One line for an SQLite error: the cause and the fix."""
    text = str(exc)
    if "full" in text:
        return (
            f"no space left for the plugin database {path}: free some space on that disk "
            "(or move it with the musicnn.database option); finished work is kept"
        )
    if "not a database" in text or "malformed" in text or "no such" in text:
        return (
            f"the plugin database {path} is damaged ({text}): move it aside "
            f"(mv '{path}' '{path}.damaged') and run `beet musicnn` to analyze again"
        )
    if "unable to open" in text:
        return (
            f"cannot open the plugin database {path} ({text}): check that its folder exists "
            "and is writable, or set musicnn.database"
        )
    if "readonly" in text:
        return f"cannot write the plugin database {path} ({text}): check its permissions"
    return f"the plugin database {path} failed: {text}"


def _guarded(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(method)
    def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise StoreError(_explain(self.path, exc)) from exc

    return wrapper


@dataclass(frozen=True)
class Stamp:
    """What is checked before anything is decoded: cheap file facts and the model."""

    size: int
    mtime: float
    fingerprint: Fingerprint
    model_id: str
    patch_hop: int


@dataclass(frozen=True)
class Analysis:
    item_id: int
    model_id: str
    tags: np.ndarray
    embedding: np.ndarray
    analyzed_at: float
    level: float | None  # dBFS over the whole track; None: not measured


class Store:
    @_guarded
    def __init__(self, path: Path | str):
        self.path = path
        # Used by one thread at a time, but not always the one that opened it
        # (import analysis stores from a background thread).
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        for number, script in enumerate(MIGRATIONS[version:], version + 1):
            self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def close(self) -> None:
        self._db.close()

    @_guarded
    def stamps(self) -> dict[int, Stamp]:
        """Every item's stamp, read in one query (no vectors)."""
        rows = self._db.execute(
            "SELECT item_id, size, mtime, digest, duration, model, patch_hop FROM analyses"
        )
        return {
            row[0]: Stamp(row[1], row[2], Fingerprint(row[3], row[4]), row[5], row[6])
            for row in rows
        }

    @_guarded
    def analyses(self, model_id: str, ids: Iterable[int] | None = None) -> list[Analysis]:
        """The stored results of ``model_id`` (for ``ids`` only, if given)."""
        query = (
            "SELECT item_id, model, tags, embedding, analyzed_at, level FROM analyses "
            "WHERE model = ?"
        )
        rows = self._db.execute(query, (model_id,)).fetchall()
        wanted = None if ids is None else set(ids)
        return [
            Analysis(
                r[0],
                r[1],
                np.frombuffer(r[2], np.float32),
                np.frombuffer(r[3], np.float32),
                r[4],
                r[5],
            )
            for r in rows
            if wanted is None or r[0] in wanted
        ]

    @_guarded
    def model_ids(self, prefix: str) -> list[str]:
        """Models whose names start with ``prefix``, most used first."""
        rows = self._db.execute(
            "SELECT model FROM analyses WHERE model LIKE ? GROUP BY model ORDER BY count(*) DESC",
            (prefix.replace("%", "") + "%",),
        )
        return [r[0] for r in rows]

    @_guarded
    def embeddings(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """Item ids and embeddings of ``model_id``'s audible tracks, as one matrix."""
        rows = self._db.execute(
            "SELECT item_id, embedding FROM analyses WHERE model = ? AND NOT silent "
            "ORDER BY item_id",
            (model_id,),
        ).fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        if not rows:
            return ids, np.empty((0, 0), np.float32)
        matrix = np.frombuffer(b"".join(r[1] for r in rows), np.float32)
        return ids, matrix.reshape(len(rows), -1)

    @_guarded
    def version(self) -> int:
        """A counter that triggers raise whenever any embedding is added, changed or removed."""
        row = self._db.execute("SELECT value FROM counters WHERE name = 'embeddings'").fetchone()
        return int(row[0])

    @_guarded
    def save(self, result: Result, stamp: Stamp, engine: str) -> float:
        """Store one result with the file facts from before it was read; return its time."""
        now = time.time()
        fingerprint = stamp.fingerprint
        with self._db:
            self._db.execute(
                f"INSERT OR REPLACE INTO analyses ({COLUMNS}) VALUES ({','.join('?' * 15)})",
                (
                    result.key, result.path, stamp.size, stamp.mtime, fingerprint.digest,
                    fingerprint.duration, stamp.model_id, stamp.patch_hop, result.patches,
                    result.seconds, result.tags.astype(np.float32).tobytes(),
                    result.embedding.astype(np.float32).tobytes(), now, result.level, engine,
                ),
            )  # fmt: skip
            self._db.execute("DELETE FROM failures WHERE item_id = ?", (result.key,))
        return now

    @_guarded
    def mark_silent(self, model_id: str, silent: set[int]) -> None:
        """Record which of ``model_id``'s tracks the derivation found silent."""
        before = {r[0] for r in self._db.execute("SELECT item_id FROM analyses WHERE silent")}
        with self._db:
            for flag, ids in ((1, silent - before), (0, before - silent)):
                self._db.executemany(
                    "UPDATE analyses SET silent = ? WHERE item_id = ? AND model = ?",
                    [(flag, i, model_id) for i in ids],
                )

    @_guarded
    def mood_fields(self) -> set[str]:
        """The mood score fields the library may hold from earlier derivations."""
        return {row[0] for row in self._db.execute("SELECT name FROM mood_fields")}

    @_guarded
    def set_mood_fields(self, names: Iterable[str]) -> None:
        with self._db:
            self._db.execute("DELETE FROM mood_fields")
            self._db.executemany("INSERT INTO mood_fields VALUES (?)", [(n,) for n in names])

    @_guarded
    def touch(self, item_id: int, path: bytes, size: int, mtime: float) -> None:
        """The file changed on disk but not its audio: remember its new facts."""
        with self._db:
            self._db.execute(
                "UPDATE analyses SET path = ?, size = ?, mtime = ? WHERE item_id = ?",
                (path, size, mtime, item_id),
            )

    @_guarded
    def fail(self, item_id: int, path: bytes, error: str) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?,?,?,?)",
                (item_id, path, error, time.time()),
            )

    @_guarded
    def failures(self) -> dict[int, tuple[bytes, str, float]]:
        rows = self._db.execute("SELECT item_id, path, error, failed_at FROM failures")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    @_guarded
    def written_moods(self) -> dict[int, str]:
        """The mood tag the plugin last wrote into each file."""
        return dict(self._db.execute("SELECT item_id, mood FROM written_moods"))

    @_guarded
    def set_written_mood(self, item_id: int, mood: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO written_moods VALUES (?, ?)", (item_id, mood))

    @_guarded
    def remove(self, item_ids: Iterable[int]) -> None:
        ids = [(i,) for i in item_ids]
        with self._db:
            for table in ("analyses", "failures", "written_moods"):
                self._db.executemany(f"DELETE FROM {table} WHERE item_id = ?", ids)
