"""Analysis during `beet import`, in the background, across import tasks.

Items are queued when beets has finished placing their files
(``import_task_files``: copied, moved or left in place, tags written), so a
file is never read while the import moves it. One analyzer works through
the queue while the import goes on, storing each result as it arrives;
when the import ends (the ``import`` event), it drains the queue, derives
the library fields and reports. Analysis never fails the import.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .analyzer import IDLE, IDLE_POLL, Idle, Job
from .decode import decoder_command
from .lock import exclusive
from .runner import Planner, Summary
from .session import Session

if TYPE_CHECKING:
    from beets.library import Item

_DONE = object()


class ImportAnalysis:
    def __init__(self, session: Session):
        self.session = session
        self._lock = contextlib.ExitStack()
        try:
            decoder_command(session.settings.ffmpeg)  # DecoderError now, not per file
            self._lock.enter_context(exclusive(session.lock_path))  # Busy: no analysis
        except BaseException:
            session.close()
            raise
        self.summary = Summary()
        self._queue: queue.Queue[Job | object] = queue.Queue()
        self._planner: Planner = session.runner.planner()
        self._error: BaseException | None = None
        self._started = time.monotonic()
        self.imported: set[int] = set()
        self._thread = threading.Thread(target=self._work, name="musicnn-import", daemon=True)
        self._thread.start()

    def add(self, items: Iterable[Item]) -> None:
        """Queue a finished import task's items (re-imported, unchanged ones are skipped)."""
        for item in items:
            self.imported.add(item.id)
            if job := self._planner(item):
                self._queue.put(job)

    def finish(self) -> Summary:
        """Wait for every queued item, then derive the library's fields."""
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error
        self.summary.skipped = self._planner.skipped
        self.summary.derived = self.session.fields.derive()
        self.summary.wall_seconds = time.monotonic() - self._started
        return self.summary

    def close(self) -> None:
        """Let the next analysis of this library start."""
        self._lock.close()
        self.session.close()

    def _jobs(self) -> Iterator[Job | Idle]:
        while True:
            try:
                job = self._queue.get(timeout=IDLE_POLL)
            except queue.Empty:
                yield IDLE
                continue
            if job is _DONE:
                return
            assert isinstance(job, Job)
            yield job

    def _work(self) -> None:
        try:
            self.session.runner.analyze(self._jobs(), self.summary)
        except BaseException as exc:  # handed to finish(), in the importing thread
            self._error = exc
