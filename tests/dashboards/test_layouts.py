"""Display changes reuse the last layout and redraw only the map panels: pixel for pixel the
picture a full drawing makes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import vizkit
from dashboards import display, layouts
from tests.methods import zoo


@pytest.fixture(scope="module")
def explanations():
    model, x = zoo.sequential(), zoo.images(3)
    return [
        vizkit.explain(model, x, "gradcam", targets=[0, 1, 2], layer="conv2"),
        vizkit.explain(model, x, "saliency", targets=[0, 1, 2]),
    ]


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def draw(explanations, options, *, layout=None, changing=None) -> np.ndarray:
    fig = vizkit.compare(explanations).plot(**options)
    return pixels(display.screen_png(fig, layout=layout, changing=changing))


@pytest.mark.parametrize("kind", ["auto", "overlay", "heatmap", "masked"])
@pytest.mark.parametrize("shared", ["panel", "method"])
def test_reused_layouts_and_backgrounds_draw_the_same_picture(
    monkeypatch, explanations, kind, shared
):
    monkeypatch.setattr(display, "_LAYOUTS", layouts.LayoutCache())
    monkeypatch.setattr(display, "_BACKGROUNDS", layouts.Backgrounds())
    key = ("maps", kind, shared)
    changes = [
        {"cmap": None, "alpha": 0.85, "clip_percentile": 99.5},
        {"cmap": "viridis", "alpha": 0.85, "clip_percentile": 99.5},  # background kept now
        {"cmap": "magma", "alpha": 0.4, "clip_percentile": 99.5},  # drawn over it
        {"cmap": "magma", "alpha": 0.4, "clip_percentile": 90.0},  # another legend: new layout
    ]
    for change in changes:
        options = {"kind": kind, "shared_scale": shared, **change}
        reused = draw(explanations, options, layout=key, changing=display.beside_inputs)
        full = draw(explanations, options)
        assert reused.shape == full.shape
        assert np.array_equal(reused, full), change
    assert display._LAYOUTS.hits >= 2
    assert display._BACKGROUNDS.hits >= 1


def test_the_occlusion_rows_too(monkeypatch, explanations):
    """The Occlusion page's rows (input, raw map with colour bar, overlay; axes with spines)."""
    from vizkit.plotting import plot_explanation_rows

    monkeypatch.setattr(display, "_LAYOUTS", layouts.LayoutCache())
    monkeypatch.setattr(display, "_BACKGROUNDS", layouts.Backgrounds())
    for cmap, alpha in (("RdBu_r", 0.5), ("bwr", 0.5), ("viridis", 0.8)):

        def build(cmap=cmap, alpha=alpha):
            fig = display.new_figure(9.6, 3.0 * len(explanations[0]))
            return plot_explanation_rows(explanations[0], fig, cmap=cmap, alpha=alpha)

        reused = pixels(display.screen_png(build(), layout="rows", changing=display.beside_inputs))
        full = pixels(display.screen_png(build()))
        assert np.array_equal(reused, full), (cmap, alpha)
    assert display._BACKGROUNDS.hits >= 1


def test_only_the_columns_beside_the_inputs_and_the_colour_bars_change(explanations):
    fig = vizkit.compare(explanations).plot(kind="heatmap")
    changing = display.beside_inputs(fig)
    first_column = [
        ax for ax in fig.axes if ax.get_subplotspec() and ax.get_subplotspec().colspan.start == 0
    ]
    assert first_column and not set(first_column) & set(changing)
    assert len(changing) == len(fig.axes) - len(first_column)


def test_backgrounds_are_bounded():
    kept = layouts.Backgrounds(keep=2)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    for i in range(3):
        fig = Figure(figsize=(2, 2), layout="constrained")
        ax = fig.subplots(1, 2)[1]
        ax.imshow(np.eye(3) * i)
        ax.set_axis_off()
        kept.draw(FigureCanvasAgg(fig), f"key{i}", [ax])
    assert len(kept) == 2
