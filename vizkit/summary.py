"""Model summaries (layers, shapes, parameters, MACs, receptive fields) and training curves.

:func:`summarize` returns a :class:`~vizkit.results.summary.ModelSummary`;
:func:`plot_history` draws loss/accuracy curves from a Keras ``History``, its ``.history`` dict or
a saved JSON/CSV file. TensorFlow is imported only when :func:`summarize` runs, so plotting a
saved history stays light.

MAC conventions (multiply-accumulates for one input sample, biases not counted):

- ``Conv1D/2D/3D``: ``prod(out_spatial) * prod(kernel) * C_in * C_out / groups``
- ``DepthwiseConv``: ``prod(out_spatial) * prod(kernel) * C_in * depth_multiplier``
- ``SeparableConv``: depthwise part plus pointwise ``prod(out_spatial) * C_in * dm * C_out``
- ``ConvTranspose``: ``prod(in_spatial) * prod(kernel) * C_in * C_out``
- ``Dense``: ``in_features * units`` per position (times the leading non-batch dimensions)
- ``SimpleRNN/GRU/LSTM``: ``timesteps * gates * units * (features + units)`` with 1/3/4 gates;
  ``Bidirectional`` sums both directions; ``TimeDistributed`` multiplies its layer's count by the
  time steps
- 0 for layers without weights (pooling, activations, merges, reshapes, dropout, ...) and for
  elementwise, indexing, reshaping and reducing ``keras.ops`` calls in a functional graph (``x + 3.0``, ``x * sigmoid(x)``: they
  are graph nodes but not layers, so they have no row in the table),
  normalization layers (batch norm folds into the preceding layer at inference), ``Embedding``
  (a lookup) and ``PReLU``
- not counted (``None``) for other layers with weights, e.g. attention or custom layers, and when a
  needed dimension is unknown, and other ``keras.ops`` calls (e.g. ``ops.matmul``); such layers
  and operations are listed in ``ModelSummary.uncounted``.

FLOPs are reported as ``2 * MACs``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from vizkit.errors import InputError
from vizkit.results.summary import LayerInfo, ModelSummary, ReceptiveField

__all__ = [
    "ModelSummary",
    "LayerInfo",
    "summarize",
    "layer_macs",
    "plot_history",
    "load_history",
    "save_history",
]

Shape = tuple[int | None, ...]


# --------------------------------------------------------------------------------------------
# MACs
# --------------------------------------------------------------------------------------------
def _layers_module() -> Any:
    from vizkit._tf import keras

    return keras.layers


def _prod(values: Sequence[int | None]) -> int | None:
    if any(v is None for v in values):
        return None
    return math.prod(int(v) for v in values)


def _channels_last(layer: Any) -> bool:
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _split(layer: Any, shape: Shape) -> tuple[tuple[int | None, ...], int | None]:
    """``(spatial dims, channels)`` of a conv input/output shape."""
    if _channels_last(layer):
        return tuple(shape[1:-1]), shape[-1]
    return tuple(shape[2:]), shape[1]


def _weight_count(weights: Sequence[Any]) -> int:
    seen: dict[int, int] = {}
    for weight in weights:
        seen[id(weight)] = math.prod(int(d) for d in weight.shape)
    return sum(seen.values())


def layer_macs(
    layer: Any, input_shapes: Sequence[Shape], output_shapes: Sequence[Shape]
) -> int | None:
    """Multiply-accumulates of one call of ``layer`` for one sample (see the module docstring).

    Parameters
    ----------
    layer : keras.layers.Layer
        The layer (a leaf, not a nested model with a graph).
    input_shapes, output_shapes : sequence of tuple
        Shapes of this call, batch dimension included.

    Returns
    -------
    int or None
        None when the layer type is not covered or a needed dimension is unknown.
    """
    from vizkit._keras import free_op, is_operation

    if is_operation(layer):  # a keras.ops call in a functional graph: no weights
        return 0 if free_op(layer) else None
    L = _layers_module()
    if not input_shapes or not output_shapes:
        return 0 if not layer.weights else None
    in_shape, out_shape = tuple(input_shapes[0]), tuple(output_shapes[0])

    if isinstance(layer, L.TimeDistributed):
        steps = in_shape[1] if len(in_shape) > 2 else None
        inner = layer_macs(
            layer.layer, [(in_shape[0], *in_shape[2:])], [(out_shape[0], *out_shape[2:])]
        )
        return None if inner is None or steps is None else inner * int(steps)
    if isinstance(layer, L.Bidirectional):
        parts = [
            layer_macs(sub, [in_shape], [out_shape])
            for sub in (layer.forward_layer, layer.backward_layer)
        ]
        return None if None in parts else sum(parts)
    gates = {L.LSTM: 4, L.GRU: 3, L.SimpleRNN: 1}
    for cls, count in gates.items():
        if isinstance(layer, cls):
            steps, features = (in_shape[1], in_shape[2]) if len(in_shape) == 3 else (None, None)
            units = int(layer.units)
            size = _prod([steps, features])
            return None if size is None else int(steps) * count * units * (int(features) + units)

    conv_transpose = tuple(
        getattr(L, n) for n in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
    )
    depthwise = tuple(
        getattr(L, n) for n in ("DepthwiseConv1D", "DepthwiseConv2D") if hasattr(L, n)
    )
    separable = tuple(getattr(L, n) for n in ("SeparableConv1D", "SeparableConv2D"))
    conv = tuple(getattr(L, n) for n in ("Conv1D", "Conv2D", "Conv3D"))
    if isinstance(layer, conv_transpose + depthwise + separable + conv):
        in_spatial, c_in = _split(layer, in_shape)
        out_spatial, c_out = _split(layer, out_shape)
        kernel = math.prod(layer.kernel_size)
        if isinstance(layer, conv_transpose):
            n = _prod([*in_spatial, c_in, c_out])
            return None if n is None else n * kernel
        positions = _prod([*out_spatial, c_in])
        if positions is None:
            return None
        if isinstance(layer, depthwise):
            return positions * kernel * int(layer.depth_multiplier)
        if isinstance(layer, separable):
            mid = positions * int(layer.depth_multiplier)
            return mid * kernel + mid * int(layer.filters)
        groups = int(getattr(layer, "groups", 1) or 1)
        return positions * kernel * int(layer.filters) // groups
    if isinstance(layer, L.Dense):
        n = _prod([*in_shape[1:], layer.units])
        return n
    zero = tuple(
        getattr(L, n)
        for n in (
            "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
            "Normalization", "Embedding", "PReLU", "Rescaling",
        )
        if hasattr(L, n)
    )  # fmt: skip
    if isinstance(layer, zero) or not layer.weights:
        return 0
    return None


# --------------------------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------------------------
def _layer_rows(
    model: Any,
    first: Mapping[str, Any],
    rfs: Mapping[str, ReceptiveField],
    macs: Mapping[str, int | None],
) -> list[LayerInfo]:
    """One :class:`LayerInfo` per layer of ``model`` (nested layers included), from the graph
    walk's first call of each layer (``first``), receptive fields and MACs keyed by path."""
    from vizkit._tf import keras
    from vizkit.models import SEP, activation_name, iter_layers, layer_output_shape

    rows = []
    for path, layer in iter_layers(model):
        call = first.get(path)
        if call is not None and call.output_shapes:
            shape: Shape | None = call.output_shapes[0]
        else:
            try:
                shape = layer_output_shape(layer)
            except Exception:  # noqa: BLE001 - unbuilt/subclassed layers have no shape
                shape = None
        container = isinstance(layer, keras.Model)
        rows.append(
            LayerInfo(
                path=path,
                name=layer.name,
                type=type(layer).__name__,
                depth=path.count(SEP),
                output_shape=shape,
                params=_weight_count(layer.weights),
                trainable_params=_weight_count(layer.trainable_weights),
                activation=None if container else activation_name(layer),
                receptive_field=rfs.get(path),
                macs=macs.get(path),
                container=container,
                inbound=call.inbound if call is not None else (),
            )
        )
    return rows


