"""Layer lookup and model surgery that never mutates the caller's model.

Layers are named by path: a layer inside a nested model (the transfer-learning pattern) is
``"base/inner_conv"``; a unique inner name alone also works. :func:`rebuild` replays a model's
graph on a fresh input with every nested model inlined, so any inner layer's output is reachable
(tf-keras-vis cannot do this on Keras 3), optionally swapping the head's softmax/sigmoid for a
linear output and substituting other layers (guided ReLUs, ...). The caller's layers are shared,
never changed; replacements are new layer objects.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from vizkit._keras import inbound_nodes, producer, run_through_graph
from vizkit._tf import keras
from vizkit.errors import InputError, LayerError

SEP = "/"
LayerRef = str | int | keras.layers.Layer | None
Substitute = Callable[[str, keras.layers.Layer], Callable[..., Any] | None]

_SQUASHING = ("softmax", "sigmoid")

# --------------------------------------------------------------------------------------------
# Per-model caches: explicit, keyed by model identity, gone with the model.
# --------------------------------------------------------------------------------------------
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_cache(model: keras.Model) -> dict[Any, Any]:
    """A dict that lives as long as ``model``: compiled functions, rebuilt graphs, ...

    Keyed by object identity. Weights changed in place stay valid (cached graphs share the
    layers' variables). A change of structure that tutorials make in place, such as
    ``model.layers[-1].activation = activations.linear`` or ``Sequential.pop()``, is detected
    (by the layers and their activation functions) and empties the cache.
    """
    signature = _structure_signature(model)
    try:
        entry = _CACHES.get(model)
        if entry is None or entry[0] != signature:
            entry = (signature, {})
            _CACHES[model] = entry
        return entry[1]
    except TypeError:  # not weak-referenceable: no caching
        return {}


def _structure_signature(model: keras.Model) -> tuple[Any, ...]:
    return tuple(
        (id(layer), id(getattr(layer, "activation", None))) for _, layer in iter_layers(model)
    )


# --------------------------------------------------------------------------------------------
# Walking and naming layers
# --------------------------------------------------------------------------------------------
def _is_input_layer(layer: Any) -> bool:
    return isinstance(layer, keras.layers.InputLayer)


def iter_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """Yield ``(path, layer)`` depth-first, nested models expanded after themselves."""
    for layer in model.layers:
        if _is_input_layer(layer):
            continue
        path = prefix + layer.name
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer, path + SEP)


def layer_paths(model: keras.Model) -> list[str]:
    """Every layer's path, nested layers included (``"base/conv1"``)."""
    return [path for path, _ in iter_layers(model)]


def _summarize_names(paths: list[str], limit: int = 12) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" (and {len(paths) - limit} more)" if len(paths) > limit else "")


def get_layer(model: keras.Model, layer: LayerRef) -> tuple[str, keras.layers.Layer]:
    """Resolve a layer reference to ``(path, layer)``.

    ``layer`` is a path (``"base/conv"``), a unique inner name (``"conv"``), an index into
    ``model.layers`` (negative allowed), or a layer object of the model.
    """
    pairs = list(iter_layers(model))
    if isinstance(layer, keras.layers.Layer):
        for path, candidate in pairs:
            if candidate is layer:
                return path, candidate
        raise LayerError(f"layer {layer.name!r} is not part of model {model.name!r}")
    if isinstance(layer, (int,)) and not isinstance(layer, bool):
        layers = model.layers
        if not -len(layers) <= layer < len(layers):
            raise LayerError(
                f"layer index {layer} is out of range: model {model.name!r} has "
                f"{len(layers)} layers (0 to {len(layers) - 1})"
            )
        chosen = layers[layer]
        if _is_input_layer(chosen):
            raise LayerError(f"layer index {layer} is the input layer: pick a later layer")
        return get_layer(model, chosen)
    if not isinstance(layer, str):
        raise LayerError(f"layer must be a name, path or index, not {type(layer).__name__}")
    by_path = dict(pairs)
    if layer in by_path:
        return layer, by_path[layer]
    matches = [(p, lyr) for p, lyr in pairs if p.rsplit(SEP, 1)[-1] == layer]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise LayerError(
            f"layer name {layer!r} is ambiguous: use one of the paths "
            f"{_summarize_names([p for p, _ in matches])}"
        )
    raise LayerError(
        f"no layer named {layer!r} in model {model.name!r}: valid names are "
        f"{_summarize_names([p for p, _ in pairs])}"
    )


