"""Deterministic training of the sample models and writing their build directories.

Everything runs in one process (one TensorFlow start-up): seeds are fixed with
``keras.utils.set_random_seed`` before each model and op determinism is switched on, so a build
on the same machine and library versions reproduces the same weights. Training uses
``train_on_batch`` with numpy-side shuffling, which keeps the data pipeline trivial and the
progress output one line per epoch on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from sample_models import architectures, catalog, data
from vizkit._tf import keras, tf

BUILD_SEED = 0


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one sample model is trained."""

    name: str
    title: str
    dataset: str  # "digits" or "shapes"
    architecture: Callable[[], keras.Model]
    epochs: int
    batch_size: int
    learning_rate: float
    target_accuracy: float | None
    n_show: int = 12


RECIPES: dict[str, Recipe] = {
    "digits_cnn": Recipe(
        name="digits_cnn",
        title="Handwritten digits CNN (Keras MNIST tutorial architecture)",
        dataset="digits",
        architecture=architectures.digits_cnn,
        epochs=4,
        batch_size=64,
        learning_rate=1e-3,
        target_accuracy=0.95,
    ),
    "digits_mlp": Recipe(
        name="digits_mlp",
        title="Handwritten digits multilayer perceptron (784-256-128-64-32-10)",
        dataset="digits",
        architecture=architectures.digits_mlp,
        epochs=12,
        batch_size=64,
        learning_rate=1e-3,
        target_accuracy=0.90,
    ),
    "shapes_vgg": Recipe(
        name="shapes_vgg",
        title="Small VGG-style CNN on cluttered circles, squares and triangles",
        dataset="shapes",
        architecture=architectures.shapes_vgg,
        epochs=4,
        batch_size=32,
        learning_rate=1e-3,
        target_accuracy=0.95,
    ),
}
assert tuple(RECIPES) == catalog.TRAINED_NAMES


