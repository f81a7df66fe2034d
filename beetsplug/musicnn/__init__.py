"""beets-musicnn: moods, genres and tags from the MusiCNN network, for beets."""

from .plugin import MusicnnPlugin

__all__ = ["MusicnnPlugin"]
