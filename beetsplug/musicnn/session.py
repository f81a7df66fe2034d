"""One command's work on one library: the analysis run and the field derivation.

A ``Session`` decides the engine, provides its graph (the model itself
loads when the first patch needs it) and opens the plugin database, and
hands them to the two jobs that use them: ``Runner`` (analyze and store outcomes)
and ``LibraryFields`` (derive the library's fields from the store).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .derive import LibraryFields
from .engine import choose
from .provision import ModelInfo, provide
from .runner import Interrupted, Log, Runner, Summary
from .store import Store
from .writing import write_moods

if TYPE_CHECKING:
    from beets.library import Item, Library

    from .config import Settings


class Session:
    def __init__(self, lib: Library, settings: Settings, log: Log):
        self.lib = lib
        self.settings = settings
        self.log = log
        self.model_info = ModelInfo.load(settings.model_name)
        engine = choose(
            settings.backend, settings.precision, settings.batch_size,
            lambda message: log.warning("{}", message), device=settings.device,
        )  # fmt: skip
        graph = provide(
            self.model_info, settings.model_dir, settings.graph, log.info, engine.structure
        )
        self.store = Store(settings.database)
        self.runner = Runner(self.store, settings, self.model_info, graph, engine, log)
        self.fields = LibraryFields(lib, self.store, self.model_info, graph.model_id, settings)

    @property
    def lock_path(self) -> Path:
        """One analysis at a time per plugin database (see ``lock``)."""
        return Path(f"{self.settings.database}.lock")

    def close(self) -> None:
        self.store.close()

    def analyze(
        self, items: Iterable[Item], *, force: bool = False, retry_failed: bool = False
    ) -> Summary:
        """Analyze what needs it, then derive the library's fields.

        Interrupted (Ctrl-C), it still derives the fields of what finished,
        then raises Interrupted with the summary so far.
        """
        started = time.monotonic()
        plan = self.runner.plan(items, force=force, retry_failed=retry_failed)
        summary = Summary(skipped=plan.skipped, failed_before=plan.failed_before)
        interrupted = False
        try:
            if plan.jobs:
                self.runner.analyze((job for job, _ in plan.jobs), summary, len(plan.jobs))
        except KeyboardInterrupt:
            interrupted = True
        summary.derived = self.fields.derive()
        summary.wall_seconds = time.monotonic() - started
        if interrupted:
            raise Interrupted(summary, len(plan.jobs))
        return summary

    def write_moods(self, ids: set[int], force: bool, summary: Summary) -> None:
        """Write the ``mood`` field of items ``ids`` into their files; count it in ``summary``."""
        moods = self.fields.moods(ids)
        summary.written, summary.kept = write_moods(self.lib, self.store, moods, force, self.log)
