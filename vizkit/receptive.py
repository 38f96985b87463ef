"""Receptive fields of every spatial layer, walking the model's functional graph.

For each layer with a spatial ``(N, H, W, C)`` output, :func:`receptive_fields` gives the size of
the input window one output unit sees, the effective stride (``jump``) between neighbouring units
and the centre of the first unit's window, with the recurrences of Araujo et al. (2019),
"Computing Receptive Fields of Convolutional Neural Networks" (Distill)::

    k_eff = d * (k - 1) + 1
    r_out = r_in + (k_eff - 1) * j_in
    j_out = j_in * s
    start_out = start_in + ((k_eff - 1) / 2 - pad_top) * j_in

The walk follows the graph (residual branches, nested models), not ``model.layers`` order, and
also computes each call's concrete shapes, which :mod:`vizkit.summary` reuses for MAC counts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from vizkit._keras import elementwise_op, functional_graph, is_operation, nodes_by_depth, producer
from vizkit._tf import keras
from vizkit.errors import InputError
from vizkit.models import SEP, iter_layers
from vizkit.results.summary import ReceptiveField

__all__ = ["ReceptiveField", "receptive_fields"]

Shape = tuple[int | None, ...]
L = keras.layers


# --------------------------------------------------------------------------------------------
# Graph walking (shared with vizkit.summary)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Call:
    """One call of a layer during the walk, with the concrete shapes of that call."""

    path: str
    layer: Any
    input_shapes: list[Shape]
    output_shapes: list[Shape]
    inbound: tuple[str, ...]
    container: bool = False


def graph_of(model: Any) -> Any | None:
    """The functional graph of a Functional or built Sequential model (None for subclassed)."""
    return functional_graph(model)


def _shape(tensor: Any) -> Shape:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _call_shapes(layer: Any, node: Any, input_shapes: list[Shape]) -> list[Shape]:
    """Output shapes of ``node`` when its inputs have ``input_shapes`` (no new graph nodes)."""
    recorded = [_shape(t) for t in node.outputs]
    if input_shapes == [_shape(t) for t in node.input_tensors]:
        return recorded
    try:
        stand_ins = {
            id(t): keras.KerasTensor(shape, dtype=t.dtype)
            for t, shape in zip(node.input_tensors, input_shapes)
        }
        args, kwargs = node.arguments.fill_in(stand_ins)
        spec = layer.compute_output_spec(*args, **kwargs)
        shapes = [_shape(s) for s in keras.tree.flatten(spec)]
    except Exception:  # noqa: BLE001 - shape inference is best effort; fall back to the record
        return recorded
    return shapes if len(shapes) == len(recorded) else recorded


def walk(
    model: Any,
    visit: Callable[[Call, list[Any]], list[Any]] | None = None,
    seeds: list[Any] | None = None,
    input_shapes: list[Shape] | None = None,
    prefix: str = "",
) -> list[tuple[Shape, Any]]:
    """Walk ``model``'s graph in topological order, nested models recursively.

    Each tensor carries ``(shape, value)``. For every layer call, ``visit(call, in_values)``
    returns one value per output (``visit=None`` propagates None). A nested model is entered with
    the outer values, then reported as ``visit(call, out_values)`` with ``call.container=True``
    (its return is ignored). Returns the ``(shape, value)`` of the model's outputs.
    """
    graph = graph_of(model)
    if graph is None:
        raise InputError(
            f"model {model.name!r} has no functional graph (a subclassed model or an unbuilt "
            "Sequential): build it on a keras.Input first"
        )
    inputs = list(graph.inputs)
    shapes = input_shapes or [_shape(t) for t in inputs]
    values = seeds or [None] * len(inputs)
    state: dict[int, tuple[Shape, Any]] = {
        id(t): (shape, value) for t, shape, value in zip(inputs, shapes, values)
    }
    # the layers (not keras.ops calls, which have no row of their own) each tensor comes from
    sources: dict[int, tuple[str, ...]] = {id(t): () for t in inputs}
    for level in nodes_by_depth(graph):
        for node in level:
            layer = node.operation
            if layer is None or node.is_input:
                continue
            tensors = node.input_tensors
            if any(id(t) not in state for t in tensors):
                continue
            in_shapes = [state[id(t)][0] for t in tensors]
            in_values = [state[id(t)][1] for t in tensors]
            path = prefix + layer.name
            inbound = tuple(
                dict.fromkeys(name for t in tensors for name in _sources(t, sources, prefix))
            )
            if graph_of(layer) is not None and isinstance(layer, keras.Model):
                outs = walk(layer, visit, in_values, in_shapes, path + SEP)
                call = Call(path, layer, in_shapes, [s for s, _ in outs], inbound, True)
                if visit is not None:
                    visit(call, [v for _, v in outs])
            else:
                out_shapes = _call_shapes(layer, node, in_shapes)
                call = Call(path, layer, in_shapes, out_shapes, inbound)
                out_values = visit(call, in_values) if visit else [None] * len(out_shapes)
                outs = list(zip(out_shapes, out_values))
            produced = inbound if is_operation(layer) else (path,)
            for tensor, out in zip(node.outputs, outs):
                state[id(tensor)] = out
                sources[id(tensor)] = produced
    return [state.get(id(t), (_shape(t), None)) for t in graph.outputs]


def _sources(tensor: Any, sources: dict[int, tuple[str, ...]], prefix: str) -> tuple[str, ...]:
    """Paths of the layers ``tensor`` comes from (through ``keras.ops`` calls)."""
    if id(tensor) in sources:
        return sources[id(tensor)]
    op = producer(tensor)
    if op is None or isinstance(op, L.InputLayer):
        return ()
    return (prefix + op.name,)


# --------------------------------------------------------------------------------------------
# Receptive-field rules
# --------------------------------------------------------------------------------------------
def _classes(*names: str) -> tuple[type, ...]:
    return tuple(getattr(L, n) for n in names if hasattr(L, n))


_POINTWISE = _classes(
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "Rescaling", "Normalization", "Identity",
    "ActivityRegularization", "Masking", "Dense", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomContrast", "RandomBrightness", "RandomTranslation",
)  # fmt: skip
_MERGE = _classes("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")
_CONV_TRANSPOSE = _classes("Conv2DTranspose")
_CONV = _classes("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
_POOL = _classes("MaxPooling2D", "AveragePooling2D")
_GLOBAL = _classes("GlobalAveragePooling2D", "GlobalMaxPooling2D")
_RESIZE_FOOTPRINT = {"nearest": 1, "bilinear": 2, "bicubic": 4, "lanczos3": 6, "lanczos5": 10}


@dataclasses.dataclass(frozen=True)
class _RF:
    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]
    exact: bool = True

    def inexact(self) -> _RF:
        return dataclasses.replace(self, exact=False)


_INPUT_RF = _RF((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))


def _spatial(shape: Shape, layer: Any = None) -> tuple[int | None, int | None] | None:
    if len(shape) != 4:
        return None
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return (shape[2], shape[3])
    return (shape[1], shape[2])


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _same_pad_before(n: int | None, k_eff: int, stride: int) -> int:
    """Padding added before the first row by TensorFlow's "same" (extra padding goes after)."""
    if n is None:  # assume the size is a multiple of the stride
        total = max(k_eff - stride, 0)
    else:
        total = max((math.ceil(n / stride) - 1) * stride + k_eff - n, 0)
    return total // 2


