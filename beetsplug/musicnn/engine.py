"""Which engine runs the model: backend, precision, graph structure and batch size.

Decided once per run from the settings and the machine. ``auto`` picks the
fastest engine installed (OpenVINO, else TensorFlow) and bf16 where the
CPU computes bf16 natively. The structure and batch size each engine gets
come from ``bench/engines.py``'s sweep, per CPU kind: rerun it on your
machine and set ``batch_size`` if it disagrees (docs/performance.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

# Measured by bench/engines.py (docs/performance.md): per CPU kind, the graph
# structure and batch size each engine runs fastest at, short of the batch
# sizes whose activations cost hundreds of MB more for a few percent.
SWEEP: dict[tuple[str, str, str], tuple[str, int]] = {
    # (CPU kind, backend, precision): (structure, batch size)
    # 2-core AMD EPYC (Zen 5), AVX-512 with AVX512_BF16: 196 patches/s at 16
    # (198 at 128, for 1.4 GB more), 126 in f32; TensorFlow 97 at 1, 107 at 64.
    ("avx512_bf16", "openvino", "bf16"): ("original", 16),
    ("avx512_bf16", "openvino", "f32"): ("original", 16),
    ("avx512_bf16", "tensorflow", "f32"): ("original", 1),
    # 2-core Intel Xeon, AVX-512 with AMX-BF16 (issue 11's table: batch 1/8/64
    # only): bf16 98/99/115 on the original structure, 68/78/94 on band.
    ("amx", "openvino", "bf16"): ("original", 8),
    ("amx", "openvino", "f32"): ("band", 8),
}
# Unmeasured kinds: OpenVINO as on both kinds measured; TensorFlow as the
# AVX2-only sweep of issue 4 (batch 1 fastest).
DEFAULTS = {"openvino": ("original", 16), "tensorflow": ("band", 1), "essentia": ("band", 1)}


@dataclass(frozen=True)
class Engine:
    backend: str  # openvino, tensorflow or essentia
    precision: str  # f32 or bf16 (asked for: the compiled model says what ran)
    structure: str  # freeze.STRUCTURES
    batch_size: int

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}, batch {self.batch_size}"


@functools.cache
def cpu_kind(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``amx`` (AMX-BF16), ``avx512_bf16``, or ``other``: how this CPU computes bf16."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return "other"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    if "amx_bf16" in flags:
        return "amx"
    return "avx512_bf16" if "avx512_bf16" in flags else "other"


def openvino_missing() -> str | None:
    """Why OpenVINO cannot run here (not installed, or broken), or None."""
    try:
        import openvino  # noqa: F401
    except Exception as exc:  # a broken install raises anything: ImportError, OSError...
        return f"{exc.__class__.__name__}: {exc}"
    return None


def choose(
    backend: str,
    precision: str,
    batch_size: int | None,
    warn: Callable[[str], None],
    kind: str | None = None,
) -> Engine:
    """The engine for these settings (``auto`` values resolved) on this CPU ``kind``."""
    if backend in ("auto", "openvino") and (why := openvino_missing()) is not None:
        warn(f"OpenVINO cannot run ({why}): using TensorFlow instead")
        backend = "tensorflow"
    elif backend == "auto":
        backend = "openvino"
    kind = kind or cpu_kind()
    if precision == "auto":
        precision = "bf16" if backend == "openvino" and kind != "other" else "f32"
    elif precision == "bf16" and backend != "openvino":
        raise ConfigError(
            f"musicnn.precision: bf16 runs on the openvino backend only, not {backend}: "
            "use precision f32 or auto"
        )
    structure, best_batch = SWEEP.get((kind, backend, precision), DEFAULTS[backend])
    return Engine(backend, precision, structure, batch_size or best_batch)
