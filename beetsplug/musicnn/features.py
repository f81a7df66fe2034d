"""MusiCNN input features: essentia's ``TensorflowInputMusiCNN``, vectorised.

essentia computes mel bands one frame at a time while holding the GIL; the
same numbers come out of one float32 FFT and a few matrix products per block
of frames, so feature extraction costs a small fraction of the model. The filterbank
also carries the difference between ffmpeg's resampler and essentia's
(libsamplerate, which rolls off above 7 kHz), so audio decoded cheaply by
ffmpeg gives the features essentia's MonoLoader would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources

import numpy as np

SAMPLE_RATE = 16000
FRAME_SIZE = 512
HOP_SIZE = 256
MEL_BANDS = 96
PATCH_SIZE = 187


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    linear = 200.0 / 3
    log_step = np.log(6.4) / 27
    return np.where(
        hz < 1000, hz / linear, 1000 / linear + np.log(np.maximum(hz, 1e-9) / 1000) / log_step
    )


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    linear = 200.0 / 3
    log_step = np.log(6.4) / 27
    return np.where(
        mel < 1000 / linear, mel * linear, 1000 * np.exp(log_step * (mel - 1000 / linear))
    )


def mel_filterbank() -> np.ndarray:
    """essentia's MelBands(slaneyMel, unit_tri, 0-8 kHz) as a (96, 257) matrix."""
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(np.array(SAMPLE_RATE / 2)), MEL_BANDS + 2))
    freqs = np.arange(FRAME_SIZE // 2 + 1) * SAMPLE_RATE / FRAME_SIZE
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    return (np.maximum(0.0, np.minimum(rising, falling)) * 2 / (high - low)).astype(np.float32)


def resampler_gain() -> np.ndarray:
    """Per-bin gain making ffmpeg's resampling look like essentia's (tests/resampler.py)."""
    shipped = resources.files("beetsplug.musicnn.models").joinpath("frontend.json")
    return np.array(json.loads(shipped.read_text())["resampler_gain"], np.float32)


def _banded(filters: np.ndarray, groups: int) -> list[tuple[slice, slice, np.ndarray]]:
    """``filters`` (bins, bands) cut into runs of bands, each with only the bins it spans.

    A band spans a few neighbouring bins: four runs skip three quarters of
    the dense product's multiplications by zero.
    """
    parts = []
    for bands in np.array_split(np.arange(filters.shape[1]), groups):
        bins = np.flatnonzero(filters[:, bands].any(axis=1))
        rows, cols = slice(bins[0], bins[-1] + 1), slice(bands[0], bands[-1] + 1)
        parts.append((rows, cols, np.ascontiguousarray(filters[rows, cols])))
    return parts


# Folded into the filterbank, the resampler correction costs nothing; so does
# undoing the FFT's 1/512 (norm="forward" is what makes numpy's FFT compute in
# float32; an exact power of two, it changes no bit of the mel power).
_FILTERS = _banded((mel_filterbank() * resampler_gain() * FRAME_SIZE**2).T, 4)
# essentia's Windowing(type="hann", normalized=False); zero-phase rotation
# does not change the magnitude spectrum, so it is left out.
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME_SIZE) / (FRAME_SIZE - 1))).astype(
    np.float32
)
# Frames per block (4 s): 256 measured a little faster than 128, and a stream's
# buffers stay at 1.6 MB.
BLOCK_FRAMES = 256


