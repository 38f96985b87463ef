"""keras-vis's ``vis.utils.utils`` on vizkit: same names, arguments and return conventions.

Replace ``from vis.utils import utils`` by ``from vizkit.compat.keras_vis import utils``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from vizkit._keras import inputs_structure, producer
from vizkit._tf import keras
from vizkit.errors import InputError, LayerError

__all__ = [
    "find_layer_idx",
    "apply_modifications",
    "stitch_images",
    "load_img",
    "normalize",
    "deprocess_input",
    "bgr2rgb",
]

EPSILON = 1e-7  # keras.backend.epsilon(), as keras-vis


def find_layer_idx(model: keras.Model, layer_name: str) -> int:
    """Index in ``model.layers`` of the layer named ``layer_name`` (keras-vis).

    Raises
    ------
    LayerError
        (a ``ValueError``, as keras-vis raised) when no top-level layer has that name.
    """
    for index, layer in enumerate(model.layers):
        if layer.name == layer_name:
            return index
    names = ", ".join(layer.name for layer in model.layers)
    raise LayerError(
        f"no layer named {layer_name!r} in model {model.name!r}: its layers are {names}"
    )


def apply_modifications(model: keras.Model, custom_objects: dict[str, Any] | None = None):
    """A NEW model with the changes made to ``model``'s layers, e.g. an activation swap.

    The tutorial pattern works as written::

        model.layers[idx].activation = keras.activations.linear
        model = utils.apply_modifications(model)

    keras-vis saved the model to a temporary file and loaded it back (slow, and it leaked memory
    in loops). Here the model is rebuilt in memory from its layers' configurations
    (``keras.models.clone_model``; Sequential, Functional and nested models) and the weights are
    copied. The result is a new object, so caches keyed by model identity (vizkit's compiled
    graphs) start fresh. The caller's model is left as it is.

    Parameters
    ----------
    model : keras.Model
    custom_objects : dict, optional
        Custom layers, activations, ... by name, needed to rebuild custom layers from their
        configuration (as ``keras.models.load_model``).

    Returns
    -------
    keras.Model
        Same layer names and weights; compiled with the same settings when ``model`` was
        compiled (the optimizer's state is not copied).
    """
    if not isinstance(model, keras.Model):
        raise InputError(f"model must be a keras.Model, not {type(model).__name__}")
    try:
        with keras.saving.custom_object_scope(custom_objects or {}):
            clone = keras.models.clone_model(model, **_same_inputs(model))
    except (TypeError, ValueError, NotImplementedError, KeyError) as err:
        raise InputError(
            f"cannot rebuild model {model.name!r} from its layers' configurations "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}): pass the "
            "custom layers and functions as custom_objects={'Name': Class}"
        ) from err
    clone.set_weights(model.get_weights())
    if getattr(model, "compiled", False):
        try:
            clone.compile_from_config(model.get_compile_config())
        except Exception:  # noqa: BLE001 - custom losses etc.: an uncompiled copy still explains
            pass
    return clone


def _same_inputs(model: keras.Model) -> dict[str, Any]:
    """``clone_model`` arguments that keep a functional model's input layer names."""
    if isinstance(model, keras.Sequential) or not getattr(model, "inputs", None):
        return {}
    fresh = [
        keras.Input(batch_shape=t.shape, dtype=t.dtype, name=producer(t).name) for t in model.inputs
    ]
    structure = inputs_structure(model)
    if structure is not None:
        return {"input_tensors": keras.tree.pack_sequence_as(structure, fresh)}
    return {"input_tensors": fresh[0] if len(fresh) == 1 else fresh}


def stitch_images(
    images: Sequence[np.ndarray], margin: int = 5, cols: int = 5
) -> np.ndarray | None:
    """Tile images into one, ``cols`` per row, separated by ``margin`` black pixels (keras-vis).

    Parameters
    ----------
    images : sequence of ndarray, each (H, W, C) (or (H, W))
    margin : int
    cols : int
        Images per row; more start a new row.

    Returns
    -------
    ndarray, shape (rows * H + (rows - 1) * margin, n_cols * W + (n_cols - 1) * margin, C)
        With the first image's dtype; None for no images (as keras-vis).
    """
    if len(images) == 0:
        return None
    first = np.asarray(images[0])
    flat = first.ndim == 2
    h, w, c = (*first.shape, 1) if flat else first.shape
    n_rows = int(math.ceil(len(images) / cols))
    n_cols = min(len(images), cols)
    out = np.zeros(
        (n_rows * h + (n_rows - 1) * margin, n_cols * w + (n_cols - 1) * margin, c),
        dtype=first.dtype,
    )
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        image = np.asarray(image)
        top, left = (h + margin) * row, (w + margin) * col
        out[top : top + h, left : left + w, :] = image[..., None] if flat else image
    return out[..., 0] if flat else out


def load_img(
    path: str | os.PathLike, grayscale: bool = False, target_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Load an image file as a ``uint8`` array (keras-vis).

    Parameters
    ----------
    path : str or path
    grayscale : bool
        Return one luma channel ``(H, W)`` instead of RGB ``(H, W, 3)``.
    target_size : (int, int), optional
        ``(height, width)`` to resize to (bilinear).

    Returns
    -------
    ndarray, uint8, shape (H, W, 3) in **RGB** order, or (H, W) with ``grayscale``

    Notes
    -----
    Decoded with Pillow through :func:`vizkit.load_images` (size limits, clear errors). The
    early cv2-based keras-vis returned BGR (hence its ``bgr2rgb``), the later scikit-image one
    RGB like this function; transparent pixels are composited on white; the grayscale image is
    ``uint8`` here where scikit-image returned floats in [0, 1].
    """
    from vizkit.inputs import load_images

    if os.path.isdir(path):
        raise InputError(f"{os.fspath(path)!r} is a folder: load_img reads one image file")
    batch = load_images(
        path,
        channels=1 if grayscale else 3,
        size=None if target_size is None else (int(target_size[0]), int(target_size[1])),
        value_range=(0.0, 255.0),
    )
    image = np.clip(np.round(batch.array[0]), 0, 255).astype(np.uint8)
    return image[..., 0] if grayscale else image


def normalize(array: np.ndarray, min_value: float = 0.0, max_value: float = 1.0) -> np.ndarray:
    """Min-max scale ``array`` (over all its values) to ``[min_value, max_value]`` (keras-vis).

    ``(array - min) / (max - min + 1e-7) * (max_value - min_value) + min_value``; a constant
    array maps to ``min_value``.
    """
    array = np.asarray(array)
    low, high = np.min(array), np.max(array)
    scaled = (array - low) / (high - low + EPSILON)
    return (max_value - min_value) * scaled + min_value


def deprocess_input(input_array: np.ndarray, input_range: tuple[float, float] = (0, 255)):
    """keras-vis's display scaling: centre on the mean, standard deviation 0.1, clip to [0, 1],
    then map to ``input_range``.
    """
    array = np.array(input_array, dtype=np.result_type(input_array, np.float32), copy=True)
    array -= array.mean()
    array /= array.std() + EPSILON
    array = np.clip(array * 0.1 + 0.5, 0.0, 1.0)
    return (input_range[1] - input_range[0]) * array + input_range[0]


def bgr2rgb(img: np.ndarray) -> np.ndarray:
    """Swap the first and last channel (BGR <-> RGB) (keras-vis).

    Only needed for images that really are BGR (OpenCV); :func:`load_img` already returns RGB.
    """
    return np.asarray(img)[..., ::-1]
