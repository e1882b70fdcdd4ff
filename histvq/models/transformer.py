"""A second encoder: a joint-wise temporal transformer with local (windowed) attention.

Like the TCN encoder, every joint's C-channel time series is encoded on its own (joints and
persons folded into the batch) and the per-frame tokens concatenate all joints. Each frame
attends to the frames at most ``window`` frames away (sliding-window attention, as the local
attention of ASFormer-style action segmentation models), so cost grows linearly with the
sequence length. Padding never reaches a valid frame: padded frames are excluded as keys,
positions count from each sequence's own first frame, and outputs at padded frames are zero,
so a sequence gives the same outputs alone or padded inside a batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from histvq.models.joints import fold_joints, joint_batch_to_tokens, joint_frame_mask
from histvq.models.tcn import ByteDropout


def sinusoidal_positions(length: int, channels: int, device: torch.device) -> Tensor:
    """(channels, length) sine/cosine position codes of frames 0 .. length - 1."""
    position = torch.arange(length, device=device, dtype=torch.float32)[None, :]
    half = channels // 2
    frequency = torch.exp(
        torch.arange(half, device=device, dtype=torch.float32) * (-math.log(10_000.0) / half)
    )[:, None]
    codes = torch.zeros(channels, length, device=device)
    codes[0 : 2 * half : 2] = torch.sin(position * frequency)
    codes[1 : 2 * half : 2] = torch.cos(position * frequency)
    return codes


def local_attention(
    q: Tensor, k: Tensor, v: Tensor, valid: Tensor, window: int, dropout: float = 0.0
) -> Tensor:
    """Multi-head attention of every frame to the frames at most ``window`` away.

    q, k, v: (B, H, T, d); valid: (B, T) bool. Frames are processed in blocks of ``window``
    queries against the keys of the block and its two neighbours (3 x window keys), with a
    band mask |t - s| <= window; padded keys are masked except a query's own frame, so every
    row has a key and padded queries stay finite. Memory is O(B H T window).
    """
    b, h, t, d = q.shape
    w = max(1, int(window))
    blocks = -(-t // w)
    pad = blocks * w - t

    def padded(x: Tensor) -> Tensor:
        return F.pad(x, (0, 0, w, pad + w))  # one block of padding on each side

    kp, vp = padded(k), padded(v)
    validp = F.pad(valid, (w, pad + w), value=False)
    qb = F.pad(q, (0, 0, 0, pad)).reshape(b, h, blocks, w, d)
    # keys of block i: padded positions i*w .. i*w + 3w (frames i*w - w .. i*w + 2w)
    index = torch.arange(blocks, device=q.device)[:, None] * w + torch.arange(
        3 * w, device=q.device
    )
    kb = kp[:, :, index]  # (B, H, blocks, 3w, d)
    vb = vp[:, :, index]
    key_valid = validp[:, index]  # (B, blocks, 3w)
    query_frame = torch.arange(blocks * w, device=q.device).reshape(blocks, w, 1)
    key_frame = (index - w)[:, None, :]  # (blocks, 1, 3w)
    band = (query_frame - key_frame).abs() <= w
    own = query_frame == key_frame
    allowed = band[None] & (key_valid[:, :, None, :] | own[None])  # (B, blocks, w, 3w)
    out = F.scaled_dot_product_attention(
        qb, kb, vb, attn_mask=allowed[:, None], dropout_p=dropout if q.requires_grad else 0.0
    )
    return out.reshape(b, h, blocks * w, d)[:, :, :t]


class LocalAttentionLayer(nn.Module):
    """Pre-norm transformer layer: windowed self-attention and a feed-forward block, both
    residual, padded frames zeroed after each."""

    def __init__(self, channels: int, num_heads: int, window: int, dropout: float):
        super().__init__()
        if channels % num_heads:
            raise ValueError(
                f"hidden_channels {channels} must be divisible by num_heads {num_heads}"
            )
        self.num_heads, self.window, self.attention_dropout = num_heads, window, dropout
        self.norm_attention = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        self.norm_ff = nn.LayerNorm(channels)
        self.ff = nn.Sequential(
            nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels)
        )
        self.dropout = ByteDropout(dropout)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """x: (B, T, F); valid: (B, T) bool."""
        b, t, c = x.shape
        keep = valid[..., None].to(x.dtype)
        q, k, v = (
            self.qkv(self.norm_attention(x)).reshape(b, t, 3, self.num_heads, c // self.num_heads)
            .permute(2, 0, 3, 1, 4)
        )  # fmt: skip
        drop = self.attention_dropout if self.training else 0.0
        attended = local_attention(q, k, v, valid, self.window, drop)
        x = (x + self.dropout(self.out(attended.transpose(1, 2).reshape(b, t, c)))) * keep
        return (x + self.dropout(self.ff(self.norm_ff(x)))) * keep


class JointTransformerEncoder(nn.Module):
    """Encodes each joint's C-channel time series with a local-attention transformer.

    Output: (N, T, M*V*latent_dim) tokens, as :class:`~histvq.models.encoders.JointTCNEncoder`.
    ``activation_checkpointing`` recomputes each layer in the backward pass.
    """

    def __init__(
        self,
        in_channels: int,
        latent_dim: int = 16,
        hidden_channels: int = 64,
        attention_layers: int = 2,
        num_heads: int = 4,
        window: int = 32,
        attention_dropout: float = 0.1,
        activation_checkpointing: bool = False,
    ):
        super().__init__()
        self.in_channels, self.latent_dim = in_channels, latent_dim
        self.input = nn.Linear(in_channels, hidden_channels)
        self.layers = nn.ModuleList(
            LocalAttentionLayer(hidden_channels, num_heads, window, attention_dropout)
            for _ in range(attention_layers)
        )
        self.norm = nn.LayerNorm(hidden_channels)
        self.output = nn.Linear(hidden_channels, latent_dim)
        self.activation_checkpointing = activation_checkpointing

    def forward(self, skeleton: Tensor, mask: Tensor) -> Tensor:
        """skeleton: (N, C, T, V, M); mask: (N, T) bool -> tokens (N, T, M*V*latent_dim)."""
        _, _, t, v, m = skeleton.shape
        joints = fold_joints(skeleton)  # (B, C, T)
        valid = joint_frame_mask(mask, v, m)[:, 0] > 0  # (B, T)
        positions = sinusoidal_positions(t, self.input.out_features, joints.device)
        x = (self.input(joints.transpose(1, 2)) + positions.T[None]) * valid[..., None]
        for layer in self.layers:
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, valid, use_reentrant=False)
            else:
                x = layer(x, valid)
        latent = self.output(self.norm(x)) * valid[..., None]  # (B, T, D)
        return joint_batch_to_tokens(latent.transpose(1, 2), v, m)
