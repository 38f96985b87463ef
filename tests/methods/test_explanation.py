"""Explanation and Comparison: immutability, subsets, normalization, frames, plots.

Built from numpy alone (no model), except the compare/explain list path at the end."""

from __future__ import annotations

import pickle

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import vizkit
from tests.methods import zoo
from vizkit.results.explanation import Comparison, Explanation, Predictions


def make(method="saliency", n=3, signed=True, layer=None, seed=0) -> Explanation:
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(n, 8, 8)).astype(np.float32)
    if not signed:
        maps = np.abs(maps)
    return Explanation(
        method=method,
        maps=maps,
        inputs=rng.random((n, 8, 8, 3), dtype=np.float32),
        targets=np.arange(n) % 3,
        scores=rng.normal(size=n).astype(np.float32),
        predictions=Predictions(
            classes=np.tile([[2, 1, 0]], (n, 1)),
            probabilities=np.tile([[0.7, 0.2, 0.1]], (n, 1)).astype(np.float32),
        ),
        layer=layer,
        params={"samples": 3},
        label=method.title(),
        class_names=("cat", "dog", "bird"),
    )


def test_immutable_and_picklable():
    e = make()
    with pytest.raises(ValueError):
        e.maps[0, 0, 0] = 1.0
    with pytest.raises(TypeError):
        e.params["samples"] = 4
    with pytest.raises(AttributeError):
        e.method = "other"
    back = pickle.loads(pickle.dumps(e))
    np.testing.assert_array_equal(back.maps, e.maps)
    assert back.params == {"samples": 3} and not back.maps.flags.writeable
    with pytest.raises(TypeError):
        back.params["samples"] = 4


def test_getitem_and_iteration():
    e = make(n=4)
    one = e[2]
    assert len(one) == 1 and one.maps.shape == (1, 8, 8)
    np.testing.assert_array_equal(one.maps[0], e.maps[2])
    assert one.predictions.classes.shape == (1, 3)
    assert len(e[1:3]) == 2 and len(e[[0, 3]]) == 2
    assert len(list(e)) == 4
    with pytest.raises(IndexError):
        e[4]


def test_normalized():
    e = make()
    signed = e.normalized(clip_percentile=None)
    assert signed.min() >= -1 and signed.max() <= 1
    np.testing.assert_allclose(np.abs(signed).max(axis=(1, 2)), 1.0)
    magnitude = e.normalized(absolute=True, clip_percentile=90)
    assert magnitude.min() >= 0 and magnitude.max() == 1.0
    assert (magnitude == 1.0).mean() >= 0.09
    shared = e.normalized(per_image=False, clip_percentile=None)
    assert np.isclose(np.abs(shared).max(), 1.0)
    # raw maps are untouched
    assert np.abs(e.maps).max() > 1.0


def test_to_frame():
    frame = make().to_frame()
    assert len(frame) == 3
    assert {"target", "target_name", "score_logit", "predicted", "probability"} <= set(frame)
    assert list(frame["target_name"]) == ["cat", "dog", "bird"]


@pytest.mark.parametrize("kind", ["overlay", "heatmap", "masked"])
def test_plot_draws_on_given_axes(kind):
    fig = Figure()
    ax = fig.add_subplot()
    e = make()
    returned = e.plot(1, ax=ax, kind=kind, colorbar=True)
    assert returned is ax
    images = ax.get_images()
    assert len(images) == (2 if kind == "overlay" else 1)
    if kind != "masked":  # raw values; the colour limits do the scaling (symmetric about 0)
        top = images[-1]
        limit = np.percentile(np.abs(e.maps[1]), 99.5)
        assert top.get_cmap().name == "RdBu_r"
        np.testing.assert_allclose(top.get_clim(), (-limit, limit), rtol=1e-5)
    title = ax.get_title()
    assert "Saliency" in title and "explains dog" in title and "predicted bird (70%)" in title


def test_plot_unsigned_and_absolute_use_a_sequential_colour_map():
    e = make(signed=False)
    ax = e.plot(ax=Figure().add_subplot(), kind="heatmap")
    assert ax.get_images()[0].get_clim()[0] == 0.0
    assert ax.get_images()[0].get_cmap().name == "inferno"
    ax = make().plot(ax=Figure().add_subplot(), kind="heatmap", absolute=True, cmap="magma")
    assert ax.get_images()[0].get_cmap().name == "magma"
    with pytest.raises(vizkit.InputError, match="kind='contour'"):
        make().plot(ax=Figure().add_subplot(), kind="contour")


def test_plot_without_axes_uses_pyplot():
    import matplotlib.pyplot as plt

    ax = make().plot()
    assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]


def test_comparison_grid():
    a, b = make("saliency"), make("gradcam", signed=False, layer="conv2", seed=1)
    b = b.replace(inputs=a.inputs)
    comparison = vizkit.compare([a, b])
    assert comparison.methods == ["saliency", "gradcam"]
    assert comparison["gradcam"] is comparison[1]
    fig = comparison.plot()
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 * 3
    titles = [ax.get_title() for ax in panels]
    assert titles[0] == "image 0\npredicted bird (70%)" + "\n" + "explains cat (10%)"
    assert titles[1] == "Saliency" and titles[2] == "Gradcam\nconv2"
    given = Figure()
    assert comparison.plot(given, images=[2], shared_scale=True, kind="heatmap") is given
    assert len([ax for ax in given.axes if ax.get_label() != "<colorbar>"]) == 3
    assert len(comparison.to_frame()) == 6
    back = pickle.loads(pickle.dumps(comparison))
    assert back.methods == comparison.methods


def test_comparison_refuses_different_images():
    with pytest.raises(vizkit.InputError, match="different images"):
        Comparison((make(seed=0), make(seed=1)))


def test_explain_with_a_list_of_methods():
    model = zoo.sequential()
    comparison = vizkit.explain(
        model, zoo.images(2), method=["saliency", "gradcam", "smoothgrad"], samples=2
    )
    assert isinstance(comparison, Comparison)
    assert comparison.methods == ["saliency", "gradcam", "smoothgrad"]
    assert comparison["smoothgrad"].params["samples"] == 2
    fig = comparison.plot()
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 2 * 4
    with pytest.raises(vizkit.InputError, match="no chosen method takes parameter 'steps'"):
        vizkit.explain(model, zoo.images(1), method=["saliency"], steps=3)


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"
