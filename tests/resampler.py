"""Measure how essentia's resampler differs from ffmpeg's, near 8 kHz.

essentia's MonoLoader resamples with libsamplerate (SINC_MEDIUM), which
rolls off from about 7 kHz; ffmpeg's default resampler keeps almost
everything up to 8 kHz. Both are linear, so the difference is one gain
per FFT bin, which the plugin folds into its mel filterbank: decoding
stays cheap and the features match essentia's. This measures that gain
with white noise; ``python -m tests.resampler`` rewrites the shipped file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from beetsplug.musicnn.features import _WINDOW, FRAME_SIZE, HOP_SIZE, SAMPLE_RATE

SHIPPED = Path(__file__).parents[1] / "models" / "frontend.json"


def _power(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, FRAME_SIZE)[::HOP_SIZE]
    return (np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2).mean(0)


def measure(ffmpeg: str = "ffmpeg", rate: int = 44100, seconds: int = 120) -> np.ndarray:
    """Per-bin power gain of libsamplerate's SINC_MEDIUM relative to ``ffmpeg``'s."""
    import samplerate  # test-only dependency

    noise = np.random.default_rng(0).standard_normal(rate * seconds) * 0.1
    pcm = (noise * 32767).astype("<i2")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "noise.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(pcm.tobytes())
        decoded = subprocess.run(
            [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(path),
             "-ac", "1", "-rematrix_maxval", "1.0", "-ar", str(SAMPLE_RATE),
             "-f", "f32le", "-"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
    ours = np.frombuffer(decoded, np.float32)
    theirs = samplerate.resample(pcm / 32767, SAMPLE_RATE / rate, "sinc_medium")
    return _power(theirs) / _power(ours)


def smoothed(gain: np.ndarray) -> list[float]:
    """Exactly 1 where the two agree, 4 decimals elsewhere (noise is below that)."""
    flat = np.abs(gain - 1) < 1e-3
    flat[np.argmax(~flat) :] = False  # only the leading run of agreement
    return [1.0 if f else round(float(g), 4) for f, g in zip(flat, gain, strict=True)]


if __name__ == "__main__":
    data = {
        "description": "Per-FFT-bin power gain (257 bins, 16 kHz, frame 512) that turns "
        "ffmpeg's default resampling into essentia MonoLoader's (libsamplerate "
        "SINC_MEDIUM); measured with white noise by tests/resampler.py",
        "resampler_gain": smoothed(measure()),
    }
    SHIPPED.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {SHIPPED}", file=sys.stderr)
