"""Ranks, mood labels, genre and tags from tag vectors (no model, no library)."""

from __future__ import annotations

from pathlib import Path

import confuse
import numpy as np
import pytest

from beetsplug.musicnn.config import DEFAULTS, load_settings
from beetsplug.musicnn.moods import Deriver, percentile_ranks
from beetsplug.musicnn.provision import ModelInfo


def test_percentile_ranks_spread_share_ties_and_centre_a_single_track() -> None:
    raw = np.array([[0.1, 5.0], [0.3, 5.0], [0.2, 1.0], [0.4, 5.0]])
    ranks = percentile_ranks(raw)
    assert ranks[:, 0].tolist() == pytest.approx([0, 2 / 3, 1 / 3, 1])
    assert ranks[:, 1].tolist() == pytest.approx([2 / 3, 2 / 3, 0, 2 / 3])  # three tie
    assert percentile_ranks(np.array([[0.7]])).tolist() == [[0.5]]


def deriver(**moods: dict[str, object]) -> tuple[Deriver, ModelInfo]:
    config = confuse.Configuration("musicnn-unit-test", read=False)
    config.add(DEFAULTS)
    config["moods"] = moods
    config["max_tags"] = 3
    info = ModelInfo.load("msd")
    return Deriver(info, load_settings(config, Path("/l.db"), Path("/c"))), info


def test_fields_of_one_track() -> None:
    derive, info = deriver(party={"threshold": 0.5}, happy={"threshold": 0.9})
    tags = np.full(len(info.classes), 0.01, np.float32)
    for name, value in {"jazz": 0.6, "rock": 0.3, "Mellow": 0.2, "party": 0.15}.items():
        tags[info.classes.index(name)] = value
    scores = np.array([0.9, 0.2, 0.4, 0.95])  # happy, sad, relaxed, party
    fields = derive.fields(tags, scores)
    assert fields["mood"] == "party, happy"  # the labels that clear, best first
    assert fields["musicnn_genre"] == "jazz"
    assert fields["musicnn_tags"] == "jazz, rock, mellow"  # max_tags 3, above tag_threshold
    assert fields["musicnn_happy"] == 0.9 and fields["musicnn_sad"] == 0.2


def test_threshold_applies_to_the_score_as_shown() -> None:
    derive, info = deriver()
    fields = derive.fields(np.zeros(len(info.classes)), np.array([0.7496, 0, 0, 0]))
    assert fields["musicnn_happy"] == 0.75 and fields["mood"] == "happy"


def test_raw_moods_average_their_tags() -> None:
    derive, info = deriver()
    tags = np.zeros((1, len(info.classes)))
    tags[0, info.classes.index("party")] = 0.4
    tags[0, info.classes.index("dance")] = 0.2
    assert derive.raw_moods(tags)[0, 3] == pytest.approx(0.3)
