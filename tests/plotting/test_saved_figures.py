"""Item 4 of issue 16: nothing is clipped when a figure is saved at its own size.

Every result's ``plot`` (and the plotting functions behind them) is drawn at its default size,
then the tight bounding box of everything drawn is compared with the figure's extent (what a
plain ``fig.savefig(path)`` keeps), and no two texts (titles, rotated layer names, colour-bar
ticks, legends, axis labels) may overlap. Results are built from numpy: no model, fast.
"""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from tests.plotting import builders as b
from tests.plotting.checks import assert_inside, overlaps, render
from vizkit.plotting.figures import new_figure
from vizkit.plotting.metrics import plot_curves, plot_health
from vizkit.plotting.summary import architecture_size


def _ax_figure(draw):
    """Call ``draw(ax=None)`` (the notebook path) and return its figure."""
    return draw(None).figure


def _architecture(summary, **kwargs):
    fig = new_figure(*architecture_size(summary, **kwargs))
    summary.plot(ax=fig.add_subplot(), expand_nested=kwargs.get("expand_nested"))
    return fig


FIGURES = {
    "explanation.plot": lambda: _ax_figure(lambda ax: b.explanation().plot(0, ax)),
    "explanation.plot overlay": lambda: _ax_figure(
        lambda ax: b.explanation(fine=False).plot(0, ax, kind="overlay")
    ),
    "explanation.plot long layer": lambda: _ax_figure(
        lambda ax: b.explanation("gradcam", "Grad-CAM", layer=b.LONG_LAYER, fine=False).plot(0, ax)
    ),
    "comparison.plot": lambda: b.comparison().plot(),
    "comparison.plot one image": lambda: b.comparison().plot(images=[1]),
    "comparison.plot method scale": lambda: b.comparison().plot(shared_scale="method"),
    "comparison.plot image scale heatmap": lambda: b.comparison().plot(
        shared_scale="image", kind="heatmap"
    ),
    "comparison.plot masked": lambda: b.comparison(2).plot(kind="masked"),
    "filter_bank.plot": lambda: b.filter_bank().plot(),
    "filter_bank.plot mean per filter": lambda: b.filter_bank().plot(mode="mean", scale="filter"),
    "feature_maps.plot": lambda: b.feature_maps().plot(0),
    "feature_maps.plot shared overlay": lambda: b.feature_maps().plot(
        1, scale="shared", overlay=True
    ),
    "feature_maps.plot dense": lambda: b.feature_map_set()["fc"].plot(0, top_k=None),
    "feature_map_set.plot": lambda: b.feature_map_set().plot(0),
    "unit_examples.plot": lambda: b.unit_examples(padded=True).plot(),
    "unit_examples.plot images": lambda: b.unit_examples().plot(patches=False),
    "activation_images.plot": lambda: b.activation_images().plot(),
    "activation_images.plot 3": lambda: b.activation_images(3).plot(),
    "activation_images.plot 24": lambda: b.activation_images(24).plot(),
    "activation_images.plot_history": lambda: _ax_figure(b.activation_images().plot_history),
    "model_summary.plot": lambda: _ax_figure(lambda ax: b.model_summary().plot(ax)),
    "model_summary.plot expanded": lambda: _ax_figure(
        lambda ax: b.model_summary(expand_nested=True).plot(ax)
    ),
    "model_summary.plot crowded": lambda: _ax_figure(lambda ax: b.model_summary(extra=45).plot(ax)),
    "architecture in a report figure": lambda: _architecture(b.model_summary(), expand_nested=True),
    "architecture on a narrow dashboard axes": lambda: _narrow_architecture(),
    "perturbation_curve.plot": lambda: _ax_figure(lambda ax: b.deletion_curve().plot(ax)),
    "perturbation_curve.plot per image": lambda: _ax_figure(
        lambda ax: b.deletion_curve().plot(ax, per_image=True)
    ),
    "plot_curves": lambda: _ax_figure(
        lambda ax: plot_curves({"a": b.deletion_curve(), "b": b.deletion_curve()}, ax)
    ),
    "evaluation.plot": lambda: _ax_figure(lambda ax: b.evaluation().plot(ax)),
    "pointing_game.plot": lambda: _ax_figure(lambda ax: b.pointing_game().plot(ax)),
    "relevance_mass.plot": lambda: _ax_figure(lambda ax: b.relevance_mass().plot(ax)),
    "randomization.plot": lambda: _ax_figure(lambda ax: b.randomization().plot(ax)),
    "randomization.plot_maps": lambda: b.randomization().plot_maps(),
    "health.plot": lambda: _ax_figure(lambda ax: plot_health(b.health(), ax)),
    "plot_history": lambda: _history(),
}


def _narrow_architecture():
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    b.model_summary(extra=20).plot(ax=fig.add_subplot())
    return fig


def _history():
    from vizkit.summary import plot_history

    history = {
        "loss": [1.0, 0.5, 0.3],
        "val_loss": [1.1, 0.7, 0.6],
        "sparse_categorical_accuracy": [0.5, 0.8, 0.9],
        "val_sparse_categorical_accuracy": [0.4, 0.7, 0.8],
    }
    return plot_history(history)


@pytest.mark.parametrize("name", list(FIGURES))
def test_saved_figure_keeps_everything_and_texts_do_not_collide(name):
    fig = FIGURES[name]()
    assert fig.get_layout_engine() is not None, "no layout engine: labels may be clipped"
    assert_inside(fig)
    assert overlaps(fig) == []


def test_the_check_catches_clipping_and_collisions():
    """The checks themselves: a title far outside the figure and two texts on one spot."""
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.set_title("a title pushed out of the figure", y=3.0)
    with pytest.raises(AssertionError, match="outside"):
        assert_inside(fig)
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "one")
    ax.text(0.5, 0.5, "two")
    render(fig)
    assert ("one", "two") in overlaps(fig)
