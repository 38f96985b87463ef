"""Inside the network: filter weights, feature maps, and the data that excites each unit.

- :func:`conv_filters` reads the kernels of a ``Conv2D``, ``SeparableConv2D`` or
  ``DepthwiseConv2D`` layer (nested models too) into a :class:`~vizkit.results.inspection.FilterBank`.
- :func:`feature_maps` runs images through the model once and keeps the activations of one or
  several layers (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", 2014).
- :func:`top_activations` streams a set of images (arrays, an :class:`~vizkit.inputs.ImageBatch`,
  a folder, any iterable or ``tf.data`` pipeline) in batches and keeps, per unit, the ``k``
  images that activate it most and, for convolutional channels, the patch of each image inside
  the unit's receptive field: the "dataset examples" of Olah et al., "Feature Visualization",
  Distill 2017, as OpenAI Microscope shows them for a few ImageNet models.

The caller's model is never modified: activations come from :func:`vizkit.models.rebuild`
graphs that share its layers (nested models inlined), cached per model. The streaming search,
the patch cropping and the source-convolution lookup behind :func:`top_activations` live in
:mod:`vizkit.topk`.

(Over 500 lines: three public entry points whose numpydoc docstrings are about a quarter of it.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError, LayerError
from vizkit.inputs import ImageBatch, as_batch
from vizkit.models import (
    CONV_TYPES,
    first_conv_layer,
    get_layer,
    layer_output_shape,
    model_cache,
    rebuild,
    require_image_model,
)
from vizkit.results.inspection import FeatureMaps, FeatureMapSet, FilterBank, UnitExamples
from vizkit.topk import StreamingTopK as StreamingTopK  # re-exported: lives in vizkit.topk
from vizkit.topk import iter_batches, receptive_patches, search, source_conv

__all__ = ["conv_filters", "feature_maps", "top_activations", "CONV_TYPES"]

SORTS = ("norm", "index")
REDUCTIONS = ("max", "mean")
MAX_DEFAULT_UNITS = 16


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------
def _numpy(variable: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _kernels(layer: keras.layers.Layer) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(F, kh, kw, C_in)`` kernels, bias ``(F,)`` and depthwise input channels ``(F,)``."""
    bias = (
        _numpy(layer.bias) if getattr(layer, "use_bias", False) and layer.bias is not None else None
    )
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise = _numpy(layer.depthwise_kernel)  # (kh, kw, C_in, M)
        pointwise = _numpy(layer.pointwise_kernel)  # (1, 1, C_in * M, F)
        _, _, c_in, mult = depthwise.shape
        pointwise = pointwise.reshape(c_in, mult, -1)
        return np.einsum("hwcm,cmf->fhwc", depthwise, pointwise), bias, None
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = _numpy(layer.kernel)  # (kh, kw, C_in, M); output channel c * M + m
        kh, kw, c_in, mult = kernel.shape
        flat = kernel.reshape(kh, kw, c_in * mult)
        inputs = np.arange(c_in * mult) // mult
        return np.transpose(flat, (2, 0, 1))[..., None], bias, inputs
    kernel = _numpy(layer.kernel)  # (kh, kw, C_in / groups, F)
    return np.transpose(kernel, (3, 0, 1, 2)), bias, None


