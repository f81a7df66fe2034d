"""Writing ``mood`` into each file's standard mood tag.

The tag is registered on MediaFile only, not as a beets media field: beets
would otherwise read it back on ``beet update`` and overwrite the field
with whatever the file holds. A mood the plugin did not write (someone
tagged it by hand) is kept unless forced; the plugin database remembers
what it wrote. After writing, the file's new size and mtime are stored, so
our own write never makes the file look changed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mediafile import (
    ASFStorageStyle,
    MediaField,
    MediaFile,
    MP3StorageStyle,
    MP4StorageStyle,
    StorageStyle,
    UnreadableFileError,
)

if TYPE_CHECKING:
    from beets.library import Item, Library

    from .runner import Log
    from .store import Store

MOOD_TAG = MediaField(
    MP3StorageStyle("TMOO"),
    MP4StorageStyle("----:com.apple.iTunes:MOOD"),
    StorageStyle("MOOD"),
    ASFStorageStyle("WM/Mood"),
)


def register_mood_tag() -> None:
    """Teach MediaFile the standard mood tag, unless something already did."""
    if "mood" not in MediaFile.fields():
        MediaFile.add_field("mood", MOOD_TAG)


def write_moods(
    lib: Library, store: Store, moods: dict[int, str], force: bool, log: Log
) -> tuple[int, int]:
    """Write ``moods`` (item id to the ``mood`` field) into the files that need it.

    Only items whose field differs from what was last written are opened,
    so a run with nothing new touches no file. Returns (written, kept).
    """
    written_before = store.written_moods()
    written = kept = 0
    for item_id, mood in moods.items():
        if written_before.get(item_id) == mood and not force:
            continue
        item = lib.get_item(item_id)
        if item is None:
            continue
        try:
            on_file = MediaFile(item.path).mood or ""
        except (UnreadableFileError, OSError) as exc:
            log.warning("{}: cannot read tags: {}", os.fsdecode(item.path), exc)
            continue
        if on_file == mood:
            store.set_written_mood(item.id, mood)
            continue
        if on_file and on_file != written_before.get(item.id) and not force:
            log.info("{}: keeps its own mood tag {!r} (-f replaces it)", item.filepath, on_file)
            kept += 1
            continue
        if _write(item, mood, store):
            written += 1
    return written, kept


def _write(item: Item, mood: str, store: Store) -> bool:
    if not item.try_write(tags={"mood": mood or None}):
        return False
    item.store()
    st = os.stat(item.path)
    store.touch(item.id, item.path, st.st_size, st.st_mtime)
    store.set_written_mood(item.id, mood)
    return True
