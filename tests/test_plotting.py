"""Plots: PNGs are written, show the expected colours, and colours are stable per label."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from histvq.evaluation.plotting import (
    PlotInputError,
    label_color,
    label_colors,
    plot_length_histograms,
    plot_segmentation,
)


def pixels_near(image: np.ndarray, colour, tolerance: float = 0.02) -> int:
    return int(np.all(np.abs(image[..., :3] - np.asarray(colour[:3])) < tolerance, axis=-1).sum())


def test_label_colors_are_stable_and_distinct():
    assert label_colors([3, 1]) == {3: label_color(3), 1: label_color(1)}
    assert label_colors([1, 3, 5])[3] == label_colors([3])[3]
    palette = [label_color(label) for label in range(38)]
    assert len(set(palette)) == 38
    assert all(len(set(colour[:3])) > 1 for colour in palette)  # greys mean "unmatched"
    greys = [label_color(-1 - cluster) for cluster in range(8)]
    assert all(r == g == b for r, g, b, _ in greys)
    assert len(set(greys)) == 8
    assert not set(greys) & set(palette)


def test_plot_segmentation_writes_a_png_with_the_label_colours(tmp_path):
    target = np.repeat([0, 1, 2], [300, 200, 500])
    prediction = np.repeat([0, -4, 2, 1], [250, 150, 400, 200])  # -4: unmatched cluster 3
    figures_before = plt.get_fignums()
    path = plot_segmentation(
        target,
        prediction,
        {0: "walking", 1: "running", 2: "sitting"},
        tmp_path / "a/seg.png",
        title="seq 7",
    )
    assert path == tmp_path / "a/seg.png"
    image = mpimg.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 500
    for label in (0, 1, 2, -4):
        assert pixels_near(image, label_color(label)) > 200, label
    assert pixels_near(image, label_color(5)) == 0
    assert plt.get_fignums() == figures_before


def test_plot_segmentation_without_ground_truth_draws_only_the_prediction(tmp_path):
    prediction = np.repeat([1, -3], [600, 400])
    both = mpimg.imread(
        plot_segmentation(
            np.repeat([0, 1], 500), prediction, {0: "a", 1: "b"}, tmp_path / "both.png"
        )
    )
    alone = mpimg.imread(
        plot_segmentation(None, prediction, {0: "a", 1: "b"}, tmp_path / "one.png")
    )
    assert alone.shape[0] < both.shape[0]  # one bar instead of two
    assert pixels_near(alone, label_color(1)) > 200 and pixels_near(alone, label_color(-3)) > 200
    assert pixels_near(alone, label_color(0)) == 0


def test_plot_length_histograms_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    target = rng.integers(5, 400, size=200)
    predicted = rng.integers(1, 60, size=500)
    path = plot_length_histograms(target, predicted, tmp_path / "hist.png", bin_width=20)
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[1] > 400
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 20  # not blank
    assert pixels_near(image, (0.839, 0.153, 0.157), 0.05) > 50  # the red prediction line


def test_plots_reject_bad_input(tmp_path):
    with pytest.raises(PlotInputError, match="frames"):
        plot_segmentation(np.zeros(5, int), np.zeros(4, int), {}, tmp_path / "x.png")
    with pytest.raises(PlotInputError, match="1-D integer"):
        plot_segmentation(np.zeros(5), np.zeros(5, int), {}, tmp_path / "x.png")
    with pytest.raises(PlotInputError, match="bin_width"):
        plot_length_histograms(np.ones(3, int), np.ones(3, int), tmp_path / "x.png", 0)
    with pytest.raises(PlotInputError, match=">= 1"):
        plot_length_histograms(np.zeros(3, int), np.ones(3, int), tmp_path / "x.png", 5)
