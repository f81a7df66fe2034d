"""An analysis run: plan the items, analyze them, store every outcome.

The run decides which items need the model (``Planner``), drives the
threaded ``Analyzer`` over them, and stores each outcome in the plugin
database from the caller's thread as it arrives, so nothing finished is
lost whatever happens next. Deriving the library's fields from the store
is another job (``derive.LibraryFields``).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .analyzer import Analyzer, Failure, Idle, Job, Outcome, Result, Unchanged
from .derive import Derived
from .errors import MusicnnError
from .inference import Predictor, shared_predictor
from .progress import Progress
from .store import Stamp

if TYPE_CHECKING:
    from beets.library import Item

    from .config import Settings
    from .engine import Engine
    from .provision import Graph, ModelInfo
    from .store import Store


class Log(Protocol):
    def info(self, msg: str, *args: object) -> None: ...
    def warning(self, msg: str, *args: object) -> None: ...
    def debug(self, msg: str, *args: object) -> None: ...


@dataclass
class Summary:
    """What a run did, for its closing line."""

    analyzed: int = 0
    unchanged: int = 0  # file changed (retagged, copied), audio the same
    skipped: int = 0  # file as it was: not opened
    failed: int = 0
    failed_before: int = 0  # left alone: failed in an earlier run
    derived: Derived = field(default_factory=Derived)
    written: int = 0  # files whose mood tag was written
    kept: int = 0  # files that keep a mood tag the plugin did not set
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    engine: str = ""  # what ran the model, when it ran
    derive_only: bool = False  # --remap: fields derived, nothing analyzed

    @property
    def done(self) -> int:
        return self.analyzed + self.unchanged + self.failed

    def __str__(self) -> str:
        if self.derive_only:
            return f"fields derived from the stored analyses: updated on {self.derived.changed}"
        parts = [
            f"analyzed {self.analyzed}",
            f"up to date {self.skipped + self.unchanged}",
            f"failed {self.failed}",
            f"fields updated on {self.derived.changed}",
        ]
        if self.unchanged:
            parts[1] += f" ({self.unchanged} re-checked: file changed, audio the same)"
        if self.failed_before:
            parts[2] += f" (+{self.failed_before} failed before: --retry-failed)"
        if self.derived.silent:
            parts.append(f"silent {self.derived.silent} (no mood, genre or tags)")
        if self.written or self.kept:
            parts.append(f"mood tags written {self.written}, kept {self.kept}")
        line = ", ".join(parts)
        if self.analyzed and self.wall_seconds:
            rate = self.audio_seconds / self.wall_seconds
            line += (
                f"; {self.audio_seconds:.0f} s of audio in {self.wall_seconds:.1f} s "
                f"({rate:.1f} s of audio per second)"
            )
        if self.engine:
            line += f"; {self.engine}"
        return line


class Interrupted(MusicnnError):
    """Ctrl-C during a run: what finished is stored; ``summary`` says how far it got."""

    def __init__(self, summary: Summary, planned: int):
        super().__init__(
            f"interrupted after {summary.done} of {planned} files; "
            "all finished work is kept: run again to go on"
        )
        self.summary = summary


@dataclass(frozen=True)
class Plan:
    """The items that may need the model, and how many did not."""

    jobs: list[tuple[Job, Item]]
    skipped: int  # up to date: not even opened
    failed_before: int  # left alone: failed in an earlier run


class Runner:
    """Analyzes a library's items with one model and stores every outcome."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        model_info: ModelInfo,
        graph: Graph,
        engine: Engine,
        log: Log,
    ):
        self.store = store
        self.settings = settings
        self.model_info = model_info
        self.graph = graph
        self.engine = engine
        self.log = log

    def predictor(self) -> Predictor:
        """The process's model for this run's engine, loaded on first use."""
        e, s = self.engine, self.settings
        return shared_predictor(
            self.graph.path, self.model_info, e.backend, e.precision, s.model_threads,
            s.model_dir / "openvino", e.device,
        )  # fmt: skip

    def planner(self, *, force: bool = False, retry_failed: bool = False) -> Planner:
        return Planner(
            self.store.stamps(),
            self.store.failures(),
            self.graph.model_id,
            self.settings.patch_hop,
            force=force,
            retry_failed=retry_failed,
        )

    def plan(
        self, items: Iterable[Item], *, force: bool = False, retry_failed: bool = False
    ) -> Plan:
        planner = self.planner(force=force, retry_failed=retry_failed)
        jobs = [(job, item) for item in items if (job := planner(item))]
        return Plan(jobs, planner.skipped, planner.failed_before)

    def analyze(self, jobs: Iterable[Job | Idle], summary: Summary, expected: int = 0) -> None:
        """Analyze ``jobs`` and store each outcome from this thread as it arrives.

        ``expected`` is the job count for the progress bar (0: no bar).
        """
        s, graph = self.settings, self.graph
        analyzer = Analyzer(
            self.predictor,
            threads=s.threads,
            patch_hop=s.patch_hop,
            batch_size=self.engine.batch_size,
            decoder=s.ffmpeg,
            timeout=s.timeout,
            min_free_memory=s.min_free_memory,
            notice=lambda msg: self.log.warning("{}", msg),
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

        bar = Progress(expected)

        def store(outcome: Outcome) -> None:
            st = stats.pop(outcome.key, None)
            if isinstance(outcome, Result) and st is not None:
                stamp = Stamp(
                    st.st_size, st.st_mtime, outcome.fingerprint, graph.model_id, s.patch_hop
                )
                ran = self.predictor().engine  # loaded: the result went through it
                summary.engine = f"{ran}, batch {self.engine.batch_size}"
                self.store.save(outcome, stamp, ran)
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
        model_id: str,
        patch_hop: int,
        *,
        force: bool = False,
        retry_failed: bool = False,
    ):
        self.stamps = stamps
        self.failed = failed
        self.model_id = model_id
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
        current = stamp is not None and (stamp.model_id, stamp.patch_hop) == (
            self.model_id,
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
