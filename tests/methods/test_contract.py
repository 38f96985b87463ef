"""One contract over every registered method and every zoo model.

Shape, dtype and finiteness; ``targets=None`` is the argmax; a batch equals its images one by
one; a seed makes it deterministic; the model is unchanged; the result survives pickling.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from vizkit.models import iter_layers

#: small hyperparameters: the contract is about behaviour, not quality
FAST = {
    "smoothgrad": {"samples": 4, "seed": 3},
    "integrated_gradients": {"steps": 8},
    "occlusion": {"patch_size": 6, "stride": 4},
    "faster_scorecam": {"max_n": 3},
}
MODELS = [*zoo.BUILDERS, "keras_file"]
METHODS = vizkit.available_methods()


def snapshot(model):
    layers = [(path, id(layer), type(layer).__name__) for path, layer in iter_layers(model)]
    activations = [
        (path, getattr(getattr(layer, "activation", None), "__name__", None))
        for path, layer in iter_layers(model)
    ]
    weights = [w.copy() for w in model.get_weights()]
    return layers, activations, weights, [id(t) for t in model.outputs]


def assert_same_model(before, after):
    assert before[0] == after[0]
    assert before[1] == after[1]
    assert before[3] == after[3]
    assert len(before[2]) == len(after[2])
    for a, b in zip(before[2], after[2]):
        np.testing.assert_array_equal(a, b)


def close(a, b):
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("model_name", MODELS)
def test_contract(models, model_name, method):
    model = models[model_name]
    output = zoo.OUTPUT.get(model_name)
    params = FAST.get(method, {})
    x = zoo.images()
    before = snapshot(model)
    reference = model(x, training=False)

    e = vizkit.explain(model, x, method=method, output=output, **params)

    assert isinstance(e, vizkit.methods.Explanation)
    assert e.method == method
    assert e.maps.shape == x.shape[:3]
    assert e.maps.dtype == np.float32
    assert np.isfinite(e.maps).all()
    assert not e.maps.flags.writeable
    assert (e.layer is not None) == vizkit.get_method(method).needs_layer

    probs = zoo.head_probabilities(model, x, output)
    np.testing.assert_array_equal(e.targets, probs.argmax(axis=1))
    np.testing.assert_allclose(e.predictions.top_probability, probs.max(axis=1), rtol=1e-4)

    # a batch equals its images one by one (explicit targets on the singles)
    singles = [
        vizkit.explain(
            model, x[i : i + 1], method=method, targets=int(e.targets[i]), output=output, **params
        )
        for i in range(len(x))
    ]
    close(np.concatenate([s.maps for s in singles]), e.maps)
    np.testing.assert_allclose(np.concatenate([s.scores for s in singles]), e.scores, rtol=1e-5)

    # deterministic (same seed, fresh method object)
    close(vizkit.explain(model, x, method=method, output=output, **params).maps, e.maps)

    # the model is untouched: layers, activations, weights, outputs
    assert_same_model(before, snapshot(model))
    after = model(x, training=False)
    for a, b in zip(
        np.atleast_1d(reference) if not isinstance(reference, list) else reference,
        after if isinstance(after, list) else np.atleast_1d(after),
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # pickle round-trip
    back = pickle.loads(pickle.dumps(e))
    np.testing.assert_array_equal(back.maps, e.maps)
    np.testing.assert_array_equal(back.targets, e.targets)
    np.testing.assert_array_equal(back.predictions.classes, e.predictions.classes)
    assert back.params == e.params and back.layer == e.layer and back.method == e.method
    assert not back.maps.flags.writeable
