"""Figures for evaluation: segmentation bars, segment-length histograms, metric curves and
per-seed scores beside reference values (PNG files).

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
``pyplot``: nothing is registered in pyplot's global figure list, so plotting inside
training loops or DDP workers leaks no memory and needs no display. Colours depend only on
the label id (:func:`label_color`), so every plot of a run, and of different runs, agrees.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from histvq.errors import HistvqError
from histvq.metrics.functional import segment_bounds
from histvq.metrics.names import mapped_name

RGBA = tuple[float, float, float, float]

# 38 distinct colours: tab20 (strong then light shades) without its greys, which are kept
# for unmatched clusters, then tab20b.
_PALETTE: tuple[RGBA, ...] = tuple(
    tuple(float(v) for v in (*colour, 1.0))
    for colour in (
        colormaps["tab20"].colors[0::2]
        + colormaps["tab20"].colors[1::2]
        + colormaps["tab20b"].colors[0::2]
        + colormaps["tab20b"].colors[1::2]
    )
    if len(set(colour)) > 1
)
_GOLDEN = 0.6180339887498949


class PlotInputError(HistvqError):
    """Data handed to a plotting function is malformed."""


def label_color(label: int) -> RGBA:
    """The colour of a label id; negative ids (unmatched clusters) get shades of grey.

    Label ``l >= 0`` takes palette entry ``l mod 38`` (tab20 without greys, then tab20b). Unmatched cluster ``c`` (mapped id
    ``-1 - c``) takes a grey whose level is spread by the golden ratio, so clusters with
    nearby ids still look different.
    """
    label = int(label)
    if label >= 0:
        return _PALETTE[label % len(_PALETTE)]
    level = 0.3 + 0.55 * (((-1 - label) * _GOLDEN) % 1.0)
    return (level, level, level, 1.0)


def label_colors(labels: Iterable[int]) -> dict[int, RGBA]:
    """``{label id: colour}`` for the given ids (see :func:`label_color`)."""
    return {int(label): label_color(label) for label in labels}


def _display_name(label: int, label_names: Mapping[int, str]) -> str:
    return mapped_name(label, dict(label_names))


def _labels_array(name: str, values: np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise PlotInputError(
            f"{name} must be a non-empty 1-D integer array, got shape {array.shape} "
            f"and dtype {array.dtype}"
        )
    return array


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png")
    return path


def plot_segmentation(
    target: np.ndarray | None,
    prediction_mapped: np.ndarray,
    label_names: Mapping[int, str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Ground truth bar above prediction bar, coloured by label, saved as PNG at ``path``.

    ``prediction_mapped`` holds label ids after matching (negative for unmatched clusters,
    drawn in grey and listed as ``cluster_<c>``). ``target`` may be None for an unlabelled
    recording: then only the prediction bar is drawn. Returns the path written.
    """
    return plot_segmentations(target, {"prediction": prediction_mapped}, label_names, path, title)