def summarize(model: Any, expand_nested: bool = False) -> ModelSummary:
    """Summarize ``model``: one row per layer (nested models' layers included) plus totals.

    Parameters
    ----------
    model : keras.Model
        Sequential, Functional (nested models allowed) or subclassed (then shapes, MACs and
        receptive fields may be missing). Never modified.
    expand_nested : bool
        Whether the summary's table, text and diagram show the layers inside nested models
        (True) or each nested model as one row with its totals (False, as Keras's
        ``model.summary()``). Every layer is computed and kept in ``layers`` either way, and
        each view takes ``expand_nested=`` to override.

    Returns
    -------
    ModelSummary
        ``to_frame()`` for a DataFrame, ``str()`` for a text table, ``plot()`` for a diagram.
        Parameter totals are over unique weights and equal ``model.count_params()``; a nested
        model's row carries its total and its children follow with ``depth + 1``, so sum
        ``params`` over ``depth == 0`` rows (or use ``totals()``), never over all rows.

    Notes
    -----
    Shapes, MACs and receptive fields come from a walk of the functional graph with each call's
    concrete shapes, so a nested base built for ``(None, None, 3)`` and called on 96x96 images
    reports 96x96 numbers. MACs follow the conventions in :mod:`vizkit.summary`; a layer called
    several times counts every call. Receptive fields: :func:`vizkit.receptive_fields`.
    """
    from vizkit.models import SEP, iter_layers
    from vizkit.receptive import Call, graph_of, propagate

    if not getattr(model, "built", True):
        raise InputError(
            f"model {getattr(model, 'name', model)!r} is not built: give it a keras.Input or "
            "call it once on data before summarizing"
        )
    first: dict[str, Call] = {}
    rfs: dict[str, ReceptiveField] = {}
    macs: dict[str, int | None] = {}
    total = 0
    walked = graph_of(model) is not None

    def visit(call: Call, out_rfs: list[Any]) -> None:
        nonlocal total
        first.setdefault(call.path, call)
        rf = next((r for r in out_rfs if r is not None), None)
        if rf is not None and call.path not in rfs:
            rfs[call.path] = ReceptiveField(rf.size, rf.jump, rf.start, rf.exact)
        if call.container:
            macs.setdefault(call.path, 0)
            return
        count = layer_macs(call.layer, call.input_shapes, call.output_shapes)
        previous = macs.get(call.path, 0)
        macs[call.path] = None if count is None or previous is None else previous + count
        if count is not None:
            total += count
            parts = call.path.split(SEP)
            for i in range(1, len(parts)):  # credit every enclosing nested model
                parent = SEP.join(parts[:i])
                macs[parent] = (macs.get(parent) or 0) + count

    outputs = propagate(model, visit) if walked else []
    row_paths = {path for path, _ in iter_layers(model)}
    uncounted_ops = tuple(p for p, c in macs.items() if c is None and p not in row_paths)

    rows = _layer_rows(model, first, rfs, macs)

    graph = graph_of(model)
    inputs = list(graph.inputs) if graph is not None else list(getattr(model, "inputs", None) or [])
    input_shapes = tuple(tuple(t.shape) for t in inputs)
    if graph is not None:
        output_shapes = tuple(shape for shape, _ in outputs)
    else:
        output_shapes = tuple(tuple(t.shape) for t in (getattr(model, "outputs", None) or []))

    total_params = _weight_count(model.weights)
    trainable = _weight_count(model.trainable_weights)
    return ModelSummary(
        name=model.name,
        input_shapes=input_shapes,
        output_shapes=output_shapes,
        layers=tuple(rows),
        total_params=total_params,
        trainable_params=trainable,
        non_trainable_params=total_params - trainable,
        total_macs=int(total),
        uncounted=tuple(r.path for r in rows if r.macs is None and not r.container) + uncounted_ops,
        expand_nested=bool(expand_nested),
    )


