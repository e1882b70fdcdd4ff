"""Transductive evaluation of a trained model: predict every sequence, match, score, write.

Prediction is sharded by sequence across processes without padding copies; the per-sequence
results are gathered by :class:`~histvq.metrics.SegmentationMetrics` (deduplicated and sorted
by dataset index), so the numbers do not depend on the number of processes, the batch
composition or the file listing order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from histvq.data.datamodules import LayoutDataModule
from histvq.metrics import METRIC_KEYS, match_predictions, segment_lengths, unmatched_id

MATCHINGS = ("global", "local")
CLUSTER_MAPPING_FILE = "cluster_mapping.json"


@dataclass
class EvaluationResult:
    """Per-sequence predictions (sorted by dataset index) and the scores computed from them."""

    names: list[str]
    predictions: list[np.ndarray]
    targets: list[np.ndarray]
    label_names: dict[int, str]
    metrics: dict[str, dict[str, float]]
    ignore_labels: list[int] = field(default_factory=list)
    bin_width: int = 20
    unmatched: str = "square_assignment"
    _mapped: list[np.ndarray] | None = None
    _mapping: dict[int, int] | None = None

    @property
    def num_frames(self) -> int:
        return int(sum(len(t) for t in self.targets))

    def global_mapping(self) -> tuple[list[np.ndarray], dict[int, int]]:
        """Predictions mapped to label ids by the global Hungarian matching, and the mapping."""
        if self._mapped is None:
            mapped, mappings = match_predictions(
                self.predictions, self.targets, "global", self.ignore_labels, self.unmatched
            )
            self._mapped, self._mapping = mapped, mappings[0]
        assert self._mapping is not None
        return self._mapped, self._mapping

    def label_of(self, value: int) -> str:
        """Name of a mapped prediction value (an unmatched cluster is ``cluster_<id>``)."""
        if value >= 0:
            return self.label_names.get(value, str(value))
        return f"cluster_{unmatched_id(value)}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {m: dict(self.metrics[m]) for m in MATCHINGS if m in self.metrics}
        out["num_sequences"] = len(self.names)
        out["num_frames"] = self.num_frames
        return out


@torch.no_grad()
def evaluate_module(
    module: Any,
    datamodule: LayoutDataModule,
    *,
    bin_width: int = 20,
    unmatched: str = "square_assignment",
    num_replicas: int | None = None,
    rank: int | None = None,
) -> EvaluationResult:
    """Predict this process's shard of sequences and score all of them (collective under DDP:
    every process must call it)."""
    loader = datamodule.eval_dataloader(num_replicas=num_replicas, rank=rank)
    ignore = datamodule.ignore_label_ids
    device = module.device
    from histvq.metrics.segmentation import SegmentationMetrics

    metric = SegmentationMetrics(bin_width=bin_width, ignore_labels=ignore, unmatched=unmatched).to(
        device
    )
    was_training = module.training
    module.eval()
    try:
        for batch in loader:
            features = batch["features"].to(device)
            mask = batch["mask"].to(device)
            codes = module.segment(features, mask)[-1]
            lengths = batch["lengths"].tolist()
            metric.update(
                [codes[i, :n] for i, n in enumerate(lengths)],
                [batch["labels"][i, :n].to(device) for i, n in enumerate(lengths)],
                batch["index"].to(device),
                batch["group"].to(device),
            )
        scores = metric.compute()
        ids, predictions, targets, _ = metric.sequences()
    finally:
        module.train(was_training)
    assert datamodule.dataset is not None
    metrics = {m: {k: float(scores[f"{m}/{k}"]) for k in METRIC_KEYS} for m in MATCHINGS}
    return EvaluationResult(
        names=[datamodule.dataset.records[int(i)].name for i in ids],
        predictions=[np.asarray(p, dtype=np.int64) for p in predictions],
        targets=[np.asarray(t, dtype=np.int64) for t in targets],
        label_names=datamodule.spec.label_names,
        metrics=metrics,
        ignore_labels=ignore,
        bin_width=bin_width,
        unmatched=unmatched,
    )


def write_evaluation(
    result: EvaluationResult,
    output_dir: Path,
    *,
    plots: bool = True,
    max_sequence_plots: int = 8,
    write_predictions: bool = True,
) -> list[Path]:
    """Write ``metrics.json``, ``cluster_mapping.json`` (the global Hungarian mapping, so that
    later predictions on new recordings can be named), ``predictions/<seq>.txt`` (globally
    mapped label names, one per frame) and PNG plots; return the plot paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "metrics.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    mapped, mapping = result.global_mapping()
    (output_dir / CLUSTER_MAPPING_FILE).write_text(
        json.dumps(
            {
                "matching": "global",
                "clusters": {
                    str(c): result.label_names.get(lab, str(lab))
                    for c, lab in sorted(mapping.items())
                },
                "label_ids": {str(c): lab for c, lab in sorted(mapping.items())},
            },
            indent=2,
        )
        + "\n"
    )
    if write_predictions:
        folder = output_dir / "predictions"
        folder.mkdir(exist_ok=True)
        for name, values in zip(result.names, mapped, strict=True):
            text = "\n".join(result.label_of(int(v)) for v in values)
            (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    if not plots:
        return []
    from histvq.plotting import plot_length_histograms, plot_segmentation

    figures = output_dir / "plots"
    paths = [
        plot_length_histograms(
            segment_lengths(result.targets, result.ignore_labels),
            segment_lengths(mapped, result.ignore_labels),
            figures / "segment_lengths.png",
            bin_width=result.bin_width,
            title="Segment lengths (frames)",
        )
    ]
    for name, target, prediction in list(zip(result.names, result.targets, mapped, strict=True))[
        :max_sequence_plots
    ]:
        paths.append(
            plot_segmentation(
                target,
                prediction,
                result.label_names,
                figures / "sequences" / f"{name}.png",
                title=name,
            )
        )
    return [Path(p) for p in paths]


def format_metrics_table(metrics: dict[str, Any], title: str = "") -> str:
    """The metrics.json content as an aligned text table (one row per matching)."""
    header = ["matching", "MoF", "Edit", "F1@10", "F1@25", "F1@50", "JSD"]
    rows = [header]
    for matching in MATCHINGS:
        if matching in metrics:
            rows.append([matching, *(f"{metrics[matching][k]:.1f}" for k in METRIC_KEYS)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [title] if title else []
    if "num_sequences" in metrics:
        lines.append(f"{metrics['num_sequences']} sequences, {metrics['num_frames']:,} frames")
    for row in rows:
        lines.append("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)