def plot_segmentations(
    target: np.ndarray | None,
    predictions: Mapping[str, np.ndarray],
    label_names: Mapping[int, str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """One bar per row: the ground truth (when given), then each named prediction (label
    ids after matching, e.g. ``{"SMQ": ..., "HiST-VQ": ...}``), stacked to compare."""
    rows = [(name, _labels_array(name, values)) for name, values in predictions.items()]
    if not rows:
        raise PlotInputError("nothing to plot: no prediction given")
    size = rows[0][1].size
    if target is not None:
        rows.insert(0, ("ground truth", _labels_array("target", target)))
    for name, values in rows:
        if values.size != size:
            raise PlotInputError(f"{name} has {values.size} frames but the first row has {size}")
    figure = Figure(figsize=(10, 1.0 + 0.8 * len(rows)), dpi=100)
    axes = figure.add_subplot()
    heights = range(len(rows) - 1, -1, -1)
    for row, (_, values) in zip(heights, rows, strict=True):
        seg_labels, starts, ends = segment_bounds(values)
        for label in np.unique(seg_labels):
            chosen = seg_labels == label
            spans = list(
                zip(starts[chosen].tolist(), (ends - starts)[chosen].tolist(), strict=True)
            )
            axes.broken_barh(spans, (row - 0.4, 0.8), facecolors=label_color(label))
    axes.set_xlim(0, size)
    axes.set_ylim(-0.5, len(rows) - 0.5)
    axes.set_yticks(list(heights), [name for name, _ in rows])
    axes.set_xlabel("frame")
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    present = np.unique(np.concatenate([values for _, values in rows]))
    ordered = [int(v) for v in present if v >= 0] + [int(v) for v in present[::-1] if v < 0]
    handles = [
        Patch(facecolor=label_color(v), label=_display_name(v, label_names)) for v in ordered
    ]
    axes.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        frameon=False,
        ncols=1 + len(handles) // 12,
    )
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_length_distributions(
    lengths: Mapping[str, np.ndarray], path: str | Path, title: str | None = None
) -> Path:
    """Segment-length distributions of several labelings (e.g. ground truth, SMQ,
    HiST-VQ) over a dataset, on a log length axis (segments span 1 to 10^4+ frames), as the
    share of each labeling's segments per bin (10 log-spaced bins per decade)."""
    if not lengths:
        raise PlotInputError("nothing to plot: no segment lengths given")
    arrays = {name: _labels_array(name, values) for name, values in lengths.items()}
    for name, values in arrays.items():
        if values.size == 0 or values.min() < 1:
            raise PlotInputError(f"{name} must hold segment lengths >= 1")
    longest = max(int(v.max()) for v in arrays.values())
    edges = np.logspace(0, np.log10(longest + 1), int(10 * np.log10(longest + 1)) + 2)
    figure = Figure(figsize=(8, 3.6), dpi=100)
    axes = figure.add_subplot()
    palette = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")
    for number, (name, values) in enumerate(arrays.items()):
        share = np.histogram(values, bins=edges)[0] / values.size
        style = {"fill": True, "alpha": 0.35} if number == 0 else {"linewidth": 1.6}
        axes.stairs(
            share, edges, label=f"{name} ({values.size} segments, median {np.median(values):.0f})",
            color=palette[number % len(palette)], **style,
        )  # fmt: skip
    axes.set_xscale("log")
    axes.set_xlim(1, edges[-1])
    axes.set_xlabel("segment length (frames, log scale)")
    axes.set_ylabel("share of segments")
    axes.legend(frameon=False, fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_length_histograms(
    target_lengths: np.ndarray,
    predicted_lengths: np.ndarray,
    path: str | Path,
    bin_width: int,
    title: str | None = None,
) -> Path:
    """Histogram of segment lengths over a dataset, ground truth vs prediction, as PNG.

    Bins are those of the JSD metric (``length // bin_width``, aligned at 0); heights are
    the share of each side's segments, since JSD compares the two distributions. Returns
    the path written.
    """
    if isinstance(bin_width, bool) or not isinstance(bin_width, int) or bin_width < 1:
        raise PlotInputError(f"bin_width must be a positive integer, got {bin_width!r}")
    sides = []
    for name, values in (
        ("target_lengths", target_lengths),
        ("predicted_lengths", predicted_lengths),
    ):
        lengths = _labels_array(name, values)
        if lengths.min() < 1:
            raise PlotInputError(f"{name} must hold segment lengths >= 1")
        sides.append(lengths)
    num_bins = int(max(lengths.max() for lengths in sides)) // bin_width + 1
    edges = np.arange(num_bins + 1) * bin_width
    figure = Figure(figsize=(8, 3.6), dpi=100)
    axes = figure.add_subplot()
    styles = (
        ("ground truth", {"fill": True, "alpha": 0.45, "color": "tab:blue"}),
        ("prediction", {"fill": False, "linewidth": 1.6, "color": "tab:red"}),
    )
    for lengths, (name, style) in zip(sides, styles, strict=True):
        share = np.bincount(lengths // bin_width, minlength=num_bins) / lengths.size
        axes.stairs(share, edges, label=f"{name} ({lengths.size} segments)", **style)
    axes.set_xlim(0, edges[-1])
    axes.set_xlabel(f"segment length (frames, {bin_width}-frame bins)")
    axes.set_ylabel("share of segments")
    axes.legend(frameon=False)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_metric_curves(
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
    path: str | Path,
    x_label: str = "training step",
    title: str | None = None,
) -> Path:
    """One panel per metric (``panels[metric][series] = (xs, ys)``), one line per series in
    the same colour on every panel, e.g. codebook use per level over training for several
    runs. A series with a single point is drawn as a marker."""
    if not panels:
        raise PlotInputError("nothing to plot: no metrics given")
    names = list(dict.fromkeys(name for series in panels.values() for name in series))
    colours = {name: _PALETTE[number % len(_PALETTE)] for number, name in enumerate(names)}
    columns = min(3, len(panels))
    rows = -(-len(panels) // columns)
    legend_rows = -(-len(names) // 4)
    legend_height = 0.3 * legend_rows + 0.2  # inches under the panels
    height = 2.8 * rows + legend_height
    figure = Figure(figsize=(4.2 * columns, height), dpi=100)
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, (metric, series) in zip(grid.flat, panels.items(), strict=False):
        for name, (xs, ys) in series.items():
            if len(xs) != len(ys):
                raise PlotInputError(f"{metric} of {name}: {len(xs)} x values, {len(ys)} y values")
            axes.plot(xs, ys, color=colours[name], linewidth=1.2,
                      marker="o" if len(xs) == 1 else None)  # fmt: skip
        axes.set_title(metric, fontsize="medium")
        axes.set_xlabel(x_label)
    for axes in grid.flat[len(panels) :]:
        axes.set_visible(False)
    handles = [Line2D([], [], color=colours[name], linewidth=1.6) for name in names]
    figure.legend(handles, names, loc="lower center", ncols=min(len(names), 4),
                  frameon=False, fontsize="small")  # fmt: skip
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, legend_height / height, 1, 1))
    return _save(figure, path)


@dataclass(frozen=True)
class ScoreColumn:
    """One configuration in a score panel: its runs' values (one per seed, may be empty) and a
    reference value to compare with (None: there is none). ``summary`` is the (mean, std) of
    runs whose values are not at hand (a table kept from earlier runs), drawn when ``values``
    is empty."""

    label: str
    values: Sequence[float]
    reference: float | None = None
    summary: tuple[float, float | None] | None = None


def _mean_bar(axes: Axes, x: float, mean: float, spread: float | None) -> None:
    """A column's mean as a bar, with ± one standard deviation where there is one."""
    axes.hlines(mean, x - 0.25, x + 0.25, color="black", linewidth=1.6, zorder=4)
    if spread is not None:
        axes.vlines(x, mean - spread, mean + spread, color="black", linewidth=1.0, zorder=4)


def plot_score_columns(
    panels: Mapping[str, Sequence[ScoreColumn]],
    path: str | Path,
    title: str | None = None,
    reference_label: str = "reference",
) -> Path:
    """One panel per metric (``panels[metric] = columns``), one column per configuration:
    every run's value as a dot, their mean as a bar with ± one standard deviation (two runs
    or more), and the reference value as an open diamond. Shows at once whether two
    configurations differ by more than their seeds spread, and how far each is from the
    reference."""
    if not panels:
        raise PlotInputError("nothing to plot: no metrics given")
    columns_per_row = min(5, len(panels))
    panel_rows = -(-len(panels) // columns_per_row)
    widest = max((len(c) for c in panels.values()), default=1)
    legend_height = 0.5  # inches under the panels
    height = 3.2 * panel_rows + legend_height
    width = max(2.6, 0.55 * widest + 1.2) * columns_per_row
    figure = Figure(figsize=(width, height), dpi=100)
    grid = figure.subplots(panel_rows, columns_per_row, squeeze=False)
    seed_colour, reference_colour = _PALETTE[0], _PALETTE[3]
    for axes, (metric, columns) in zip(grid.flat, panels.items(), strict=False):
        for x, column in enumerate(columns):
            values = np.asarray(column.values, dtype=float)
            if values.size:
                offsets = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else [0.0]
                axes.scatter(x + np.asarray(offsets), values, s=14, color=seed_colour,
                             alpha=0.8, zorder=3)  # fmt: skip
                spread = float(values.std(ddof=1)) if values.size > 1 else None
                _mean_bar(axes, x, float(values.mean()), spread)
            elif column.summary is not None:
                _mean_bar(axes, x, *column.summary)
            if column.reference is not None:
                axes.scatter([x], [column.reference], s=46, marker="D", facecolors="none",
                             edgecolors=[reference_colour], linewidths=1.5, zorder=5)  # fmt: skip
        slanted = max((len(c.label) for c in columns), default=0) > 6
        axes.set_xticks(range(len(columns)), [c.label for c in columns],
                        rotation=30 if slanted else 0, ha="right" if slanted else "center",
                        fontsize="small")  # fmt: skip
        axes.set_xlim(-0.6, max(len(columns), 1) - 0.4)
        axes.set_title(metric, fontsize="medium")
        axes.grid(axis="y", alpha=0.3)
    for axes in grid.flat[len(panels) :]:
        axes.set_visible(False)
    handles = [
        Line2D([], [], color=seed_colour, marker="o", linestyle="none", markersize=4),
        Line2D([], [], color="black", linewidth=1.6),
        Line2D([], [], color=reference_colour, marker="D", markerfacecolor="none",
               linestyle="none", markersize=6),
    ]  # fmt: skip
    names = ["one run (seed)", "mean ± std over seeds", reference_label]
    figure.legend(handles, names, loc="lower center", ncols=3, frameon=False, fontsize="small")
    if title:
        figure.suptitle(title)
    figure.tight_layout(rect=(0, legend_height / height, 1, 1))
    return _save(figure, path)
