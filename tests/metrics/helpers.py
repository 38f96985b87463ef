"""Tiny models with hand-set or seeded weights, and map functions: the metrics' specification."""

from __future__ import annotations

import types

import numpy as np

from vizkit._tf import keras, tf


def linear_model(weights=(1.0, 2.0, 3.0, 4.0), activation="softmax") -> keras.Model:
    """2x2x1 image -> Dense(2): logit 0 = sum(w * x), logit 1 = 0 (so p0 = sigmoid(w . x))."""
    inp = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(inp)
    head = keras.layers.Dense(2, activation=activation, name="head")
    model = keras.Model(inp, head(flat))
    kernel = np.zeros((4, 2), np.float32)
    kernel[:, 0] = weights
    head.set_weights([kernel, np.zeros(2, np.float32)])
    return model


def tiny_cnn(size: int = 8, channels: int = 1, classes: int = 3, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    out = keras.layers.Dense(classes, activation="softmax", name="head")(h)
    return keras.Model(inp, out, name="tiny_cnn")


def input_gradient(model, x, targets):
    """Plain gradient of the target probability, summed over channels: a model-dependent map."""
    x = tf.convert_to_tensor(np.asarray(x, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)
        score = tf.gather(out, np.asarray(targets, np.int32), axis=1, batch_dims=1)
    return tf.reduce_sum(tape.gradient(score, x), axis=-1).numpy()


def edge_detector(model, x, targets):
    """Ignores the model entirely (Adebayo et al.'s edge-detector analogy): must be flagged."""
    x = np.asarray(x, np.float64).sum(axis=-1)
    gy, gx = np.gradient(x, axis=(1, 2))
    return np.hypot(gx, gy)


def fake_explanation(maps, inputs=None, targets=None, method="fake", predictions=None):
    return types.SimpleNamespace(
        maps=np.asarray(maps),
        inputs=inputs,
        targets=targets,
        method=method,
        predictions=predictions,
    )
