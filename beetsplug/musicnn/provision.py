"""Model provisioning: metadata, and frozen graphs built once and cached.

The weights are the real MusiCNN checkpoints of musicnn 0.1.0, shipped in
our own package (``models/``, byte for byte, so that installing the plugin is
all it takes). They are built into an essentia-compatible ``.pb``
(``freeze``) in a subprocess (tensorflow must never be imported before
essentia in the analyzer's process), then verified by checksum on every load.
Backend torch gets the same weights exported to a ``.npz`` the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ModelError
from .freeze import BUILDER, WEIGHTS

MODELS = ("msd", "mtt")
PACKAGE = "beetsplug.musicnn.models"  # the metadata and the checkpoints
DATA = ".data-00000-of-00001"  # a checkpoint's weights, next to its ".index"


@dataclass(frozen=True)
class ModelInfo:
    """What the plugin needs to know about a model (see ``models/*.json``)."""

    name: str
    classes: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    input: str
    predictions: str
    embeddings: str
    checkpoint: str  # musicnn's own name for it (``MSD_musicnn``), where it comes from

    @classmethod
    def load(cls, model: str) -> ModelInfo:
        if model not in MODELS:
            raise ModelError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
        name = f"{model}-musicnn"
        raw = json.loads(resources.files(PACKAGE).joinpath(f"{name}.json").read_text())
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
    """A verified frozen graph (or the weights for torch) on disk, and its weights' identity."""

    path: Path
    model_id: str


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint(info: ModelInfo) -> Path:
    """The prefix of the shipped checkpoint: ``PREFIX.index``, ``PREFIX{DATA}``, ``PREFIX.meta``.

    A real path, as TensorFlow's reader opens the files itself (pip installs
    packages unzipped, so the package data is a folder on disk).
    """
    folder = Path(str(resources.files(PACKAGE)))
    prefix = folder / info.name
    if not all(Path(f"{prefix}{ext}").is_file() for ext in (".index", DATA)):
        raise ModelError(
            f"the {info.name} weights are missing from {folder}: reinstall the plugin "
            "(`pip install --force-reinstall --no-deps .` in its checkout)"
        )
    return prefix


def checkpoint_id(info: ModelInfo) -> str:
    """The identity of the shipped weights, as recorded with every analysis."""
    return f"{info.name}-{sha256(Path(f'{checkpoint(info)}{DATA}'))[:12]}"


def provide(
    info: ModelInfo,
    cache_dir: Path,
    graph: Path | None = None,
    report: Callable[[str], None] = lambda _msg: None,
    structure: str = "band",
) -> Graph:
    """Return a verified graph for ``info``: the user's file, or our cached one.

    ``structure`` is one of ``freeze.STRUCTURES``, or ``freeze.WEIGHTS`` for
    backend torch: the same network and weights, so the model identity is
    the same. A cached file is rebuilt when it is missing or its checksum
    does not match the one written when it was built.
    """
    if graph is not None:
        if structure == WEIGHTS:
            raise ModelError(
                f"backend torch cannot run the TensorFlow graph {graph}: unset musicnn.graph, "
                "or set musicnn.backend to openvino or tensorflow"
            )
        if not graph.is_file():
            raise ModelError(f"model graph {graph} does not exist: fix `musicnn.graph`")
        return Graph(graph, f"{info.name}-{sha256(graph)[:12]}")

    name = info.name if structure == "band" else f"{info.name}-{structure}"
    out = cache_dir / f"{name}{'.npz' if structure == WEIGHTS else '.pb'}"
    manifest = cache_dir / f"{name}.json"
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
    return _build(info, out, manifest, report, structure)


def _build(
    info: ModelInfo, out: Path, manifest: Path, report: Callable[[str], None], structure: str
) -> Graph:
    source = checkpoint(info)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"cannot keep the frozen model in {out.parent} ({exc.strerror}): "
            "set musicnn.model_dir to a writable folder"
        ) from exc
    report(f"freezing the {info.name} checkpoint into {out} (once)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    # Run in the cache folder: ``-m`` puts the working directory first on
    # sys.path, and a checkout's own beetsplug/ there would shadow this package.
    paths = [str(source.absolute()), str(out.absolute())]
    proc = subprocess.run(
        [sys.executable, "-m", "beetsplug.musicnn.freeze", *paths, structure],
        capture_output=True,
        text=True,
        env=env,
        cwd=out.parent,
    )
    if proc.returncode != 0 or not out.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelError(f"freezing {info.name} failed: {last}")
    # The weights' identity comes from the checkpoint, not the frozen bytes,
    # so a rebuild never makes the library look analyzed by another model.
    meta = {
        "builder": BUILDER,
        "sha256": sha256(out),
        "model_id": checkpoint_id(info),
        "source": str(source),
    }
    manifest.write_text(json.dumps(meta, indent=2) + "\n")
    return Graph(out, meta["model_id"])
