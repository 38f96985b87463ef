"""vizkit's sample models: trained networks and their held-out test images, ready to inspect.

``sample_model("shapes_vgg")`` returns a trained Keras model, ``sample_images("shapes_vgg")``
the shipped test images (with labels and, for the shapes, ground-truth object masks).
``imagenet_lite0`` (EfficientNet-Lite0 with converted ImageNet weights) and ``cats_dogs_pandas``
(the same network pooled into three classes) come with real photographs and hand-drawn object
masks, and take raw RGB in [0, 255] (``sample_metadata(name)["value_range"]``). The files
come from :mod:`sample_models` (``make samples``); a sample that is missing or stale is built on
first use in a separate process (see :func:`ensure_built`). Loaded models are cached per process
and shared between callers: do not modify them in place.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from vizkit.errors import InputError, ModelFileError
from vizkit.inputs import ImageBatch
from vizkit.results.base import Result

__all__ = [
    "TestPredictions",
    "ensure_built",
    "sample_history",
    "sample_images",
    "sample_metadata",
    "sample_model",
    "sample_name_of",
    "sample_names",
    "sample_path",
    "sample_test_predictions",
]

_LOCK = threading.RLock()
_MODELS: dict[tuple[str, str, int], Any] = {}


def _catalog() -> ModuleType:
    """``sample_models.catalog``, also from a source tree whose editable install predates it."""
    try:
        return importlib.import_module("sample_models.catalog")
    except ModuleNotFoundError as err:
        if err.name not in ("sample_models", "sample_models.catalog"):
            raise
    package_dir = Path(__file__).resolve().parent.parent / "sample_models"
    init = package_dir / "__init__.py"
    if not init.is_file():
        raise ModelFileError(
            "the sample_models package is not installed: reinstall vizkit (pip install -e .)"
        )
    spec = importlib.util.spec_from_file_location(
        "sample_models", init, submodule_search_locations=[str(package_dir)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sample_models"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("sample_models.catalog")


def sample_names() -> list[str]:
    """Names of the sample models: ``digits_cnn``, ``digits_mlp``, ``shapes_vgg``,
    ``imagenet_lite0``, ``cats_dogs_pandas``."""
    return list(_catalog().SAMPLE_NAMES)


def _check(name: str) -> str:
    if not isinstance(name, str):
        raise InputError(f"sample name must be a string such as 'shapes_vgg', not {name!r}")
    return _catalog().check_name(name)


def ensure_built(name: str) -> Path:
    """Build ``name`` if it is missing or stale; return its build directory.

    The build runs ``python -m sample_models build NAME`` in a child process, so the
    determinism settings it needs never change this process. Progress goes to stderr.
    """
    catalog = _catalog()
    _check(name)
    with _LOCK:
        state, _ = catalog.status(name)
        if state != "ok":
            env = dict(os.environ)
            parent = str(catalog.PACKAGE_DIR.parent)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (parent, env.get("PYTHONPATH", "")) if p)
            result = subprocess.run(
                [sys.executable, "-m", "sample_models", "build", name],
                env=env,
                stdout=subprocess.DEVNULL,
                check=False,
            )
            if result.returncode != 0 or catalog.status(name)[0] != "ok":
                raise ModelFileError(
                    f"building sample model {name!r} failed (exit code {result.returncode}): "
                    f"run `python -m sample_models build {name}` to see why"
                )
    return catalog.sample_dir(name)


def sample_path(name: str) -> Path:
    """Path of the sample's ``model.keras`` (built first if needed); its folder holds the rest."""
    return ensure_built(name) / "model.keras"


def sample_metadata(name: str) -> dict[str, Any]:
    """The sample's ``metadata.json``: class names, input shape, value range, accuracy, ...

    Returns
    -------
    dict
        A fresh copy; keys include ``class_names``, ``input_shape``, ``value_range``,
        ``preprocessing``, ``data_origin``, ``test_accuracy``, ``seed``, ``fingerprint``,
        ``vizkit_version`` and ``build_seconds``.
    """
    with open(ensure_built(name) / "metadata.json", encoding="utf-8") as handle:
        return json.load(handle)


def sample_history(name: str) -> dict[str, list[float]]:
    """The training history: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` per epoch.

    Raises
    ------
    InputError
        For the samples whose weights were converted, not trained here (``imagenet_lite0``,
        ``cats_dogs_pandas``): they have no history.
    """
    directory = ensure_built(name)
    if name in _catalog().CONVERTED_NAMES:
        raise InputError(
            f"sample {name!r} has no training history: its ImageNet weights were converted from "
            "a published checkpoint, not trained by vizkit"
        )
    with open(directory / "history.json", encoding="utf-8") as handle:
        return json.load(handle)


