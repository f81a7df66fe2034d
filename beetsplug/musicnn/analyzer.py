"""The threaded analyzer: audio files in, mean tag activations and embeddings out.

Worker threads each drive one file: an ffmpeg subprocess decodes it and
the mel features are computed in-process. Their patches go to one model
thread (``batching.Batcher``), which runs the shared model on batches
filled from every track in flight (TensorFlow releases the GIL). Outcomes
are handed back to the caller's thread, so whoever stores them does so
from one place. Nothing here knows about beets.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import psutil

from .batching import Batcher, Stopped, Tally
from .decode import DecodeError, Decoding, Fingerprint, decoder_command
from .errors import MusicnnError
from .features import PATCH_SIZE, SAMPLE_RATE, MelStream, Patcher
from .inference import Predictor

WORKER_MEMORY = 100 * 2**20  # a worker's peak: decoder, audio chunk, features


WORKERS_PER_CORE = 2  # bench/workers.py: a worker waits on its decoder's pipe; more hide it


def default_threads() -> int:
    """Two workers per core, fewer when available memory is short."""
    cores = psutil.cpu_count(logical=True) or 1
    by_memory = psutil.virtual_memory().available // WORKER_MEMORY
    return max(1, min(WORKERS_PER_CORE * cores, by_memory))


@dataclass(frozen=True)
class Job:
    """A file to analyze; with ``known``, skip it if its audio still matches."""

    key: int
    path: bytes
    known: Fingerprint | None = None


@dataclass(frozen=True)
class Result:
    key: int
    path: bytes
    tags: np.ndarray  # mean activation per class
    embedding: np.ndarray  # mean 200-d embedding
    patches: int
    seconds: float
    fingerprint: Fingerprint
    level: float  # loudness of the whole track, dBFS (RMS)


def level_db(energy: float, samples: int) -> float:
    """RMS level in dBFS of ``samples`` whose squares sum to ``energy`` (-200 for silence)."""
    return 10 * math.log10(max(energy / max(samples, 1), 1e-20))


@dataclass(frozen=True)
class Unchanged:
    """The file changed on disk but its audio did not: nothing to analyze."""

    key: int
    path: bytes
    fingerprint: Fingerprint


@dataclass(frozen=True)
class Failure:
    key: int
    path: bytes
    error: str


Outcome = Result | Unchanged | Failure


class Idle:
    """What a job source yields when it has no job yet but will have more."""


IDLE = Idle()
IDLE_POLL = 0.2  # seconds between looks at a source that was idle


class Analyzer:
    """Analyze many files at once with one shared model.

    ``load_model`` is called for the model the first time a patch needs it,
    so a run that only confirms fingerprints never loads tensorflow.
    """

    def __init__(
        self,
        load_model: Callable[[], Predictor],
        *,
        threads: int = 0,
        patch_hop: int = PATCH_SIZE,
        batch_size: int = 1,
        decoder: Sequence[str] = ("ffmpeg",),
        timeout: float = 0,
        min_free_memory: int = 0,
        notice: Callable[[str], None] = lambda _msg: None,
    ):
        self._load_model = load_model
        self.threads = threads or default_threads()
        self.patch_hop = patch_hop
        self.batch_size = batch_size
        self.decoder = decoder_command(decoder)  # DecoderError now, not per file
        self.timeout = timeout
        self.min_free_memory = min_free_memory
        self.notice = notice
        self._stop = threading.Event()

    def run(self, jobs: Iterable[Job | Idle], on_outcome: Callable[[Outcome], None]) -> None:
        """Analyze every job, calling ``on_outcome`` in this thread as each ends.

        At most two jobs per worker are in flight, so memory stays bounded
        however many jobs there are, and fewer while available memory is
        under ``min_free_memory``. A source that has no job yet (an
        import still going on) yields ``IDLE`` and is asked again shortly,
        while finished outcomes are still handed over. On KeyboardInterrupt
        the workers abandon their files, their decoders are killed, and it
        re-raises.
        """
        self._stop.clear()
        pending: set[Future[Outcome | None]] = set()
        source = iter(jobs)
        exhausted = False
        in_flight = 2 * self.threads
        with (
            Batcher(self._load_model, self.batch_size) as batcher,
            ThreadPoolExecutor(self.threads, thread_name_prefix="musicnn") as pool,
        ):
            try:
                while True:
                    in_flight = self._fit_memory(in_flight)
                    while not exhausted and len(pending) < in_flight:
                        job = next(source, None)
                        if job is None:
                            exhausted = True
                        elif isinstance(job, Idle):
                            break
                        else:
                            pending.add(pool.submit(self._analyze, job, batcher))
                    if not pending:
                        if exhausted:
                            break
                        continue
                    timeout = None if exhausted else IDLE_POLL
                    done, pending = wait(pending, timeout, return_when=FIRST_COMPLETED)
                    for future in done:
                        if (outcome := future.result()) is not None:
                            on_outcome(outcome)
            except BaseException:
                self._stop.set()
                batcher.stop()
                for future in pending:
                    future.cancel()
                raise

    def _fit_memory(self, in_flight: int) -> int:
        """Halve the files in flight while free memory is under the threshold."""
        if in_flight == 1 or not self.min_free_memory:
            return in_flight
        available = psutil.virtual_memory().available
        if available >= self.min_free_memory:
            return in_flight
        lowered = max(1, in_flight // 2)
        self.notice(
            f"only {available // 2**20} MB of memory free: "
            f"lowering parallelism from {in_flight} to {lowered} file(s) at a time"
        )
        return lowered

    def analyze(self, job: Job) -> Outcome:
        """Analyze one file in the calling thread."""
        with Batcher(self._load_model, self.batch_size) as batcher:
            outcome = self._analyze(job, batcher)
        assert outcome is not None
        return outcome

    def _analyze(self, job: Job, batcher: Batcher) -> Outcome | None:
        try:
            return self._decode_and_predict(job, batcher)
        except Stopped:
            return None
        except MusicnnError:
            raise  # no file's fault (model, decoder missing): the whole run stops
        except Exception as exc:  # one bad file must never stop the run
            if self._stop.is_set():
                return None  # stopped mid-file: not the file's fault
            if isinstance(exc, DecodeError):
                return Failure(job.key, job.path, str(exc))
            return Failure(job.key, job.path, f"{exc.__class__.__name__}: {exc}")

    def _decode_and_predict(self, job: Job, batcher: Batcher) -> Outcome:
        if not os.path.isfile(job.path):
            return Failure(job.key, job.path, "file not found")
        if not os.access(job.path, os.R_OK):
            return Failure(job.key, job.path, "permission denied")
        mel, patcher, tally = MelStream(), Patcher(self.patch_hop), Tally()
        held: list[np.ndarray] = []  # a known file's patches, until its audio proves new
        energy = 0.0
        with Decoding(job.path, self.decoder, self.timeout) as decoding:
            check = job.known
            for chunk in decoding.chunks():
                if self._stop.is_set():
                    raise Stopped
                if check and decoding.fingerprint_ready:
                    if decoding.fingerprint.matches(check):
                        return Unchanged(job.key, job.path, decoding.fingerprint)
                    check = None
                energy += float(np.dot(chunk, chunk))
                held.extend(patcher.feed(mel.feed(chunk)))
                if not check:
                    batcher.feed(tally, held)
                    held = []
            fingerprint = decoding.fingerprint
        if check and fingerprint.matches(check):
            return Unchanged(job.key, job.path, fingerprint)
        batcher.feed(tally, [*held, *patcher.feed(mel.finish()), *patcher.finish()])
        batcher.wait(tally)
        return Result(
            job.key, job.path, *tally.means(), tally.count, decoding.samples / SAMPLE_RATE,
            fingerprint, level_db(energy, decoding.samples),
        )  # fmt: skip
