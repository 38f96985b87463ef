"""Issue 16, items 1-3: attribution figures name the explained class, scale honestly and
read at a glance. Assertions are on what was drawn (titles, colour limits, colour bars, alpha),
never on pixels; explanations are built from numpy."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.plotting import builders as b
from vizkit.errors import InputError
from vizkit.plotting.attribution import class_probability, fine_grained, resolve_kind
from vizkit.plotting.comparison import nice_tick
from vizkit.plotting.text import fit, pct, wrap
from vizkit.results.explanation import Comparison


def panels(fig):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


# ---- item 1: the explained class, next to the prediction -----------------------------------
def test_grid_row_titles_name_the_prediction_and_the_explained_class():
    """The issue's example: explained for "square", predicted something else."""
    fig = b.comparison(2).plot()
    titles = [ax.get_title() for ax in panels(fig)[:: 1 + 4]]  # the input column
    assert titles[0].splitlines() == [
        "test 0 (circle)",
        "predicted triangle (70%)",
        "explains square (20%)",
    ]
    legend = fig.get_supxlabel().replace("\n", " ")
    assert "Row titles: image (true label when known) / predicted class" in legend


def test_methods_explaining_different_classes_name_theirs_on_every_panel():
    square = b.explanation(targets=1)
    circle = b.explanation(targets=0).replace(method="saliency_circle")
    fig = Comparison((square, circle)).plot()
    first, second = panels(fig)[1], panels(fig)[2]
    assert first.get_title().endswith("explains square (20%)")
    assert second.get_title().endswith("explains circle (10%)")
    assert "explains" not in panels(fig)[0].get_title()  # not in the row title then


def test_single_panel_title_and_probability_outside_the_top_k():
    e = b.explanation(targets=1)
    ax = e.plot(0, ax=Figure().add_subplot())
    assert ax.get_title().replace("\n", " ") == (
        "Saliency (vanilla gradient) explains square (20%) predicted triangle (70%)"
    )
    top2 = e.replace(
        predictions=e.predictions.replace(
            classes=e.predictions.classes[:, :2], probabilities=e.predictions.probabilities[:, :2]
        )
    )
    assert class_probability(top2, 0, 0) == (None, "<20%")  # below the second-best
    as_probability = top2.replace(score_kind="probability", targets=np.zeros(3, np.int64))
    as_probability = as_probability.replace(scores=np.full(3, 0.004, np.float32))
    assert class_probability(as_probability, 0, 0) == (pytest.approx(0.004), "<1%")


def test_probability_text_and_wrapping():
    assert [pct(p) for p in (0.0, 0.003, 0.5, 0.996, 1.0, None)] == [
        "0%",
        "<1%",
        "50%",
        ">99%",
        "100%",
        "?",
    ]
    assert wrap("Rectified backpropagation (DeconvNet)", 26) == (
        "Rectified backpropagation\n(DeconvNet)"
    )
    wrapped = wrap("model/base_model/block5_conv3", 12)
    assert all(len(line) <= 12 for line in wrapped.splitlines())
    assert wrapped.replace("\n", "") == "model/base_model/block5_conv3"  # broken after / or _
    assert fit("abc def", 10.0, 9) == "abc def"


# ---- item 2: honest colour scales ------------------------------------------------------------
def clims(fig, column, rows):
    grid = panels(fig)
    cols = len(grid) // rows
    return [grid[r * cols + column].get_images()[-1].get_clim()[1] for r in range(rows)]


def test_method_scale_is_shared_across_images_never_across_methods():
    comparison = b.comparison(3)  # Grad-CAM's values are 1000x smaller than saliency's
    fig = comparison.plot(shared_scale="method", kind="heatmap")
    saliency = clims(fig, 1, 3)
    gradcam = clims(fig, 2, 3)
    assert len(set(saliency)) == 1 and len(set(gradcam)) == 1  # one scale per method
    expected = np.percentile(np.abs(comparison["gradcam"].maps), 99.5)
    assert gradcam[0] == pytest.approx(expected, rel=1e-5)  # its own units: not blanked
    assert saliency[0] > 100 * gradcam[0]
    assert comparison.plot(shared_scale=True, kind="heatmap") is not None  # True = "method"
    bars = colorbars(fig)
    assert len(bars) == 4  # one per method column, in the map's units
    assert float(bars[1].get_xticks()[-1]) == pytest.approx(nice_tick(gradcam[0]))


def test_panel_scale_and_image_scale_within_one_method():
    square, circle = b.explanation(targets=1, seed=0), b.explanation(targets=0, seed=5)
    circle = circle.replace(maps=circle.maps * 10)
    grid = Comparison((square, circle, b.explanation("gradcam", fine=False, scale=1e-3)))
    fig = grid.plot(shared_scale="image", kind="heatmap")
    row = [ax.get_images()[-1].get_clim()[1] for ax in panels(fig)[1:4]]
    assert row[0] == row[1]  # same method (two classes) share the image's scale
    assert row[2] < row[0] / 100  # another method keeps its own
    fig = grid.plot(shared_scale="panel", kind="heatmap")
    row = [ax.get_images()[-1].get_clim()[1] for ax in panels(fig)[1:4]]
    assert row[1] == pytest.approx(10 * row[0], rel=0.5)
    ticks = [t.get_text() for t in colorbars(fig)[0].get_xticklabels()]
    assert ticks == ["-max", "0", "+max"]  # normalized: each panel has its own range
    with pytest.raises(InputError, match="shared_scale='row'"):
        grid.plot(shared_scale="row")


# ---- item 3: a readable default look ---------------------------------------------------------
def test_auto_shows_gradients_as_heatmaps_and_smooth_maps_over_the_photo():
    gradient, cam = b.explanation(), b.explanation("gradcam", fine=False, signed=False)
    assert fine_grained(gradient) and not fine_grained(cam)
    assert resolve_kind("auto", gradient) == "heatmap"
    assert resolve_kind("auto", cam) == "overlay"
    fig = Comparison((gradient, cam)).plot()
    heat, over = panels(fig)[1], panels(fig)[2]
    assert len(heat.get_images()) == 1 and heat.get_images()[0].get_cmap().name == "RdBu_r"
    photo, layer = over.get_images()
    assert photo.get_cmap().name == "gray"  # the photo in grey under the map
    alpha = np.asarray(layer.get_alpha())
    values = cam.maps[0]
    assert alpha.shape == values.shape  # opacity follows strength
    assert alpha[values == values.min()].max() < alpha[values == values.max()].min()
    assert alpha.max() <= 0.85 + 1e-6


def test_every_grid_has_colour_bars_and_a_legend_of_the_colours():
    fig = b.comparison(1).plot()
    assert len(colorbars(fig)) == 4
    legend = fig.get_supxlabel().replace("\n", " ")
    assert "Red: the pixel raises the explained class's score; blue: it lowers it" in legend
    assert "Bright: the pixels that matter most" in legend  # the unsigned Grad-CAM column
    only_cam = Comparison((b.explanation("gradcam", fine=False, signed=False),)).plot()
    assert "Red" not in only_cam.get_supxlabel()
    bare = b.comparison(1).plot(colorbar=False, legend=False)
    assert not colorbars(bare) and not bare.get_supxlabel()


def test_single_panel_colour_bar_reads_in_the_maps_units():
    e = b.explanation(scale=1e-4)
    ax = e.plot(0, ax=Figure().add_subplot())  # colour bar by default
    (bar,) = colorbars(ax.figure)
    assert bar.get_ylim()[1] == pytest.approx(np.percentile(np.abs(e.maps[0]), 99.5), rel=1e-5)
