"""Shared test set-up: headless matplotlib, quiet TensorFlow, deterministic seeds."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("VIZKIT_MAX_STEPS", "40")  # caps optimization loops in tests

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    yield


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="session")
def transfer_model_file(tmp_path_factory):
    """``(model file, image folder, raw uint8 images)`` of issue 14's transfer model
    (``tests/transfer_model.py``): Rescaling(1/127.5, offset=-1) + MobileNetV2 + a colour head."""
    from tests.transfer_model import build, save_images
    from vizkit._tf import keras

    folder = tmp_path_factory.mktemp("transfer")
    path = folder / "colour_transfer.keras"
    build(keras).save(path)
    _, raw = save_images(folder / "images")
    return path, folder / "images", raw
