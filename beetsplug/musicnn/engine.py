"""Which engine runs the model: backend, precision, graph structure and batch size.

Decided once per run from the settings and the machine. ``auto`` picks
torch on a CUDA GPU where torch is installed and sees one, else the
fastest CPU engine installed (OpenVINO, else TensorFlow); bf16 on the GPU,
and on a CPU that computes bf16 natively. The structure and batch size
each engine gets come from ``bench/engines.py``'s sweep, per CPU kind
(``bench/gpu.py``'s on a GPU): rerun it on your machine and set
``batch_size`` if it disagrees (docs/performance.md). torch is imported
here only when backend or device ask for it, or a GPU's device node exists.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .freeze import WEIGHTS

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
    # torch on a CUDA GPU: not measured yet. A large cross-track batch, to be
    # set by bench/gpu.py's sweep on a GPU (docs/performance.md).
    ("cuda", "torch", "bf16"): (WEIGHTS, 256),
    ("cuda", "torch", "fp16"): (WEIGHTS, 256),
    ("cuda", "torch", "f32"): (WEIGHTS, 256),
}
# Unmeasured kinds: OpenVINO as on both kinds measured; TensorFlow as the
# AVX2-only sweep of issue 4 (batch 1 fastest); torch on a CPU as OpenVINO.
DEFAULTS = {
    "openvino": ("original", 16),
    "tensorflow": ("band", 1),
    "essentia": ("band", 1),
    "torch": (WEIGHTS, 16),
}
# Device nodes of a GPU torch may see (NVIDIA, WSL, ROCm): without one,
# backend auto does not import torch (a second and 280 MB) to ask.
GPU_NODES = (Path("/dev/nvidiactl"), Path("/dev/dxg"), Path("/dev/kfd"))


@dataclass(frozen=True)
class Engine:
    backend: str  # openvino, tensorflow, essentia or torch
    precision: str  # f32, bf16 or fp16 (asked for: the compiled model says what ran)
    structure: str  # freeze.STRUCTURES, or freeze.WEIGHTS for torch
    batch_size: int
    device: str = "cpu"  # torch's: cpu or cuda:N

    def __str__(self) -> str:
        return f"{self.backend} {self.precision} {self.device}, batch {self.batch_size}"


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


def torch_missing() -> str | None:
    """Why torch cannot run here (not installed, or broken), or None; imports it."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    try:
        import torch  # noqa: F401
    except Exception as exc:  # a broken install raises anything
        return f"{exc.__class__.__name__}: {exc}"
    return None


def cuda_count() -> int:
    """How many CUDA GPUs torch sees (torch must import)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _gpu_for_auto() -> bool:
    """Whether backend auto takes torch: a GPU node, torch, and a GPU torch sees."""
    return any(node.exists() for node in GPU_NODES) and torch_missing() is None and cuda_count() > 0


def _torch_device(device: str, asked_by: str) -> str:
    """The torch device for ``device`` (auto: the first GPU, else the CPU), or a ConfigError."""
    if (why := torch_missing()) is not None:
        raise ConfigError(
            f"musicnn.{asked_by}: needs torch, which cannot run ({why}): "
            "pip install torch, or set backend and device to auto"
        )
    if device == "cpu":
        return device
    count = cuda_count()
    if device == "auto":
        return "cuda:0" if count else "cpu"
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        raise ConfigError(
            f"musicnn.device: {device} is not usable: torch sees {count} CUDA GPU(s)"
            + ("" if count else " (a CPU-only torch, or no driver)")
        )
    return f"cuda:{index}"


def choose(
    backend: str,
    precision: str,
    batch_size: int | None,
    warn: Callable[[str], None],
    kind: str | None = None,
    device: str = "auto",
) -> Engine:
    """The engine for these settings (``auto`` values resolved) on this CPU ``kind``.

    ``device`` is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``: a GPU runs
    backend torch only.
    """
    gpu_asked = device.startswith("cuda")
    if backend == "auto" and (gpu_asked or (device == "auto" and _gpu_for_auto())):
        backend = "torch"
    if backend == "torch":
        device = _torch_device(device, "device" if gpu_asked else "backend")
    elif gpu_asked:
        raise ConfigError(
            f"musicnn.device: {device} runs backend torch only, not {backend}: "
            "set backend to torch or auto"
        )
    else:
        device = "cpu"
    if backend in ("auto", "openvino") and (why := openvino_missing()) is not None:
        warn(f"OpenVINO cannot run ({why}): using TensorFlow instead")
        backend = "tensorflow"
    elif backend == "auto":
        backend = "openvino"
    on_gpu = device != "cpu"
    kind = "cuda" if on_gpu else kind or cpu_kind()
    if precision == "auto":
        native = on_gpu or (backend == "openvino" and kind != "other")
        precision = "bf16" if native else "f32"
    elif precision == "bf16" and backend not in ("openvino", "torch"):
        raise ConfigError(
            f"musicnn.precision: bf16 runs on the openvino and torch backends only, not {backend}: "
            "use precision f32 or auto"
        )
    elif precision == "fp16" and not on_gpu:
        raise ConfigError(
            "musicnn.precision: fp16 runs on backend torch with a CUDA device only: "
            "use precision bf16, f32 or auto"
        )
    structure, best_batch = SWEEP.get((kind, backend, precision), DEFAULTS[backend])
    return Engine(backend, precision, structure, batch_size or best_batch, device)
