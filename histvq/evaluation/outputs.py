"""What an evaluation leaves in a run folder: metrics.json, the cluster mapping, per-frame
predictions and plots; and the metrics as a text table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from histvq.evaluation.result import EvaluationResult
from histvq.metrics import segment_lengths
from histvq.metrics.names import (
    CLUSTER_MAPPING_FILE,
    EVALUATED_DATASET_FILE,
    MATCHINGS,
    METRIC_KEYS,
    METRICS_FILE,
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
    (output_dir / METRICS_FILE).write_text(json.dumps(result.to_json(), indent=2) + "\n")
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
    from histvq.evaluation.plotting import plot_length_histograms, plot_segmentation

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


def write_evaluated_dataset(
    output_dir: Path, data_dir: str | Path, name: str, patch_size: int
) -> Path:
    """Record in an evaluation folder which prepared dataset its predictions are of, as the
    ``dataset`` block of a training run's config (the folder made absolute), so tools that
    read a run's ground truth (``python -m histvq.figures``) read an evaluation's too."""
    record = {
        "dataset": {
            "data_dir": str(Path(data_dir).expanduser().resolve()),
            "name": name,
            "patch_size": patch_size,
        }
    }
    path = output_dir / EVALUATED_DATASET_FILE
    OmegaConf.save(OmegaConf.create(record), path)
    return path


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