def conv_filters(
    model: keras.Model,
    layer: str | int | None = None,
    *,
    sort: str = "norm",
    max_filters: int | None = 64,
    filters: Sequence[int] | None = None,
) -> FilterBank:
    """The kernel weights of a convolutional layer.

    Parameters
    ----------
    model : keras.Model
        Never modified.
    layer : str or int, optional
        A ``Conv2D``, ``SeparableConv2D`` or ``DepthwiseConv2D`` layer (path such as
        ``"base/conv1"``, or index); None picks the model's first such layer.
    sort : {"norm", "index"}
        Order filters by decreasing L2 norm, or keep the layer's order.
    max_filters : int, optional
        Keep at most this many filters (after sorting); None keeps all.
    filters : sequence of int, optional
        Only these output channels (in this order unless ``sort="norm"``).

    Returns
    -------
    FilterBank
        Kernels ``(F, kh, kw, C_in)`` with their indices in the layer; a separable layer gives its
        effective full kernels, a depthwise layer one input channel per filter.
    """
    if sort not in SORTS:
        raise InputError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    path = first_conv_layer(model) if layer is None else get_layer(model, layer)[0]
    _, lyr = get_layer(model, path)
    if not isinstance(lyr, CONV_TYPES):
        raise LayerError(
            f"layer {path!r} is a {type(lyr).__name__}, not a convolution: pick a Conv2D, "
            f"SeparableConv2D or DepthwiseConv2D layer such as {first_conv_layer(model)!r}"
        )
    kernels, bias, inputs = _kernels(lyr)
    total = len(kernels)
    indices = np.arange(total)
    if filters is not None:
        indices = np.asarray(list(filters), dtype=np.int64).reshape(-1)
        bad = indices[(indices < 0) | (indices >= total)]
        if bad.size:
            raise InputError(
                f"filter {int(bad[0])} is out of range: layer {path!r} has {total} filters"
            )
    if sort == "norm":
        norms = np.sqrt((kernels[indices].reshape(len(indices), -1).astype(np.float64) ** 2).sum(1))
        indices = indices[np.argsort(-norms, kind="stable")]
    if max_filters is not None:
        if int(max_filters) < 1:
            raise InputError(f"max_filters must be at least 1, not {max_filters}")
        indices = indices[: int(max_filters)]
    model_channels = require_image_model(model, "conv_filters")[-1]
    first = path == first_conv_layer(model) and kernels.shape[-1] == model_channels
    return FilterBank(
        kernels=kernels[indices],
        indices=indices.astype(np.int64),
        layer=path,
        layer_type=type(lyr).__name__,
        order=sort,
        total_filters=total,
        bias=None if bias is None else bias[indices],
        input_channels=None if inputs is None else inputs[indices],
        first_layer=bool(first),
    )


# --------------------------------------------------------------------------------------------
# Forward passes
# --------------------------------------------------------------------------------------------
def _layer_paths(model: keras.Model, layer: Any) -> tuple[list[str], bool]:
    many = isinstance(layer, (list, tuple))
    refs = list(layer) if many else [layer]
    if not refs:
        raise InputError("no layers given: pass a layer name or a list of them")
    paths = []
    for ref in refs:
        path, lyr = get_layer(model, ref)
        if isinstance(lyr, keras.Model):
            raise LayerError(
                f"layer {path!r} is a nested model: pick one of its layers, e.g. {path}/<name>"
            )
        paths.append(path)
    return list(dict.fromkeys(paths)), many