def _first_node(layer: keras.layers.Layer) -> Any:
    nodes = inbound_nodes(layer)
    return nodes[0] if nodes else None


def layer_output_shape(layer: keras.layers.Layer) -> tuple[int | None, ...]:
    """Output shape of ``layer`` (first call site), batch dimension included."""
    node = _first_node(layer)
    if node is not None and node.output_tensors:
        return tuple(node.output_tensors[0].shape)
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError) as err:
        raise LayerError(f"layer {layer.name!r} has not been called yet: build the model") from err


def layer_input_shape(layer: keras.layers.Layer) -> tuple[int | None, ...]:
    """Input shape of ``layer`` (first call site), batch dimension included."""
    node = _first_node(layer)
    if node is not None and node.input_tensors:
        return tuple(node.input_tensors[0].shape)
    return tuple(layer.input.shape)


def is_spatial(layer: keras.layers.Layer) -> bool:
    """True for layers with a 4-D ``(N, H, W, C)`` output."""
    try:
        return len(layer_output_shape(layer)) == 4
    except LayerError:
        return False


def spatial_layer_paths(model: keras.Model) -> list[str]:
    """Paths of layers with 4-D outputs, in graph order (nested models' own entries excluded)."""
    return [
        path
        for path, layer in iter_layers(model)
        if not isinstance(layer, keras.Model) and is_spatial(layer)
    ]


#: Layers whose kernels are image filters (what :func:`vizkit.conv_filters` reads).
CONV_TYPES: tuple[type, ...] = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
)


def conv_layers(model: keras.Model) -> list[str]:
    """Paths of the ``Conv2D``, ``SeparableConv2D`` and ``DepthwiseConv2D`` layers, nested
    models included, in graph order (the first is the model's first convolution)."""
    return [path for path, layer in iter_layers(model) if isinstance(layer, CONV_TYPES)]


def first_conv_layer(model: keras.Model) -> str:
    """The path of the model's first convolution (see :func:`conv_layers`).

    Raises
    ------
    LayerError
        The model has no convolution.
    """
    found = conv_layers(model)
    if not found:
        raise LayerError(
            f"model {model.name!r} has no Conv2D, SeparableConv2D or DepthwiseConv2D layer"
        )
    return found[0]


def input_shape(model: keras.Model) -> tuple[int | None, ...]:
    """The model's (single) input shape, batch dimension included."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise InputError(f"model {model.name!r} is not built: call it once or give it an Input")
    if len(inputs) != 1:
        raise InputError(
            f"model {model.name!r} has {len(inputs)} inputs: vizkit explains single-input models"
        )
    return tuple(inputs[0].shape)


def is_image_model(model: keras.Model) -> bool:
    """True when the model takes one ``(N, H, W, C)`` image input."""
    try:
        return len(input_shape(model)) == 4
    except InputError:
        return False


def require_image_model(model: keras.Model, what: str) -> tuple[int | None, ...]:
    """Return the input shape, or raise a clear error if ``model`` is not an image model."""
    shape = input_shape(model)
    if len(shape) != 4:
        raise InputError(
            f"{what} needs an image model with input (height, width, channels); model "
            f"{model.name!r} takes input of shape {shape[1:]}"
        )
    return shape


# --------------------------------------------------------------------------------------------
# Outputs and heads
# --------------------------------------------------------------------------------------------
def activation_name(layer: keras.layers.Layer) -> str | None:
    """Name of a layer's activation (``"relu"``, ``"softmax"``, ...), or None."""
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return None
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return str(name).lower()


def output_names(model: keras.Model) -> list[str]:
    """Names of the model's outputs (the layers that produce them)."""
    return [_producer(model, i).name for i in range(len(model.outputs))]


