"""From stored tag vectors to the fields users query: moods, genre, tags.

MusiCNN's MSD sigmoids are tiny on real music (a clearly happy song may
score 0.006 for "happy"), so raw values mean nothing to a user. Each mood
score is instead the track's percentile rank in the analyzed library:
``musicnn_happy`` 0.8 means "happier than 80% of your library". The raw
activations stay in the plugin database, so the ranks can be recomputed
whenever the library or the configuration changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import MoodConfigError


@dataclass(frozen=True)
class Mood:
    """A mood label, the model tags whose mean activation scores it, and its threshold."""

    name: str
    tags: tuple[str, ...]
    threshold: float

    @property
    def field(self) -> str:
        return f"musicnn_{self.name}"


def parse_moods(config: Mapping[str, Mapping[str, object]]) -> list[Mood]:
    """Moods from the ``moods`` configuration; labels may not contain each other.

    A mood whose tag list is empty is switched off. ``mood:happy`` is a
    substring query, so a label inside another label (``happy`` in
    ``unhappy``) would match tracks it should not.
    """
    moods = []
    for name, spec in config.items():
        tags = spec.get("tags", [])
        if not isinstance(tags, list | tuple):
            raise MoodConfigError(f"mood {name!r}: tags must be a list of model tags")
        if tags:
            moods.append(Mood(name, tuple(map(str, tags)), float(spec.get("threshold", 0.75))))
    for a in moods:
        for b in moods:
            if a is not b and a.name.lower() in b.name.lower():
                raise MoodConfigError(
                    f"mood label {a.name!r} is part of {b.name!r}: `mood:{a.name}` would match both"
                )
    return moods


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

    def __init__(
        self,
        classes: Sequence[str],
        genres: Sequence[str],
        moods: Sequence[Mood],
        tag_threshold: float,
        max_tags: int,
    ):
        index = {name: i for i, name in enumerate(classes)}
        for mood in moods:
            unknown = [t for t in mood.tags if t not in index]
            if unknown:
                raise MoodConfigError(
                    f"mood {mood.name!r} uses tags the model does not have: {', '.join(unknown)}"
                )
        self.moods = list(moods)
        self._mood_columns = [[index[t] for t in m.tags] for m in moods]
        self._genres = np.array([index[g] for g in genres])
        self._labels = [name.lower() for name in classes]
        self.tag_threshold = tag_threshold
        self.max_tags = max_tags

    def raw_moods(self, tags: np.ndarray) -> np.ndarray:
        """(n, classes) activations to (n, moods) raw mood scores."""
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
