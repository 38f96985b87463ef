"""In-memory scan sources: numpy arrays and ``tf.data`` datasets (see
:mod:`vizkit.scanning.sources` for files and the shared types).

Array chunks are fingerprinted by their bytes (images, labels and masks); a ``tf.data`` dataset
is read in order and each chunk fingerprinted once read. No TensorFlow import here: a dataset is
read through its own ``as_numpy_iterator``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.inputs import load_images
from vizkit.scanning.sources import ChunkPlan, LoadedChunk, Source, _digest, content_hash


def _array_hash(image: np.ndarray) -> str:
    return content_hash(np.ascontiguousarray(image).view(np.uint8).reshape(-1).data)


class ArraySource(Source):
    """In-memory images ``(N, H, W, C)`` on the model's scale (uint8 is scaled from 0..255)."""

    kind = "arrays"

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None,
        masks: np.ndarray | None,
        class_names: tuple[str, ...] | None,
    ) -> None:
        self.images = images
        self.labels = labels
        self.masks = masks
        self.class_names = class_names
        self.total = len(images)
        self.has_masks = masks is not None

    def plan(self, chunk_size: int) -> list[ChunkPlan]:
        plans = []
        for index, start in enumerate(range(0, self.total, chunk_size)):
            stop = min(start + chunk_size, self.total)
            keys = [_array_hash(self.images[i]) for i in range(start, stop)]
            if self.labels is not None:
                keys.append(_array_hash(np.asarray(self.labels[start:stop], np.int64)))
            if self.masks is not None:
                keys.append(_array_hash(np.asarray(self.masks[start:stop], bool)))
            plans.append(ChunkPlan(index, start, stop - start, _digest(keys)))
        return plans

    def load(self, plan: ChunkPlan, shape: tuple[int, int, int], value_range: tuple) -> LoadedChunk:
        rows = slice(plan.start, plan.start + plan.count)
        return _from_arrays(
            plan,
            plan.fingerprint,
            self.images[rows],
            None if self.labels is None else self.labels[rows],
            None if self.masks is None else self.masks[rows],
            shape,
            value_range,
        )


def _from_arrays(
    plan: ChunkPlan,
    fingerprint: str | None,
    images: np.ndarray,
    labels: np.ndarray | None,
    masks: np.ndarray | None,
    shape: tuple[int, int, int],
    value_range: tuple,
) -> LoadedChunk:
    raw = np.asarray(images)
    hashes = [_array_hash(image) for image in raw]
    if raw.dtype == np.uint8:
        lo, hi = (float(v) for v in value_range)
        x = lo + raw.astype(np.float32) / 255.0 * (hi - lo)
    else:
        x = raw.astype(np.float32, copy=False)
    if tuple(x.shape[1:]) != tuple(shape):
        x = load_images(x, size=shape[:2], channels=shape[2], value_range=value_range).array
    n = len(x)
    if masks is not None:
        masks = np.asarray(masks)
        if masks.ndim == 4:
            masks = masks[..., 0]
        masks = masks.astype(bool)
        if masks.shape[1:] != tuple(shape[:2]):
            raise InputError(
                f"masks have size {masks.shape[1:]} but the model's input is {shape[:2]}: "
                "give masks at the model's input size"
            )
    if fingerprint is None:
        keys = list(hashes)
        if labels is not None:
            keys.append(_array_hash(np.asarray(labels, np.int64)))
        if masks is not None:
            keys.append(_array_hash(masks))
        fingerprint = _digest(keys)
    return LoadedChunk(
        plan=plan,
        fingerprint=fingerprint,
        images=x,
        offsets=np.arange(n, dtype=np.int64),
        names=[f"image {plan.start + i}" for i in range(n)],
        hashes=hashes,
        labels=np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64),
        masks=masks,
        skipped=[],
    )


class DatasetSource(Source):
    """A ``tf.data.Dataset`` of images, ``(images, labels)``, ``(images, labels, masks)`` or
    dicts with ``image``/``label``/``mask`` keys; batched or not. Elements are taken as
    model-ready (uint8 is scaled from 0..255 to ``value_range``).

    Its chunks cannot be fingerprinted before they are read: :meth:`iterate` reads them in order
    and the scan skips the work (not the reading) of chunks already done.
    """

    kind = "tf.data"

    def __init__(self, dataset: Any, class_names: tuple[str, ...] | None = None) -> None:
        self.dataset = dataset
        self.class_names = class_names or tuple(getattr(dataset, "class_names", ()) or ()) or None
        cardinality = int(dataset.cardinality())
        if cardinality < 0:
            raise InputError(
                "the tf.data.Dataset has unknown or infinite length: finite datasets only "
                "(add .take(n) or .apply(tf.data.experimental.assert_cardinality(n)))"
            )
        spec = dataset.element_spec
        first = _first_spec(spec)
        self.batched = len(first.shape) == 4
        if self.batched:
            # batched: count elements by iterating once over the labels only would read images
            # too; read the length lazily while iterating instead
            self.total = -1
        else:
            self.total = cardinality
        self.has_masks = _has_masks(spec)

    def plan(self, chunk_size: int) -> list[ChunkPlan]:
        return []  # planned while iterating

    def iterate(
        self, chunk_size: int, shape: tuple[int, int, int], value_range: tuple
    ) -> Iterator[LoadedChunk]:
        ds = self.dataset.unbatch() if self.batched else self.dataset
        ds = ds.batch(chunk_size).prefetch(2)
        start = 0
        for index, element in enumerate(ds.as_numpy_iterator()):
            images, labels, masks = _split_element(element)
            plan = ChunkPlan(index, start, len(images), None)
            yield _from_arrays(plan, None, images, labels, masks, shape, value_range)
            start += len(images)


def _first_spec(spec: Any) -> Any:
    if isinstance(spec, Mapping):
        return spec.get("image", spec.get("images", next(iter(spec.values()))))
    if isinstance(spec, (tuple, list)):
        return spec[0]
    return spec


def _has_masks(spec: Any) -> bool:
    if isinstance(spec, Mapping):
        return "mask" in spec or "masks" in spec
    return isinstance(spec, (tuple, list)) and len(spec) >= 3


def _split_element(element: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    if isinstance(element, Mapping):
        images = element.get("image", element.get("images"))
        labels = element.get("label", element.get("labels"))
        masks = element.get("mask", element.get("masks"))
    elif isinstance(element, (tuple, list)):
        images = element[0]
        labels = element[1] if len(element) > 1 else None
        masks = element[2] if len(element) > 2 else None
    else:
        images, labels, masks = element, None, None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim == 2:  # one-hot
            labels = labels.argmax(axis=-1) if labels.shape[1] > 1 else labels[:, 0]
        labels = labels.astype(np.int64)
    return np.asarray(images), labels, masks
