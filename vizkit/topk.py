"""Streaming top-k search and receptive-field patches for :func:`vizkit.inspection.top_activations`.

- :func:`iter_batches` reads any supported image source (arrays, an
  :class:`~vizkit.inputs.ImageBatch`, a folder or file paths, a ``tf.data`` pipeline, an
  iterable) as a stream of batches;
- :func:`search` runs a compiled unit scorer over the stream and keeps, in a
  :class:`StreamingTopK`, the ``k`` best images per unit (and only the images still needed);
- :func:`receptive_patches` crops each top image around the unit's receptive field;
- :func:`source_conv` finds the convolution whose kernels to show beside a channel's examples.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from vizkit._keras import inbound_nodes, producer
from vizkit._tf import keras, tf
from vizkit.errors import InputError
from vizkit.inputs import ImageBatch, as_batch, load_images
from vizkit.models import CONV_TYPES, get_layer

__all__ = [
    "StreamingTopK",
    "as_model_batch",
    "iter_batches",
    "crop",
    "receptive_patches",
    "search",
    "source_conv",
]


def iter_batches(
    images: Any, model: keras.Model, batch_size: int
) -> tuple[Iterable[Any], int | None, Any]:
    """``(batches, total or None, source for display range)`` from any supported image source."""
    if isinstance(images, (str, bytes)) or hasattr(images, "__fspath__"):
        images = load_images(images, model)
    if isinstance(images, (list, tuple)) and images:
        from PIL import Image

        if isinstance(images[0], (str, bytes, os.PathLike, Image.Image)):
            images = load_images(images, model)  # file paths or PIL images
    if isinstance(images, ImageBatch) or isinstance(images, np.ndarray) or tf.is_tensor(images):
        array = as_batch(images, model)

        def sliced() -> Iterable[np.ndarray]:
            for start in range(0, len(array), batch_size):
                yield array[start : start + batch_size]

        return sliced(), len(array), images
    if isinstance(images, tf.data.Dataset):
        total = None
        cardinality = int(images.cardinality())
        spec = images.element_spec
        first = spec[0] if isinstance(spec, (tuple, list)) else spec
        if isinstance(first, dict):
            first = next(iter(first.values()))
        batched = len(first.shape) == 4
        if cardinality >= 0:
            total = None if batched else cardinality
        return images.as_numpy_iterator(), total, None
    if isinstance(images, Iterable):
        return iter(images), None, None
    raise InputError(
        f"cannot read images from a {type(images).__name__}: pass an ImageBatch, an array "
        "(N, H, W, C), a folder or file paths, a tf.data.Dataset, or an iterable of batches"
    )


def as_model_batch(element: Any, model: keras.Model) -> np.ndarray:
    """One element of a stream (image, batch, ``(images, labels)`` pair or dict) as a model
    batch."""
    if isinstance(element, (tuple, list)) and not isinstance(element, np.ndarray) and element:
        if not np.isscalar(element[0]) and np.ndim(element[0]) >= 3:
            element = element[0]  # (images, labels) pairs
    if isinstance(element, dict):
        element = next(iter(element.values()))
    array = np.asarray(element)
    if array.ndim == 3:
        array = array[None]
    return as_batch(array, model)


class StreamingTopK:
    """The ``k`` best scores per unit over a stream of batches (ties keep the earlier image),
    with each one's stream index and position, and the images still needed to show them."""

    def __init__(self, units: int, k: int) -> None:
        self.k = k
        self.scores = np.full((units, k), -np.inf, dtype=np.float32)
        self.indices = np.full((units, k), -1, dtype=np.int64)
        self.positions = np.zeros((units, k), dtype=np.int64)
        self.kept: dict[int, np.ndarray] = {}  # stream index -> image on the model's scale
        self.seen = 0

    def update(self, batch: np.ndarray, scores: np.ndarray, positions: np.ndarray) -> None:
        """Merge one batch: ``scores`` and ``positions`` are ``(B, U)``."""
        values, where = scores.T, positions.T  # (U, B)
        indices = np.arange(self.seen, self.seen + len(batch))
        merged = np.concatenate([self.scores, values], axis=1)
        order = np.argsort(-merged, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(merged, order, axis=1)
        every = np.concatenate([self.indices, np.broadcast_to(indices, values.shape)], axis=1)
        self.indices = np.take_along_axis(every, order, axis=1)
        moved = np.concatenate([self.positions, where], axis=1)
        self.positions = np.take_along_axis(moved, order, axis=1)
        needed = set(self.indices[self.indices >= 0].tolist())
        for i in needed - set(self.kept):
            if self.seen <= i < self.seen + len(batch):
                self.kept[i] = batch[i - self.seen]
        for i in set(self.kept) - needed:
            del self.kept[i]
        self.seen += len(batch)


def search(
    batches: Iterable[Any],
    total: int | None,
    model: keras.Model,
    score: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    units: np.ndarray,
    k: int,
    progress: bool | Any,
) -> StreamingTopK:
    """Score every batch of the stream with ``score(images, units)`` (see
    :func:`vizkit.inspection.unit_scorer`) and keep the ``k`` best per unit.

    ``progress``: True shows a tqdm bar; a callable gets ``(images_done, total_or_None)``.
    """
    unit_t = tf.constant(units, tf.int32)
    top = StreamingTopK(len(units), k)
    bar = None
    hook = progress if callable(progress) else None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="top activations", unit="img", leave=False, disable=None)
    try:
        for element in batches:
            batch = as_model_batch(element, model)
            if len(batch) == 0:
                continue
            values, where = score(tf.constant(batch, tf.float32), unit_t)
            top.update(batch, values.numpy(), where.numpy())
            if bar is not None:
                bar.update(len(batch))
            if hook is not None:
                hook(top.seen, total)
    finally:
        if bar is not None:
            bar.close()
    if top.seen == 0:
        raise InputError("no images were found in the given source")
    return top


