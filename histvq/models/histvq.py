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
from histvq.models.quantizers import (
    BottomAssignment,
    HierarchicalQuantizer,
    QuantizerOutput,
    ValidPatches,
)
from histvq.models.steps import (
    StepResult,
    host_lengths,
    loss_shares,
    micro_batch_frames,
    micro_batches,
    region,
    term_share,
)

SPATIAL_INPUTS = ("top", "first", "both")
TEMPORAL_INPUTS = ("first", "top", "both")
SPATIAL_NORMALIZATIONS = ("padded", "valid")

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
            split. With the quantizer's ``before_output`` update the encoder's graphs of all
            micro-batches are held until the codebook step (small with activation
            checkpointing, which is on wherever micro-batching is by default).
        spatial_loss_normalization: ``padded`` (the reference: the spatial loss is the mean
            over the whole padded batch tensor, padded frames counted in the denominator)
            or ``valid`` (mean over valid frames only).
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
        spatial_loss_normalization: str = "padded",
    ):
        super().__init__()
        if spatial_loss_normalization not in SPATIAL_NORMALIZATIONS:
            raise ConfigError(
                f"model.spatial_loss_normalization: unknown value {spatial_loss_normalization!r} "
                f"(choose from {SPATIAL_NORMALIZATIONS})"
            )
        self.spatial_loss_normalization = spatial_loss_normalization
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
        self.last_step: StepResult | None = None
        # Filled by the entry points so a checkpoint can rebuild its run on its own.
        self.run_config: dict[str, Any] | None = None
        self.data_spec: dict[str, Any] | None = None

    @property
    def patch_size(self) -> int:
        return self.quantizer.patch_size

    # ------------------------------------------------------------------ forward
    def encode(self, features: Tensor, mask: Tensor) -> tuple[Patches, ValidPatches]:
        """features (N, C, T, V, M), mask (N, T) bool -> the token patches and their valid
        ones, flattened for the quantizer."""
        patches = patchify(self.encoder(features, mask), mask, self.patch_size)
        return patches, self.quantizer.select(patches.values, patches.frame_mask, patches.valid)

    def decode(
        self, features: Tensor, mask: Tensor, patches: Patches, quantized: QuantizerOutput
    ) -> ModelOutput:
        """Run the decoders on the quantized patches (those that are built)."""
        _, _, t, v, m = features.shape
        reconstruction = timestamps = None
        if self.spatial_decoder is not None:
            streams = [unpatchify(q, t) for q in quantized.quantized]
            reconstruction = self.spatial_decoder(
                select_levels(streams, self.spatial_input), mask, v, m
            )
        if self.temporal_decoder is not None:
            timestamps = self.temporal_decoder(
                select_levels(quantized.quantized, self.temporal_input)
            )
        return ModelOutput(patches, quantized, reconstruction, timestamps)

    def forward(self, features: Tensor, mask: Tensor, decode: bool = True) -> ModelOutput:
        """features (N, C, T, V, M), mask (N, T) bool. In training mode the quantizer also
        takes this batch's codebook step (see ``HierarchicalQuantizer.forward``)."""
        tokens = self.encoder(features, mask)
        patches = patchify(tokens, mask, self.patch_size)
        quantized = self.quantizer(patches.values, patches.frame_mask, patches.valid)
        if not decode:
            return ModelOutput(patches, quantized, None, None)
        return self.decode(features, mask, patches, quantized)

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
        self, terms: dict[str, Tensor], shares: dict[str, Tensor] | None = None
    ) -> Tensor:
        """Eq. 9 for a (micro-)batch whose per-term means weigh ``shares`` in the batch
        (default: the batch itself, every share 1)."""
        total = next(iter(terms.values())).new_zeros((), dtype=torch.float32)
        for key, value in terms.items():
            total = total + self.term_weight(key) * term_share(key, shares) * value
        return total

    def term_weight(self, key: str) -> float:
        if key.startswith("commit_"):
            return self.lambda_commit
        if key == "spatial":
            return self.lambda_spat
        if key == "temporal":
            return self.lambda_temp
        raise KeyError(key)

    # ------------------------------------------------------------------ lightning
    def accumulate_batch(
        self, batch: dict[str, Any], backward: Callable[[Tensor, bool], None]
    ) -> StepResult:
        """Forward and backward over ``batch`` in micro-batches (see
        ``micro_batch_joint_frames``); ``backward(loss, is_last)`` back-propagates one
        micro-batch's share of the batch loss.

        With the quantizer's ``before_output`` update, every micro-batch is encoded first
        (their encoder graphs are kept), the codebooks take the whole batch's step, and only
        then are the micro-batches quantized, decoded and back-propagated one at a time. With
        ``after_backward`` each micro-batch runs through in one go and the merged statistics
        are returned for the update after the backward passes.
        """
        features, mask, lengths = batch["features"], batch["mask"], batch["lengths"]
        joints = features.shape[3] * features.shape[4]
        on_host = host_lengths(batch)
        groups = micro_batches(on_host, self.patch_size, joints, self.micro_batch_joint_frames)
        inputs = []
        for rows in groups:
            frames = micro_batch_frames(
                [on_host[r] for r in rows], self.patch_size, features.shape[2]
            )
            if len(rows) == len(on_host):  # the whole batch: no gather
                inputs.append((features[:, :, :frames], mask[:, :frames], lengths))
                continue
            index = torch.tensor(rows, device=features.device)
            inputs.append(
                (features[index, :, :frames], mask[index, :frames], lengths.index_select(0, index))
            )
        result = StepResult()
        if self.quantizer.updates_before_output:
            with region("encode"):
                encoded = [self.encode(f, m) for f, m, _ in inputs]
            with region("codebook_step"):
                bottom: BottomAssignment | None = None
                for _, selected in encoded:
                    part = self.quantizer.assign_bottom(selected.x)
                    bottom = part if bottom is None else bottom.merge(part)
                assert bottom is not None
                indices, result.usage = self.quantizer.update_before_output(bottom)
            offset = 0
            for number, ((f, m, rows_lengths), (patches, selected)) in enumerate(
                zip(inputs, encoded, strict=True)
            ):
                count = selected.x.shape[0]
                own = [level[offset : offset + count] for level in indices]
                offset += count
                with region("quantize_decode"):
                    output = self.decode(f, m, patches, self.quantizer.quantize(selected, own))
                self._backward_share(result, f, m, output, rows_lengths, lengths, backward,
                                     number == len(inputs) - 1)  # fmt: skip
            return result
        for number, (f, m, rows_lengths) in enumerate(inputs):
            with region("forward"):
                output = self(f, m)
            self._backward_share(
                result, f, m, output, rows_lengths, lengths, backward, number == len(inputs) - 1
            )
            new = output.quantizer.statistics
            assert new is not None, "the quantizer gives statistics in training mode"
            result.statistics = new if result.statistics is None else result.statistics.merge(new)
        return result

    def _backward_share(
        self,
        result: StepResult,
        features: Tensor,
        mask: Tensor,
        output: ModelOutput,
        rows_lengths: Tensor,
        lengths: Tensor,
        backward: Callable[[Tensor, bool], None],
        last: bool,
    ) -> None:
        """Back-propagate one micro-batch's share of the batch loss and add its terms to
        the batch's logged values."""
        with region("losses"):
            terms = self.loss_terms(features, mask, output)
            shares = loss_shares(
                rows_lengths, lengths, self.patch_size, self.spatial_loss_normalization
            )
            loss = self.weighted_loss(terms, shares)
        with region("backward"):
            backward(loss, last)
        for key, value in terms.items():
            result.add(key, value.detach() * term_share(key, shares))
        result.add("loss", loss.detach())

    def _backward(self, loss: Tensor, last: bool) -> None:
        """Back-propagate; only the last micro-batch synchronises gradients under DDP."""
        block_sync = getattr(self.trainer.strategy, "block_backward_sync", nullcontext)
        with nullcontext() if last else block_sync():
            self.manual_backward(loss)

    def optimization_step(
        self,
        batch: dict[str, Any],
        optimizer: torch.optim.Optimizer | Any,
        backward: Callable[[Tensor, bool], None],
    ) -> StepResult:
        """One training batch: gradients (in micro-batches), the codebook step in the
        configured order, then the optimizer step. ``step.usage`` holds the codebook usage."""
        optimizer.zero_grad()
        step = self.accumulate_batch(batch, backward)
        if step.statistics is not None:
            with region("codebook_step"):
                step.usage = self.quantizer.update(step.statistics)
        with region("optimizer"):
            optimizer.step()
        return step

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        step = self.optimization_step(batch, self.optimizers(), self._backward)
        self.last_step = step  # read by callbacks (histvq.callbacks.divergence)
        usage = step.usage
        n = batch["features"].shape[0]
        for key, value in step.logged.items():
            self.log(
                f"train/{key}",
                value,
                on_step=True,
                on_epoch=True,
                batch_size=n,
                prog_bar=key == "loss",
            )
        for key, value in (usage or {}).items():
            self.log(f"codebook/{key}", value, on_step=True, on_epoch=False, batch_size=n)
        return step.logged["loss"]

    @torch.no_grad()
    def segment(self, features: Tensor, mask: Tensor) -> list[Tensor]:
        """Per level (bottom first), the (N, T) frame codes; no decoding. Long batches run in
        micro-batches (``micro_batch_joint_frames``), which gives the same codes."""
        t = features.shape[2]
        lengths = [int(n) for n in mask.sum(dim=1).tolist()]
        joints = features.shape[3] * features.shape[4]
        codes = [features.new_full((features.shape[0], t), -1, dtype=torch.long)
                 for _ in range(self.quantizer.levels)]  # fmt: skip
        for rows in micro_batches(lengths, self.patch_size, joints, self.micro_batch_joint_frames):
            frames = micro_batch_frames([lengths[r] for r in rows], self.patch_size, t)
            index = torch.tensor(rows, device=features.device)
            output = self(features[index, :, :frames], mask[index, :frames], decode=False)
            for level, level_codes in enumerate(codes):
                level_codes[index, :frames] = output.frame_codes(frames, level)
        return codes

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_factory is None:
            return torch.optim.Adam(self.parameters(), lr=5e-4)
        return self.optimizer_factory(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The run config and data spec travel in every checkpoint (histvq.models.checkpoint)."""
        checkpoint["histvq"] = {"config": self.run_config, "data_spec": self.data_spec}