# --------------------------------------------------------------------------------------------
# Training history
# --------------------------------------------------------------------------------------------
HistoryLike = Any  # keras.callbacks.History | Mapping[str, Sequence[float]] | str | os.PathLike


def load_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a training history saved as JSON (``history.history`` dict) or a ``CSVLogger`` file.

    JSON may be ``{"loss": [...], ...}`` or ``{"history": {...}}`` (as :func:`save_history` and
    some tools write it), or a list of per-epoch dicts.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"history file {path!r} does not exist: give the path of a saved JSON/CSV")
    if path.lower().endswith(".csv"):
        import pandas as pd

        frame = pd.read_csv(path)
        frame = frame.drop(columns=[c for c in ("epoch",) if c in frame.columns])
        return {str(c): [float(v) for v in frame[c]] for c in frame.columns}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read history file {path!r}: {err}") from err
    return _as_history_dict(data, source=path)


def save_history(history: HistoryLike, path: str | os.PathLike) -> str:
    """Write ``history`` (History, dict or file) as JSON to ``path``; return the path."""
    data = _as_history_dict(history)
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    return path


def _as_history_dict(history: HistoryLike, source: str = "history") -> dict[str, list[float]]:
    if isinstance(history, (str, os.PathLike)):
        return load_history(history)
    if not isinstance(history, Mapping) and isinstance(getattr(history, "history", None), Mapping):
        history = history.history  # keras.callbacks.History
    if isinstance(history, Mapping) and isinstance(history.get("history"), Mapping):
        history = history["history"]
    if isinstance(history, list) and all(isinstance(row, Mapping) for row in history):
        keys = list(dict.fromkeys(k for row in history for k in row if k != "epoch"))
        history = {k: [row.get(k, math.nan) for row in history] for k in keys}
    if not isinstance(history, Mapping):
        raise InputError(
            f"{source} is a {type(history).__name__}: pass a keras History, its .history dict "
            "or the path of a saved history JSON"
        )
    out: dict[str, list[float]] = {}
    for key, values in history.items():
        if isinstance(values, (int, float)):
            values = [values]
        try:
            out[str(key)] = [float(v) for v in values]
        except (TypeError, ValueError):
            continue  # non-numeric entries (e.g. saved params) are not curves
    if not out:
        raise InputError(f"{source} holds no metric curves (expected e.g. 'loss': [...])")
    return out