def output_index(model: keras.Model, output: int | str | None) -> int:
    """Resolve ``output`` (index, name, or None for a single-output model) to an index."""
    count = len(model.outputs)
    if output is None:
        if count > 1:
            raise InputError(
                f"model {model.name!r} has {count} outputs ({', '.join(output_names(model))}): "
                "pick one with output=<index or name>"
            )
        return 0
    if isinstance(output, int) and not isinstance(output, bool):
        if not -count <= output < count:
            raise InputError(f"output index {output} is out of range: the model has {count}")
        return output % count
    names = output_names(model)
    if output in names:
        return names.index(output)
    raise InputError(f"no output named {output!r}: choose one of {', '.join(names)}")


def _producer(model: keras.Model, index: int) -> keras.layers.Layer:
    if isinstance(model, keras.Sequential):
        return model.layers[-1]
    return producer(model.outputs[index])


@dataclasses.dataclass(frozen=True)
class Head:
    """The layer that produces an output, and what its activation does to scores."""

    path: str
    activation: str  # "softmax", "sigmoid", "linear" or another activation name
    units: int
    output: int

    @property
    def binary(self) -> bool:
        """One output unit: a binary classifier (a sigmoid, or a logit as from ``Dense(1)``
        trained with ``from_logits=True``) whose class 1 is the unit and class 0 its negation."""
        return self.units == 1

    @property
    def num_classes(self) -> int:
        """Classes a target may name: a single unit is a binary classifier (0 and 1)."""
        return 2 if self.binary else self.units

    @property
    def squashed(self) -> bool:
        return self.activation in _SQUASHING


def head_info(model: keras.Model, output: int | str | None = None) -> Head:
    """Describe the head (last layer) of the chosen output, looking into nested models."""
    index = output_index(model, output)
    owner, prefix, layer = model, "", _producer(model, index)
    while isinstance(layer, keras.Model):  # head inside a nested model
        prefix += layer.name + SEP
        owner, layer = layer, _producer(layer, 0)
    del owner
    shape = layer_output_shape(layer)
    units = int(shape[-1]) if shape and shape[-1] is not None else 1
    activation = activation_name(layer) or "linear"
    return Head(path=prefix + layer.name, activation=activation, units=units, output=index)


# --------------------------------------------------------------------------------------------
# Surgery: replay a model's graph with nested models inlined
# --------------------------------------------------------------------------------------------
def linear_clone(layer: keras.layers.Layer) -> keras.layers.Layer | Callable[..., Any]:
    """``layer`` without its activation; the original is untouched.

    Dense and convolution layers get a view that computes the pre-activation from the original's
    own variables, so in-place weight changes reach cached rebuilt graphs; other layers get a
    copy with the same weights (taken when the copy is made).
    """
    if isinstance(layer, (keras.layers.Activation, keras.layers.Softmax, keras.layers.ReLU)):
        return identity
    if type(layer) in _LINEAR_VIEWS:
        fn = _LINEAR_VIEWS[type(layer)]
        return VariableView(
            f"{layer.name}__linear",
            layer.dtype_policy,
            lambda x: fn(layer, x),
            layer.compute_output_shape,
        )
    config = layer.get_config()
    config["activation"] = "linear"
    config["name"] = f"{layer.name}__linear"
    clone = type(layer).from_config(config)
    clone.build(layer_input_shape(layer))
    clone.set_weights(layer.get_weights())
    return clone


def _dense_linear(layer: Any, x: Any) -> Any:
    y = keras.ops.matmul(x, layer.kernel)
    return y if layer.bias is None else keras.ops.add(y, layer.bias)


def _conv_linear(layer: Any, x: Any) -> Any:
    y = layer.convolution_op(x, layer.kernel)
    if not layer.use_bias:
        return y
    if layer.data_format == "channels_last":
        shape = (1,) * (layer.rank + 1) + (layer.filters,)
    else:
        shape = (1, layer.filters) + (1,) * layer.rank
    return keras.ops.add(y, keras.ops.reshape(layer.bias, shape))


_LINEAR_VIEWS: dict[type, Callable[[Any, Any], Any]] = {
    keras.layers.Dense: _dense_linear,
    keras.layers.Conv1D: _conv_linear,
    keras.layers.Conv2D: _conv_linear,
    keras.layers.Conv3D: _conv_linear,
}