class MelStream:
    """Turn 16 kHz audio, fed in chunks of any size, into mel frames.

    Frames are cut as essentia's FrameCutter does by default: frame i is
    centred on sample 256*i, zero-padded at both ends, and a signal of L
    samples yields ceil(L / 256) + 1 frames.

    The audio, windowed frames and spectra live in buffers made once per
    stream: fresh arrays per chunk cost more in page faults than the FFT.
    """

    def __init__(self) -> None:
        # The audio not yet cut into frames (256 to 511 samples between feeds),
        # at first half a frame of zeros.
        self._audio = np.zeros((BLOCK_FRAMES - 1) * HOP_SIZE + FRAME_SIZE, np.float32)
        self._held = FRAME_SIZE // 2
        self._frames = np.empty((BLOCK_FRAMES, FRAME_SIZE), np.float32)
        self._spectrum = np.empty((BLOCK_FRAMES, FRAME_SIZE // 2 + 1), np.complex64)
        self._power = np.empty((BLOCK_FRAMES, FRAME_SIZE // 2 + 1), np.float32)
        self.samples = 0

    def feed(self, audio: np.ndarray) -> np.ndarray:
        """Return the mel frames that ``audio`` completes, as a new array."""
        self.samples += len(audio)
        bands = np.empty(
            ((self._held + len(audio) - FRAME_SIZE) // HOP_SIZE + 1, MEL_BANDS), np.float32
        )
        done = 0
        while len(audio):
            take = min(len(audio), len(self._audio) - self._held)
            self._audio[self._held : self._held + take] = audio[:take]
            self._held += take
            audio = audio[take:]
            done += self._cut(bands[done:])
        return _log_compress(bands)

    def finish(self) -> np.ndarray:
        """Return the frames that overhang the end of the signal (one or two)."""
        total = -(-self.samples // HOP_SIZE) + 1
        remaining = total - (self.samples + FRAME_SIZE // 2 - self._held) // HOP_SIZE
        # Zeros to the end of the last frame, centred at or past the end of the signal.
        end = (remaining - 1) * HOP_SIZE + FRAME_SIZE
        self._audio[self._held : end] = 0
        self._held = end
        bands = np.empty((remaining, MEL_BANDS), np.float32)
        self._cut(bands)
        return _log_compress(bands)

    def _cut(self, out: np.ndarray) -> int:
        """Mel power of every whole frame held into ``out``; keep the rest. Returns the count."""
        count = min(len(out), (self._held - FRAME_SIZE) // HOP_SIZE + 1)
        if count == 0:
            return 0
        view = np.lib.stride_tricks.sliding_window_view(self._audio[: self._held], FRAME_SIZE)
        frames = np.multiply(view[: count * HOP_SIZE : HOP_SIZE], _WINDOW, out=self._frames[:count])
        spectrum = np.fft.rfft(frames, axis=1, norm="forward", out=self._spectrum[:count])
        parts = np.square(spectrum.view(np.float32), out=spectrum.view(np.float32))
        power = np.add(parts[:, 0::2], parts[:, 1::2], out=self._power[:count])
        for bins, bands, filters in _FILTERS:
            np.matmul(power[:, bins], filters, out=out[:count, bands])
        kept = self._held - count * HOP_SIZE
        self._audio[:kept] = self._audio[count * HOP_SIZE : self._held]
        self._held = kept
        return count


def _log_compress(bands: np.ndarray) -> np.ndarray:
    """log10(1 + 10000 * mel power), in place."""
    bands *= 10000
    bands += 1
    return np.log10(bands, out=bands)


class Patcher:
    """Group mel frames into model patches of 187 frames, ``hop`` apart.

    A track shorter than one patch is repeat-padded to a whole patch, as the
    musicnn training set-up did, so every track yields at least one patch.
    """

    def __init__(self, hop: int = PATCH_SIZE) -> None:
        if not hop > 0:
            raise ValueError(f"patch hop must be positive, not {hop}")
        self.hop = hop
        self._held = np.empty((0, MEL_BANDS), np.float32)  # the next patch's first frames
        self._skip = 0  # frames a hop longer than a patch still has to pass over
        self.emitted = 0

    def feed(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Yield every whole patch the new frames complete.

        Patches are views of ``frames``; only one that straddles two feeds is a copy.
        """
        skipped = min(self._skip, len(frames))
        self._skip -= skipped
        frames = frames[skipped:]
        start = -len(self._held)  # where the next patch starts, as an index into frames
        while start + PATCH_SIZE <= len(frames):
            if start < 0:
                yield np.concatenate((self._held[start:], frames[: start + PATCH_SIZE]))
            else:
                yield frames[start : start + PATCH_SIZE]
            self.emitted += 1
            start += self.hop
        self._skip += max(0, start - len(frames))
        self._held = np.concatenate((self._held[start:], frames)) if start < 0 else frames[start:]

    def finish(self) -> Iterator[np.ndarray]:
        """Yield the repeat-padded patch of a track too short for one."""
        if self.emitted == 0 and len(self._held):
            reps = -(-PATCH_SIZE // len(self._held))
            self.emitted += 1
            yield np.tile(self._held, (reps, 1))[:PATCH_SIZE]
