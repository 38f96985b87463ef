"""Tiny seeded models for the attribution tests: one per architecture pattern the engine must
handle. Every model takes 16x16x3 images (a few filters), so a whole zoo builds in a second."""

from __future__ import annotations

import functools

import numpy as np

from vizkit._tf import keras

L = keras.layers
SIZE = (16, 16, 3)
RANDOM_BIAS = "random_normal"  # non-zero biases: the network is not positively homogeneous


def _conv(filters, **kw):
    return L.Conv2D(filters, 3, bias_initializer=RANDOM_BIAS, **kw)


def _dense(units, **kw):
    return L.Dense(units, bias_initializer=RANDOM_BIAS, **kw)


def sequential() -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential(
        [
            keras.Input(SIZE),
            _conv(4, activation="relu", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            _conv(6, activation="relu", name="conv2"),
            L.Flatten(name="flatten"),
            _dense(3, activation="softmax", name="probs"),
        ],
        name="seq",
    )


def nested() -> keras.Model:
    keras.utils.set_random_seed(2)
    base_in = keras.Input(SIZE)
    h = _conv(4, activation="relu", name="inner_conv1")(base_in)
    h = _conv(6, activation="relu", name="inner_conv")(h)
    base = keras.Model(base_in, h, name="base")
    inputs = keras.Input(SIZE)
    y = L.GlobalAveragePooling2D(name="gap")(base(inputs))
    y = _dense(3, activation="softmax", name="probs")(y)
    return keras.Model(inputs, y, name="nested")


def relu_layers() -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input(SIZE)
    h = L.ReLU(name="relu1")(_conv(4, name="conv1")(inputs))
    h = L.Activation("relu", name="act2")(_conv(6, name="conv2")(h))
    y = _dense(3, activation="softmax", name="probs")(L.GlobalAveragePooling2D()(h))
    return keras.Model(inputs, y, name="relu_layers")


def sigmoid_binary() -> keras.Model:
    keras.utils.set_random_seed(4)
    inputs = keras.Input(SIZE)
    h = _conv(4, activation="relu", name="conv1")(inputs)
    h = _conv(6, activation="relu", name="conv2")(h)
    y = _dense(1, activation="sigmoid", name="prob")(L.GlobalAveragePooling2D()(h))
    return keras.Model(inputs, y, name="binary")


def logits() -> keras.Model:
    keras.utils.set_random_seed(5)
    inputs = keras.Input(SIZE)
    h = _conv(4, activation="relu", name="conv1")(inputs)
    h = _conv(6, activation="relu", name="conv2")(h)
    y = _dense(3, name="logits")(L.Flatten()(L.MaxPooling2D()(h)))
    return keras.Model(inputs, y, name="logits_model")


def multi_output() -> keras.Model:
    keras.utils.set_random_seed(6)
    inputs = keras.Input(SIZE)
    h = _conv(4, activation="relu", name="conv1")(inputs)
    h = _conv(6, activation="relu", name="conv2")(h)
    g = L.GlobalAveragePooling2D()(h)
    a = _dense(1, activation="sigmoid", name="is_object")(g)
    b = _dense(3, activation="softmax", name="kind")(g)
    return keras.Model(inputs, [a, b], name="multi")


def round_trip(tmp_dir) -> keras.Model:
    path = tmp_dir / "nested.keras"
    nested().save(path)
    return keras.models.load_model(path)


BUILDERS = {
    "sequential": sequential,
    "nested": nested,
    "relu_layers": relu_layers,
    "sigmoid": sigmoid_binary,
    "logits": logits,
    "multi_output": multi_output,
}
#: the head each zoo model is explained on (multi-output: the softmax head, by name)
OUTPUT = {"multi_output": "kind"}


@functools.cache
def images(n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((n, *SIZE), dtype=np.float32)
    x.setflags(write=False)
    return x


def head_probabilities(model: keras.Model, x: np.ndarray, output=None) -> np.ndarray:
    """Probabilities per class from the caller's model (independent of vizkit)."""
    out = model(x, training=False)
    if isinstance(out, (list, tuple)):
        names = [t._keras_history.operation.name for t in model.outputs]
        out = out[names.index(output) if isinstance(output, str) else (output or 0)]
    out = np.asarray(out, dtype=np.float64)
    if out.shape[1] == 1:
        return np.concatenate([1 - out, out], axis=1)
    if not np.allclose(out.sum(axis=1), 1.0, atol=1e-4) or (out < 0).any():
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    return out
