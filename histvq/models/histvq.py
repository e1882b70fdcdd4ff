"""The HiST-VQ LightningModule: encoder -> patches -> hierarchical VQ -> decoders.

The module only composes components it is given (built from config by
:func:`histvq.models.factory.build_model`) and owns the loss of the paper (eq. 9):

    L = lambda_commit * sum_l L_commit_l + lambda_spat * L_spat + lambda_temp * L_temp

SMQ is the same module with one quantization level and no temporal decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from histvq.errors import ConfigError
from histvq.models.decoders import JointTCNDecoder, TimestampMLP
from histvq.models.losses import inter_joint_distance_mse, timestamp_mse
from histvq.models.patching import (
    Patches,
    expand_patch_codes,
    patch_timestamps,
    patchify,
    unpatchify,
)
from histvq.models.quantizers import CodebookStatistics, HierarchicalQuantizer, QuantizerOutput

SPATIAL_INPUTS = ("top", "first", "both")
TEMPORAL_INPUTS = ("first", "top", "both")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass
class ModelOutput:
    """Everything one forward pass produces (decoder outputs are None when not computed)."""

    patches: Patches
    quantizer: QuantizerOutput
    reconstruction: Tensor | None
    timestamps: Tensor | None

    def frame_codes(self, num_frames: int, level: int = -1) -> Tensor:
        """(N, T) code of ``level`` (default: top) for every frame."""
        codes = self.quantizer.indices[level]
        return expand_patch_codes(codes, self.patches.patch_size, num_frames)


def micro_batches(
    lengths: Tensor, patch_size: int, joints: int, budget: int | None
) -> list[Tensor]:
    """Split a batch into contiguous groups of sequences whose padded size (sequences x
    longest length rounded up to the patch size x ``joints``) stays within ``budget``; a
    sequence too long for the budget goes alone. Contiguous groups keep the batch's patch
    order, so merged codebook statistics equal the whole batch's."""
    count = int(lengths.shape[0])
    if budget is None:
        return [torch.arange(count, device=lengths.device)]
    padded = [-(-int(n) // patch_size) * patch_size for n in lengths.tolist()]
    groups: list[list[int]] = [[]]
    longest = 0
    for row, frames in enumerate(padded):
        grown = max(longest, frames)
        if groups[-1] and (len(groups[-1]) + 1) * grown * joints > budget:
            groups.append([])
            grown = frames
        groups[-1].append(row)
        longest = grown
    return [torch.tensor(g, device=lengths.device) for g in groups]


def micro_batch_frames(lengths: Tensor, patch_size: int, limit: int) -> int:
    """Frames a micro-batch is cut to: its longest sequence rounded up to a coarse grid of
    16 patches (capped at the batch's padded length). Few distinct shapes let the
    allocator reuse freed buffers instead of fragmenting memory; the extra frames are
    padding, which the masks keep out of every result."""
    grid = 16 * patch_size
    return min(limit, -(-int(lengths.max()) // grid) * grid)


def select_levels(streams: list[Tensor], which: str) -> list[Tensor]:
    """The quantized stream(s) a decoder reads: ``first``, ``top`` or ``both``."""
    if which == "first":
        return [streams[0]]
    if which == "top":
        return [streams[-1]]
    return [streams[0], streams[-1]]


class HiSTVQ(L.LightningModule):
    """Hierarchical spatiotemporal vector quantization for unsupervised action segmentation.

    Args:
        encoder: skeleton (N, C, T, V, M) + mask -> tokens (N, T, E).
        quantizer: the codebook stack; its patch size is the model's.
        spatial_decoder: quantized tokens -> skeleton; None drops the spatial loss.
        temporal_decoder: quantized patches -> timestamps; None drops the temporal loss.
        optimizer: factory called with the parameters (a Hydra ``_partial_`` optimizer).
        lambda_commit, lambda_spat, lambda_temp: loss weights of eq. 9.
        spatial_input: quantization level(s) fed to the spatial decoder: top | first | both.
        temporal_input: level(s) fed to the temporal decoder: first | top | both.
        micro_batch_joint_frames: the most (padded frames x joints x persons) sent through the
            network at once; a larger training batch is split into micro-batches of whole
            sequences whose gradients add up to exactly the batch's gradient, and the
            codebooks are updated once from the whole batch's statistics. Bounds memory on
            long sequences; only the dropout masks are drawn per micro-batch. None: never
            split.
    """

    def __init__(
        self,
        encoder: nn.Module,
        quantizer: HierarchicalQuantizer,
        spatial_decoder: JointTCNDecoder | None,
        temporal_decoder: TimestampMLP | None = None,
        optimizer: OptimizerFactory | None = None,
        lambda_commit: float = 1.0,
        lambda_spat: float = 0.001,
        lambda_temp: float = 0.2,
        spatial_input: str = "top",
        temporal_input: str = "first",
        micro_batch_joint_frames: int | None = None,
    ):
        super().__init__()
        if spatial_input not in SPATIAL_INPUTS:
            raise ConfigError(
                f"model.spatial_input: unknown value {spatial_input!r} (choose from {SPATIAL_INPUTS})"
            )
        if temporal_input not in TEMPORAL_INPUTS:
            raise ConfigError(
                f"model.temporal_input: unknown value {temporal_input!r} "
                f"(choose from {TEMPORAL_INPUTS})"
            )
        self.save_hyperparameters(
            ignore=["encoder", "quantizer", "spatial_decoder", "temporal_decoder", "optimizer"]
        )
        self.encoder = encoder
        self.quantizer = quantizer
        self.spatial_decoder = spatial_decoder
        self.temporal_decoder = temporal_decoder
        self.optimizer_factory = optimizer
        self.lambda_commit, self.lambda_spat, self.lambda_temp = (
            lambda_commit,
            lambda_spat,
            lambda_temp,
        )
        self.spatial_input, self.temporal_input = spatial_input, temporal_input
        if micro_batch_joint_frames is not None and micro_batch_joint_frames < 1:
            raise ConfigError(
                f"model.micro_batch_joint_frames must be >= 1 or null, got {micro_batch_joint_frames}"
            )
        self.micro_batch_joint_frames = micro_batch_joint_frames
        # The codebook update needs the whole batch's statistics after all micro-batches.
        self.automatic_optimization = False
        # Filled by the entry points so a checkpoint can rebuild its run on its own.
        self.run_config: dict[str, Any] | None = None
        self.data_spec: dict[str, Any] | None = None

    @property
    def patch_size(self) -> int:
        return self.quantizer.patch_size

    # ------------------------------------------------------------------ forward
    def forward(self, features: Tensor, mask: Tensor, decode: bool = True) -> ModelOutput:
        """features (N, C, T, V, M), mask (N, T) bool."""
        _, _, t, v, m = features.shape
        tokens = self.encoder(features, mask)
        patches = patchify(tokens, mask, self.patch_size)
        quantized = self.quantizer(patches.values, patches.frame_mask, patches.valid)
        reconstruction = timestamps = None
        if decode and self.spatial_decoder is not None:
            streams = [unpatchify(q, t) for q in quantized.quantized]
            reconstruction = self.spatial_decoder(
                select_levels(streams, self.spatial_input), mask, v, m
            )
        if decode and self.temporal_decoder is not None:
            timestamps = self.temporal_decoder(
                select_levels(quantized.quantized, self.temporal_input)
            )
        return ModelOutput(patches, quantized, reconstruction, timestamps)

    def loss_terms(self, features: Tensor, mask: Tensor, output: ModelOutput) -> dict[str, Tensor]:
        """Every loss term (unweighted), each a mean over its valid elements."""
        terms: dict[str, Tensor] = {}
        for level, commit in enumerate(output.quantizer.commitment, start=1):
            terms[f"commit_l{level}"] = commit
        if output.reconstruction is not None:
            terms["spatial"] = inter_joint_distance_mse(features, output.reconstruction, mask)
        if output.timestamps is not None:
            target = patch_timestamps(output.patches.valid)
            terms["temporal"] = timestamp_mse(output.timestamps, target, output.patches.valid)
        return terms

    def weighted_loss(
        self, terms: dict[str, Tensor], frame_share: float = 1.0, patch_share: float = 1.0
    ) -> Tensor:
        """Eq. 9 for a (micro-)batch holding ``frame_share`` of the batch's valid frames and
        ``patch_share`` of its valid patches: the shares turn per-micro-batch means into
        their contribution to the whole batch's means."""
        total = next(iter(terms.values())).new_zeros((), dtype=torch.float32)
        for key, value in terms.items():
            if key.startswith("commit_"):
                total = total + self.lambda_commit * frame_share * value
            elif key == "spatial":
                total = total + self.lambda_spat * frame_share * value
            elif key == "temporal":
                total = total + self.lambda_temp * patch_share * value
        return total

    def losses(self, features: Tensor, mask: Tensor, output: ModelOutput) -> dict[str, Tensor]:
        """Every loss term and the weighted total under ``loss`` (one whole batch)."""
        terms = self.loss_terms(features, mask, output)
        terms["loss"] = self.weighted_loss(terms)
        return terms

    # ------------------------------------------------------------------ lightning
    def accumulate_batch(
        self, batch: dict[str, Any], backward: Callable[[Tensor, bool], None]
    ) -> tuple[dict[str, Tensor], CodebookStatistics]:
        """Forward and backward over ``batch`` in micro-batches (see
        ``micro_batch_joint_frames``); ``backward(loss, is_last)`` back-propagates one
        micro-batch's share of the batch loss. Returns the batch's loss terms (for logging)
        and its merged codebook statistics."""
        features, mask, lengths = batch["features"], batch["mask"], batch["lengths"]
        patches_per_sequence = -(-lengths // self.patch_size)
        total_frames, total_patches = lengths.sum(), patches_per_sequence.sum()
        joints = features.shape[3] * features.shape[4]
        groups = micro_batches(lengths, self.patch_size, joints, self.micro_batch_joint_frames)
        logged: dict[str, Tensor] = {}
        statistics: CodebookStatistics | None = None
        for number, rows in enumerate(groups):
            frames = micro_batch_frames(lengths[rows], self.patch_size, features.shape[2])
            sub_features, sub_mask = features[rows, :, :frames], mask[rows, :frames]
            output = self(sub_features, sub_mask)
            terms = self.loss_terms(sub_features, sub_mask, output)
            frame_share = float(lengths[rows].sum() / total_frames)
            patch_share = float(patches_per_sequence[rows].sum() / total_patches)
            loss = self.weighted_loss(terms, frame_share, patch_share)
            backward(loss, number == len(groups) - 1)
            for key, value in terms.items():
                share = patch_share if key == "temporal" else frame_share
                logged[key] = logged.get(key, 0.0) + value.detach() * share
            logged["loss"] = logged.get("loss", 0.0) + loss.detach()
            new = output.quantizer.statistics
            assert new is not None, "the quantizer gives statistics in training mode"
            statistics = new if statistics is None else statistics.merge(new)
        assert statistics is not None
        return logged, statistics

    def _backward(self, loss: Tensor, last: bool) -> None:
        """Back-propagate; only the last micro-batch synchronises gradients under DDP."""
        block_sync = getattr(self.trainer.strategy, "block_backward_sync", nullcontext)
        with nullcontext() if last else block_sync():
            self.manual_backward(loss)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        optimizer = self.optimizers()
        optimizer.zero_grad()
        logged, statistics = self.accumulate_batch(batch, self._backward)
        usage = self.quantizer.update(statistics)
        optimizer.step()
        n = batch["features"].shape[0]
        for key, value in logged.items():
            self.log(
                f"train/{key}",
                value,
                on_step=True,
                on_epoch=True,
                batch_size=n,
                prog_bar=key == "loss",
            )
        for key, value in usage.items():
            self.log(f"codebook/{key}", value, on_step=True, on_epoch=False, batch_size=n)
        return logged["loss"]

    @torch.no_grad()
    def segment(self, features: Tensor, mask: Tensor) -> list[Tensor]:
        """Per level (bottom first), the (N, T) frame codes; no decoding. Long batches run in
        micro-batches (``micro_batch_joint_frames``), which gives the same codes."""
        t = features.shape[2]
        lengths = mask.sum(dim=1)
        joints = features.shape[3] * features.shape[4]
        codes = [features.new_full((features.shape[0], t), -1, dtype=torch.long)
                 for _ in range(self.quantizer.levels)]  # fmt: skip
        for rows in micro_batches(lengths, self.patch_size, joints, self.micro_batch_joint_frames):
            frames = micro_batch_frames(lengths[rows], self.patch_size, t)
            output = self(features[rows, :, :frames], mask[rows, :frames], decode=False)
            for level, level_codes in enumerate(codes):
                level_codes[rows, :frames] = output.frame_codes(frames, level)
        return codes

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        codes = self.segment(batch["features"], batch["mask"])[-1]
        return {
            "index": batch["index"],
            "names": batch["names"],
            "lengths": batch["lengths"],
            "codes": codes,
        }

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is None:
            return torch.optim.Adam(self.parameters(), lr=5e-4)
        return self.optimizer_factory(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["histvq"] = {"config": self.run_config, "data_spec": self.data_spec}
