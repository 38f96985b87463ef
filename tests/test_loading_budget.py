"""vizkit.loading._budget: parameter counts and tensor sizes before building, against Keras.

For every Keras layer class a config may name, a one-layer model is built and serialized; the
count vizkit makes from the config alone must equal Keras's ``count_params`` (up to the few
values of random layers' seed state), so no layer with weights escapes the parameter limit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.hostile import specs
from vizkit._tf import keras
from vizkit.loading import _allow, _budget

L = keras.layers


def _public_layer_classes() -> list[type]:
    allowed = _allow.allowed().positions["layer"]
    return sorted(
        (
            c
            for c in allowed
            if c.__module__.startswith("keras.src.layers")
            or c.__module__.startswith("keras.src.applications")
        ),
        key=lambda c: c.__name__,
    )


def _model_with(layer_class: type) -> keras.Model | None:
    kwargs, make_inputs = specs.spec(layer_class.__name__)
    if make_inputs is None:
        return None
    arrays = make_inputs()
    arrays = arrays if isinstance(arrays, list) else [arrays]
    inputs = [
        keras.Input(a.shape[1:], dtype=str(a.dtype) if a.dtype.kind != "U" else "string")
        for a in arrays
    ]
    layer = layer_class(**kwargs())
    if layer_class.__name__ in ("MultiHeadAttention", "GroupedQueryAttention"):
        outputs = layer(*inputs)  # query, value
    else:
        outputs = layer(inputs if len(inputs) > 1 else inputs[0])
    return keras.Model(inputs, outputs)


def _estimate(model: keras.Model) -> _budget.Estimate:
    config = json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=_plain))
    return _budget.estimate(config, _allow.layer_class_name)


def _plain(value):  # what saving writes for numpy scalars and arrays
    return value.tolist() if hasattr(value, "tolist") else str(value)


def test_every_layer_with_weights_is_counted_exactly():
    report = []
    for layer_class in _public_layer_classes():
        if layer_class.__name__ in ("InputLayer", "Functional", "Sequential"):
            continue
        try:
            model = _model_with(layer_class)
        except ValueError as err:  # a layer that returns its input unchanged: no weights
            assert "cycle" in str(err), f"{layer_class.__name__}: {err}"
            continue
        if model is None:
            continue
        actual = model.count_params()
        counted = _estimate(model).parameters
        if not actual - 8 <= counted <= actual:
            report.append(f"{layer_class.__name__}: counted {counted}, Keras has {actual}")
    assert not report, "\n".join(report)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "SimpleRNNCell"])
def test_rnn_cells_are_counted(name):
    cell = getattr(L, name)(3)
    layer = L.RNN(cell)
    model = keras.Model(inputs := keras.Input((5, 4)), layer(inputs))
    assert _estimate(model).parameters == model.count_params()


def test_output_shapes_computed_for_unrecorded_outputs_match_keras():
    report = []
    for layer_class in _public_layer_classes():
        try:
            model = _model_with(layer_class) if layer_class.__name__ != "InputLayer" else None
        except ValueError:
            continue  # returns its input unchanged
        if model is None or len(model.inputs) > 1:
            continue
        config = json.loads(json.dumps(model.get_layer(index=1).get_config(), default=_plain))
        shape = tuple(model.inputs[0].shape)
        computed = _budget.output_shape(layer_class.__name__, config, [shape])
        if computed is not None and computed != tuple(model.outputs[0].shape):
            report.append(f"{layer_class.__name__}: {computed} != {model.outputs[0].shape}")
    assert not report, "\n".join(report)


def test_legacy_sequential_shapes_are_carried_from_layer_to_layer():
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Conv2D(8, 3, strides=2, padding="same"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(7),
            L.Dense(3),
        ]
    )
    config = json.loads(json.dumps({"class_name": "Sequential", "config": model.get_config()}))
    for layer in config["config"]["layers"]:  # as in a legacy .h5: no module, no shapes
        layer.pop("module", None)
        layer.pop("build_config", None)
    estimate = _budget.estimate(config, _allow.layer_class_name)
    assert estimate.parameters == model.count_params()
    assert estimate.largest == 16 * 16 * 3


def test_nested_models_and_shared_layers_count_once():
    inner = keras.Sequential([keras.Input((4,)), L.Dense(5), L.Dense(2)])
    inputs = keras.Input((4,))
    shared = L.Dense(4)
    x = shared(shared(inputs))
    outer = keras.Model(inputs, inner(x))
    assert _estimate(outer).parameters == outer.count_params()
    np.testing.assert_equal(_estimate(inner).parameters, inner.count_params())
