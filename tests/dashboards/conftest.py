"""Fixtures for the dashboard tests: tiny models saved to files, images, and an AppTest factory.

The models are built here (seeded, untrained), never downloaded: a 16x16x3 CNN with two
convolutions and a 3-class softmax, the same without convolutions, a model whose ``Lambda`` layer
would run code when loaded (the dashboard must refuse it), and a model that does not take images.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboards" / "app.py"
VIEWS = (
    "model",
    "filters",
    "feature_maps",
    "units",
    "attribution",
    "perturbation",
    "activation_max",
    "evaluation",
    "dataset",
)


def _tiny_cnn(keras, name: str = "tiny", seed: int = 0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv1"),
            keras.layers.Conv2D(6, 3, activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="head"),
        ],
        name=name,
    )


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vizkit._tf import keras

    folder = tmp_path_factory.mktemp("dashboard_models")
    files = {}
    tiny = _tiny_cnn(keras)
    files["tiny"] = folder / "tiny.keras"
    tiny.save(files["tiny"])
    other = _tiny_cnn(keras, name="tiny_upload", seed=1)
    files["other"] = folder / "other.keras"
    other.save(files["other"])
    for seed in (3, 4, 5):  # more distinct uploads (the per-session cap)
        extra = _tiny_cnn(keras, name=f"tiny_{seed}", seed=seed)
        files[f"extra{seed}"] = folder / f"extra{seed}.keras"
        extra.save(files[f"extra{seed}"])
    bomb = keras.Sequential(  # 25 KB, but one image needs 9 GB: more than the memory cap
        [
            keras.Input((6000, 6000, 3)),
            keras.layers.Conv2D(64, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ],
        name="bomb",
    )
    files["bomb"] = folder / "bomb.keras"
    bomb.save(files["bomb"])
    keras.utils.set_random_seed(2)
    dense = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="dense_only",
    )
    files["dense"] = folder / "dense.keras"
    dense.save(files["dense"])
    hostile = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Lambda(lambda x: x * 2.0),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ],
        name="hostile",
    )
    files["hostile"] = folder / "hostile.keras"
    hostile.save(files["hostile"])
    vector = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ],
        name="vectors",
    )
    files["vector"] = folder / "vector.keras"
    vector.save(files["vector"])
    return files


@pytest.fixture(scope="session")
def scan_data(tmp_path_factory: pytest.TempPathFactory, model_files: dict[str, Path]) -> Path:
    """A data folder with a generated shapes folder (60 images with masks) and a scan of it by
    the tiny untrained model (so it makes mistakes) in ``scans/tiny``: Grad-CAM and saliency,
    the pointing game."""
    import vizkit
    from sample_models.folders import write_shapes_folder

    root = tmp_path_factory.mktemp("dashboard_data")
    write_shapes_folder(root / "shapes", 60)
    vizkit.scan(
        str(model_files["tiny"]),
        root / "shapes" / "images",
        "gradcam,saliency",
        out=root / "scans" / "tiny",
        masks=root / "shapes" / "masks",
        metrics="pointing_game",
        progress=False,
    )
    return root


def png_bytes(seed: int = 0, size: tuple[int, int] = (20, 24), mode: str = "RGB") -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = (rng.random((*size, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch, model_files: dict[str, Path]):
    """``make_app(model="tiny", images=2)``: an AppTest started on a fixture model, run once."""
    from streamlit.testing.v1 import AppTest

    def make(model: str = "tiny", images: int = 2):
        path = model_files[model]
        monkeypatch.setenv("VIZKIT_DASHBOARD_MODEL", str(path))
        monkeypatch.setenv("VIZKIT_MAX_STEPS", os.environ.get("VIZKIT_MAX_STEPS", "40"))
        monkeypatch.setenv("VIZKIT_DASHBOARD_MEMORY_MB", "3072")  # the bomb needs 9 GB
        at = AppTest.from_file(str(APP), default_timeout=90)
        at.run()
        if images:
            upload_images(at, [(f"img{i}.png", png_bytes(i)) for i in range(images)])
        return at

    return make


def sidebar_widget(at, kind: str, key: str):
    for widget in getattr(at.sidebar, kind):
        if widget.key == key:
            return widget
    raise AssertionError(f"no sidebar {kind} with key {key!r}")


def upload_images(at, files: list[tuple[str, bytes]]):
    uploader = sidebar_widget(at, "file_uploader", "vk_image_upload")
    uploader.set_value([(name, data, "image/png") for name, data in files])
    at.run()
    return at


def upload_model(at, name: str, data: bytes):
    uploader = sidebar_widget(at, "file_uploader", "vk_model_upload")
    uploader.set_value((name, data, "application/octet-stream"))
    at.run()
    return at


def problems(at) -> list[str]:
    """Exceptions and error boxes on the page (main area and sidebar)."""
    found = [f"exception: {e.value}" for e in at.exception]
    found += [f"error: {e.value}" for e in at.error]
    return found
