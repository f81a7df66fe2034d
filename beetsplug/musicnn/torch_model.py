"""Backend ``torch``: the MusiCNN network as a ``torch.nn.Module``, on the CPU or a CUDA GPU.

The network is musicnn's own (``musicnn.models.build_musicnn``), written
here by hand; its weights are the checkpoint's tensors, exported to a plain
``.npz`` by the freeze subprocess (``freeze.WEIGHTS``), so this process
never imports TensorFlow. Importing this module imports torch:
``inference`` does so only when backend torch is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelError
from .inference import check_shape

EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class _Tensors:
    """The exported checkpoint tensors as float32 torch tensors, by musicnn's layer numbers."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        self._arrays = arrays

    def get(self, name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self._arrays[name], np.float32))

    def norm(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch norm ``index`` at inference: ``x * scale + offset``."""
        name = "batch_normalization" + (f"_{index}" if index else "")
        gamma, beta, mean, variance = (
            self.get(f"{name}/{key}") for key in ("gamma", "beta", "moving_mean", "moving_variance")
        )
        scale = gamma / torch.sqrt(variance + EPSILON)
        return scale, beta - mean * scale

    def conv(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv ``index``'s kernel in torch's (out, in, time, frequency) order, and its bias."""
        name = "conv2d" + (f"_{index}" if index else "")
        return self.get(f"{name}/kernel").permute(3, 2, 0, 1), self.get(f"{name}/bias")


class _Affine(nn.Module):
    """A batch norm at inference, its channels followed by ``trailing`` other dimensions."""

    def __init__(self, scale: torch.Tensor, offset: torch.Tensor, trailing: int = 0):
        super().__init__()
        shape = (-1,) + (1,) * trailing
        self.register_buffer("scale", scale.reshape(shape))
        self.register_buffer("offset", offset.reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset


class _FrontBlock(nn.Module):
    """A front-end block: conv, ReLU, batch norm, max over frequency, as in musicnn.

    Computed pooling first, as freeze.py's ``band`` structure is: ReLU and
    batch norm are monotonic per filter, so the max over frequency of
    ``s * relu(z + b) + o`` is ``s * relu(max(z) + b) + o``, with the min
    where a filter's scale ``s`` is negative. They then run on a tensor up
    to 96 times smaller, and the conv's output is read once.
    """

    def __init__(self, tensors: _Tensors, conv: int):
        super().__init__()
        kernel, bias = tensors.conv(conv)
        # Time padded as TensorFlow's SAME (an even kernel's extra frame after;
        # musicnn's 3 frames each side of its 7-frame kernels are the same), then VALID.
        frames = kernel.shape[2]
        self.time_pad = ((frames - 1) // 2, frames // 2)
        scale, offset = tensors.norm(conv + 1)
        self.kernel = nn.Parameter(kernel)
        self.bias = nn.Parameter(bias[:, None])
        self.norm = _Affine(scale, offset, trailing=1)
        self.register_buffer("rising", (scale >= 0)[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 1, time, frequency) in, (n, filters, time) out."""
        z = F.conv2d(F.pad(x, (0, 0, *self.time_pad)), self.kernel)
        low, high = torch.aminmax(z, dim=3)
        return self.norm(F.relu(torch.where(self.rising, high, low) + self.bias))


class _MidBlock(nn.Module):
    """A mid-end block: conv over time (7 frames, all features), ReLU, batch norm."""

    def __init__(self, tensors: _Tensors, conv: int):
        super().__init__()
        kernel, bias = tensors.conv(conv)  # (filters, 1, 7, features)
        self.conv = nn.Conv1d(kernel.shape[3], kernel.shape[0], kernel.shape[2], padding=3)
        self.conv.weight = nn.Parameter(kernel[:, 0].transpose(1, 2).contiguous())
        self.conv.bias = nn.Parameter(bias)
        self.norm = _Affine(*tensors.norm(conv + 1), trailing=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, features, time) in, (n, filters, time) out."""
        return self.norm(F.relu(self.conv(x)))


def _dense(tensors: _Tensors, name: str) -> nn.Linear:
    kernel = tensors.get(f"{name}/kernel")
    layer = nn.Linear(*kernel.shape)
    layer.weight = nn.Parameter(kernel.T.contiguous())
    layer.bias = nn.Parameter(tensors.get(f"{name}/bias"))
    return layer


class MusiCNN(nn.Module):
    """musicnn's network: (n, 187, 96) log-mel patches to tags (sigmoid) and the 200-d embedding.

    The embedding is ``model/dense/BiasAdd``, before its ReLU, as the
    frozen graph's embedding output.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        super().__init__()
        tensors = _Tensors(arrays)
        self.input_norm = _Affine(*tensors.norm(0))
        # Timbral 7 x 38 and 7 x 67 kernels, then temporal 128, 64 and 32 x 1.
        self.front = nn.ModuleList([_FrontBlock(tensors, i) for i in range(5)])
        self.mid = nn.ModuleList([_MidBlock(tensors, i) for i in (5, 6, 7)])
        self.pool_norm = _Affine(*tensors.norm(9))
        self.dense = _dense(tensors, "dense")
        self.dense_norm = _Affine(*tensors.norm(10))
        self.classify = _dense(tensors, "dense_1")
        self.requires_grad_(False)

    def forward(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tags (n, classes) and embeddings (n, 200) of (n, 187, 96) patches."""
        x = self.input_norm(patches)[:, None]  # one channel: (n, 1, time, frequency)
        front = torch.cat([block(x) for block in self.front], dim=1)  # (n, 561, time)
        features = [front]
        for i, block in enumerate(self.mid):  # the second and third are residual
            out = block(features[-1])
            features.append(out + features[-1] if i else out)
        joined = torch.cat(features, dim=1)  # (n, 753, time)
        # musicnn flattens concat([max, mean]) per feature: max0, mean0, max1, ...
        pooled = torch.stack([joined.amax(dim=2), joined.mean(dim=2)], dim=2).flatten(1)
        embedding = self.dense(self.pool_norm(pooled))
        logits = self.classify(self.dense_norm(F.relu(embedding)))
        return torch.sigmoid(logits), embedding


def load(weights: Path) -> MusiCNN:
    """The network with the exported weights in ``weights``; a ModelError if it is no such file."""
    try:
        with np.load(weights) as arrays:
            return MusiCNN(dict(arrays)).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(
            f"{weights} holds no usable MusiCNN weights ({exc.__class__.__name__}): delete it"
        ) from exc


class TorchPredictor:
    """The network on ``device`` (``cpu``, ``cuda:N``) at ``precision`` (f32, bf16, fp16).

    A CUDA out-of-memory error halves the batch and tries again: ``limit``
    keeps the size that fits, so later batches are split to it up front
    and no file fails for memory.
    """

    def __init__(
        self, weights: Path, precision: str = "f32", device: str = "cpu", threads: int = 0
    ):
        self.device = torch.device(device)
        self.dtype = DTYPES[precision]
        if self.device.type == "cuda" and precision == "f32":
            torch.backends.fp32_precision = "ieee"  # f32 means f32: no TF32 convs or products
        if threads:
            torch.set_num_threads(threads)
        try:
            self.model = load(weights).to(self.device, self.dtype)
        except RuntimeError as exc:  # CUDA: no such device, driver too old, out of memory...
            raise ModelError(f"torch cannot use {device}: {exc}".splitlines()[0]) from exc
        self.engine = f"torch {precision} {self.device.type}"
        self.limit = 1 << 30  # the largest batch known to fit

    @torch.inference_mode()
    def predict(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tag activations (n, classes) and embeddings (n, 200) of (n, 187, 96) patches."""
        check_shape(patches)
        host = torch.from_numpy(np.ascontiguousarray(patches, np.float32))
        tags, embeddings = [], []
        done = 0
        while done < len(host):
            chunk = host[done : done + self.limit]
            try:
                out = self.model(chunk.to(self.device, self.dtype))
            except torch.OutOfMemoryError:
                if len(chunk) == 1:
                    raise
                self.limit = len(chunk) // 2
                continue
            tags.append(out[0].float().cpu().numpy())
            embeddings.append(out[1].float().cpu().numpy())
            done += len(chunk)
        return np.concatenate(tags), np.concatenate(embeddings)
