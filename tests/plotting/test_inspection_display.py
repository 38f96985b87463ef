"""Issue 16, items 5 and 6: the architecture diagram, activation-maximization grids, the gain
over noise, deletion bands, legends, feature-map grids and unit pages (numpy-built results)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tests.plotting import builders as b
from tests.plotting.checks import overlaps, render
from vizkit.plotting.summary import label_fit
from vizkit.plotting.units import default_columns, in_image_share
from vizkit.results.inspection import FeatureMaps


def blocks(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_label()]


# ---- item 5: the architecture diagram -------------------------------------------------------
def test_diagram_names_every_layer_and_collapses_nested_models_by_default():
    summary = b.model_summary()
    ax = summary.plot(ax=Figure(figsize=(12, 5), layout="constrained").add_subplot())
    names = [p.get_label() for p in blocks(ax)]
    assert names == [
        "rescaling",
        "feature_extractor_backbone",
        "global_average_pooling2d",
        "predictions",
    ]
    labels = [t.get_text() for t in ax.texts if t.get_rotation() == 90]
    assert labels[1] == "feature_extractor_backbone\nFunctional (nested) 8x8x128"
    assert labels[3] == "predictions\nDense 10"
    expanded = b.model_summary().plot(ax=Figure().add_subplot(), expand_nested=True)
    assert "feature_extractor_backbone/block1_pool" in [p.get_label() for p in blocks(expanded)]


def test_crowded_diagram_shrinks_then_thins_its_labels_and_never_collides():
    assert label_fit(40.0) == (8.0, 2, 1)  # room for two lines at 8 pt
    size, lines, every = label_fit(10.0)
    assert lines == 1 and size >= 5.5 and every == 1  # the layer name alone
    assert label_fit(4.0)[2] >= 2  # then every other block
    fig = Figure(figsize=(6, 4), layout="constrained")
    b.model_summary(extra=60).plot(ax=fig.add_subplot())
    render(fig)
    assert overlaps(fig) == []


def test_summary_frames_follow_expand_nested():
    summary = b.model_summary()
    assert "feature_extractor_backbone/block1_pool" not in list(summary.to_frame()["path"])
    assert "feature_extractor_backbone/block1_pool" in list(
        summary.to_frame(expand_nested=True)["path"]
    )
    assert "block1_pool" in summary.to_text(expand_nested=True)
    assert "block1_pool" not in summary.to_text()


# ---- item 6: activation maximization ----------------------------------------------------------
@pytest.mark.parametrize(("count", "cols"), [(1, 1), (5, 5), (6, 3), (10, 5), (12, 5), (40, 8)])
def test_activation_grids_wrap(count, cols):
    assert default_columns(count) == cols


def test_ten_classes_make_a_two_by_five_grid():
    fig = b.activation_images(10).plot()
    rows = {round(ax.get_position().y0, 3) for ax in fig.axes}
    columns = {round(ax.get_position().x0, 3) for ax in fig.axes}
    assert len(fig.axes) == 10 and len(rows) == 2 and len(columns) == 5
    assert fig.axes[0].get_title().splitlines()[-1] == "predicted digit 0"


def test_gain_over_noise_is_meaningful_for_a_negative_noise_baseline():
    images = b.activation_images(4, negative_noise=True)
    frame = images.to_frame()
    assert "ratio_to_noise" not in frame
    assert (images.noise_activation < 0).all()
    np.testing.assert_allclose(frame["above_noise"], images.activation - images.noise_activation)
    np.testing.assert_allclose(frame["gain_over_noise"], frame["above_noise"] / 0.5, rtol=1e-6)
    assert (frame["gain_over_noise"] > 0).all()  # a ratio would have been negative
    assert np.isnan(images.replace(noise_spread=None).gain_over_noise).all()
    assert "sd vs noise" in images.plot().axes[0].get_title()


# ---- item 6: curves -----------------------------------------------------------------------------
def test_deletion_band_stays_in_the_probability_range_and_legends_beside_the_curves():
    curve = b.deletion_curve()
    fig = Figure(figsize=(7, 3), layout="constrained")
    ax = curve.plot(ax=fig.add_subplot())
    (band,) = ax.collections
    ys = np.concatenate([path.vertices[:, 1] for path in band.get_paths()])
    assert ys.min() >= 0.0 and ys.max() <= 1.0
    raw = curve.scores.mean(axis=0) - curve.scores.std(axis=0)
    assert raw.min() < 0  # the band would have left [0, 1] unclipped
    render(fig)
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))  # beside, never over
    logit = b.deletion_curve(score="logit").plot(ax=Figure().add_subplot())
    (band,) = logit.collections
    assert np.concatenate([p.vertices[:, 1] for p in band.get_paths()]).min() < 0


def test_history_legend_is_beside_the_curves():
    ax = b.activation_images(3).plot_history(ax=Figure(layout="constrained").add_subplot())
    render(ax.figure)
    renderer = ax.figure.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(ax.get_window_extent(renderer))


# ---- item 6: feature maps and unit pages --------------------------------------------------------
def test_feature_map_grid_has_the_input_and_a_colour_bar():
    maps = b.feature_maps()
    fig = maps.plot(0, top_k=4, scale="shared")
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert grid[0].get_title().startswith("input") and len(grid) == 5 and len(bars) == 1
    chosen = maps.activations[0][..., maps.order_channels(0)[:4]]
    assert bars[0].get_ylim() == pytest.approx((chosen.min(), chosen.max()))
    bare = FeatureMaps(activations=maps.activations, layer="x").plot(0, top_k=4)
    assert len([ax for ax in bare.axes if ax.get_label() != "<colorbar>"]) == 4  # no images


def test_feature_maps_of_several_layers_plot_as_rows():
    result = b.feature_map_set()
    assert list(result) == ["conv1", b.LONG_LAYER, "fc"] and "fc" in result
    assert result["conv1"] is result[0] and dict(result.items())["fc"].layer == "fc"
    fig = result.plot(0, top_k=3)
    assert len(fig.subfigs) == 3
    first_row = [ax for ax in fig.subfigs[0].axes if ax.get_label() != "<colorbar>"]
    assert first_row[0].get_title() == "input" and len(first_row) == 4
    frame = result.to_frame()
    assert set(frame["layer"]) == {"conv1", b.LONG_LAYER, "fc"}
    with pytest.raises(KeyError, match="no feature maps for layer 'nope'"):
        result["nope"]


def test_unit_pages_show_mostly_padded_patches_as_the_whole_image():
    examples = b.unit_examples(padded=True)
    assert in_image_share(examples, 0, 0) == 1.0
    assert in_image_share(examples, 0, 1) == pytest.approx(0.16)
    fig = examples.plot()
    row = fig.axes[1:4]  # channel 0: its filter, then three examples
    padded = row[1]
    assert padded.get_images()[0].get_array().shape[:2] == (16, 16)  # the whole image ...
    assert len(padded.patches) == 1  # ... with the receptive field boxed
    assert row[0].get_images()[0].get_array().shape[:2] == (10, 10)  # a patch
    assert "mostly outside the image" in fig.get_suptitle()
