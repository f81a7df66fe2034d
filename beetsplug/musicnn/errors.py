"""Every expected failure that is not one file's fault.

Each stops the run with its message, which names the cause and the fix;
the beets glue turns any of them into one ``ui.UserError`` line. A file
that cannot be analyzed is not an error here: it becomes a recorded
``Failure`` and the run goes on.
"""

from __future__ import annotations


class MusicnnError(Exception):
    """Base of the expected failures; the message is one line that says the fix."""


class ConfigError(MusicnnError):
    """An option's value cannot work; the message names the option and what it allows."""


class MoodConfigError(ConfigError):
    """The mood configuration cannot work with this model."""


class ModelError(MusicnnError):
    """The model cannot be provided or loaded."""


class DecoderError(MusicnnError):
    """The decoder cannot run at all (missing, not executable): no file's fault."""


class StoreError(MusicnnError):
    """The plugin database cannot be read or written (damaged, disk full, read-only)."""


class Busy(MusicnnError):
    """Another process is analyzing this library."""


class NotReady(MusicnnError):
    """Nothing to compare yet; the message says what to run."""
