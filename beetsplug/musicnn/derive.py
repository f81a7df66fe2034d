"""Deriving the library's fields from the plugin database.

The plugin database is the source of truth; ``mood``, the mood scores,
``musicnn_genre`` and ``musicnn_tags`` of items and albums are derived
from it. Mood scores are ranks within the whole analyzed library, so one
new track can move everyone's score a little: every run ends by deriving
again. Current values are read with one SQL query per table, and only the
items and albums whose fields differ are loaded and stored, so a run that
changes nothing stays fast on a large library.

A track that is silent as a whole (its level under ``silence_level``)
says nothing about mood or genre: it gets none of those fields, is left
out of the ranks and of ``similar``, and is counted apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from beets.library import Album

from .moods import Deriver, percentile_ranks

if TYPE_CHECKING:
    from beets.library import LibModel, Library

    from .config import Settings
    from .provision import ModelInfo
    from .store import Analysis, Store

WRITE_BATCH = 200  # library rows written per transaction


@dataclass(frozen=True)
class Derived:
    """What one derivation did, for the run's summary."""

    changed: int = 0  # items whose fields were (re)written
    silent: int = 0  # analyzed items silent as a whole: no labels


class LibraryFields:
    """The fields of one library, derived from one model's stored analyses."""

    def __init__(
        self,
        lib: Library,
        store: Store,
        model_info: ModelInfo,
        model_id: str,
        settings: Settings,
    ):
        self.lib = lib
        self.store = store
        self.model_id = model_id
        self.settings = settings
        self.deriver = Deriver(model_info, settings)

    @property
    def album_fields(self) -> list[str]:
        return ["mood", "musicnn_genre", *(mood.field for mood in self.deriver.moods)]

    @property
    def label_fields(self) -> list[str]:
        """The fields a silent track must not have: it says nothing about them."""
        return [*self.album_fields, "musicnn_tags"]

    def silent(self, analysis: Analysis) -> bool:
        return analysis.level is not None and analysis.level < self.settings.silence_level

    def derive(self) -> Derived:
        """Write the derived fields of analyzed items and their albums where they changed."""
        albums_of, current = self._library_fields("items")
        _, current_albums = self._library_fields("albums")
        stored = [a for a in self.store.analyses(self.model_id) if a.item_id in albums_of]
        silent = [a for a in stored if self.silent(a)]
        self.store.mark_silent(self.model_id, {a.item_id for a in silent})
        audible = [a for a in stored if not self.silent(a)]

        wanted: dict[int, dict[str, object]] = {}
        for analysis in silent:
            fields = dict.fromkeys(self.label_fields) | _provenance(analysis)
            if not _same(current.get(analysis.item_id, {}), fields):
                wanted[analysis.item_id] = fields
        tags = np.stack([a.tags for a in audible]) if audible else np.empty((0, 0))
        scores = percentile_ranks(self.deriver.raw_moods(tags)) if audible else tags
        for analysis, vector, row in zip(audible, tags, scores, strict=True):
            fields = self.deriver.fields(vector, row) | _provenance(analysis)
            if not _same(current.get(analysis.item_id, {}), fields):
                wanted[analysis.item_id] = fields

        members: dict[int, list[int]] = {}
        for i, analysis in enumerate(audible):
            if (album := albums_of[analysis.item_id]) is not None:
                members.setdefault(album, []).append(i)
        wanted_albums: dict[int, dict[str, object]] = {}
        for album in {albums_of[a.item_id] for a in stored} - {None}:
            if rows := members.get(album):
                fields = self.deriver.fields(tags[rows].mean(0), scores[rows].mean(0))
                fields = {k: fields[k] for k in self.album_fields}
            else:  # every analyzed track of it is silent
                fields = dict.fromkeys(self.album_fields)
            if not _same(current_albums.get(album, {}), fields):
                wanted_albums[album] = fields

        self._drop_stale_moods(wanted, wanted_albums)
        items = _load(self.lib.items, self.lib.get_item, wanted, len(albums_of))
        albums = _load(self.lib.albums, self.lib.get_album, wanted_albums, len(members))
        self._store_in_batches(items, wanted)
        self._store_in_batches(albums, wanted_albums)
        return Derived(changed=len(wanted), silent=len(silent))

    def _drop_stale_moods(
        self, wanted: dict[int, dict[str, object]], wanted_albums: dict[int, dict[str, object]]
    ) -> None:
        """Add the removal of mood fields no longer configured (a mood off, another model)."""
        current = {mood.field for mood in self.deriver.moods}
        stale = sorted(self.store.mood_fields() - current)
        for table, changes in (("item_attributes", wanted), ("album_attributes", wanted_albums)):
            if not stale:
                break
            marks = ",".join("?" * len(stale))
            with self.lib.transaction() as tx:
                rows = tx.query(f"SELECT entity_id, key FROM {table} WHERE key IN ({marks})", stale)
            for entity, key in rows:
                changes.setdefault(entity, {})[key] = None
        if stale or self.store.mood_fields() != current:
            self.store.set_mood_fields(current)

    def moods(self, ids: set[int]) -> dict[int, str]:
        """The ``mood`` field of each analyzed item in ``ids``, as the library holds it now."""
        _, current = self._library_fields("items")
        return {i: fields.get("mood", "") for i, fields in current.items() if i in ids}

    def _store_in_batches(self, models: Iterator[M], fields: dict[int, dict[str, object]]) -> None:
        """Short transactions, so `beet modify` running meanwhile never waits long."""
        while batch := list(itertools.islice(models, WRITE_BATCH)):
            with self.lib.transaction():
                for model in batch:
                    for key, value in fields[model.id].items():
                        if value is not None:
                            model[key] = value
                        elif key in model:
                            del model[key]
                    if isinstance(model, Album):
                        model.store(inherit=False)  # an album's mood is not its tracks'
                    else:
                        model.store()

    def _library_fields(
        self, table: str
    ) -> tuple[dict[int, int | None], dict[int, dict[str, str]]]:
        """Each entity's album id (items) and our fields' stored values, straight from SQL."""
        keys = ["musicnn_tags", "musicnn_model", "musicnn_analyzed", *self.album_fields]
        flex = "item_attributes" if table == "items" else "album_attributes"
        album = "album_id" if table == "items" else "NULL"
        current: dict[int, dict[str, str]] = {}
        with self.lib.transaction() as tx:
            ids = {row[0]: row[1] for row in tx.query(f"SELECT id, {album} FROM {table}")}
            marks = ",".join("?" * len(keys))
            rows = tx.query(
                f"SELECT entity_id, key, value FROM {flex} WHERE key IN ({marks})", keys
            )
        for entity, key, value in rows:
            current.setdefault(entity, {})[key] = value
        return ids, current


def _provenance(analysis: Analysis) -> dict[str, object]:
    # whole seconds: a DATE field does not round-trip every digit
    return {
        "musicnn_model": analysis.model_id,
        "musicnn_analyzed": float(round(analysis.analyzed_at)),
    }


M = TypeVar("M", bound="LibModel")


def _load(
    load_all: Callable[[], Iterable[M]],
    load_one: Callable[[int], M | None],
    wanted: dict[int, dict[str, object]],
    total: int,
) -> Iterator[M]:
    """The models whose ids are in ``wanted``: one query when many, else one by one."""
    if len(wanted) > max(100, total // 10):
        yield from (model for model in load_all() if model.id in wanted)
        return
    for model_id in wanted:
        if (model := load_one(model_id)) is not None:
            yield model


def _same(stored: dict[str, str], fields: dict[str, object]) -> bool:
    """Whether the library already holds these field values (None: absent), as SQL gave them."""
    for key, value in fields.items():
        if value is None:
            if key in stored:
                return False
        elif key not in stored:
            return False
        elif isinstance(value, float):
            try:
                if abs(float(stored[key]) - value) > 1e-6:
                    return False
            except ValueError:
                return False
        elif str(stored[key]) != value:
            return False
    return True
