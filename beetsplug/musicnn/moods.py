"""From stored tag vectors to the fields users query: moods, genre, tags.

MusiCNN's MSD sigmoids are tiny on real music (a clearly happy song may
score 0.006 for "happy"), so raw values mean nothing to a user. Each mood
score is instead the track's percentile rank in the analyzed library:
``musicnn_happy`` 0.8 means "happier than 80% of your library". The raw
activations stay in the plugin database, so the ranks can be recomputed
whenever the library or the configuration changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .config import Settings
    from .provision import ModelInfo


def percentile_ranks(raw: np.ndarray) -> np.ndarray:
    """Each value's rank within its column, 0 (lowest) to 1 (highest); ties share.

    One track alone sits in the middle (0.5).
    """
    n = raw.shape[0]
    out = np.full(raw.shape, 0.5)
    if n < 2:
        return out
    for col in range(raw.shape[1]):
        _, inverse, counts = np.unique(raw[:, col], return_inverse=True, return_counts=True)
        first = np.cumsum(counts) - counts
        out[:, col] = (first + (counts - 1) / 2)[inverse] / (n - 1)
    return out


class Deriver:
    """Computes every derived field of a track from its tag vector."""

    def __init__(self, model_info: ModelInfo, settings: Settings):
        """``settings`` are checked: every mood tag is one of the model's."""
        index = {name: i for i, name in enumerate(model_info.classes)}
        self.moods = list(settings.moods)
        self._mood_columns = [[index[t] for t in m.tags] for m in self.moods]
        self._genres = np.array([index[g] for g in model_info.groups["genres"]])
        self._labels = [name.lower() for name in model_info.classes]
        self.tag_threshold = settings.tag_threshold
        self.max_tags = settings.max_tags

    def raw_moods(self, tags: np.ndarray) -> np.ndarray:
        """(n, classes) activations to (n, moods) raw mood scores."""
        if not self._mood_columns:
            return np.empty((len(tags), 0))
        return np.stack([tags[:, cols].mean(1) for cols in self._mood_columns], axis=1)

    def fields(self, tags: np.ndarray, scores: np.ndarray) -> dict[str, object]:
        """The fields of one track: its tag vector and its mood scores (0-1)."""
        # Thresholds apply to the scores as stored and shown (3 decimals), so
        # `musicnn_happy:0.75..` and `mood:happy` always agree.
        shown = [round(float(score), 3) for score in scores]
        cleared = [
            (score, mood.name)
            for mood, score in zip(self.moods, shown, strict=True)
            if score >= mood.threshold
        ]
        order = np.argsort(-tags, kind="stable")
        top = [self._labels[i] for i in order[: self.max_tags] if tags[i] >= self.tag_threshold]
        fields: dict[str, object] = {
            "mood": ", ".join(name for _, name in sorted(cleared, key=lambda c: -c[0])),
            "musicnn_genre": self._labels[self._genres[np.argmax(tags[self._genres])]],
            "musicnn_tags": ", ".join(top),
        }
        for mood, score in zip(self.moods, shown, strict=True):
            fields[mood.field] = score
        return fields
