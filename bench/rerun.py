"""A plain re-run of `beet musicnn` over a 10,000-item library already analyzed.

Run: .venv/bin/python -m bench.rerun [ITEMS]

Builds a library whose items point at small real files, with stored
analyses (random activations) whose stamps match those files, then times
real `beet musicnn` processes: the first derives every item's fields from
the plugin database (no audio decoded), the second is the plain re-run
that finds nothing to do. `beet version` is timed beside them as the
floor of any `beet` command.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from beets.library import Item, Library

from beetsplug.musicnn.analyzer import Result
from beetsplug.musicnn.decode import Fingerprint
from beetsplug.musicnn.provision import ModelInfo, provide
from beetsplug.musicnn.store import Stamp, Store
from bench.common import built
from tests.beet import timed_beet

CACHE = Path(__file__).parent / "out" / "models"


def build(root: Path, count: int) -> None:
    graph = provide(ModelInfo.load("msd"), CACHE)
    files = root / "music"
    files.mkdir()
    lib = Library(str(root / "library.db"), str(files))
    store = Store(root / "musicnn.db")
    rng = np.random.default_rng(0)
    with lib.transaction():
        for i in range(count):
            path = files / f"{i:05d}.mp3"
            path.write_bytes(b"\0" * 64)
            item = Item(path=os.fsencode(path), title=f"track {i}", artist=f"artist {i % 97}")
            lib.add(item)
            st = path.stat()
            fingerprint = Fingerprint(f"{i:020d}", 200.0)
            result = Result(
                item.id, item.path, rng.beta(0.5, 20, 50).astype(np.float32),
                rng.normal(size=200).astype(np.float32), 60, 200.0, fingerprint, -20.0,
            )  # fmt: skip
            stamp = Stamp(st.st_size, st.st_mtime, fingerprint, graph.model_id, 187)
            store.save(result, stamp, "tensorflow f32")
    store.close()
    lib._close()
    (root / "config.yaml").write_text(
        f"library: {root / 'library.db'}\ndirectory: {files}\nplugins: musicnn\n"
        f"musicnn: {{model_dir: {CACHE}}}\n"
    )


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


def main(count: int = 10_000) -> None:
    with built(build, count) as root:
        floor, _ = timed_beet(root, "version")
        first, out = timed_beet(root, "musicnn")
        summary = _last_line(out.stderr)
        print(f"first run (derives all fields): {first:.2f} s   [{summary}]")
        again, out = timed_beet(root, "musicnn")
        summary = _last_line(out.stderr)
        print(f"plain re-run:                   {again:.2f} s   [{summary}]")
        print(f"beet version (floor):           {floor:.2f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