def _window(rf: _RF, sizes: tuple, kernel: Any, strides: Any, dilation: Any, padding: str) -> _RF:
    size, jump, start = [], [], []
    for axis, (k, s, d) in enumerate(zip(_pair(kernel), _pair(strides), _pair(dilation))):
        k_eff = d * (k - 1) + 1
        pad = _same_pad_before(sizes[axis], k_eff, s) if padding == "same" else 0
        size.append(rf.size[axis] + (k_eff - 1) * rf.jump[axis])
        jump.append(rf.jump[axis] * s)
        start.append(rf.start[axis] + ((k_eff - 1) / 2 - pad) * rf.jump[axis])
    return _RF(tuple(size), tuple(jump), tuple(start), rf.exact)


def _union(rfs: list[_RF]) -> _RF:
    """Receptive field of a unit that combines aligned branches (Add, Concatenate, ...)."""
    if len(rfs) == 1:
        return rfs[0]
    size, jump, start = [], [], []
    for axis in (0, 1):
        low = min(rf.start[axis] - rf.size[axis] / 2 for rf in rfs)
        high = max(rf.start[axis] + rf.size[axis] / 2 for rf in rfs)
        size.append(high - low)
        start.append((high + low) / 2)
        jump.append(max(rf.jump[axis] for rf in rfs))
    exact = all(rf.exact for rf in rfs) and len({rf.jump for rf in rfs}) == 1
    return _RF(tuple(size), tuple(jump), tuple(start), exact)


