"""Model provisioning: metadata, and frozen graphs built once and cached.

The weights are the real MusiCNN checkpoints shipped by the ``musicnn``
package. They are built into an essentia-compatible ``.pb`` (``freeze``) in a
subprocess (tensorflow must never be imported before essentia in the
analyzer's process), then verified by checksum on every load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ModelError
from .freeze import BUILDER

MODELS = ("msd", "mtt")
INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"


@dataclass(frozen=True)
class ModelInfo:
    """What the plugin needs to know about a model (see ``models/*.json``)."""

    name: str
    classes: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    input: str
    predictions: str
    embeddings: str
    checkpoint: str

    @classmethod
    def load(cls, model: str) -> ModelInfo:
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
        name = f"{model}-musicnn"
        raw = json.loads(
            resources.files("beetsplug.musicnn.models").joinpath(f"{name}.json").read_text()
        )
        return cls(
            name=name,
            classes=tuple(raw["classes"]),
            groups={k: tuple(v) for k, v in raw["groups"].items()},
            input=raw["input"],
            predictions=raw["outputs"]["predictions"],
            embeddings=raw["outputs"]["embeddings"],
            checkpoint=raw["source"]["checkpoint"],
        )


@dataclass(frozen=True)
class Graph:
    """A verified frozen graph on disk and the identity of its weights."""

    path: Path
    model_id: str


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_dir(info: ModelInfo) -> Path:
    """Where the ``musicnn`` package keeps this model's checkpoint."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the MusiCNN weights are not installed: run `{INSTALL_HINT}` "
            "(--no-deps: its own pins are obsolete)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / info.checkpoint
    if not (path / ".meta").is_file() or not (path / ".index").is_file():
        raise ModelError(f"the musicnn package has no checkpoint in {path}: reinstall it")
    return path


def provide(
    info: ModelInfo,
    cache_dir: Path,
    graph: Path | None = None,
    report: Callable[[str], None] = lambda _msg: None,
) -> Graph:
    """Return a verified graph for ``info``: the user's file, or our cached one.

    A cached graph is rebuilt when it is missing or its checksum does not
    match the one written when it was built.
    """
    if graph is not None:
        if not graph.is_file():
            raise ModelError(f"model graph {graph} does not exist: fix `musicnn.graph`")
        return Graph(graph, f"{info.name}-{sha256(graph)[:12]}")

    out = cache_dir / f"{info.name}.pb"
    manifest = cache_dir / f"{info.name}.json"
    try:
        meta = json.loads(manifest.read_text())
        if meta.get("builder") != BUILDER:
            report(f"cached model {out} was built by an older version, rebuilding it")
        elif out.is_file() and sha256(out) == meta["sha256"]:
            return Graph(out, meta["model_id"])
        else:
            report(f"cached model {out} is damaged, rebuilding it")
    except (OSError, ValueError, KeyError):
        pass
    return _build(info, out, manifest, report)


def _build(info: ModelInfo, out: Path, manifest: Path, report: Callable[[str], None]) -> Graph:
    source = checkpoint_dir(info)
    out.parent.mkdir(parents=True, exist_ok=True)
    report(f"freezing the {info.name} checkpoint into {out} (once)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "beetsplug.musicnn.freeze", str(source), str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0 or not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"freezing {info.name} failed: {last}")
    # The weights' identity comes from the checkpoint, not the frozen bytes,
    # so a rebuild never makes the library look analyzed by another model.
    meta = {
        "builder": BUILDER,
        "sha256": sha256(out),
        "model_id": f"{info.name}-{sha256(source / '.data-00000-of-00001')[:12]}",
        "source": str(source),
    }
    manifest.write_text(json.dumps(meta, indent=2) + "\n")
    return Graph(out, meta["model_id"])
