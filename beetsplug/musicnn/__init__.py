"""beets-musicnn."""