def _log(stream: TextIO, message: str) -> None:
    print(message, file=stream, flush=True)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def predict(model: keras.Model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, K)`` float32, batch by batch (no tf.data pipeline)."""
    parts = [
        np.asarray(model.predict_on_batch(x[i : i + batch_size]))
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)


def _loss_and_accuracy(probabilities: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    picked = np.clip(probabilities[np.arange(len(y)), y], 1e-7, 1.0)
    loss = float(-np.mean(np.log(picked)))
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == y))
    return loss, accuracy


def train(
    recipe: Recipe, dataset: data.Dataset, seed: int, stream: TextIO
) -> tuple[keras.Model, dict[str, list[float]]]:
    """Train ``recipe`` on ``dataset``; returns the model and a Keras-style history dict."""
    keras.utils.set_random_seed(seed)
    model = recipe.architecture()
    steps_per_epoch = math.ceil(len(dataset.train) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(total * 0.6), int(total * 0.85)],
        [recipe.learning_rate, recipe.learning_rate * 0.3, recipe.learning_rate * 0.1],
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng([seed, 303])
    history: dict[str, list[float]] = {
        "loss": [],
        "accuracy": [],
        "val_loss": [],
        "val_accuracy": [],
    }
    x, y = dataset.train.x, dataset.train.y
    for epoch in range(1, recipe.epochs + 1):
        started = time.perf_counter()
        order = rng.permutation(len(y))
        total_loss = total_correct = 0.0
        for start in range(0, len(order), recipe.batch_size):
            rows = order[start : start + recipe.batch_size]
            result = model.train_on_batch(x[rows], y[rows], return_dict=True)
            total_loss += float(result["loss"]) * len(rows)
            total_correct += float(result["accuracy"]) * len(rows)
        val_loss, val_accuracy = _loss_and_accuracy(predict(model, dataset.val.x), dataset.val.y)
        history["loss"].append(total_loss / len(y))
        history["accuracy"].append(total_correct / len(y))
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(val_accuracy)
        _log(
            stream,
            f"[{recipe.name}] epoch {epoch}/{recipe.epochs}  loss {history['loss'][-1]:.4f}  "
            f"accuracy {history['accuracy'][-1]:.4f}  val_loss {val_loss:.4f}  "
            f"val_accuracy {val_accuracy:.4f}  ({time.perf_counter() - started:.1f} s)",
        )
    return model, history


def _inference_copy(recipe: Recipe, model: keras.Model) -> keras.Model:
    """A fresh, uncompiled model with the trained weights (no optimizer state in the file)."""
    clean = recipe.architecture()
    clean.set_weights(model.get_weights())
    return clean


def _showcase_rows(labels: np.ndarray, n: int) -> np.ndarray:
    """Test-set rows for the shipped images: the first of each class in turn."""
    classes = np.unique(labels)
    queues = [list(np.flatnonzero(labels == c)) for c in classes]
    rows: list[int] = []
    while len(rows) < min(n, len(labels)):
        for queue in queues:
            if queue and len(rows) < n:
                rows.append(int(queue.pop(0)))
    return np.array(rows, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Writing a build directory
# --------------------------------------------------------------------------------------------
def _write_sample(
    recipe: Recipe,
    dataset: data.Dataset,
    model: keras.Model,
    history: dict[str, list[float]],
    seed: int,
    started: float,
    stream: TextIO,
) -> dict[str, Any]:
    import vizkit

    probabilities = predict(model, dataset.test.x)
    test_loss, test_accuracy = _loss_and_accuracy(probabilities, dataset.test.y)
    predicted = np.argmax(probabilities, axis=1).astype(np.int64)
    classes = len(dataset.class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (dataset.test.y, predicted), 1)
    rows = _showcase_rows(dataset.test.y, recipe.n_show)
    clean = _inference_copy(recipe, model)

    root = catalog.build_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / recipe.name
    staging = root / f".{recipe.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()

    clean.save(staging / "model.keras")
    showcase: dict[str, np.ndarray] = {
        "images": dataset.test.x[rows],
        "labels": dataset.test.y[rows],
        "indices": rows,
    }
    if dataset.test.masks is not None:
        showcase["masks"] = dataset.test.masks[rows]
    np.savez_compressed(staging / "test_images.npz", **showcase)
    np.savez_compressed(
        staging / "test_predictions.npz",
        labels=dataset.test.y,
        probabilities=probabilities,
        predictions=predicted,
        confusion=confusion,
    )
    with open(staging / "history.json", "w", encoding="utf-8") as handle:
        json.dump(history, handle, indent=1)
    metadata = {
        "name": recipe.name,
        "title": recipe.title,
        "class_names": list(dataset.class_names),
        "input_shape": [int(d) for d in dataset.test.x.shape[1:]],
        "value_range": [0.0, 1.0],
        "preprocessing": dataset.preprocessing,
        "data_origin": dataset.origin,
        "data_source": dataset.source,
        "num_train": len(dataset.train),
        "num_val": len(dataset.val),
        "num_test": len(dataset.test),
        "num_params": int(clean.count_params()),
        "epochs": recipe.epochs,
        "batch_size": recipe.batch_size,
        "optimizer": (
            f"Adam, learning rate {recipe.learning_rate:g}, x0.3 after 60 % and x0.1 after "
            "85 % of the steps"
        ),
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "target_accuracy": recipe.target_accuracy,
        "seed": seed,
        "fingerprint": catalog.fingerprint(),
        "format_version": catalog.FORMAT_VERSION,
        "vizkit_version": vizkit.__version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "build_seconds": round(time.perf_counter() - started, 2),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": list(catalog.FILES),
    }
    with open(staging / "metadata.json", "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=1)

    retired = root / f".{recipe.name}.old-{os.getpid()}"
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
    _log(
        stream,
        f"[{recipe.name}] test accuracy {test_accuracy:.4f} on {len(dataset.test)} images; "
        f"built in {metadata['build_seconds']:.1f} s -> {final}",
    )
    return metadata


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """Serialize builds into one root across processes (POSIX advisory lock)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    with open(root / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(
    names: Sequence[str] | None = None,
    *,
    force: bool = False,
    source: str | None = None,
    seed: int = BUILD_SEED,
    stream: TextIO | None = None,
) -> dict[str, str]:
    """Build the samples that are missing or stale (or all named ones with ``force``).

    Parameters
    ----------
    names : sequence of str, optional
        Samples to consider; default all of :data:`catalog.TRAINED_NAMES` (the converted
        samples are built by :mod:`sample_models.pretrained`).
    force : bool
        Rebuild even when up to date.
    source : {"sklearn", "mnist"}, optional
        Data for the digits models. None keeps an existing build's source and uses
        ``"sklearn"`` (offline) for new builds; ``"mnist"`` downloads MNIST.
    seed : int
        Seed for data splits, augmentation, initialization and shuffling.
    stream : file, optional
        Where progress lines go (default ``sys.stderr``).

    Returns
    -------
    dict
        ``name -> "built" | "up to date"``.
    """
    stream = sys.stderr if stream is None else stream
    names = list(catalog.TRAINED_NAMES if not names else names)
    for name in names:
        if catalog.check_name(name) not in RECIPES:
            raise ValueError(f"{name!r} is not trained: build it with sample_models.pretrained")
    outcome: dict[str, str] = {}
    datasets: dict[tuple[str, str], data.Dataset] = {}
    root = catalog.build_root()
    with _build_lock(root):
        for leftover in root.glob(".*.tmp-*"):  # from an interrupted build (we hold the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in root.glob(".*.old-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        tf.config.experimental.enable_op_determinism()
        for name in names:
            recipe = RECIPES[name]
            wanted = source if recipe.dataset == "digits" else None
            state, reason = catalog.status(name, source=wanted)
            if state == "ok" and not force:
                _log(stream, f"[{name}] {reason}")
                outcome[name] = "up to date"
                continue
            started = time.perf_counter()
            if recipe.dataset == "digits":
                previous = (catalog.read_metadata(name) or {}).get("data_source")
                chosen = wanted or (previous if previous in ("sklearn", "mnist") else "sklearn")
                key = ("digits", chosen)
                if key not in datasets:
                    datasets[key] = data.digits_dataset(seed, source=chosen)
            else:
                key = ("shapes", "generated")
                if key not in datasets:
                    datasets[key] = data.shapes_dataset(seed)
            dataset = datasets[key]
            _log(
                stream,
                f"[{name}] building ({reason}): {len(dataset.train):,} train / "
                f"{len(dataset.val):,} val / {len(dataset.test):,} test images, "
                f"{recipe.epochs} epochs",
            )
            model, history = train(recipe, dataset, seed, stream)
            _write_sample(recipe, dataset, model, history, seed, started, stream)
            outcome[name] = "built"
            keras.backend.clear_session()
    return outcome
