"""Every comparison figure of a set of runs, with the tables beside them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from histvq.errors import ConfigError
from histvq.evaluation.plotting import plot_length_distributions, plot_segmentations
from histvq.figures.run_labels import RunLabels
from histvq.figures.tables import (
    PATCH_ORACLE_COLUMNS,
    SHORT_SEGMENT_COLUMNS,
    STRAY_COLUMNS,
    patch_oracle_table,
    segment_table,
    short_segment_table,
    stray_boundary_table,
    write_table,
)
from histvq.metrics import segment_lengths


def draw(runs: Sequence[RunLabels], sequences: Sequence[str], out: Path, prefix: str) -> list[Path]:
    """The length distributions, their numbers (CSV) and the stacked segmentations; returns
    the files written."""
    reference = runs[0]
    lengths = {"ground truth": segment_lengths(list(reference.targets.values()))}
    for run in runs:
        lengths[run.name] = segment_lengths(list(run.predictions.values()))
    written = [
        plot_length_distributions(
            lengths, out / f"{prefix}_segment_lengths.png", title="Segment lengths"
        ),
        write_table(segment_table(runs), out / f"{prefix}_segments.csv"),
        write_table(
            stray_boundary_table(runs), out / f"{prefix}_stray_boundaries.csv", STRAY_COLUMNS
        ),
    ]
    if reference.patch_size is not None:
        oracle = patch_oracle_table(list(reference.targets.values()), [reference.patch_size])
        path = out / f"{prefix}_patch_oracle.csv"
        written.append(write_table(oracle, path, PATCH_ORACLE_COLUMNS))
        short = short_segment_table(runs, reference.patch_size)
        path = out / f"{prefix}_short_segments.csv"
        written.append(write_table(short, path, SHORT_SEGMENT_COLUMNS))
    for sequence in sequences:
        missing = [run.name for run in runs if sequence not in run.predictions]
        if missing:
            raise ConfigError(f"--sequence {sequence}: not among the predictions of {missing}")
        written.append(
            plot_segmentations(
                reference.targets[sequence],
                {run.name: run.predictions[sequence] for run in runs},
                reference.label_names,
                out / f"{prefix}_{sequence}.png",
                title=sequence,
            )
        )
    return written