def crop(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """``image[top:top+height, left:left+width]`` with out-of-image pixels mid-grey (uint8)."""
    out = np.full((height, width, image.shape[-1]), 128, dtype=np.uint8)
    h, w = image.shape[:2]
    r0, r1 = max(top, 0), min(top + height, h)
    c0, c1 = max(left, 0), min(left + width, w)
    if r1 > r0 and c1 > c0:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
    return out


def receptive_patches(
    display: np.ndarray,
    image_ids: np.ndarray,
    positions: np.ndarray,
    rf: Any,
    input_size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Receptive-field boxes ``(U, k, 4)`` and patches ``(U, k, ph, pw, C)`` (uint8) around each
    top position; ``image_ids`` -1 marks empty slots (NaN box, grey patch)."""
    height_in, width_in = input_size
    ph = int(min(max(1, round(rf.size[0])), height_in))
    pw = int(min(max(1, round(rf.size[1])), width_in))
    n_units, k = image_ids.shape
    boxes = np.full((n_units, k, 4), np.nan, dtype=np.float32)
    patches = np.full((n_units, k, ph, pw, display.shape[-1]), 128, dtype=np.uint8)
    for u in range(n_units):
        for r in range(k):
            if image_ids[u, r] < 0:
                continue
            row, col = (int(v) for v in positions[u, r])
            boxes[u, r] = rf.bounds(row, col, clip_to=(height_in, width_in))
            centre_r = rf.start[0] + row * rf.jump[0]
            centre_c = rf.start[1] + col * rf.jump[1]
            top = 0 if ph >= height_in else int(math.floor(centre_r - (ph - 1) / 2 + 0.5))
            left = 0 if pw >= width_in else int(math.floor(centre_c - (pw - 1) / 2 + 0.5))
            patches[u, r] = crop(display[image_ids[u, r]], top, left, ph, pw)
    return boxes, patches


_POINTWISE: tuple[type, ...] = tuple(
    getattr(keras.layers, name)
    for name in (
        "BatchNormalization",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "PReLU",
        "Dropout",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "ActivityRegularization",
        "Identity",
    )
    if hasattr(keras.layers, name)
)


def source_conv(model: keras.Model, path: str) -> str | None:
    """The convolution that produced ``path``'s channels, through pointwise layers, or None."""
    _, layer = get_layer(model, path)
    prefix = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    for _ in range(16):
        if isinstance(layer, CONV_TYPES):
            return prefix + layer.name
        if not isinstance(layer, _POINTWISE):
            return None
        nodes = inbound_nodes(layer)
        if not nodes or len(nodes[0].input_tensors) != 1:
            return None
        layer = producer(nodes[0].input_tensors[0])
        if isinstance(layer, (keras.layers.InputLayer, keras.Model)) or layer is None:
            return None
    return None