class VariableView(keras.layers.Layer):
    """A layer computing ``fn(x)`` from other layers' variables, read on every call.

    The sources' variables stay untracked (a closure holds them), so rebuilt graphs see weights
    changed in place and nothing is copied. ``output_shape`` maps an input shape to the output's.
    """

    def __init__(
        self,
        name: str,
        dtype_policy: Any,
        fn: Callable[[Any], Any],
        output_shape: Callable[[Any], Any],
    ) -> None:
        super().__init__(name=name, dtype=dtype_policy)
        self._fn = fn
        self._out = output_shape

    def call(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return self._fn(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._out(input_shape)


def identity(x: Any, *args: Any, **kwargs: Any) -> Any:
    """A pass-through substitute: returns its first argument."""
    return x


def _replay(
    model: keras.Model,
    inputs: Any,
    prefix: str,
    record: dict[str, Any],
    substitute: Substitute,
) -> Any:
    def call(op: Any, args: tuple, kwargs: dict) -> Any:
        path = prefix + op.name
        replacement = substitute(path, op)
        if replacement is None and isinstance(op, keras.Model):
            nested_inputs = args[0] if args else kwargs.pop("inputs")
            out = _replay(op, nested_inputs, path + SEP, record, substitute)
        else:
            out = (replacement or op)(*args, **kwargs)
        record[path] = out
        return out

    if isinstance(model, keras.Sequential):
        x = inputs
        for layer in model.layers:
            if not _is_input_layer(layer):
                x = call(layer, (x,), {})
        return x

    def operation_fn(op: Any) -> Callable[..., Any]:
        return lambda *args, **kwargs: call(op, args, dict(kwargs))

    return run_through_graph(model, inputs, operation_fn)


def rebuild(
    model: keras.Model,
    layers: list[str] | tuple[str, ...] = (),
    *,
    logits: bool = True,
    output: int | str | None = None,
    substitute: Substitute | None = None,
) -> keras.Model:
    """A functional model ``input -> [head_output, *layer_outputs]`` sharing ``model``'s layers.

    With no ``layers`` the rebuilt model returns the bare head tensor (Keras unwraps one-item
    output lists), so callers unpack with ``out[0] if isinstance(out, list) else out``.

    Parameters
    ----------
    model : keras.Model
        Sequential or Functional, nested models allowed. Never modified.
    layers : list of str
        Layer paths (see :func:`get_layer`) whose outputs to expose after the head output.
    logits : bool
        Replace a softmax/sigmoid head by its pre-activation (the logit).
    output : int or str, optional
        Which output of a multi-output model is the head.
    substitute : callable, optional
        ``substitute(path, layer)`` returns a callable to use instead of ``layer``, or None.
    """
    head = head_info(model, output)
    paths = [get_layer(model, name)[0] for name in layers]
    user_substitute = substitute or (lambda path, layer: None)
    swap_head = logits and head.squashed

    def choose(path: str, layer: keras.layers.Layer) -> Callable[..., Any] | None:
        if swap_head and path == head.path:
            return linear_clone(layer)
        return user_substitute(path, layer)

    shape = input_shape(model)
    fresh = keras.Input(shape=shape[1:], dtype=model.inputs[0].dtype, name="vizkit_input")
    record: dict[str, Any] = {}
    outputs = _replay(model, fresh, "", record, choose)
    flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    head_output = flat[head.output] if len(flat) > 1 else flat[0]
    missing = [p for p in paths if p not in record]
    if missing:
        raise LayerError(f"layers {', '.join(missing)} are not on the path to the model's output")
    return keras.Model(
        fresh, [head_output, *[record[p] for p in paths]], name=f"{model.name}_vizkit"
    )


def class_probabilities(outputs: Any, head: Head, *, logits: bool = False) -> np.ndarray:
    """Head outputs ``(N, ...)`` -> class probabilities ``(N, num_classes)``, float32.

    A numpy shortcut to :meth:`vizkit.scoring.Scoring.probabilities` (the one rule; kept for
    callers that still hold raw outputs, prefer :func:`vizkit.predict`). ``logits``: the
    outputs are the head's pre-activation, not the model's own outputs.
    """
    from vizkit.scoring import Scoring

    rule = Scoring(head, "logit" if logits else "probability")
    return np.asarray(rule.probabilities(np.asarray(outputs, np.float32)), dtype=np.float32)
