"""The one place that touches Keras' private attributes (functional graph internals).

vizkit walks and replays functional graphs (nested models inlined, layers substituted), which
Keras 3 exposes only through private attributes: ``Functional._run_through_graph``,
``Functional._nodes_by_depth``, ``Sequential._functional``, ``Layer._inbound_nodes``,
``KerasTensor._keras_history``, ``Function._inputs_struct``. Every such use lives here, behind a
small function, so a Keras release that renames one breaks one module with a clear message
(:class:`UnsupportedKerasError` naming the supported range) instead of an ``AttributeError``
deep in a method. ``tests/test_layering.py`` checks that no other module of vizkit reads a
private attribute of a Keras object.

Also here: :func:`is_operation` / :func:`elementwise_op` for the ``keras.ops`` calls that appear
as graph nodes in functional models (``x + 3.0``, ``x * hard_sigmoid(x)`` in MobileNetV3,
``inputs + x`` in ConvNeXt): they are operations, not layers, and have no weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vizkit._tf import keras

#: the Keras versions whose private graph API this module was written and tested against
SUPPORTED = ">=3.12,<4"


class UnsupportedKerasError(RuntimeError):
    """The installed Keras lacks a graph internal vizkit relies on."""


def _version_ok() -> bool:
    try:
        major, minor = (int(p) for p in keras.__version__.split(".")[:2])
    except ValueError:  # pragma: no cover - dev builds
        return True
    return major == 3 and minor >= 12


def _missing(what: str) -> UnsupportedKerasError:
    return UnsupportedKerasError(
        f"Keras {keras.__version__} has no {what}, which vizkit uses to walk model graphs: "
        f"install a supported Keras ({SUPPORTED}), e.g. pip install 'keras{SUPPORTED}'"
    )


# --------------------------------------------------------------------------------------------
# Graph internals
# --------------------------------------------------------------------------------------------
def producer(tensor: Any) -> Any:
    """The operation (layer or ``keras.ops`` call) that produced a symbolic tensor, or None
    for a tensor that is not a Keras graph tensor."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        if isinstance(tensor, keras.KerasTensor) and not _version_ok():
            raise _missing("KerasTensor._keras_history")
        return None
    try:
        return history.operation
    except AttributeError:
        raise _missing("KerasHistory.operation") from None


def inbound_nodes(layer: Any) -> list[Any]:
    """The graph nodes where ``layer`` was called (empty for an uncalled layer)."""
    if not isinstance(layer, keras.Operation):
        return []
    try:
        return list(layer._inbound_nodes or [])
    except AttributeError:
        raise _missing("Operation._inbound_nodes") from None


def functional_graph(model: Any) -> Any | None:
    """The functional graph of a Functional or built Sequential model (None for subclassed
    models and unbuilt Sequentials)."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    if isinstance(model, keras.Model) and hasattr(model, "inputs"):
        if hasattr(model, "_nodes_by_depth"):
            return model
        if any(c.__name__ == "Functional" for c in type(model).__mro__):  # pragma: no cover
            raise _missing("Functional._nodes_by_depth")
    return None


def nodes_by_depth(graph: Any) -> list[list[Any]]:
    """The graph's nodes, grouped by depth, inputs first (topological order)."""
    try:
        table = graph._nodes_by_depth
    except AttributeError:
        raise _missing("Functional._nodes_by_depth") from None
    return [table[depth] for depth in sorted(table, reverse=True)]


def run_through_graph(model: Any, inputs: Any, operation_fn: Callable[[Any], Any]) -> Any:
    """Replay a functional ``model`` on ``inputs``, calling ``operation_fn(op)(*args, **kw)``
    in place of every operation (layer, nested model or ``keras.ops`` call)."""
    try:
        run = model._run_through_graph
    except AttributeError:
        raise _missing("Functional._run_through_graph") from None
    return run(inputs, operation_fn=operation_fn)


def inputs_structure(model: Any) -> Any | None:
    """The nested structure of a functional model's inputs (None when Keras has none)."""
    return getattr(model, "_inputs_struct", None)


# --------------------------------------------------------------------------------------------
# Operations that are not layers
# --------------------------------------------------------------------------------------------
def is_operation(op: Any) -> bool:
    """True for a ``keras.ops`` graph node that is not a layer (no weights, no config)."""
    return isinstance(op, keras.Operation) and not isinstance(op, keras.layers.Layer)


#: ``keras.ops`` classes that act elementwise (broadcasting) and keep the spatial grid
_ELEMENTWISE = {
    "Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Negative", "Abs", "Absolute",
    "Square", "Sqrt", "Rsqrt", "Exp", "Log", "Power", "Maximum", "Minimum", "Clip", "Where",
    "Sign", "Reciprocal", "Cast", "Relu", "Relu6", "Sigmoid", "HardSigmoid", "HardSwish",
    "HardSilu", "Silu", "Swish", "Gelu", "Tanh", "Softplus", "Elu", "Selu", "LeakyRelu",
    "Identity", "Floor", "Ceil", "Round", "Erf",
}  # fmt: skip


#: ``keras.ops`` classes that move, select or reduce values without multiply-accumulates
_REARRANGING = {
    "GetItem", "Reshape", "Transpose", "Concatenate", "Stack", "ExpandDims", "Squeeze",
    "Slice", "Pad", "Tile", "Repeat", "Flip", "Mean", "Sum", "Max", "Min", "Argmax", "Argmin",
}  # fmt: skip


def free_op(op: Any) -> bool:
    """True for a ``keras.ops`` node without multiply-accumulates (elementwise, indexing,
    reshaping, reductions)."""
    return is_operation(op) and type(op).__name__ in _ELEMENTWISE | _REARRANGING


def elementwise_op(op: Any) -> bool:
    """True for a ``keras.ops`` node that acts elementwise (``x + 3.0``, ``relu6(x)``)."""
    return is_operation(op) and type(op).__name__ in _ELEMENTWISE


__all__ = [
    "SUPPORTED",
    "UnsupportedKerasError",
    "elementwise_op",
    "free_op",
    "functional_graph",
    "inbound_nodes",
    "inputs_structure",
    "is_operation",
    "nodes_by_depth",
    "producer",
    "run_through_graph",
]
