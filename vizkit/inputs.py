"""Images from paths, PIL images and arrays to model-ready batches; target resolution.

No TensorFlow here: conversion uses PIL and numpy, so the dashboard can validate an upload
before any model work starts.

Conventions
-----------
- Batches are channels-last ``(N, H, W, C)`` float32 on the model's input scale: the
  :class:`~vizkit.contract.InputSpec` the user states or :func:`vizkit.input_spec` decides
  (recorded as ``batch.input_spec``; ``value_range`` is the span of its values).
- Integer images (uint8, uint16, ...) are rescaled from their type's full range; float arrays are
  taken as already on the model's scale and are only resized and channel-converted.
- Transparent images are composited onto white; RGB becomes grayscale by ITU-R 601 luma
  (what PIL's ``"L"`` mode does), grayscale becomes RGB by repeating the channel.

(Over 500 lines, just: ImageBatch's attribute docs and the one image-to-batch path described above.)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vizkit.contract import InputSpec, check_resize, default_spec, user_spec
from vizkit.errors import InputError
from vizkit.images import IMAGE_SUFFIXES, MAX_PIXELS, _to_uint8, decode_image, fit
from vizkit.results.base import Result

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class ImageBatch(Result):
    """Model-ready images plus what is needed to show them.

    Attributes
    ----------
    array : ndarray, shape (N, H, W, C), float32
        Values on the model's scale (``value_range``).
    originals : tuple of ndarray
        Each image as loaded, for display: uint8 ``(H0, W0, C)``, upright (EXIF), at most
        1024 pixels on its long side (or the model's input size, if larger).
    names : tuple of str
        File names or ``"image 0"``, ``"image 1"``, ...
    value_range : (float, float)
        The scale of ``array``: what 0 and 255 of an 8-bit image were mapped to.
    labels : ndarray of int, shape (N,), optional
        True classes, when known (sample images).
    masks : ndarray of bool, shape (N, H, W), optional
        Ground-truth object masks, when known (the shapes sample data).
    class_names : tuple of str, optional
    input_spec : InputSpec, optional
        How 8-bit pixels became ``array`` (convention, who decided, why); None for arrays
        given as already model-ready.
    resize : {"stretch", "crop", "pad"}
        How images of another aspect ratio were fitted to the model's size.
    """

    array: np.ndarray
    originals: tuple[np.ndarray, ...] = ()
    names: tuple[str, ...] = ()
    value_range: tuple[float, float] = (0.0, 1.0)
    labels: np.ndarray | None = None
    masks: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    input_spec: InputSpec | None = None
    resize: str = "stretch"

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def display(self) -> np.ndarray:
        """``(N, H, W, C)`` float32 in [0, 1] RGB for ``imshow``."""
        if self.input_spec is not None:
            return self.input_spec.to_unit(self.array)
        lo, hi = self.value_range
        return np.clip((self.array - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> ImageBatch:
        """A sub-batch (an int keeps the batch dimension)."""
        rows = np.arange(len(self))[index]
        rows = np.atleast_1d(rows)

        def pick(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else value[rows]

        return dataclasses.replace(
            self,
            array=self.array[rows],
            originals=tuple(self.originals[i] for i in rows) if self.originals else (),
            names=tuple(self.names[i] for i in rows) if self.names else (),
            labels=pick(self.labels),
            masks=pick(self.masks),
        )

    @classmethod
    def concat(cls, batches: Sequence[ImageBatch]) -> ImageBatch:
        """One batch of the images of ``batches``, in order (e.g. the chunks of a dataset scan).

        The batches must share the image shape, ``value_range`` and ``class_names``; labels and
        masks are kept when every batch has them. Missing names become ``"image <index>"``.
        """
        batches = list(batches)
        if not batches or not all(isinstance(b, ImageBatch) for b in batches):
            raise InputError("ImageBatch.concat needs a non-empty sequence of ImageBatch objects")
        first = batches[0]
        for i, batch in enumerate(batches[1:], start=1):
            for what, a, b in (
                ("image shape", first.shape[1:], batch.shape[1:]),
                ("value_range", tuple(first.value_range), tuple(batch.value_range)),
                ("input scale", _spec_label(first), _spec_label(batch)),
                ("class_names", first.class_names, batch.class_names),
            ):
                if a != b:
                    raise InputError(
                        f"batch {i} has {what} {b}, batch 0 has {a}: concatenate batches "
                        "loaded the same way"
                    )

        def joined(field: str) -> np.ndarray | None:
            values = [getattr(b, field) for b in batches]
            if all(v is None for v in values):
                return None
            if any(v is None for v in values):
                raise InputError(
                    f"some batches have {field} and others not: give every batch {field} or none"
                )
            return np.concatenate(values)

        names: list[str] = []
        for batch in batches:
            offset = len(names)
            names += list(batch.names) or [f"image {offset + j}" for j in range(len(batch))]
        keep_originals = all(len(b.originals) == len(b) for b in batches)
        return dataclasses.replace(
            first,
            array=np.concatenate([b.array for b in batches]),
            originals=tuple(o for b in batches for o in b.originals) if keep_originals else (),
            names=tuple(names),
            labels=joined("labels"),
            masks=joined("masks"),
        )


def _spec_label(batch: ImageBatch) -> str | None:
    return None if batch.input_spec is None else batch.input_spec.label


# --------------------------------------------------------------------------------------------
# Decoding (files and PIL images: vizkit.images)
# --------------------------------------------------------------------------------------------
def _array_to_images(array: np.ndarray, name: str) -> list[tuple[np.ndarray, bool]]:
    """Split an array into ``(H, W, C)`` images; the flag says values are on the [0, 1] scale."""
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.float32)
        integer = True
    elif np.issubdtype(array.dtype, np.integer):
        top = float(np.iinfo(array.dtype).max)
        array = array.astype(np.float32) / top
        integer = True
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
        integer = False
    else:
        raise InputError(f"{name} has dtype {array.dtype}: pass uint8 or float images")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name} contains NaN or infinite values")
    if array.ndim == 2:
        batch = array[None, ..., None]
    elif array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        batch = array[None]
    elif array.ndim == 3:
        batch = array[..., None]
    elif array.ndim == 4:
        batch = array
    else:
        raise InputError(
            f"{name} has shape {array.shape}: pass (H, W), (H, W, C) or (N, H, W, C) images"
        )
    if batch.shape[-1] == 4:  # RGBA array: composite on white
        alpha = batch[..., 3:]
        white = 1.0 if integer else float(batch[..., :3].max(initial=1.0))
        batch = batch[..., :3] * alpha + white * (1 - alpha)
    if batch.shape[-1] not in (1, 3):
        raise InputError(f"{name} has {batch.shape[-1]} channels: pass 1 (gray) or 3 (RGB)")
    return [(image, integer) for image in batch]


def _expand_sources(sources: Any) -> list[tuple[Any, str]]:
    """Flatten sources into ``(item, name)`` pairs; directories expand to their images."""
    if isinstance(sources, (str, os.PathLike, Image.Image, np.ndarray, bytes)):
        sources = [sources]
    elif not isinstance(sources, Iterable):
        raise InputError(
            f"cannot read images from a {type(sources).__name__}: pass paths, PIL images or arrays"
        )
    items: list[tuple[Any, str]] = []
    for i, source in enumerate(sources):
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise InputError(f"folder {str(path)!r} holds no image files")
                items.extend((p, p.name) for p in files)
            else:
                items.append((path, path.name))
        elif isinstance(source, Image.Image):
            items.append((source, getattr(source, "filename", "") or f"image {i}"))
        elif isinstance(source, bytes):
            items.append((source, f"image {i}"))
        else:
            items.append((np.asarray(source), f"image {i}"))
    if not items:
        raise InputError("no images given: pass at least one path, PIL image or array")
    return items


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------
def _convert_channels(image: np.ndarray, channels: int | None) -> np.ndarray:
    have = image.shape[-1]
    if channels is None or channels == have:
        return image
    if channels == 1 and have == 3:
        return (image @ _LUMA)[..., None].astype(np.float32)
    if channels == 3 and have == 1:
        return np.repeat(image, 3, axis=-1)
    raise InputError(f"cannot convert a {have}-channel image to the model's {channels} channels")


def model_image_shape(model: Any) -> tuple[int | None, int | None, int | None]:
    """``(H, W, C)`` a Keras image model expects (None where the model accepts any size)."""
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else None
    if shape is None or len(shape) != 4:
        raise InputError(
            "images need an image model with input (height, width, channels); this model takes "
            f"{None if shape is None else shape[1:]}"
        )
    return shape[1], shape[2], shape[3]


def load_images(
    sources: Any,
    model: Any = None,
    *,
    size: tuple[int, int] | None = None,
    channels: int | None = None,
    value_range: tuple[float, float] | str | None = None,
    preprocess: str | Any = None,
    resize: str = "stretch",
    class_names: Sequence[str] | None = None,
    max_pixels: int = MAX_PIXELS,
    labels: Sequence[int] | None = None,
) -> ImageBatch:
    """Load images and convert them to what ``model`` expects.

    Parameters
    ----------
    sources : path, folder, bytes, PIL.Image, ndarray, or a sequence of these
        Paths may be PNG, JPEG, BMP, GIF (first frame), WebP or TIFF; arrays may be
        ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``, uint8 or float.
    model : keras.Model, optional
        Gives the target size and channels (overridden by ``size`` / ``channels``), the input
        scale (:func:`vizkit.input_spec`: a sample's metadata, a ``Rescaling``/``Normalization``
        block inside the model, or the default 0-1) and the class names (a sample's, or
        ImageNet's for a 1000-way head).
    size : (int, int), optional
        Target ``(height, width)``.
    channels : int, optional
        1 for grayscale, 3 for RGB.
    value_range : (float, float) or str, optional
        Scale of the returned values: 8-bit 0..255 maps linearly to ``value_range``
        (``(0, 255)``, ``"0-1"``, ``"-1-1"``). Overrides what vizkit detects.
    preprocess : str or callable, optional
        ``"0-1"``, ``"0-255"``, ``"-1-1"``, ``"caffe"`` (BGR, ImageNet mean subtracted),
        ``"torch"`` (ImageNet mean/std on 0-1), or a function of float32 ``(N, H, W, C)`` RGB
        in 0..255 (such as ``keras.applications.resnet50.preprocess_input``). Give this or
        ``value_range``, not both. Float arrays are taken as already model-ready either way.
    resize : {"stretch", "crop", "pad"}
        Images of another aspect ratio: stretched to the size (Keras' loaders' default),
        centre-cropped to the size's aspect ratio, or padded with black borders.
    class_names : sequence of str, optional
        One name per model class, stored on the batch (default: see
        :func:`vizkit.classes.model_class_names`).
    max_pixels : int
        Refuse images with more pixels (decompression bombs).
    labels : sequence of int, optional
        True classes, stored on the batch.

    Returns
    -------
    ImageBatch
        ``input_spec`` and ``resize`` record how the values were made.
    """
    if isinstance(sources, ImageBatch):
        return _restated(sources, model, value_range, preprocess, class_names)
    mode = check_resize(resize)
    spec = _spec_for(model, value_range, preprocess)
    names_given = class_names
    if model is not None:
        height, width, model_channels = model_image_shape(model)
        if size is None and height is not None and width is not None:
            size = (int(height), int(width))
        channels = channels if channels is not None else model_channels
        class_names = _class_names_for(model, class_names)
    elif names_given is not None:
        class_names = tuple(str(n) for n in names_given)

    arrays: list[np.ndarray] = []
    originals: list[np.ndarray] = []
    names: list[str] = []
    for item, name in _expand_sources(sources):
        if isinstance(item, np.ndarray):
            decoded = _array_to_images(item, name)
            many = len(decoded) > 1
            for j, (image, unit_scale) in enumerate(decoded):
                if unit_scale:
                    originals.append(_to_uint8(image))
                    arrays.append(_ready(image, channels, size, mode, spec))
                else:  # already model-ready: only resized and channel-converted
                    originals.append(_to_uint8(spec.to_unit(image)))
                    arrays.append(fit(_convert_channels(image, channels), size, mode))
                names.append(f"{name}[{j}]" if many else name)
        else:
            image, original = decode_image(item, name, max_pixels, size)
            originals.append(original)
            arrays.append(_ready(image, channels, size, mode, spec))
            names.append(name)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(
            f"images have different sizes {sorted(shapes)}: pass a model or size= to resize them"
        )
    batch = np.stack(arrays).astype(np.float32)
    label_array = None
    if labels is not None:
        label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(label_array) != len(batch):
            raise InputError(f"{len(label_array)} labels given for {len(batch)} images")
    return ImageBatch(
        array=batch,
        originals=tuple(originals),
        names=tuple(names),
        value_range=spec.value_range,
        labels=label_array,
        class_names=class_names,
        input_spec=spec,
        resize=mode,
    )


def _ready(
    image: np.ndarray,
    channels: int | None,
    size: tuple[int, int] | None,
    mode: str,
    spec: InputSpec,
) -> np.ndarray:
    """A decoded image in [0, 1] converted, fitted to ``size`` and put on the model's scale."""
    return spec.apply(fit(_convert_channels(image, channels), size, mode))


def _spec_for(model: Any, value_range: Any, preprocess: Any) -> InputSpec:
    """The user's spec, else the model's (:func:`vizkit.input_spec`), else the default."""
    stated = user_spec(value_range, preprocess)
    if stated is not None:
        return stated
    if model is None:
        return default_spec("no model given to decide the scale")
    from vizkit.detection import input_spec

    return input_spec(model)


def _class_names_for(model: Any, given: Sequence[str] | None) -> tuple[str, ...] | None:
    from vizkit.classes import check_class_names, model_class_names, num_classes_of

    if given is not None:
        return check_class_names(given, num_classes_of(model))
    return model_class_names(model)


def _restated(
    batch: ImageBatch, model: Any, value_range: Any, preprocess: Any, class_names: Any
) -> ImageBatch:
    """An ImageBatch given again: the same images, with class names added if asked.

    A stated scale must match the batch's own: its values are already made.
    """
    stated = user_spec(value_range, preprocess)
    if stated is not None and not stated.same_as(batch.input_spec):
        if batch.input_spec is not None or not np.allclose(stated.value_range, batch.value_range):
            have = batch.input_spec.label if batch.input_spec else f"{batch.value_range}"
            raise InputError(
                f"these images were loaded on the {have} scale, not {stated.label}: load them "
                "again with vizkit.load_images(..., value_range=/preprocess=)"
            )
    if class_names is not None:
        names = (
            _class_names_for(model, class_names)
            if model is not None
            else tuple(str(n) for n in class_names)
        )
        batch = dataclasses.replace(batch, class_names=names)
    return batch


def prepare_inputs(
    inputs: Any,
    model: Any,
    *,
    value_range: Any = None,
    preprocess: Any = None,
    class_names: Sequence[str] | None = None,
) -> Any:
    """What ``explain``/``predict``/``evaluate`` run on: an ImageBatch or a model-ready array.

    Paths, PIL images, bytes, lists and integer arrays are loaded with :func:`load_images`
    (the scale stated or detected); an ImageBatch keeps its values; a float array is taken as
    model-ready and, when a scale or class names are stated, wrapped in an ImageBatch that
    records them.
    """
    if isinstance(inputs, ImageBatch):
        return _restated(inputs, model, value_range, preprocess, class_names)
    if hasattr(inputs, "numpy") and not isinstance(inputs, np.ndarray):
        inputs = inputs.numpy()
    if isinstance(inputs, np.ndarray) and inputs.ndim == 4 and inputs.dtype.kind == "f":
        stated = user_spec(value_range, preprocess)
        if stated is None and class_names is None:
            return inputs
        names = _class_names_for(model, class_names) if class_names is not None else None
        if names is None and model is not None:
            names = _class_names_for(model, None)
        spec = stated
        return ImageBatch(
            array=inputs.astype(np.float32, copy=False),
            names=tuple(f"image {i}" for i in range(len(inputs))),
            value_range=spec.value_range if spec is not None else _span(inputs),
            class_names=names,
            input_spec=spec,
        )
    return load_images(
        inputs, model, value_range=value_range, preprocess=preprocess, class_names=class_names
    )


def _span(array: np.ndarray) -> tuple[float, float]:
    low, high = float(array.min(initial=0.0)), float(array.max(initial=1.0))
    return (low, high) if high > low else (low, low + 1.0)


def as_batch(inputs: Any, model: Any = None) -> np.ndarray:
    """Model-ready ``(N, H, W, C)`` float32 from an ImageBatch, array, tensor or image sources.

    Arrays that already have the model's input shape pass through unchanged (as float32); other
    inputs go through :func:`load_images`.
    """
    if isinstance(inputs, ImageBatch):
        return np.asarray(inputs.array, dtype=np.float32)
    if hasattr(inputs, "numpy") and not isinstance(inputs, np.ndarray):
        inputs = inputs.numpy()
    if isinstance(inputs, np.ndarray) and inputs.ndim == 4 and inputs.dtype.kind == "f":
        if model is None or _matches(inputs.shape, model):
            return inputs.astype(np.float32, copy=False)
    return load_images(inputs, model).array


def _matches(shape: tuple[int, ...], model: Any) -> bool:
    expected = model_image_shape(model)
    return all(e is None or e == s for e, s in zip(expected, shape[1:]))


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
def resolve_targets(
    targets: int | Sequence[int] | np.ndarray | None,
    n: int,
    num_classes: int,
    predicted: np.ndarray | None = None,
) -> np.ndarray:
    """Normalize ``targets`` to one class index per image, shape ``(n,)`` int64.

    ``None`` means the predicted class (``predicted`` must be given), an int applies to every
    image, a sequence gives one per image. Out-of-range targets raise :class:`InputError`.
    """
    if targets is None:
        if predicted is None:
            raise InputError("targets=None needs the model's predictions")
        resolved = np.asarray(predicted, dtype=np.int64).reshape(-1)
    elif isinstance(targets, (bool, np.bool_)):
        raise InputError(f"target must be a class index, not {targets!r}")
    elif isinstance(targets, (int, np.integer)):
        resolved = np.full(n, int(targets), dtype=np.int64)
    else:
        try:
            values = np.asarray(list(targets))
        except TypeError:
            raise InputError(
                f"targets must be an int, a list of ints or None, not {targets!r}"
            ) from None
        if values.dtype.kind not in "iu":
            raise InputError(f"targets must be class indices (ints), got {values.tolist()!r}")
        if values.size != n:
            raise InputError(f"{values.size} targets given for {n} images: give one per image")
        resolved = values.astype(np.int64).reshape(-1)
    bad = resolved[(resolved < 0) | (resolved >= num_classes)]
    if bad.size:
        raise InputError(
            f"target {int(bad[0])} is out of range: the model has {num_classes} classes "
            f"(0 to {num_classes - 1})"
        )
    return resolved
