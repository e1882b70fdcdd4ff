"""Multi-stage dilated temporal convolution network (MS-TCN style), masked for padding.

Used by the encoder and the spatial decoder. Every stage output is multiplied by the frame
mask, including right after the input projection, so padded frames stay exactly zero and
never leak into valid frames through the dilated convolutions: a sequence gives the same
outputs alone or padded inside a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


class DilatedResidualLayer(nn.Module):
    """Kernel-3 dilated conv, ReLU, 1x1 conv, dropout, residual add, mask."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        out = self.conv_1x1(F.relu(self.conv_dilated(x)))
        return (x + self.dropout(out)) * mask


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
        h = self.conv_in(x) * mask
        for layer in self.layers:
            h = layer(h, mask)
        return self.conv_out(h) * mask


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