def _load(path: Path) -> Any:
    from vizkit.loading import load_model

    return load_model(path)


def sample_model(name: str) -> Any:
    """The trained Keras model ``name`` (cached per process; do not modify it in place).

    Parameters
    ----------
    name : str
        One of :func:`sample_names`.

    Returns
    -------
    keras.Model
        Uncompiled; inputs on the scale of ``sample_metadata(name)["value_range"]``: ``[0, 1]``
        for the trained samples, raw RGB ``[0, 255]`` for the ImageNet ones.
    """
    path = sample_path(name)
    key = (name, str(path.resolve()), path.stat().st_mtime_ns)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _load(path)
            for old in [k for k in _MODELS if k[0] == name]:
                del _MODELS[old]
            _MODELS[key] = model
    return model


def sample_name_of(model: Any) -> str | None:
    """The sample name of a model :func:`sample_model` returned in this process, else None.

    Models are recognized by identity (the cached object), never by name, so a user's model
    called ``"shapes_vgg"`` is not mistaken for the sample.
    """
    with _LOCK:
        for (name, _, _), cached in _MODELS.items():
            if cached is model:
                return name
    return None


def sample_images(name: str) -> ImageBatch:
    """The shipped held-out test images of ``name`` with labels (and masks where known).

    Returns
    -------
    ImageBatch
        ``array`` ``(N, H, W, C)`` float32 in the sample's ``value_range`` ([0, 1], or [0, 255]
        for the ImageNet samples' photographs), ``labels``, ``class_names``, names such as
        ``"test 3 (circle)"`` or ``"coffee (espresso)"``, and ``masks`` ``(N, H, W)`` bool for
        ``shapes_vgg`` (exact) and the photographs (drawn by hand).
    """
    directory = ensure_built(name)
    metadata = sample_metadata(name)
    class_names = tuple(metadata["class_names"])
    with np.load(directory / "test_images.npz") as shipped:
        images = shipped["images"].astype(np.float32)
        labels = shipped["labels"].astype(np.int64)
        indices = shipped["indices"]
        masks = shipped["masks"].astype(bool) if "masks" in shipped.files else None
        titles = [str(t) for t in shipped["names"]] if "names" in shipped.files else None
    lo, hi = (float(v) for v in metadata["value_range"])
    unit = np.clip((images - lo) / (hi - lo), 0.0, 1.0)
    originals = tuple(np.round(u * 255.0).astype(np.uint8) for u in unit)
    if titles is None:
        titles = [f"test {int(i)}" for i in indices]
    names = tuple(f"{t} ({class_names[int(y)]})" for t, y in zip(titles, labels))
    from vizkit.contract import InputSpec

    return ImageBatch(
        array=images,
        originals=originals,
        names=names,
        value_range=(lo, hi),
        input_spec=InputSpec.linear(
            (lo, hi), source="sample", reason=f"metadata of sample model {name!r}"
        ),
        labels=labels,
        masks=masks,
        class_names=class_names,
    )


@dataclasses.dataclass(frozen=True)
class TestPredictions(Result):
    """A sample model's predictions on its whole held-out test set (computed at build time).

    Attributes
    ----------
    labels : ndarray, shape (N,), int64
        True classes.
    probabilities : ndarray, shape (N, K), float32
        Softmax outputs.
    predictions : ndarray, shape (N,), int64
        Arg-max classes.
    class_names : tuple of str
    """

    __test__ = False  # not a pytest test class despite the name

    labels: np.ndarray
    probabilities: np.ndarray
    predictions: np.ndarray
    class_names: tuple[str, ...]

    @property
    def accuracy(self) -> float:
        """Fraction of test images classified correctly."""
        return float(np.mean(self.labels == self.predictions))

    @property
    def confusion_matrix(self) -> np.ndarray:
        """``(K, K)`` counts: row = true class, column = predicted class."""
        k = len(self.class_names)
        counts = np.zeros((k, k), dtype=np.int64)
        np.add.at(counts, (self.labels, self.predictions), 1)
        return counts


def sample_test_predictions(name: str) -> TestPredictions:
    """The sample's predictions on its full test set, for confusion matrices and reports."""
    directory = ensure_built(name)
    class_names = tuple(sample_metadata(name)["class_names"])
    with np.load(directory / "test_predictions.npz") as saved:
        return TestPredictions(
            labels=saved["labels"].astype(np.int64),
            probabilities=saved["probabilities"].astype(np.float32),
            predictions=saved["predictions"].astype(np.int64),
            class_names=class_names,
        )
