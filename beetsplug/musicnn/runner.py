"""One analysis run against a beets library: plan, analyze, store, derive.

It decides which items need the model (cheap file facts first, the audio
fingerprint only when those changed), feeds the analyzer, stores every
outcome from this one thread as it arrives, and finally writes the
derived fields into the library from the plugin database.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import numpy as np
from beets.library import Album

from .analyzer import Analyzer, Failure, Idle, Job, Outcome, Result, Unchanged
from .inference import shared_model
from .moods import Deriver, Mood, percentile_ranks
from .progress import Progress
from .provision import Graph, ModelInfo, provide
from .store import Stamp, Store

if TYPE_CHECKING:
    from beets.library import Item, LibModel, Library


class Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def debug(self, msg: str, *args: object) -> None: ...


WRITE_BATCH = 200  # library rows written per transaction


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
    backend: str
    model_threads: int  # TensorFlow intra-op threads; 0: its default, one per core
    timeout: float
    min_free_memory: int
    ffmpeg: tuple[str, ...]
    moods: tuple[Mood, ...]
    tag_threshold: float
    max_tags: int


@dataclass
class Summary:
    """What a run did, for its closing line."""

    analyzed: int = 0
    unchanged: int = 0  # file changed (retagged, copied), audio the same
    skipped: int = 0  # file as it was: not opened
    failed: int = 0
    failed_before: int = 0  # left alone: failed in an earlier run
    derived: int = 0  # items whose fields were (re)written
    written: int = 0  # files whose mood tag was written
    kept: int = 0  # files that keep a mood tag the plugin did not set
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.analyzed + self.unchanged + self.failed

    def __str__(self) -> str:
        parts = [
            f"analyzed {self.analyzed}",
            f"up to date {self.skipped + self.unchanged}",
            f"failed {self.failed}",
            f"fields updated on {self.derived}",
        ]
        if self.unchanged:
            parts[1] += f" ({self.unchanged} re-checked: file changed, audio the same)"
        if self.failed_before:
            parts[2] += f" (+{self.failed_before} failed before: --retry-failed)"
        if self.written or self.kept:
            parts.append(f"mood tags written {self.written}, kept {self.kept}")
        line = ", ".join(parts)
        if self.analyzed and self.wall_seconds:
            rate = self.audio_seconds / self.wall_seconds
            line += (
                f"; {self.audio_seconds:.0f} s of audio in {self.wall_seconds:.1f} s "
                f"({rate:.1f} s of audio per second)"
            )
        return line


class Interrupted(Exception):
    """Ctrl-C during a run: what finished is stored; ``summary`` says how far it got."""

    def __init__(self, summary: Summary, planned: int):
        super().__init__(f"interrupted after {summary.done} of {planned} files")
        self.summary = summary


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

    @property
    def lock_path(self) -> Path:
        return Path(f"{self.settings.database}.lock")

    def close(self) -> None:
        self.store.close()

    def plan(
        self, items: Iterable[Item], force: bool = False, retry_failed: bool = False
    ) -> tuple[list[tuple[Job, Item]], Planner]:
        """Jobs for the items that may need the model, and the planner's counts."""
        planner = self.planner(force, retry_failed)
        jobs = [(job, item) for item in items if (job := planner(item))]
        return jobs, planner

    def planner(self, force: bool = False, retry_failed: bool = False) -> Planner:
        return Planner(
            self.store.stamps(),
            self.store.failures(),
            self.graph.model_id,
            self.settings.patch_hop,
            force,
            retry_failed,
        )

    def run(
        self,
        items: list[Item],
        force: bool = False,
        retry_failed: bool = False,
        progress: bool = True,
    ) -> Summary:
        """Analyze what needs it, store every outcome, then refresh the library's fields.

        Interrupted (Ctrl-C), it still derives the fields of what finished,
        then raises Interrupted with the summary so far.
        """
        started = time.monotonic()
        planned, planner = self.plan(items, force, retry_failed)
        summary = Summary(skipped=planner.skipped, failed_before=planner.failed_before)
        interrupted = False
        try:
            if planned:
                self.analyze((job for job, _ in planned), summary, len(planned) if progress else 0)
        except KeyboardInterrupt:
            interrupted = True
        summary.derived = self.refresh()
        summary.wall_seconds = time.monotonic() - started
        if interrupted:
            raise Interrupted(summary, len(planned))
        return summary

    def analyze(self, jobs: Iterable[Job | Idle], summary: Summary, progress: int = 0) -> None:
        """Analyze ``jobs`` and store each outcome from this thread as it arrives.

        ``progress`` is the expected job count for the progress bar (0: no bar).
        """
        s = self.settings
        graph, info = self.graph, self.info
        analyzer = Analyzer(
            lambda: shared_model(graph.path, info, s.backend, s.model_threads),
            s.threads,
            s.patch_hop,
            s.batch_size,
            s.ffmpeg,
            s.timeout,
            s.min_free_memory,
            lambda msg: self.log.warning("{}", msg),
        )
        stats: dict[int, os.stat_result | None] = {}

        def stat_first(source: Iterable[Job | Idle]) -> Iterator[Job | Idle]:
            # The file facts stored with a result are those from before it was read.
            for job in source:
                if isinstance(job, Job):
                    try:
                        stats[job.key] = os.stat(job.path)
                    except OSError:
                        stats[job.key] = None
                yield job

        bar = Progress(progress)

        def store(outcome: Outcome) -> None:
            st = stats.pop(outcome.key, None)
            if isinstance(outcome, Result) and st is not None:
                self.store.save(
                    outcome.key, outcome.path, st.st_size, st.st_mtime, outcome.fingerprint,
                    graph.model_id, s.patch_hop, outcome.patches, outcome.seconds,
                    outcome.tags, outcome.embedding,
                )  # fmt: skip
                summary.analyzed += 1
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
            bar.advance()

        try:
            analyzer.run(stat_first(jobs), store)
        finally:
            bar.close()

    def refresh(self) -> int:
        """Write the derived fields of analyzed items and their albums; return items changed.

        Mood scores are ranks within the whole analyzed library, so one new
        track can move everyone's score a little. Current values are read
        with one SQL query per table and only the items and albums whose
        fields differ are loaded and stored, so a run that changes nothing
        stays fast on a large library.
        """
        albums_of, current = self._library_fields("items")
        _, current_albums = self._library_fields("albums")
        analyses = [a for a in self.store.analyses(self.graph.model_id) if a.item_id in albums_of]
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

        members: dict[int, list[int]] = {}
        for i, analysis in enumerate(analyses):
            if (album := albums_of[analysis.item_id]) is not None:
                members.setdefault(album, []).append(i)
        wanted_albums: dict[int, dict[str, object]] = {}
        for album, rows in members.items():
            fields = self.deriver.fields(tags[rows].mean(0), scores[rows].mean(0))
            fields = {k: fields[k] for k in self.album_fields}
            if not _same(current_albums.get(album, {}), fields):
                wanted_albums[album] = fields

        items = _load(self.lib.items, self.lib.get_item, wanted, len(albums_of))
        albums = _load(self.lib.albums, self.lib.get_album, wanted_albums, len(members))
        self._store_in_batches(items, wanted)
        self._store_in_batches(albums, wanted_albums)
        return len(wanted)

    def _store_in_batches(self, models: Iterator[M], fields: dict[int, dict[str, object]]) -> None:
        """Short transactions, so `beet modify` running meanwhile never waits long."""
        while batch := list(itertools.islice(models, WRITE_BATCH)):
            with self.lib.transaction():
                for model in batch:
                    model.update(fields[model.id])
                    if isinstance(model, Album):
                        model.store(inherit=False)  # an album's mood is not its tracks'
                    else:
                        model.store()

    def moods(self, ids: set[int]) -> dict[int, str]:
        """The ``mood`` field of each analyzed item in ``ids``, as the library holds it now."""
        _, current = self._library_fields("items")
        return {i: fields.get("mood", "") for i, fields in current.items() if i in ids}

    @property
    def album_fields(self) -> list[str]:
        return ["mood", "musicnn_genre", *(mood.field for mood in self.deriver.moods)]

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