def _scale(rf: _RF, factor: tuple[float, float], footprint: int, exact: bool) -> _RF:
    """Resampling by ``factor`` (input pixels per output pixel), half-pixel centres."""
    return _RF(
        tuple(r + (footprint - 1) * j for r, j in zip(rf.size, rf.jump)),
        tuple(j * f for j, f in zip(rf.jump, factor)),
        tuple(s + (f - 1) / 2 * j for s, f, j in zip(rf.start, factor, rf.jump)),
        rf.exact and exact,
    )


def _shift(rf: _RF, offset: tuple[float, float]) -> _RF:
    start = tuple(s + o * j for s, o, j in zip(rf.start, offset, rf.jump))
    return dataclasses.replace(rf, start=start)


def _layer_rf(layer: Any, inputs: list[tuple[Shape, _RF | None]], out_shape: Shape) -> _RF | None:
    """Receptive field of ``layer``'s output given its inputs' shapes and receptive fields."""
    out_hw = _spatial(out_shape, layer)
    if out_hw is None or isinstance(layer, _GLOBAL):
        return None
    spatial = [(s, rf) for s, rf in inputs if rf is not None and _spatial(s) is not None]
    if not spatial:
        return None
    rf, in_hw = spatial[0][1], _spatial(spatial[0][0], layer)

    if isinstance(layer, _CONV_TRANSPOSE):  # approximation: inverse of a strided convolution
        k_eff = [
            d * (k - 1) + 1 for k, d in zip(_pair(layer.kernel_size), _pair(layer.dilation_rate))
        ]
        strides = _pair(layer.strides)
        footprint = [math.ceil(k / s) for k, s in zip(k_eff, strides)]
        return _RF(
            tuple(r + (f - 1) * j for r, f, j in zip(rf.size, footprint, rf.jump)),
            tuple(j / s for j, s in zip(rf.jump, strides)),
            rf.start,
            False,
        )
    if isinstance(layer, _CONV) or _conv_like(layer):
        dilation = getattr(layer, "dilation_rate", 1)
        return _window(rf, in_hw, layer.kernel_size, layer.strides, dilation, layer.padding)
    if isinstance(layer, _POOL) or (hasattr(layer, "pool_size") and hasattr(layer, "strides")):
        return _window(rf, in_hw, layer.pool_size, layer.strides, 1, layer.padding)
    if isinstance(layer, L.ZeroPadding2D):
        (top, _), (left, _) = layer.padding
        return _shift(rf, (-top, -left))
    if isinstance(layer, L.Cropping2D):
        (top, _), (left, _) = layer.cropping
        return _shift(rf, (top, left))
    if isinstance(layer, L.UpSampling2D):
        factor = tuple(1 / f for f in _pair(layer.size))
        footprint = 2 if layer.interpolation == "bilinear" else 1
        return _scale(rf, factor, footprint, exact=False)
    if isinstance(layer, (L.Resizing, L.CenterCrop)) and None not in in_hw + out_hw:
        if isinstance(layer, L.CenterCrop) and all(i >= o for i, o in zip(in_hw, out_hw)):
            return _shift(rf, tuple((i - o) // 2 for i, o in zip(in_hw, out_hw)))
        factor = tuple(i / o for i, o in zip(in_hw, out_hw))
        interpolation = getattr(layer, "interpolation", "bilinear")
        footprint = _RESIZE_FOOTPRINT.get(interpolation, 2)
        if interpolation == "area":
            footprint = max(1, math.ceil(max(factor)))
        plain = not (
            getattr(layer, "crop_to_aspect_ratio", False)
            or getattr(layer, "pad_to_aspect_ratio", False)
        )
        return _scale(rf, factor, footprint, exact=plain)

    # Layers that keep the spatial grid: pointwise, merges, unknown ones (assumed pointwise).
    same_grid = [r for s, r in spatial if _spatial(s, layer) == out_hw]
    if not same_grid:
        return None  # an unknown layer changed the grid: stop here
    combined = _union(same_grid)
    dropped = any(r is None and _spatial(s) is not None for s, r in inputs)
    known = isinstance(layer, _POINTWISE + _MERGE) or elementwise_op(layer)
    if dropped or not known or len(same_grid) < len(spatial):
        combined = combined.inexact()
    return combined


def _conv_like(layer: Any) -> bool:
    """Custom 2-D convolutions exposing Keras' ``kernel_size``/``strides``/``padding``."""
    kernel = getattr(layer, "kernel_size", None)
    return (
        isinstance(kernel, (tuple, list))
        and len(kernel) == 2
        and hasattr(layer, "strides")
        and getattr(layer, "padding", None) in ("same", "valid")
    )


def propagate(
    model: Any, visit: Callable[[Call, list[_RF | None]], None] | None = None
) -> list[tuple[Shape, _RF | None]]:
    """Walk ``model`` carrying receptive fields; ``visit(call, out_rfs)`` sees every call.

    Returns the ``(shape, field)`` of each model output.
    """

    def step(call: Call, in_rfs: list[Any]) -> list[Any]:
        if call.container:
            out_rfs = in_rfs  # for containers walk passes the outputs' fields
        else:
            inputs = list(zip(call.input_shapes, in_rfs))
            out_rfs = [_layer_rf(call.layer, inputs, shape) for shape in call.output_shapes]
        if visit is not None:
            visit(call, out_rfs)
        return out_rfs

    graph = graph_of(model)
    if graph is None:
        walk(model)  # raises the explanatory error
    seeds = [_INPUT_RF if len(_shape(t)) == 4 else None for t in graph.inputs]
    return walk(model, step, seeds)


def receptive_fields(model: Any) -> dict[str, ReceptiveField]:
    """Receptive field of every layer with a spatial output, keyed by layer path.

    Parameters
    ----------
    model : keras.Model
        Functional or Sequential model (nested models allowed); never modified.

    Returns
    -------
    dict of str to ReceptiveField
        In model order (see :func:`vizkit.models.iter_layers`); nested layers as
        ``"outer/inner"`` and the nested model itself under ``"outer"``. Layers after one that
        destroys spatial structure (Flatten, global pooling, Dense on vectors, ...) have no entry.
        A layer called several times keeps its first call's field.

    Notes
    -----
    Convolutions (incl. separable, depthwise, dilated), pooling, zero-padding, cropping and
    resizing follow the recurrences of Araujo et al. (2019); TensorFlow's "same" padding puts
    the extra pixel after, so ``start`` may be off-centre. Pointwise layers (batch norm,
    activations, dropout, rescaling, Dense on feature maps) are identities; merges (Add,
    Concatenate, ...) take the union of the aligned branches' windows (the largest when they are
    centred alike). Input pixel centres are at integer coordinates starting from 0; sizes are not
    clipped to the image. Fields flagged ``exact=False`` rest on an assumption (see
    :class:`ReceptiveField`).
    """
    found: dict[str, ReceptiveField] = {}

    def record(call: Call, out_rfs: list[_RF | None]) -> None:
        if call.path in found:
            return
        rf = next((r for r in out_rfs if r is not None), None)
        if rf is not None:
            found[call.path] = ReceptiveField(rf.size, rf.jump, rf.start, rf.exact)

    propagate(model, record)
    order = [path for path, _ in iter_layers(model) if path in found]
    return {path: found[path] for path in order}
