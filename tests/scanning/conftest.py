"""Shared fixtures for the scan tests: a tiny seeded 64x64 CNN and a small shapes folder."""

from __future__ import annotations

import numpy as np
import pytest


def tiny_model(seed: int = 0):
    from vizkit._tf import keras

    keras.utils.set_random_seed(seed)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            L.MaxPooling2D(4),
            L.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            L.GlobalAveragePooling2D(),
            L.Dense(3, activation="softmax", name="head"),
        ],
        name="tiny",
    )


@pytest.fixture(scope="session")
def model():
    return tiny_model()


@pytest.fixture(scope="session")
def model_path(tmp_path_factory, model):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def shapes(tmp_path_factory):
    """48 shape PNGs in class subfolders with masks, plus three files that are not images."""
    from sample_models.folders import write_shapes_folder

    root = write_shapes_folder(tmp_path_factory.mktemp("shapes"), 48)
    images = root / "images"
    good = (images / "circle" / "00000.png").read_bytes()
    (images / "square" / "zz_truncated.png").write_bytes(good[: len(good) // 2])
    (images / "triangle" / "zz_fake.png").write_bytes(b"this is not a PNG at all")
    (images / "circle" / "notes.txt").write_text("a note")
    (images / ".hidden.png").write_bytes(b"ignored")
    return root


def load_folder(root):
    """Independent decode of the good images (sorted like the scan) -> (x, labels, masks)."""
    from PIL import Image

    names = ("circle", "square", "triangle")
    x, y, m, paths = [], [], [], []
    for label, name in enumerate(names):
        for path in sorted((root / "images" / name).glob("0*.png")):
            x.append(np.asarray(Image.open(path), np.float32) / 255.0)
            m.append(np.asarray(Image.open(root / "masks" / name / path.name)) > 127)
            y.append(label)
            paths.append(f"{name}/{path.name}")
    return np.stack(x), np.array(y), np.stack(m), paths