class Planner:
    """Decides, item by item, whether the model is needed.

    An item whose size and mtime are what was stored is skipped without
    opening it; one whose file changed gets a job that first compares the
    audio fingerprint and stops early when the audio is the same. Items
    that failed before are left alone unless retrying (or forcing).
    """

    def __init__(
        self,
        stamps: dict[int, Stamp],
        failed: Collection[int],
        model: str,
        patch_hop: int,
        force: bool = False,
        retry_failed: bool = False,
    ):
        self.stamps = stamps
        self.failed = failed
        self.model = model
        self.patch_hop = patch_hop
        self.force = force
        self.retry_failed = retry_failed
        self.skipped = 0
        self.failed_before = 0

    def __call__(self, item: Item) -> Job | None:
        path = item.path
        if item.id in self.failed and not (self.force or self.retry_failed):
            self.failed_before += 1
            return None
        stamp = self.stamps.get(item.id)
        current = stamp is not None and (stamp.model, stamp.patch_hop) == (
            self.model,
            self.patch_hop,
        )
        if self.force or stamp is None or not current:
            return Job(item.id, path)
        try:
            st = os.stat(path)
        except OSError:
            return Job(item.id, path)
        if st.st_size == stamp.size and st.st_mtime == stamp.mtime:
            self.skipped += 1
            return None
        return Job(item.id, path, stamp.fingerprint)


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
