"""One analysis run against a beets library: plan, analyse, store, derive.

It decides which items need the model (cheap file facts first, the audio
fingerprint only when those changed), feeds the analyzer, stores every
outcome from this one thread as it arrives, and finally writes the
derived fields into the library from the plugin database.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .analyzer import Analyzer, Failure, Job, Outcome, Result, Unchanged
from .inference import shared_model
from .moods import Deriver, Mood, percentile_ranks
from .progress import Progress
from .provision import Graph, ModelInfo, provide
from .store import Store

if TYPE_CHECKING:
    from beets.library import Item, Library


class Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def debug(self, msg: str, *args: object) -> None: ...


@dataclass(frozen=True)
class Settings:
    """Everything a run needs from the configuration."""

    model: str
    graph: Path | None
    model_dir: Path
    database: Path
    threads: int
    patch_hop: int
    batch_size: int
    timeout: float
    ffmpeg: tuple[str, ...]
    moods: tuple[Mood, ...]
    tag_threshold: float
    max_tags: int


@dataclass
class Summary:
    analysed: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[tuple[bytes, str]] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.audio_seconds / self.wall_seconds if self.wall_seconds else 0.0
        return (
            f"analysed {self.analysed}, unchanged {self.unchanged}, skipped {self.skipped}, "
            f"failed {self.failed}; {self.audio_seconds:.0f} s of audio in "
            f"{self.wall_seconds:.1f} s ({rate:.1f} s of audio per second)"
        )


class Runner:
    def __init__(self, lib: Library, settings: Settings, log: Log):
        self.lib = lib
        self.settings = settings
        self.log = log
        self.info = ModelInfo.load(settings.model)
        self.deriver = Deriver(
            self.info.classes,
            self.info.groups["genres"],
            settings.moods,
            settings.tag_threshold,
            settings.max_tags,
        )
        self.store = Store(settings.database)
        self._graph: Graph | None = None

    @property
    def graph(self) -> Graph:
        """The verified model graph (frozen on first use, cached after)."""
        if self._graph is None:
            self._graph = provide(
                self.info, self.settings.model_dir, self.settings.graph, self.log.info
            )
        return self._graph

    def close(self) -> None:
        self.store.close()

    def plan(self, items: list[Item], force: bool) -> tuple[list[tuple[Job, Item]], int]:
        """Jobs for the items that may need the model, and how many were skipped.

        An item whose size and mtime are what was stored is skipped without
        opening it; one whose file changed gets a job that first compares
        the audio fingerprint and stops early when the audio is the same.
        """
        stamps = self.store.stamps()
        model, hop = self.graph.model_id, self.settings.patch_hop
        jobs, skipped = [], 0
        for item in items:
            path = item.path
            stamp = stamps.get(item.id)
            if force or stamp is None or stamp.model != model or stamp.patch_hop != hop:
                jobs.append((Job(item.id, path), item))
                continue
            try:
                st = os.stat(path)
            except OSError:
                jobs.append((Job(item.id, path), item))
                continue
            if st.st_size == stamp.size and st.st_mtime == stamp.mtime:
                skipped += 1
            else:
                jobs.append((Job(item.id, path, stamp.fingerprint), item))
        return jobs, skipped

    def run(self, items: list[Item], force: bool = False, progress: bool = True) -> Summary:
        """Analyse what needs it, store every outcome, then refresh the library's fields."""
        started = time.monotonic()
        planned, skipped = self.plan(items, force)
        summary = Summary(skipped=skipped)
        if planned:
            self._analyse(planned, summary, progress)
        self.refresh()
        summary.wall_seconds = time.monotonic() - started
        return summary

    def _analyse(self, planned: list[tuple[Job, Item]], summary: Summary, progress: bool) -> None:
        s = self.settings
        graph, info = self.graph, self.info
        analyzer = Analyzer(
            lambda: shared_model(graph.path, info),
            s.threads,
            s.patch_hop,
            s.batch_size,
            s.ffmpeg,
            s.timeout,
        )
        stats: dict[int, os.stat_result | None] = {}
        for job, _item in planned:
            try:
                stats[job.key] = os.stat(job.path)
            except OSError:
                stats[job.key] = None
        bar = Progress(len(planned) if progress else 0)

        def store(outcome: Outcome) -> None:
            st = stats[outcome.key]
            if isinstance(outcome, Result) and st is not None:
                self.store.save(
                    outcome.key, outcome.path, st.st_size, st.st_mtime, outcome.fingerprint,
                    self.graph.model_id, s.patch_hop, outcome.patches, outcome.seconds,
                    outcome.tags, outcome.embedding,
                )  # fmt: skip
                summary.analysed += 1
                summary.audio_seconds += outcome.seconds
                bar.advance(outcome.seconds)
                return
            if isinstance(outcome, Unchanged) and st is not None:
                self.store.touch(outcome.key, outcome.path, st.st_size, st.st_mtime)
                summary.unchanged += 1
            else:
                error = outcome.error if isinstance(outcome, Failure) else "file vanished"
                self.log.warning("{}: {}", os.fsdecode(outcome.path), error)
                self.store.fail(outcome.key, outcome.path, error)
                summary.failed += 1
                summary.failures.append((outcome.path, error))
            bar.advance()

        try:
            analyzer.run((job for job, _ in planned), store)
        finally:
            bar.close()

    def refresh(self) -> int:
        """Write the derived fields of every analysed item; return how many changed.

        Mood scores are ranks within the whole analysed library, so one new
        track can move everyone's score a little. The current values are
        read with one SQL query and only items whose fields differ are
        loaded and stored, so a run that changes nothing stays fast on a
        large library.
        """
        ids, current = self._library_fields()
        analyses = [a for a in self.store.analyses(self.graph.model_id) if a.item_id in ids]
        if not analyses:
            return 0
        tags = np.stack([a.tags for a in analyses])
        scores = percentile_ranks(self.deriver.raw_moods(tags))
        wanted: dict[int, dict[str, object]] = {}
        for analysis, vector, row in zip(analyses, tags, scores, strict=True):
            fields = self.deriver.fields(vector, row)
            fields["musicnn_model"] = analysis.model
            # whole seconds: a DATE field does not round-trip every digit
            fields["musicnn_analyzed"] = float(round(analysis.analyzed_at))
            if not _same(current.get(analysis.item_id, {}), fields):
                wanted[analysis.item_id] = fields
        with self.lib.transaction():
            for item_id, fields in wanted.items():
                item = self.lib.get_item(item_id)
                if item is not None:
                    item.update(fields)
                    item.store()
        return len(wanted)

    def _library_fields(self) -> tuple[set[int], dict[int, dict[str, str]]]:
        """Every item id, and our fields' stored values, straight from SQL."""
        keys = ["mood", "musicnn_genre", "musicnn_tags", "musicnn_model", "musicnn_analyzed"]
        keys += [mood.field for mood in self.deriver.moods]
        current: dict[int, dict[str, str]] = {}
        with self.lib.transaction() as tx:
            ids = {row[0] for row in tx.query("SELECT id FROM items")}
            marks = ",".join("?" * len(keys))
            rows = tx.query(
                f"SELECT entity_id, key, value FROM item_attributes WHERE key IN ({marks})", keys
            )
        for entity, key, value in rows:
            current.setdefault(entity, {})[key] = value
        return ids, current


def _same(stored: dict[str, str], fields: dict[str, object]) -> bool:
    """Whether the library already holds these field values (as SQL gave them)."""
    for key, value in fields.items():
        if key not in stored:
            return False
        if isinstance(value, float):
            try:
                if abs(float(stored[key]) - value) > 1e-6:
                    return False
            except ValueError:
                return False
        elif str(stored[key]) != value:
            return False
    return True
