"""Decode audio to 16 kHz mono in an ffmpeg subprocess, streamed in chunks.

Decoding runs outside our process so that it can be killed (a per-file
time limit) and so that a decoder crashing on a damaged file costs that
file only. It also runs off the GIL, in parallel with everything else.
The ffmpeg is the system's when it has one, else the static build that the
imageio-ffmpeg package ships (``decoder_command``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import DecoderError
from .features import SAMPLE_RATE

CHUNK_SECONDS = 8
FINGERPRINT_SECONDS = 30
_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_BRACKETED = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")
_GENERIC = {"Conversion failed!", "Invalid argument"}

# Options that make ffmpeg cheaper and change no sample (tests/test_analyzer.py
# checks the PCM; docs/performance.md has the figures). Files are decoded in
# parallel already, so one decoder thread: FLAC's frame threads only cost
# hand-overs. Writes of 32 KiB instead of one per decoded frame (26 ms for
# mp3, down to 3 ms for vorbis): fewer system calls and wake-ups, ours too.
_SPEED_INPUT = ("-threads", "1")
_SPEED_OUTPUT = ("-flush_packets", "0")


class DecodeError(Exception):
    """The file could not be decoded; the message is one line for the log."""


def decoder_command(setting: Sequence[str]) -> tuple[str, ...]:
    """The decoder command line to run: ``setting`` (the `ffmpeg` option, a command and
    optional extra args) resolved to an executable, so a missing one stops the run at once.

    Plain ``ffmpeg`` is the system's when it is on PATH (the user's own build),
    else imageio-ffmpeg's bundled static binary: installing the plugin is then
    all it takes. Any other command must exist and be executable.
    """
    command, *extra = setting or ("",)
    found = shutil.which(command) or (_bundled_ffmpeg() if command == "ffmpeg" else None)
    if found is None:
        problem = "is not executable" if os.path.isfile(command) else "not found"
        raise DecoderError(
            f"musicnn.ffmpeg: {command or '(empty)'} {problem}: "
            "install ffmpeg or set musicnn.ffmpeg to its path"
        )
    return (found, *extra)


def _bundled_ffmpeg() -> str | None:
    """imageio-ffmpeg's binary, or None where it has none for this platform."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a file's audio: its first 30 s of samples and its duration.

    Retagging or moving a file keeps both; re-encoding or editing the audio
    changes at least one.
    """

    digest: str
    duration: float | None

    def matches(self, other: Fingerprint) -> bool:
        if self.digest != other.digest:
            return False
        if self.duration is None or other.duration is None:
            return self.duration == other.duration
        return abs(self.duration - other.duration) < 0.05


class Decoding:
    """One running decoder: iterate ``chunks()``, then read ``fingerprint``.

    Use it as a context manager: leaving the block always kills and reaps
    the subprocess, whatever happened.
    """

    def __init__(self, path: bytes, command: Sequence[str] = ("ffmpeg",), timeout: float = 0):
        self.path = path
        # Closed in kill(): the decoder outlives this method.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        args = [
            *command, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
            *_SPEED_INPUT, "-i", b"file:" + path, "-map", "0:a:0", "-vn",
            # (L+R)/2 like essentia's MonoMixer: without it ffmpeg gives (L+R)/sqrt(2)
            "-ac", "1", "-rematrix_maxval", "1.0",
            "-ar", str(SAMPLE_RATE), *_SPEED_OUTPUT, "-f", "f32le", "-",
        ]  # fmt: skip
        try:
            # Its own session: Ctrl-C on the terminal reaches us, not the
            # decoders, which we stop ourselves (a half-read file is no failure).
            self._proc = subprocess.Popen(
                args, stdout=subprocess.PIPE, stderr=self._stderr, start_new_session=True
            )
        except OSError as exc:  # the decoder cannot run at all: no file's fault
            self._stderr.close()
            raise DecoderError(
                f"musicnn.ffmpeg: cannot start {command[0]}: {exc.strerror}: "
                "install ffmpeg or set musicnn.ffmpeg to its path"
            ) from exc
        self._timed_out = False
        self._time_left = timeout if timeout > 0 else None
        self._hash = hashlib.sha1()
        self._hashed = 0
        self.samples = 0

    def __enter__(self) -> Decoding:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()

    def _expire(self) -> None:
        self._timed_out = True
        self._kill_group()

    def _kill_group(self) -> None:
        """Kill the decoder and anything it started (a wrapper script's children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._kill_group()
        self._proc.wait()
        assert self._proc.stdout is not None
        self._proc.stdout.close()
        self._stderr.close()

    def chunks(self, seconds: float = CHUNK_SECONDS) -> Iterator[np.ndarray]:
        """Yield the decoded audio; raise DecodeError if the decoder failed.

        Every chunk is read into the same buffer, valid until the next one is
        asked for: fresh memory per chunk cost more in page faults than the
        reading itself.
        """
        stdout = self._proc.stdout
        assert isinstance(stdout, io.BufferedReader)
        buffer = np.empty(int(seconds * SAMPLE_RATE), np.float32)
        while count := self._read(stdout, memoryview(buffer).cast("B")) // 4:
            audio = buffer[:count]
            self._digest(audio)
            self.samples += count
            yield audio
        self._check()

    def _read(self, stdout: io.BufferedReader, into: memoryview) -> int:
        """Fill ``into`` with decoded audio (less only at the end), returning the bytes read.

        The time limit counts only time spent waiting here: time the worker
        spends waiting for the model (a long file behind a busy model) is not
        the decoder's fault.
        """
        if self._time_left is None:
            return stdout.readinto(into)
        timer = threading.Timer(self._time_left, self._expire)
        timer.daemon = True
        start = time.monotonic()
        timer.start()
        try:
            return stdout.readinto(into)
        finally:
            timer.cancel()
            self._time_left -= time.monotonic() - start

    def _digest(self, audio: np.ndarray) -> None:
        wanted = FINGERPRINT_SECONDS * SAMPLE_RATE - self._hashed
        if wanted > 0:
            head = audio[:wanted]
            # Quantised, so float noise in the last bit cannot change it.
            self._hash.update(np.round(head * 32767).astype("<i2"))
            self._hashed += len(head)

    @property
    def fingerprint_ready(self) -> bool:
        return self._hashed >= FINGERPRINT_SECONDS * SAMPLE_RATE

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self._hash.hexdigest()[:20], self._duration())

    def _duration(self) -> float | None:
        """The container's duration as ffmpeg reports it, read cheaply from its log."""
        self._stderr.seek(0)
        found = _DURATION.search(self._stderr.read(1 << 16))
        if not found:
            return None
        hours, minutes, seconds = found.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)

    def _check(self) -> None:
        code = self._proc.wait()
        if self._timed_out:
            raise DecodeError("decoding took too long and was stopped (musicnn.timeout)")
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            raise DecodeError(f"decoder crashed ({name})")
        if code != 0:
            raise DecodeError(self._last_error())
        if self.samples == 0:
            raise DecodeError("no audio in file")

    def _last_error(self) -> str:
        """ffmpeg's verdict, with the demuxer's or decoder's reason when it gave one."""
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().decode(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith(("Input #", "Stream", "Duration"))]
        reasons = [_BRACKETED.sub("", ln) for ln in lines if _BRACKETED.match(ln)]
        final = lines[-1].replace("file:" + os.fsdecode(self.path) + ": ", "") if lines else ""
        if not final or final in _GENERIC:
            final = reasons[-1] if reasons else "no output"
        elif reasons and reasons[-1] != final:
            final = f"{final} ({reasons[-1]})"
        return f"cannot decode: {final}"
