"""The compute worker's every-layer CAM memory (``dashboards.sweeps``), run in this process."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from dashboards.sweeps import LayerMaps, images_digest
from tests.methods import zoo

PARAMS = {"engine": "native", "score": "logit"}


@pytest.fixture
def counted(monkeypatch):
    """Count the sweeps computed (vizkit.explain_layers calls)."""
    calls = []
    sweep = vizkit.explain_layers

    def counting(*args, **kwargs):
        calls.append(args[3] if len(args) > 3 else kwargs.get("layers"))
        return sweep(*args, **kwargs)

    monkeypatch.setattr(vizkit, "explain_layers", counting)
    return calls


def test_layer_changes_come_from_one_sweep(counted):
    model, x = zoo.sequential(), zoo.images()
    maps = LayerMaps()
    assert maps.explanation(model, x, "gradcam", [0, 1, 2], "conv1", PARAMS) is None  # not warm
    assert maps.warm(model, "gradcam", PARAMS) and len(counted) == 1
    for layer in ("conv1", "pool1", "conv2"):
        found = maps.explanation(model, x, "gradcam", [0, 1, 2], layer, PARAMS)
        expected = vizkit.explain(model, x, "gradcam", targets=[0, 1, 2], layer=layer)
        assert found.layer == layer
        np.testing.assert_allclose(found.maps, expected.maps, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(found.targets, expected.targets)
    assert len(counted) == 2  # the warm-up and one sweep for all three layers
    # other targets: a new sweep; a layer traced on its own: the single-layer call is cheaper
    assert maps.explanation(model, x, "gradcam", None, "conv2", PARAMS) is not None
    assert len(counted) == 3
    maps.traced(model, "gradcam", PARAMS, "conv1")
    assert maps.explanation(model, x, "gradcam", 1, "conv1", PARAMS) is None


def test_methods_without_a_one_pass_sweep_are_left_alone(counted):
    model, x = zoo.sequential(), zoo.images(1)
    maps = LayerMaps()
    assert not maps.warm(model, "scorecam", {"score": "probability"})
    assert not maps.warm(model, "gradcam", {**PARAMS, "engine": "tf-keras-vis"})
    assert maps.explanation(model, x, "guided_gradcam", 0, "conv2", {}) is None
    assert counted == []


def test_kept_sweeps_are_bounded_and_forgotten_with_their_model(counted):
    model, x = zoo.sequential(), zoo.images(2)
    maps = LayerMaps(keep=2)
    maps.warm(model, "gradcam", PARAMS)
    for target in range(3):
        maps.explanation(model, x, "gradcam", target, "conv2", PARAMS)
    assert len(maps._sweeps) == 2
    maps.forget(model)
    assert not maps._sweeps and not maps._traced


def test_the_images_digest_sees_pixels_and_names():
    batch = vizkit.ImageBatch(zoo.images(2), names=("a", "b"))
    same = vizkit.ImageBatch(zoo.images(2), names=("a", "b"))
    renamed = vizkit.ImageBatch(zoo.images(2), names=("a", "c"))
    changed = vizkit.ImageBatch(zoo.images(2) + 1e-3, names=("a", "b"))
    assert images_digest(batch) == images_digest(same)
    assert len({images_digest(b) for b in (batch, renamed, changed)}) == 3