def plot_history(
    history: HistoryLike,
    fig: Any = None,
    *,
    axes: Sequence[Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> Any:
    """Plot training curves, train vs validation: a loss panel and an accuracy panel.

    Parameters
    ----------
    history : keras.callbacks.History, dict or path
        What ``model.fit`` returned, its ``.history`` dict, or a JSON/CSV file
        (see :func:`load_history`).
    fig : matplotlib.figure.Figure, optional
        Figure to draw on: it is cleared and gets one panel per metric (constrained layout). A
        new pyplot figure when both ``fig`` and ``axes`` are None.
    axes : sequence of Axes, optional
        Draw the panels on these axes instead (one per metric).
    metrics : sequence of str, optional
        Metrics to plot, one panel each (``"val_"`` curves are added automatically). Default:
        ``loss`` and the first accuracy-like metric found, else the first other metric.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels.
    """
    from vizkit.plotting.summary import choose_history_metrics, draw_history

    data = _as_history_dict(history)
    chosen = list(metrics) if metrics is not None else choose_history_metrics(data)
    missing = [m for m in chosen if m not in data and "val_" + m not in data]
    if missing:
        raise InputError(
            f"metrics {', '.join(missing)} are not in the history: choose from "
            f"{', '.join(k for k in data if not k.startswith('val_'))}"
        )
    if axes is None:
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(5 * len(chosen), 3.8), layout="constrained")
        else:
            fig.clear()
            fig.set_layout_engine("constrained")
        axes = fig.subplots(1, len(chosen), squeeze=False)[0]
    elif len(axes) < len(chosen):
        raise InputError(f"got {len(axes)} axes for {len(chosen)} metric panels: pass more axes")
    draw_history(list(axes), data, chosen)
    return axes[0].figure
