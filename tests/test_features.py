"""The vectorised features equal essentia's TensorflowInputMusiCNN."""

from __future__ import annotations

import json

import essentia.standard as es
import numpy as np
import pytest

from beetsplug.musicnn.features import (
    PATCH_SIZE,
    MelStream,
    Patcher,
    mel_filterbank,
    resampler_gain,
)
from tests.resampler import SHIPPED, measure, smoothed


def _signal(samples: int) -> np.ndarray:
    rng = np.random.default_rng(samples)
    t = np.arange(samples) / 16000
    return (0.3 * np.sin(2 * np.pi * 330 * t) + 0.1 * rng.standard_normal(samples)).astype(
        np.float32
    )


def _ours(signal: np.ndarray, chunk: int) -> np.ndarray:
    stream = MelStream()
    parts = [stream.feed(signal[i : i + chunk]) for i in range(0, len(signal), chunk)]
    return np.concatenate([*parts, stream.finish()])


@pytest.mark.parametrize("samples", [200, 256, 511, 512, 513, 5000, 16000 * 7 + 13])
@pytest.mark.parametrize("chunk", [100, 4096, 10**9])
def test_mel_frames_match_essentia(samples: int, chunk: int) -> None:
    signal = _signal(samples)
    frame = es.TensorflowInputMusiCNN()
    essentia = np.array([frame(f) for f in es.FrameGenerator(signal, frameSize=512, hopSize=256)])
    # Our filterbank carries the resampler correction, which only touches
    # the top bands: compare every band it leaves alone.
    ours = _ours(signal, chunk)
    assert ours.shape == essentia.shape
    untouched = (mel_filterbank()[:, resampler_gain() != 1] == 0).all(axis=1)
    assert untouched.sum() >= 85
    assert np.abs(ours[:, untouched] - essentia[:, untouched]).max() < 1e-4  # 7.2e-5 measured


@pytest.mark.parametrize("chunk", [100, 4096, 70000, 10**9])
def test_mel_frames_equal_the_plain_formula(chunk: int) -> None:
    """Blocks, buffers and the banded product change nothing: every band, the
    resampler-corrected ones too, as one float64 FFT of all frames gives."""
    signal = _signal(16000 * 11 + 77)
    padded = np.concatenate((np.zeros(256), signal, np.zeros(512)))
    count = -(-len(signal) // 256) + 1
    frames = np.lib.stride_tricks.sliding_window_view(padded, 512)[::256][:count]
    power = np.abs(np.fft.rfft(frames * np.hanning(512))) ** 2
    plain = np.log10(1 + 10000 * power @ (mel_filterbank() * resampler_gain()).T)
    ours = _ours(signal, chunk)
    assert ours.shape == plain.shape
    assert np.abs(ours - plain).max() < 1e-5  # 2.5e-6 measured: float32 against float64


def test_frames_outlive_the_next_feed() -> None:
    """The stream reuses its buffers; what it returned must not change."""
    stream, signal = MelStream(), _signal(40000)
    first = stream.feed(signal[:20000])
    kept = first.copy()
    stream.feed(signal[20000:])
    stream.finish()
    assert (first == kept).all()


def test_patcher_hops_and_pads() -> None:
    frames = np.arange(500 * 96, dtype=np.float32).reshape(500, 96)
    patcher = Patcher(hop=100)
    patches = list(patcher.feed(frames[:250])) + list(patcher.feed(frames[250:]))
    starts = [int(p[0, 0] // 96) for p in patches]
    assert starts == [0, 100, 200, 300]
    assert not list(patcher.finish())  # long tracks are never padded

    wide = Patcher(hop=400)
    starts = [int(p[0, 0] // 96) for chunk in np.split(frames, 5) for p in wide.feed(chunk)]
    assert starts == [0]

    short = Patcher()
    assert not list(short.feed(frames[:50]))
    (padded,) = list(short.finish())
    assert padded.shape == (PATCH_SIZE, 96)
    assert (padded[50:100] == frames[:50]).all()  # repeated, not zero-filled


@pytest.mark.parametrize("hop", [50, 187, 400])
def test_patches_do_not_depend_on_how_frames_arrive(hop: int) -> None:
    frames = np.arange(1000 * 96, dtype=np.float32).reshape(1000, 96)
    whole = list(Patcher(hop).feed(frames))
    patcher = Patcher(hop)
    pieces = [p.copy() for i in range(0, 1000, 7) for p in patcher.feed(frames[i : i + 7])]
    assert len(pieces) == len(whole) >= 2
    assert all((a == b).all() for a, b in zip(pieces, whole, strict=True))


def test_shipped_resampler_gain_is_what_we_measure() -> None:
    """models/frontend.json is libsamplerate's response over ffmpeg's, measured afresh."""
    pytest.importorskip("samplerate")
    shipped = np.array(json.loads(SHIPPED.read_text())["resampler_gain"])
    fresh = np.array(smoothed(measure(rate=48000, seconds=60)))
    assert shipped.shape == (257,)
    assert np.abs(shipped - fresh).max() < 0.02
    assert shipped[:150].min() == 1.0 and shipped[-8:].max() < 0.01
