"""Cross-track batching: one thread runs the shared model for every worker.

Workers hand over patches as they compute them; the model thread takes
whatever is queued, from any tracks, up to one batch. Short tracks and
the tails of tracks therefore share batches, and only one batch of
activations is alive at a time (TensorFlow's memory grows with the calls
in flight). The queue is bounded: a worker that gets ahead of the model
waits, and its decoder with it, so memory stays flat however fast the
decoders are.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

import numpy as np

from .errors import MusicnnError
from .inference import Predictor


class Stopped(Exception):
    """The run is being interrupted; abandon this file."""


class Tally:
    """One track's running sums of model outputs, so no track keeps its patches."""

    def __init__(self) -> None:
        self.tags: np.ndarray | None = None
        self.embedding: np.ndarray | None = None
        self.count = 0
        self.pending = 0  # patches handed over, not yet through the model
        self.error: Exception | None = None  # the model failed on one of them

    def add(self, tags: np.ndarray, embedding: np.ndarray) -> None:
        tag_sum, emb_sum = tags.sum(0, dtype=np.float64), embedding.sum(0, dtype=np.float64)
        if self.tags is None or self.embedding is None:
            self.tags, self.embedding = tag_sum, emb_sum
        else:
            self.tags += tag_sum
            self.embedding += emb_sum
        self.count += len(tags)

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.tags is not None and self.embedding is not None
        return (
            (self.tags / self.count).astype(np.float32),
            (self.embedding / self.count).astype(np.float32),
        )


class Batcher:
    """The model thread and its bounded queue of (track, patch) pairs.

    Use it as a context manager around the workers. ``load_model`` is called in
    the model thread when the first patch arrives, so a run with nothing to
    predict never loads tensorflow. A MusicnnError (no usable model) stops
    every worker; any other error from the model fails the tracks whose
    patches were in that batch, and serving goes on.
    """

    def __init__(self, load_model: Callable[[], Predictor], batch_size: int, backlog: int = 0):
        self._load_model = load_model
        self.batch_size = max(1, batch_size)
        self.backlog = backlog or max(8, 2 * self.batch_size)
        self._queue: deque[tuple[Tally, np.ndarray]] = deque()
        self._cond = threading.Condition()
        self._fatal: MusicnnError | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name="musicnn-model", daemon=True)

    def __enter__(self) -> Batcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self._thread.join()

    def stop(self) -> None:
        """Wake every waiting worker with Stopped; the model thread ends after its batch."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def feed(self, tally: Tally, patches: Iterable[np.ndarray]) -> None:
        """Queue a track's patches, waiting while the queue is full."""
        for patch in patches:
            with self._cond:
                self._cond.wait_for(lambda: len(self._queue) < self.backlog or self._halted())
                self._raise_if_halted()
                self._queue.append((tally, patch))
                tally.pending += 1
                self._cond.notify_all()

    def wait(self, tally: Tally) -> None:
        """Return once every patch of the track has been through the model."""
        with self._cond:
            self._cond.wait_for(lambda: not tally.pending or self._halted())
            self._raise_if_halted()
        if tally.error is not None:
            raise tally.error

    def _halted(self) -> bool:
        return self._stopped or self._fatal is not None

    def _raise_if_halted(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._stopped:
            raise Stopped

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopped)
                if self._stopped:
                    return
                size = min(self.batch_size, len(self._queue))
                taken = [self._queue.popleft() for _ in range(size)]
                self._cond.notify_all()
            rows: dict[Tally, list[int]] = {}
            for i, (tally, _patch) in enumerate(taken):
                rows.setdefault(tally, []).append(i)
            try:
                tags, embeddings = self._load_model().predict(np.stack([p for _, p in taken]))
            except MusicnnError as exc:
                with self._cond:
                    self._fatal = exc
                    self._cond.notify_all()
                return
            except Exception as exc:  # the model failed on this batch: its tracks fail
                for tally in rows:
                    tally.error = exc
                tags = embeddings = None
            with self._cond:
                for tally, index in rows.items():
                    if tags is not None and embeddings is not None:
                        tally.add(tags[index], embeddings[index])
                    tally.pending -= len(index)
                self._cond.notify_all()