def _forward(model: keras.Model, paths: Sequence[str]) -> Any:
    """Cached compiled function ``images -> [outputs of paths]`` (float32), never training."""
    cache = model_cache(model)
    key = ("vizkit.inspection.forward", tuple(paths))
    if key not in cache:
        full = rebuild(model, list(paths), logits=False, output=0)  # the head is not used
        sub = keras.Model(full.inputs[0], full.outputs[1:], name=f"{model.name}_layers")

        @tf.function(reduce_retracing=True)
        def run(images: tf.Tensor) -> list[tf.Tensor]:
            outs = sub(images, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            return [tf.cast(o, tf.float32) for o in outs]

        cache[key] = run
    return cache[key]


def _value_range(inputs: Any, array: np.ndarray, value_range: Any) -> tuple[float, float]:
    if value_range is not None:
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise InputError(f"value_range {value_range} must be (low, high) with high > low")
        return low, high
    if isinstance(inputs, ImageBatch):
        return tuple(float(v) for v in inputs.value_range)  # type: ignore[return-value]
    low, high = float(np.min(array)), float(np.max(array))
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    if low >= 0.0 and high <= 255.0:
        return 0.0, 255.0
    if low >= -1.0 and high <= 1.0:
        return -1.0, 1.0
    return low, high if high > low else low + 1.0


def _display(array: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return np.clip((array - low) / (high - low), 0.0, 1.0).astype(np.float32)


def _grid_geometry(
    model: keras.Model, path: str, grid: tuple[int, int], size: tuple[int, int]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Input-pixel centre of unit (0, 0) and the spacing between units, from the receptive
    field when known, otherwise the grid stretched evenly over the image."""
    rf = _receptive_field(model, path)
    if rf is not None:
        return tuple(float(v) for v in rf.start), tuple(float(v) for v in rf.jump)  # type: ignore[return-value]
    stride = tuple(float(s) / float(g) for s, g in zip(size, grid))
    origin = tuple((st - 1.0) / 2.0 for st in stride)
    return origin, stride  # type: ignore[return-value]


def _upsample(
    acts: np.ndarray,
    origin: tuple[float, float],
    stride: tuple[float, float],
    size: tuple[int, int],
) -> np.ndarray:
    """Bilinear resampling of ``(N, h, w, C)`` maps onto the input's pixel grid.

    Unit ``(u, v)`` sits at input pixel ``origin + (u, v) * stride``; pixels outside the units'
    span take the nearest edge unit.
    """
    out = acts.astype(np.float32)
    for axis, (start, step, length) in enumerate(zip(origin, stride, size), start=1):
        coords = (np.arange(length, dtype=np.float64) - start) / step
        coords = np.clip(coords, 0.0, out.shape[axis] - 1.0)
        low = np.floor(coords).astype(np.int64)
        high = np.minimum(low + 1, out.shape[axis] - 1)
        frac = (coords - low).astype(np.float32)
        shape = [1] * out.ndim
        shape[axis] = length
        frac = frac.reshape(shape)
        out = np.take(out, low, axis=axis) * (1.0 - frac) + np.take(out, high, axis=axis) * frac
    return out


def feature_maps(
    model: keras.Model,
    inputs: Any,
    layer: str | int | Sequence[str | int],
    *,
    upsample: bool = False,
    batch_size: int = 32,
    keep_images: bool = True,
    value_range: tuple[float, float] | None = None,
) -> FeatureMaps | FeatureMapSet:
    """Activations of one or several layers for a batch of images, in one forward pass.

    Parameters
    ----------
    model : keras.Model
        Never modified.
    inputs : ImageBatch, ndarray (N, H, W, C), tensor, path(s) or PIL images
        Images on the model's scale (arrays pass through; files are loaded and resized).
    layer : str or int, or a list of them
        Layer path(s) such as ``"conv2"`` or ``"base/block1_conv1"``. The layer's actual output
        (after its activation) is returned.
    upsample : bool
        Resample spatial activations (bilinear) onto the input's pixel grid, for overlays; each
        unit is placed at the centre of its receptive field (see :func:`vizkit.receptive_fields`).
    batch_size : int
        Images per forward pass.
    keep_images : bool
        Store the inputs (in [0, 1]) on the result, for overlays.
    value_range : (float, float), optional
        The inputs' scale, for display (default: the ImageBatch's, else guessed from the values).

    Returns
    -------
    FeatureMaps, or FeatureMapSet when ``layer`` is a list
        Activations ``(N, h, w, C)`` (spatial layers) or ``(N, C)`` (vector layers), float32.
        A ``FeatureMapSet`` maps each layer path to its ``FeatureMaps`` (``result["conv1"]``,
        ``result.items()``) and draws one row per layer with ``plot()``.
    """
    require_image_model(model, "feature maps")
    paths, many = _layer_paths(model, layer)
    array = as_batch(inputs, model)
    if len(array) == 0:
        raise InputError("no images given")
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    run = _forward(model, paths)
    chunks: list[list[np.ndarray]] = [[] for _ in paths]
    for start in range(0, len(array), int(batch_size)):
        outs = run(tf.constant(array[start : start + int(batch_size)]))
        for i, out in enumerate(outs):
            chunks[i].append(out.numpy())
    names = (
        tuple(inputs.names)
        if isinstance(inputs, ImageBatch) and inputs.names
        else tuple(f"image {i}" for i in range(len(array)))
    )
    images = _display(array, _value_range(inputs, array, value_range)) if keep_images else None
    results: dict[str, FeatureMaps] = {}
    for path, parts in zip(paths, chunks):
        acts = np.concatenate(parts).astype(np.float32)
        layer_shape = tuple(int(d) for d in acts.shape[1:])
        if acts.ndim > 4 or acts.ndim == 3:
            raise LayerError(
                f"layer {path!r} has output shape {acts.shape[1:]}: feature maps need "
                "(H, W, C) or (units,) outputs"
            )
        resized = False
        origin = stride = None
        if acts.ndim == 4:
            origin, stride = _grid_geometry(model, path, acts.shape[1:3], array.shape[1:3])
        if upsample and acts.ndim == 4:
            acts = _upsample(acts, origin, stride, array.shape[1:3])
            origin, stride, resized = (0.0, 0.0), (1.0, 1.0), True
        results[path] = FeatureMaps(
            activations=acts.astype(np.float32),
            layer=path,
            layer_shape=layer_shape,
            images=images,
            upsampled=resized,
            names=names,
            origin=origin,
            stride=stride,
        )
    return FeatureMapSet(tuple(results.values())) if many else results[paths[0]]


# --------------------------------------------------------------------------------------------
# Top activations
# --------------------------------------------------------------------------------------------
def _receptive_field(model: keras.Model, path: str) -> Any:
    cache = model_cache(model)
    key = "vizkit.inspection.receptive_fields"
    if key not in cache:
        from vizkit.receptive import receptive_fields

        try:
            cache[key] = receptive_fields(model)
        except Exception:  # noqa: BLE001 - no fields: patches are left out, nothing fails
            cache[key] = {}
    return cache[key].get(path)


def unit_scorer(model: keras.Model, path: str, reduce: str) -> Any:
    """Compiled ``(images, units) -> (scores (B, U), flat argmax positions (B, U))`` for a
    layer's channels (spatial layers, scored by ``reduce`` over the map) or units (vector
    layers, position 0), cached per model, layer and reduction: repeated calls, other units
    and other batch sizes reuse one trace."""
    cache = model_cache(model)
    key = ("vizkit.inspection.unit_scorer", path, reduce)
    if key not in cache:
        forward = _forward(model, [path])
        spatial = len(layer_output_shape(get_layer(model, path)[1])) == 4
        spec = tf.TensorSpec((None, *require_image_model(model, "top_activations")[1:]))

        @tf.function(input_signature=[spec, tf.TensorSpec([None], tf.int32)])
        def score(batch: tf.Tensor, units: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            acts = tf.gather(forward(batch)[0], units, axis=-1)
            if not spatial:
                return acts, tf.zeros_like(acts, dtype=tf.int32)
            flat = tf.reshape(acts, (tf.shape(acts)[0], -1, tf.shape(units)[0]))
            where = tf.cast(tf.argmax(flat, axis=1), tf.int32)
            if reduce == "max":
                return tf.reduce_max(flat, axis=1), where
            return tf.reduce_mean(flat, axis=1), where

        cache[key] = score
    return cache[key]


def _unit_layer(model: keras.Model, layer: str | int) -> tuple[str, Any, tuple[Any, ...]]:
    """``(path, layer, output shape)`` of a layer whose units :func:`top_activations` can rank:
    a spatial ``(H, W, C)`` or a vector ``(units,)`` output, not a nested model."""
    path, lyr = get_layer(model, layer)
    if isinstance(lyr, keras.Model):
        raise LayerError(f"layer {path!r} is a nested model: pick one of its layers")
    out_shape = layer_output_shape(lyr)
    if len(out_shape) not in (2, 4) or out_shape[-1] is None:
        raise LayerError(
            f"layer {path!r} has output shape {out_shape[1:]}: pick a layer with (H, W, C) or "
            "(units,) outputs"
        )
    return path, lyr, tuple(out_shape)


def _unit_filters(
    model: keras.Model, path: str, layer: Any, units: np.ndarray
) -> FilterBank | None:
    """The kernels of ``units`` when ``layer`` is (or follows through pointwise layers) a
    convolution with as many channels, else None."""
    spatial = len(layer_output_shape(layer)) == 4
    conv = (
        path if isinstance(layer, CONV_TYPES) else (source_conv(model, path) if spatial else None)
    )
    if conv is None:
        return None
    _, conv_layer = get_layer(model, conv)
    if int(layer_output_shape(conv_layer)[-1]) != int(layer_output_shape(layer)[-1]):
        return None
    return conv_filters(model, conv, sort="index", max_filters=None, filters=units)


def top_activations(
    model: keras.Model,
    layer: str | int,
    units: int | Sequence[int] | None = None,
    images: Any = None,
    *,
    k: int = 9,
    reduce: str = "max",
    batch_size: int = 64,
    progress: bool | Any = True,
    value_range: tuple[float, float] | None = None,
    filters: bool = True,
    maximize: bool | dict[str, Any] = False,
    seed: int = 0,
) -> UnitExamples:
    """The images (and receptive-field patches) that activate each unit most.

    Parameters
    ----------
    model : keras.Model
        Never modified.
    layer : str or int
        A layer with a spatial ``(H, W, C)`` output (units are channels) or a vector output
        (units are dense units; the head gives the layer's actual output, e.g. probabilities).
    units : int or sequence of int, optional
        Channels or units; None means the first 16.
    images : ImageBatch, ndarray, tensor, folder or file paths, tf.data.Dataset, or iterable
        The images to search, on the model's scale. Datasets and iterables may yield single
        images, batches, or ``(images, labels)`` pairs; they are read once, in batches.
    k : int
        Examples kept per unit.
    reduce : {"max", "mean"}
        Score of an image for a channel: its largest activation (the patch is cropped around it)
        or the channel's mean (the patch is still taken at the maximum).
    batch_size : int
        Images per forward pass (for arrays; datasets keep their own batching).
    progress : bool or callable
        True shows a tqdm bar; a callable gets ``(images_done, total_or_None)``.
    value_range : (float, float), optional
        The images' scale, for display (default: the ImageBatch's, else guessed).
    filters : bool
        Attach the units' kernels when the layer is (or directly follows) a convolution.
    maximize : bool or dict
        Also compute activation-maximization images for the units (a dict passes keyword
        arguments to :func:`vizkit.maximize_activation`).
    seed : int
        Seed for the activation maximization.

    Returns
    -------
    UnitExamples
        Top ``k`` scores per unit, best first (ties keep the earlier image), the images' stream
        positions, and for channels the feature-map positions, receptive-field boxes and patches.
    """
    if images is None:
        raise InputError("top_activations needs images to search: pass images=...")
    if reduce not in REDUCTIONS:
        raise InputError(f"reduce {reduce!r} is not one of {', '.join(REDUCTIONS)}")
    if int(k) < 1:
        raise InputError(f"k must be at least 1, not {k}")
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}")
    k, batch_size = int(k), int(batch_size)
    shape = require_image_model(model, "top_activations")
    path, lyr, out_shape = _unit_layer(model, layer)
    spatial = len(out_shape) == 4
    kind = "channel" if spatial else "unit"
    count = int(out_shape[-1])
    from vizkit.activation_max import resolve_units

    chosen = resolve_units(units, count, kind)
    score = unit_scorer(model, path, reduce if spatial else "max")
    batches, total, source = iter_batches(images, model, batch_size)
    top = search(batches, total, model, score, chosen, k, progress)

    best_idx, kept, seen = top.indices, top.kept, top.seen
    ids = sorted(kept)
    id_of = {sample: row for row, sample in enumerate(ids)}
    stack = np.stack([kept[i] for i in ids]) if ids else np.zeros((0, *shape[1:]), np.float32)
    scale = _value_range(source, stack, value_range)
    display = np.round(_display(stack, scale) * 255.0).astype(np.uint8)
    image_ids = np.vectorize(lambda s: id_of.get(int(s), -1), otypes=[np.int64])(best_idx)
    best = np.where(best_idx >= 0, top.scores, -np.inf).astype(np.float32)

    positions = boxes = patches = None
    if spatial:
        width = int(out_shape[2])
        flat = top.positions
        positions = np.stack([flat // width, flat % width], axis=-1).astype(np.int64)
        positions[best_idx < 0] = -1
        rf = _receptive_field(model, path)
        if rf is not None:
            size = (int(shape[1]), int(shape[2]))
            boxes, patches = receptive_patches(display, image_ids, positions, rf, size)

    bank = _unit_filters(model, path, lyr, chosen) if filters else None
    maximization = None
    if maximize:
        from vizkit.activation_max import maximize_activation

        options = dict(maximize) if isinstance(maximize, dict) else {}
        options.setdefault("progress", progress)
        options.setdefault("seed", seed)
        maximization = maximize_activation(model, path, chosen, **options)

    names = tuple(f"image {i}" for i in ids)
    if isinstance(source, ImageBatch) and source.names:
        names = tuple(source.names[i] for i in ids)
    return UnitExamples(
        layer=path,
        kind=kind,
        units=chosen.astype(np.int64),
        scores=best,
        sample_indices=best_idx,
        image_ids=image_ids.astype(np.int64),
        images=display,
        positions=positions,
        boxes=boxes,
        patches=patches,
        reduce=reduce if spatial else "value",
        searched=seen,
        filters=bank,
        maximization=maximization,
        names=names,
    )
