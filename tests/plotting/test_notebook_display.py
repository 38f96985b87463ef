"""Issue 16, item 10: every result prints short and renders in a notebook."""

from __future__ import annotations

import dataclasses
import html

import numpy as np
import pytest

from tests.plotting import builders as b
from vizkit.inputs import ImageBatch
from vizkit.results.base import Result
from vizkit.results.display import short_value

RESULTS = {
    "explanation": lambda: b.explanation(n=6),
    "comparison": lambda: b.comparison(2),
    "predictions": lambda: b.explanation().predictions,
    "filter_bank": b.filter_bank,
    "feature_maps": b.feature_maps,
    "feature_map_set": b.feature_map_set,
    "unit_examples": b.unit_examples,
    "activation_images": b.activation_images,
    "model_summary": b.model_summary,
    "layer_info": lambda: b.model_summary().layers[2],
    "deletion_curve": b.deletion_curve,
    "pointing_game": b.pointing_game,
    "relevance_mass": b.relevance_mass,
    "randomization": b.randomization,
    "health": b.health,
    "evaluation": b.evaluation,
    "image_batch": lambda: ImageBatch(
        array=np.random.default_rng(0).random((20, 300, 300, 3), dtype=np.float32),
        names=tuple(f"photo {i}.jpg" for i in range(20)),
    ),
}


@pytest.mark.parametrize("name", list(RESULTS))
def test_repr_is_short_and_never_dumps_arrays(name):
    result = RESULTS[name]()
    text = repr(result)
    assert len(text) <= 300 and "\n" not in text
    assert "[[" not in text and "array([" not in text  # no numpy values


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("explanation", "<img"),  # its figure
        ("comparison", "<img"),
        ("feature_maps", "<img"),
        ("activation_images", "<table"),  # figure and table
        ("model_summary", "<table"),  # the layer table
        ("image_batch", "<figure"),  # thumbnails
        ("evaluation", "<table"),
        ("health", "<table"),
    ],
)
def test_notebook_html(name, expected):
    result = RESULTS[name]()
    page = result._repr_html_()
    assert expected in page and len(page) < 2_000_000
    if name != "model_summary":  # that one starts with the model's name and totals
        assert html.escape(repr(result)) in page  # the one-line summary on top


def test_summary_table_and_thumbnails():
    page = b.model_summary()._repr_html_()
    assert "feature_extractor_backbone" in page and "block1_pool" not in page  # collapsed
    batch = RESULTS["image_batch"]()
    page = batch._repr_html_()
    assert page.count("<figure") == 16 and "... and 4 more" in page
    assert "photo 0.jpg" in page


def test_every_result_class_gets_the_short_repr():
    import vizkit.results.explanation
    import vizkit.results.inspection
    import vizkit.results.metrics
    import vizkit.results.summary  # noqa: F401

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(Result):
        if dataclasses.is_dataclass(cls):
            assert "__repr__" in cls.__dict__, cls  # ours (short), not the dataclass dump


def test_short_value():
    assert short_value(np.zeros((3, 4), np.float32)) == "array(3x4, float32)"
    assert short_value(tuple(range(10))) == "tuple(10 items)"
    assert short_value("x" * 100).endswith("...")
