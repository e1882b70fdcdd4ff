"""DDP-aware torchmetrics wrapper around :mod:`histvq.metrics.functional`.

Hungarian matching needs every sequence at once, so the metric keeps the raw per-frame
predictions and targets rather than running sums: each update appends flat tensors
(``dist_reduce_fx="cat"``), which torchmetrics gathers across ranks even when ranks hold
different numbers of frames. :meth:`SegmentationMetrics.compute` rebuilds the sequences,
keeps one copy of each sequence id (a sampler that pads the last batch by repeating
sequences must not count them twice) and sorts by id, so the result does not depend on how
sequences were sharded or in which order ranks were gathered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from histvq.metrics.functional import (
    MATCHINGS,
    UNMATCHED,
    MetricInputError,
    evaluate_segmentation,
    match_predictions,
)

_STATES = ("predictions", "targets", "lengths", "sequence_ids", "groups")


def _gather_as_int64(tensor: Tensor, group: Any | None = None) -> list[Tensor]:
    """``gather_all_tensors`` after casting to int64.

    A rank that saw no sequence holds torchmetrics' empty placeholder, created with the
    metric's float dtype; gathering it next to other ranks' int64 tensors would mix dtypes
    in one collective. Every state here is integer, so int64 is lossless.
    """
    return gather_all_tensors(tensor.to(torch.int64), group=group)


class SegmentationMetrics(Metric):
    """MoF, Edit, F1@{10,25,50} and JSD for each matching, as ``"<matching>/<metric>"``.

    ``update(predictions, targets, sequence_ids, groups=None)`` takes one 1-D integer
    tensor per sequence (predicted cluster ids, target label ids), the dataset-wide index of
    each sequence (int64, used to drop duplicates and to order sequences) and optionally an
    activity group id per sequence (for JSD; default: one group). Values are computed by
    :func:`histvq.metrics.functional.evaluate_segmentation` on CPU and returned as float64
    scalar tensors.
    """

    is_differentiable = False
    higher_is_better = None  # JSD is lower-is-better, the others higher-is-better
    full_state_update = False

    predictions: list[Tensor] | Tensor
    targets: list[Tensor] | Tensor
    lengths: list[Tensor] | Tensor
    sequence_ids: list[Tensor] | Tensor
    groups: list[Tensor] | Tensor

    def __init__(
        self,
        matchings: Sequence[str] = MATCHINGS,
        bin_width: int = 20,
        ignore_labels: Sequence[int] = (),
        unmatched: str = "square_assignment",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dist_sync_fn", _gather_as_int64)
        super().__init__(**kwargs)
        unknown = [m for m in matchings if m not in MATCHINGS]
        if unknown or not matchings:
            raise MetricInputError(f"matchings must be a non-empty subset of {MATCHINGS}")
        self.matchings = tuple(matchings)
        if isinstance(bin_width, bool) or not isinstance(bin_width, int) or bin_width < 1:
            raise MetricInputError(f"bin_width must be a positive integer, got {bin_width!r}")
        self.bin_width = bin_width
        self.ignore_labels = tuple(int(label) for label in ignore_labels)
        if unmatched not in UNMATCHED:
            raise MetricInputError(f"unmatched must be one of {UNMATCHED}, got {unmatched!r}")
        self.unmatched = unmatched
        for name in _STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(
        self,
        predictions: Sequence[Tensor],
        targets: Sequence[Tensor],
        sequence_ids: Tensor,
        groups: Tensor | None = None,
    ) -> None:
        count = len(predictions)
        if len(targets) != count:
            raise MetricInputError(
                f"update got {count} predicted sequences but {len(targets)} targets"
            )
        sequence_ids = torch.as_tensor(sequence_ids).reshape(-1)
        if sequence_ids.numel() != count:
            raise MetricInputError(
                f"update got {count} sequences but {sequence_ids.numel()} sequence ids"
            )
        if groups is None:
            groups = torch.zeros(count, dtype=torch.int64)
        groups = torch.as_tensor(groups).reshape(-1)
        if groups.numel() != count:
            raise MetricInputError(f"update got {count} sequences but {groups.numel()} groups")
        for name, ids in (("sequence_ids", sequence_ids), ("groups", groups)):
            if ids.is_floating_point() or ids.is_complex():
                raise MetricInputError(f"{name} must be integers, got {ids.dtype}")
        if count == 0:
            return
        lengths = []
        for index, (prediction, target) in enumerate(zip(predictions, targets, strict=True)):
            for name, tensor in (("prediction", prediction), ("target", target)):
                if tensor.ndim != 1 or tensor.is_floating_point() or tensor.is_complex():
                    raise MetricInputError(
                        f"{name} {index} must be a 1-D integer tensor, got shape "
                        f"{tuple(tensor.shape)} and dtype {tensor.dtype}"
                    )
            if prediction.numel() != target.numel():
                raise MetricInputError(
                    f"sequence {index}: prediction has {prediction.numel()} frames but target "
                    f"has {target.numel()}"
                )
            lengths.append(prediction.numel())
        device = self.device
        self.predictions.append(torch.cat([p.to(device, torch.int64) for p in predictions]))
        self.targets.append(torch.cat([t.to(device, torch.int64) for t in targets]))
        self.lengths.append(torch.tensor(lengths, dtype=torch.int64, device=device))
        self.sequence_ids.append(sequence_ids.to(device, torch.int64))
        self.groups.append(groups.to(device, torch.int64))

    def _sequences(self) -> tuple[list[int], list[np.ndarray], list[np.ndarray], list[int]]:
        """(ids, predictions, targets, groups) of the current state: deduplicated, by id."""
        if not isinstance(self.lengths, Tensor) and len(self.lengths) == 0:
            raise MetricInputError("SegmentationMetrics has no sequences; call update() first")
        state = {name: dim_zero_cat(getattr(self, name)).cpu().numpy() for name in _STATES}
        lengths = state["lengths"].astype(np.int64)
        if lengths.size == 0:
            raise MetricInputError("SegmentationMetrics has no sequences; call update() first")
        ends = np.cumsum(lengths)
        starts = ends - lengths
        ids = state["sequence_ids"]
        predictions, targets = state["predictions"], state["targets"]
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        first = np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]
        group_first = order[np.flatnonzero(first)][np.cumsum(first) - 1]

        def frames(values: np.ndarray, k: int) -> np.ndarray:
            return values[starts[k] : ends[k]]

        for position in np.flatnonzero(~first):
            kept, other = group_first[position], order[position]
            if not (
                lengths[kept] == lengths[other]
                and np.array_equal(frames(targets, kept), frames(targets, other))
                and np.array_equal(frames(predictions, kept), frames(predictions, other))
            ):
                raise MetricInputError(
                    f"sequence id {int(ids[kept])} was evaluated twice with different "
                    "predictions or targets; sequence ids must identify sequences"
                )
        keep = order[first]
        return (
            ids[keep].tolist(),
            [frames(predictions, k) for k in keep],
            [frames(targets, k) for k in keep],
            state["groups"][keep].tolist(),
        )

    def sequences(self) -> tuple[list[int], list[np.ndarray], list[np.ndarray], list[int]]:
        """(sequence ids, predictions, targets, groups) gathered from all ranks, by id.

        Duplicated ids are kept once. Use it to write prediction files or draw plots after
        evaluation; every rank gets the full dataset.
        """
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn,
            should_sync=self._to_sync,
            should_unsync=self._should_unsync,
        ):
            return self._sequences()

    def matched(
        self, matching: str = "global"
    ) -> tuple[list[int], list[np.ndarray], list[np.ndarray], list[dict[int, int]]]:
        """(sequence ids, mapped predictions, targets, mappings) for one matching.

        ``mappings`` is as in :func:`~histvq.metrics.functional.match_predictions`: one
        ``{cluster: label}`` dict for ``"global"``, one per sequence (in id order) for
        ``"local"``. Unmatched clusters appear as negative ids in the mapped predictions.
        """
        ids, predictions, targets, _ = self.sequences()
        mapped, mappings = match_predictions(
            predictions,
            targets,
            matching=matching,
            ignore_labels=self.ignore_labels,
            unmatched=self.unmatched,
        )
        return ids, mapped, targets, mappings

    def global_mapping(self) -> dict[int, int]:
        """The dataset-wide ``{cluster id: label id}`` Hungarian mapping."""
        return self.matched("global")[3][0]

    def compute(self) -> dict[str, Tensor]:
        _, predictions, targets, groups = self._sequences()
        results = evaluate_segmentation(
            predictions,
            targets,
            matchings=self.matchings,
            bin_width=self.bin_width,
            ignore_labels=self.ignore_labels,
            groups=np.asarray(groups, dtype=np.int64),
            unmatched=self.unmatched,
        )
        return {
            f"{matching}/{key}": torch.tensor(value, dtype=torch.float64)
            for matching, scores in results.items()
            for key, value in scores.items()
        }
