"""The model thread: batches mixed across tracks, back-pressure, failures, stop.

The real model runs underneath; a gate in front of it holds the model
thread so the queue's state can be observed, and one test injects a
failure into a single call.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beetsplug.musicnn.batching import Batcher, Stopped, Tally
from beetsplug.musicnn.inference import TensorflowPredictor, shared_predictor
from beetsplug.musicnn.provision import Graph, ModelInfo


class Gated:
    """The real model, each call waiting for the gate; records batch sizes."""

    def __init__(self, model: TensorflowPredictor, fail_first: bool = False):
        self.model = model
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.sizes: list[int] = []
        self.fail_first = fail_first

    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.entered.set()
        self.gate.wait()
        self.sizes.append(len(patches))
        if self.fail_first and len(self.sizes) == 1:
            raise RuntimeError("injected failure")
        return self.model.predict(patches)


@pytest.fixture(scope="module")
def model(msd: tuple[ModelInfo, Graph]) -> TensorflowPredictor:
    info, graph = msd
    return shared_predictor(graph.path, info)


def _patches(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return list(rng.standard_normal((n, 187, 96)).astype(np.float32))


def test_batches_mix_tracks_and_sums_stay_per_track(model: TensorflowPredictor) -> None:
    gated = Gated(model)
    a, b = _patches(3, 1), _patches(4, 2)
    tally_a, tally_b = Tally(), Tally()
    with Batcher(lambda: gated, batch_size=8, backlog=16) as batcher:
        batcher.feed(Tally(), _patches(1, 0))
        assert gated.entered.wait(60)  # the model thread is busy with that one
        batcher.feed(tally_a, a)
        batcher.feed(tally_b, b)
        gated.gate.set()
        batcher.wait(tally_a)
        batcher.wait(tally_b)
    assert gated.sizes == [1, 7]  # the second call held patches of both tracks
    for tally, patches in ((tally_a, a), (tally_b, b)):
        tags, embeddings = model.predict(np.stack(patches))
        assert tally.count == len(patches)
        got_tags, got_embeddings = tally.means()
        np.testing.assert_allclose(got_tags, tags.mean(0), atol=1e-5)
        np.testing.assert_allclose(got_embeddings, embeddings.mean(0), atol=1e-4)


def test_a_worker_ahead_of_the_model_waits(model: TensorflowPredictor) -> None:
    gated = Gated(model)
    tally = Tally()
    with Batcher(lambda: gated, batch_size=2, backlog=4) as batcher:
        feeder = threading.Thread(target=batcher.feed, args=(tally, _patches(20, 3)))
        feeder.start()
        feeder.join(1.0)
        assert feeder.is_alive()  # blocked: the queue is full
        assert tally.pending <= 2 + 4  # one batch at the gate, a full backlog behind it
        gated.gate.set()
        feeder.join(60)
        batcher.wait(tally)
    assert tally.count == 20
    assert max(gated.sizes) <= 2


def test_a_failed_call_fails_its_tracks_only(model: TensorflowPredictor) -> None:
    gated = Gated(model, fail_first=True)
    first, second = Tally(), Tally()
    with Batcher(lambda: gated, batch_size=4) as batcher:
        batcher.feed(first, _patches(2, 4))
        gated.gate.set()
        with pytest.raises(RuntimeError, match="injected"):
            batcher.wait(first)
        batcher.feed(second, _patches(2, 5))
        batcher.wait(second)
    assert second.count == 2


def test_stop_wakes_a_waiting_worker(model: TensorflowPredictor) -> None:
    gated = Gated(model)
    tally = Tally()
    raised: list[BaseException] = []

    def feed() -> None:
        try:
            batcher.feed(tally, _patches(20, 6))
        except Stopped as exc:
            raised.append(exc)

    with Batcher(lambda: gated, batch_size=2, backlog=2) as batcher:
        feeder = threading.Thread(target=feed)
        feeder.start()
        feeder.join(0.5)
        batcher.stop()
        feeder.join(5)
        assert not feeder.is_alive()
        gated.gate.set()  # let the model thread finish its batch and end
    assert raised and isinstance(raised[0], Stopped)


def test_nothing_to_predict_never_loads_the_model() -> None:
    def no_model() -> TensorflowPredictor:
        raise AssertionError("loaded")

    tally = Tally()
    with Batcher(no_model, batch_size=4) as batcher:
        batcher.feed(tally, [])
        batcher.wait(tally)
    assert tally.count == 0
