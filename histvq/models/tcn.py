"""Multi-stage dilated temporal convolution network (MS-TCN style), masked for padding.

Used by the encoder and the spatial decoder. Every stage output is multiplied by the frame
mask, including right after the input projection, so padded frames stay exactly zero and
never leak into valid frames through the dilated convolutions: a sequence gives the same
outputs alone or padded inside a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class _KeepMaskScale(torch.autograd.Function):
    """x * keep * scale that saves the boolean mask (1 byte per element) for backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, keep: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x * keep.to(x.dtype).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad * keep.to(grad.dtype).mul_(ctx.scale), None, None


def random_bytes(shape: torch.Size) -> Tensor:
    """Uniform random bytes of ``shape`` from torch's CPU generator, drawn as 64-bit words
    (eight bytes per draw: about 7x faster than drawing bytes one by one)."""
    count = math.prod(shape)
    words = torch.randint(-(2**63), 2**63 - 1, (-(-count // 8),), dtype=torch.int64)
    return words.view(torch.uint8)[:count].view(shape)


class ByteDropout(nn.Module):
    """Inverted dropout that draws one random byte per element on CPU.

    torch's CPU Bernoulli sampling costs more than the convolutions of a narrow TCN (over
    half of a training step); comparing random bytes with a threshold is several times
    cheaper. The drop probability is rounded to a multiple of 1/256 (exact for 0.5) and the
    kept values are rescaled for that rounded probability, so the expectation is unchanged.
    The mask is kept as booleans for the backward pass (a quarter of a float mask's memory).
    On other devices it is ``torch.nn.functional.dropout``.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.threshold = round(p * 256)
        self.scale = 256.0 / (256 - self.threshold)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        keep = random_bytes(x.shape) >= self.threshold
        return _KeepMaskScale.apply(x, keep, self.scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DilatedResidualLayer(nn.Module):
    """Kernel-3 dilated conv, ReLU, 1x1 conv, dropout, residual add, mask."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = ByteDropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out = self.conv_1x1(F.relu(self.conv_dilated(x)))
        out = x + self.dropout(out)
        return out * mask.to(out.dtype)


class TCNStage(nn.Module):
    """1x1 conv to ``hidden`` maps, ``num_layers`` dilated residual layers (1, 2, 4, ...), 1x1 out."""

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int, num_layers: int, dropout: float
    ):
        super().__init__()
        self.conv_in = nn.Conv1d(in_channels, hidden, 1)
        self.layers = nn.ModuleList(
            DilatedResidualLayer(hidden, 2**i, dropout) for i in range(num_layers)
        )
        self.conv_out = nn.Conv1d(hidden, out_channels, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Masked so padding stays zero; the mask follows the activations' dtype (a float32
        mask would promote bf16 activations under autocast)."""
        h = self.conv_in(x)
        h = h * mask.to(h.dtype)
        for layer in self.layers:
            h = layer(h, mask)
        out = self.conv_out(h)
        return out * mask.to(out.dtype)


class MultiStageTCN(nn.Module):
    """Stages chained in_channels -> stage_channels[0] -> ... -> stage_channels[-1].

    ``activation_checkpointing`` recomputes each stage in the backward pass instead of
    keeping its activations: much less memory on long sequences for about a third more
    compute.
    """

    def __init__(
        self,
        in_channels: int,
        stage_channels: Sequence[int],
        hidden: int = 128,
        num_layers: int = 3,
        dropout: float = 0.5,
        activation_checkpointing: bool = False,
    ):
        super().__init__()
        if not stage_channels:
            raise ValueError("MultiStageTCN needs at least one stage")
        dims = [in_channels, *stage_channels]
        self.stages = nn.ModuleList(
            TCNStage(dims[i], dims[i + 1], hidden, num_layers, dropout)
            for i in range(len(stage_channels))
        )
        self.activation_checkpointing = activation_checkpointing

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: (B, C_in, T); mask: (B, 1, T) float with 1 on valid frames."""
        for stage in self.stages:
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(stage, x, mask, use_reentrant=False)
            else:
                x = stage(x, mask)
        return x


def stage_widths(intermediate: int, final: int, num_stages: int) -> list[int]:
    """Output widths of the stages: ``intermediate`` for all but the last, then ``final``."""
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    return [max(1, intermediate)] * (num_stages - 1) + [final]
