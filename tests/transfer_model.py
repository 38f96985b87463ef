"""The model of issue 14's "Done when": a transfer-learning classifier with its preprocessing
inside, as keras.io teaches it, whose predictions vary between images.

``keras.applications.MobileNetV2(weights=None, include_top=False)`` behind
``Rescaling(1/127.5, offset=-1)``, pooled, with a 3-way softmax head that tells apart colour
classes (a red, green or blue blob on grey noise). Untrained MobileNetV2 features collapse at
inference (batch norms still hold their initial statistics), so the batch norms are first
calibrated on the training images (one forward pass in training mode with momentum 0), then the
head is trained on the pooled features (softmax regression, a few hundred plain gradient steps
in numpy: no Keras training graph to compile, which would take a minute on a loaded machine).
The model expects raw 0-255 pixels: given 0-1 images it predicts one class for everything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 32
COLOURS = np.array([[200, 40, 40], [40, 180, 60], [50, 60, 210]], np.float32)
CLASS_NAMES = ("red", "green", "blue")


def colour_images(per_class: int, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, size, size, 3), labels (N,))``: a coloured disc on grey noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    yy, xx = np.mgrid[:size, :size]
    for label, colour in enumerate(COLOURS):
        for _ in range(per_class):
            image = rng.normal(128, 30, (size, size, 3))
            cy, cx = rng.integers(size // 4, size - size // 4, 2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 4) ** 2
            image[disc] = colour + rng.normal(0, 10, (int(disc.sum()), 3))
            images.append(np.clip(image, 0, 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def build(keras, size: int = SIZE, seed: int = 0):
    """The trained transfer model (a ``keras.Model`` named ``colour_transfer``)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescaling")(inputs)
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(size, size, 3), alpha=0.35
    )
    features = keras.layers.GlobalAveragePooling2D(name="gap")(base(x, training=False))
    head = keras.layers.Dense(len(COLOURS), activation="softmax", name="head")
    model = keras.Model(inputs, head(features), name="colour_transfer")

    images, labels = colour_images(12, seed=seed, size=size)
    x_train = images.astype("float32")
    for layer in base.layers:  # batch-norm statistics of the training images
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(x_train, training=True)
    f = np.asarray(keras.Model(inputs, features)(x_train, training=False), dtype=np.float64)
    mean, std = f.mean(0), f.std(0) + 1e-6
    z = (f - mean) / std
    weights, bias = np.zeros((f.shape[1], len(COLOURS))), np.zeros(len(COLOURS))
    onehot = np.eye(len(COLOURS))[labels]
    for _ in range(300):  # softmax regression with a little weight decay
        logits = z @ weights + bias
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        grad = (p - onehot) / len(z)
        weights -= 0.5 * (z.T @ grad + 1e-3 * weights)
        bias -= 0.5 * grad.sum(0)
    head.set_weights(
        [
            (weights / std[:, None]).astype("float32"),
            (bias - (mean / std) @ weights).astype("float32"),
        ]
    )
    return model


def save_images(folder: Path, per_class: int = 2, seed: int = 1) -> tuple[list[Path], np.ndarray]:
    """PNG files of test images in ``folder``; returns their paths (sorted) and the raw pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = colour_images(per_class, seed=seed)
    paths = []
    for i, (image, label) in enumerate(zip(images, labels)):
        path = folder / f"{i:02d}_{CLASS_NAMES[label]}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths, images
