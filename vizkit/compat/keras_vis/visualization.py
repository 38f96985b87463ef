"""keras-vis's ``vis.visualization`` on vizkit: same names, arguments and return conventions.

Replace ``from vis.visualization import ...`` by
``from vizkit.compat.keras_vis.visualization import ...`` and keras-vis code runs unchanged on
TensorFlow 2 / Keras 3:

- :func:`visualize_saliency` and :func:`visualize_cam` reproduce keras-vis's arithmetic exactly
  (the layer output keras-vis maximized, its gradient, the ``grad_modifier``, the channel
  maximum, the min-max normalization, Grad-CAM's division by the largest gradient and its cubic
  spline zoom) on vizkit's rebuilt graph: :func:`vizkit.models.rebuild` gives the logit of a
  softmax/sigmoid head and inlines nested models, and ``backprop_modifier="guided"`` /
  ``"relu"`` use the ReLU rules of vizkit's ``guided_backprop`` / ``rectified_backprop``
  (:func:`vizkit.methods.saliency.relu_substitute`). One compiled function per model, layer and
  rule is cached with the model, so the classic loops over ten classes compile once.
- :func:`visualize_activation` delegates to :func:`vizkit.maximize_activation`.

The differences from keras-vis are listed in :mod:`vizkit.compat.keras_vis`; each function's
docstring names those that concern it.

(Over 500 lines: a port of keras-vis's ``vis.visualization`` API, one module as keras-vis has it.)
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vizkit._keras import producer
from vizkit._tf import keras, tf
from vizkit.activation_max import Recipe, maximize_activation
from vizkit.errors import InputError, LayerError
from vizkit.methods.saliency import relu_paths, relu_substitute
from vizkit.models import (
    SEP,
    get_layer,
    head_info,
    input_shape,
    layer_output_shape,
    model_cache,
    rebuild,
)

__all__ = [
    "visualize_saliency",
    "visualize_cam",
    "visualize_activation",
    "overlay",
    "get_num_filters",
    "GRAD_MODIFIERS",
    "BACKPROP_MODIFIERS",
    "KERAS_VIS_DEFAULT_WEIGHT",
]

EPSILON = 1e-7  # keras.backend.epsilon(), which keras-vis used throughout
_KEY = "vizkit.compat.keras_vis"

#: keras-vis's backprop modifier names -> vizkit's ReLU rule
BACKPROP_MODIFIERS: dict[str, str] = {
    "guided": "guided",
    "rectified": "rectified",
    "relu": "rectified",
    "deconv": "rectified",
}

#: keras-vis's default ``lp_norm_weight`` and ``tv_weight`` (with ``act_max_weight=1``): they map
#: to vizkit's default ``l2_weight`` and ``tv_weight``, other values proportionally
KERAS_VIS_DEFAULT_WEIGHT = 10.0


# --------------------------------------------------------------------------------------------
# Gradient modifiers (vis.grad_modifiers), on numpy arrays
# --------------------------------------------------------------------------------------------
def _absolute(grads: np.ndarray) -> np.ndarray:
    return np.abs(grads)


def _relu(grads: np.ndarray) -> np.ndarray:
    return np.maximum(grads, 0.0).astype(grads.dtype, copy=False)


def _negate(grads: np.ndarray) -> np.ndarray:
    return -grads


def _invert(grads: np.ndarray) -> np.ndarray:
    return (1.0 / (grads + EPSILON)).astype(grads.dtype, copy=False)


def _small_values(grads: np.ndarray) -> np.ndarray:
    return np.abs(_invert(grads))


#: keras-vis's ``grad_modifier`` names (a callable ``grads -> grads`` is accepted too)
GRAD_MODIFIERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "absolute": _absolute,
    "relu": _relu,
    "negate": _negate,
    "invert": _invert,
    "small_values": _small_values,
}


def _grad_modifier(modifier: Any) -> Callable[[np.ndarray], np.ndarray]:
    if modifier is None:
        return lambda grads: grads
    if isinstance(modifier, str):
        if modifier not in GRAD_MODIFIERS:
            raise InputError(
                f"grad_modifier={modifier!r} is unknown: use None or one of "
                f"{', '.join(repr(name) for name in GRAD_MODIFIERS)}"
            )
        return GRAD_MODIFIERS[modifier]
    if callable(modifier):
        return lambda grads: np.asarray(modifier(grads))
    raise InputError(f"grad_modifier must be a name or a function, not {type(modifier).__name__}")


# --------------------------------------------------------------------------------------------
# Models, caches, inputs and targets
# --------------------------------------------------------------------------------------------
def _check_model(model: Any) -> None:
    if not isinstance(model, keras.Model):
        raise InputError(f"model must be a keras.Model, not {type(model).__name__}")


def _sync_caches(model: keras.Model) -> None:
    """Drop the model's cached graphs when a layer's activation changed in place.

    Tutorials set ``model.layers[i].activation = activations.linear``; graphs traced before that
    would keep the old activation. :func:`vizkit.models.model_cache` compares the layers and
    their activation functions on every access and starts afresh on a change, for vizkit's own
    methods too; this call just touches the cache.
    """
    model_cache(model)


def _backprop(model: keras.Model, modifier: Any) -> tuple[keras.Model, str | None]:
    """keras-vis ``backprop_modifier`` -> (model, vizkit ReLU rule or None)."""
    if modifier is None:
        return model, None
    if callable(modifier):  # keras-vis: ``model = modifier_fn(model)``
        changed = modifier(model)
        _check_model(changed)
        return changed, None
    if not isinstance(modifier, str) or modifier not in BACKPROP_MODIFIERS:
        raise InputError(
            f"backprop_modifier={modifier!r} is unknown: use None, 'guided' or 'relu' "
            "(alias 'rectified', 'deconv')"
        )
    if not relu_paths(model):  # keras-vis: no ReLU to modify, plain gradients
        return model, None
    return model, BACKPROP_MODIFIERS[modifier]


def _seed_batch(model: keras.Model, seed_input: Any) -> np.ndarray:
    """``seed_input`` as a float32 batch of one, channels last."""
    if seed_input is None:
        raise InputError("seed_input is required: pass the image to explain, shape (H, W, C)")
    shape = input_shape(model)[1:]  # clear errors for unbuilt and multi-input models
    x = np.asarray(seed_input, dtype=np.float32)
    if x.ndim == len(shape):
        x = x[None]
    elif x.ndim == len(shape) - 1 and shape[-1] == 1:  # (H, W) for a one-channel model
        x = x[None, ..., None]
    fits = (
        x.ndim == len(shape) + 1
        and x.shape[0] == 1
        and all(want is None or int(want) == have for want, have in zip(shape, x.shape[1:]))
    )
    if not fits:
        hint = ""
        if x.ndim == len(shape) + 1 and x.shape[0] > 1:
            hint = ": keras-vis explains one image per call, loop over the images"
        elif x.ndim == len(shape) + 1 and tuple(x.shape[2:]) + (x.shape[1],) == shape:
            hint = ": vizkit expects channels last, move the channel axis to the end"
        raise InputError(
            f"seed_input has shape {np.shape(seed_input)}, but the model takes one image of "
            f"shape {shape} (or a batch of one){hint}"
        )
    return x


@dataclasses.dataclass(frozen=True)
class _Target:
    """The layer whose output keras-vis's ``ActivationMaximization`` loss reads."""

    path: str
    output: int  # which model output to treat as the head when rebuilding
    units: int  # size of the last axis (units or channels)
    head: bool  # the model's head: scored on its logit
    binary: bool  # a single-unit head: vizkit's class 1 is the unit itself


def _target(model: keras.Model, layer_idx: Any) -> _Target:
    path, layer = get_layer(model, layer_idx)
    output, head = 0, False
    for index in range(len(model.outputs)):
        info = head_info(model, index)
        inside = isinstance(layer, keras.Model) and info.path.startswith(path + SEP)
        if path == info.path or inside:
            path, layer, output, head = info.path, get_layer(model, info.path)[1], index, True
            break
    shape = layer_output_shape(layer)
    if shape[-1] is None:
        raise LayerError(f"layer {path!r} has no fixed number of units: pick another layer")
    return _Target(path, output, int(shape[-1]), head, head and int(shape[-1]) == 1)


def _units(filter_indices: Any, units: int) -> tuple[np.ndarray, np.ndarray]:
    """keras-vis ``filter_indices`` -> (indices, weights) of ``sum_k weight_k * mean(unit_k)``.

    An int or a list sums the units' means (keras-vis's loss); None is the mean of the whole
    layer output, i.e. every unit weighted ``1 / units``.
    """
    if filter_indices is None:
        return np.arange(units, dtype=np.int32), np.full(units, 1.0 / units, dtype=np.float32)
    values = np.atleast_1d(np.asarray(filter_indices))
    if values.size == 0 or values.dtype.kind not in "iu" or values.ndim != 1:
        raise InputError(
            f"filter_indices must be an index, a list of indices or None, not {filter_indices!r}"
        )
    bad = values[(values < -units) | (values >= units)]
    if bad.size:
        raise InputError(
            f"filter index {int(bad[0])} is out of range: the layer has {units} units or "
            f"channels (0 to {units - 1})"
        )
    return (values % units).astype(np.int32), np.ones(len(values), dtype=np.float32)


def _wrt_path(model: keras.Model, wrt_tensor: Any) -> str | None:
    """``wrt_tensor`` (a layer's output tensor, the model input, a layer name or index)."""
    if wrt_tensor is None:
        return None
    if isinstance(wrt_tensor, (str, int, keras.layers.Layer)) and not isinstance(wrt_tensor, bool):
        if isinstance(wrt_tensor, keras.layers.InputLayer):
            return None
        return get_layer(model, wrt_tensor)[0]
    operation = producer(wrt_tensor)
    if operation is None:
        raise InputError(
            "wrt_tensor must be a symbolic tensor of the model (model.input or "
            f"model.layers[i].output), a layer name or an index, not {type(wrt_tensor).__name__}"
        )
    if isinstance(operation, keras.layers.InputLayer):
        return None
    return get_layer(model, operation)[0]


def _grad_fn(model: keras.Model, target: _Target, wrt: str | None, rule: str | None) -> Any:
    """Compiled ``(x, indices, weights) -> (d loss / d wrt, wrt value)``, cached per model.

    ``loss = sum_k weights_k * mean(layer_output[..., indices_k])`` (mean over the batch and
    spatial axes): keras-vis's ``ActivationMaximization`` loss with its sign flipped, which is
    what ``visualize_saliency`` / ``visualize_cam`` differentiate.
    """
    cache = model_cache(model)
    key = (_KEY, "gradients", target.path, target.output, wrt, rule)
    if key not in cache:
        exposed = [target.path] + ([wrt] if wrt is not None and wrt != target.path else [])
        graph = rebuild(
            model,
            exposed,
            logits=True,
            output=target.output,
            substitute=relu_substitute(rule) if rule else None,
        )
        wrt_slot = None if wrt is None else 1 + exposed.index(wrt)
        spec = tf.TensorSpec((None, *input_shape(model)[1:]), tf.float32)

        @tf.function(
            input_signature=[spec, tf.TensorSpec([None], tf.int32), tf.TensorSpec([None])],
            reduce_retracing=True,
        )
        def gradients(x: Any, indices: Any, weights: Any) -> Any:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                outs = graph(x, training=False)
                layer_out = tf.cast(outs[1], tf.float32)
                chosen = tf.gather(layer_out, indices, axis=-1)
                axes = list(range(len(layer_out.shape) - 1))
                loss = tf.reduce_sum(tf.reduce_mean(chosen, axis=axes) * weights)
                wrt_value = x if wrt_slot is None else outs[wrt_slot]
            grads = tape.gradient(
                loss, wrt_value, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return tf.cast(grads, tf.float32), tf.cast(wrt_value, tf.float32)

        cache[key] = gradients
    return cache[key]


def _gradients(
    model: keras.Model,
    target: _Target,
    filter_indices: Any,
    x: np.ndarray,
    wrt: str | None,
    rule: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    indices, weights = _units(filter_indices, target.units)
    fn = _grad_fn(model, target, wrt, rule)
    grads, value = fn(tf.constant(x), tf.constant(indices), tf.constant(weights))
    return grads.numpy(), value.numpy()


def _normalize(array: np.ndarray) -> np.ndarray:
    """keras-vis ``utils.normalize``: min-max to [0, 1] over the whole array."""
    low, high = np.min(array), np.max(array)
    return (array - low) / (high - low + EPSILON)


# --------------------------------------------------------------------------------------------
# Saliency
# --------------------------------------------------------------------------------------------
def visualize_saliency(
    model: keras.Model,
    layer_idx: int | str,
    filter_indices: int | Sequence[int] | None,
    seed_input: np.ndarray,
    wrt_tensor: Any = None,
    backprop_modifier: str | None = None,
    grad_modifier: str | Callable | None = "absolute",
    keepdims: bool = False,
) -> np.ndarray:
    """Saliency map: how the output of ``filter_indices`` in layer ``layer_idx`` changes with
    each input pixel (keras-vis ``visualize_saliency``).

    Parameters
    ----------
    model : keras.Model
        Channels-last model (Sequential or Functional, nested models allowed); never modified.
    layer_idx : int or str
        Index into ``model.layers`` (as keras-vis), or a vizkit layer name / path.
    filter_indices : int, list of int, or None
        Unit of a Dense layer or channel of a convolutional layer (its spatial mean); a list sums
        their outputs; None takes the mean of the whole layer output.
    seed_input : ndarray, shape (H, W, C) or (1, H, W, C)
        The image, on the model's input scale. ``(H, W)`` is accepted for one-channel models.
    wrt_tensor : KerasTensor, optional
        Differentiate with respect to this tensor (``model.layers[i].output``) instead of the
        input; a layer name or index also works.
    backprop_modifier : {None, "guided", "relu"}
        ``"guided"``: guided backpropagation; ``"relu"`` (or ``"rectified"``, ``"deconv"``): the
        DeconvNet rule. The same ReLU rules as vizkit's ``guided_backprop`` /
        ``rectified_backprop``, applied to every ReLU (nested models and ``ReLU()`` layers too).
    grad_modifier : str or callable, optional
        ``"absolute"`` (default), ``"relu"``, ``"negate"``, ``"invert"``, ``"small_values"``, None,
        or a function of the raw gradient array.
    keepdims : bool
        Keep the channel axis instead of taking the maximum over channels.

    Returns
    -------
    ndarray, shape (H, W) (or (H, W, C) with ``keepdims``), float32 in [0, 1]
        ``normalize(max over channels of grad_modifier(gradient))``, as keras-vis.

    Notes
    -----
    The model's head is scored on its logit (pre-softmax / pre-sigmoid) whether or not its
    activation was swapped for ``linear``; keras-vis used the probability unless it was.

    References
    ----------
    Simonyan, Vedaldi & Zisserman (2014), arXiv:1312.6034; Springenberg et al. (2015),
    arXiv:1412.6806 (guided); Zeiler & Fergus (2014), arXiv:1311.2901 (DeconvNet).
    """
    _check_model(model)
    model, rule = _backprop(model, backprop_modifier)
    modify = _grad_modifier(grad_modifier)
    _sync_caches(model)
    x = _seed_batch(model, seed_input)
    target = _target(model, layer_idx)
    grads, _ = _gradients(model, target, filter_indices, x, _wrt_path(model, wrt_tensor), rule)
    grads = modify(grads)
    if not keepdims:
        grads = np.max(grads, axis=-1)
    return _normalize(grads)[0].astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------
def _conv_or_pool_types() -> tuple[type, ...]:
    names = (
        "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "SeparableConv1D", "SeparableConv2D", "DepthwiseConv1D", "DepthwiseConv2D",
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
        "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    )  # fmt: skip
    return tuple(getattr(keras.layers, name) for name in names if hasattr(keras.layers, name))


_CONV_POOL = _conv_or_pool_types()


def _is_conv_or_pool(layer: keras.layers.Layer) -> bool:
    inner = getattr(layer, "layer", None) if isinstance(layer, keras.layers.Wrapper) else layer
    return isinstance(inner, _CONV_POOL)


def _last_conv_or_pool(model: keras.Model, layers: Sequence[keras.layers.Layer]) -> str | None:
    for layer in reversed(list(layers)):
        if isinstance(layer, keras.Model):  # a nested base model: look inside (keras-vis did not)
            found = _last_conv_or_pool(model, layer.layers)
            if found is not None:
                return found
        elif _is_conv_or_pool(layer):
            return get_layer(model, layer)[0]
    return None


def _top_index(model: keras.Model, layer_idx: Any) -> int:
    """Position in ``model.layers`` of ``layer_idx`` (or of the nested model holding it)."""
    count = len(model.layers)
    if isinstance(layer_idx, int) and not isinstance(layer_idx, bool):
        get_layer(model, layer_idx)  # range check with a clear message
        return layer_idx % count
    path, _ = get_layer(model, layer_idx)
    top = path.split(SEP, 1)[0]
    return next(i for i, layer in enumerate(model.layers) if layer.name == top)


def _penultimate(model: keras.Model, layer_idx: Any, penultimate_layer_idx: Any) -> str:
    """The layer Grad-CAM reads: keras-vis's search for the nearest Conv / Pooling layer.

    As keras-vis, the search runs backwards over ``model.layers[:layer_idx - 1]`` (so the layer
    right before ``layer_idx`` is skipped) and looks through wrappers such as
    ``TimeDistributed``; unlike keras-vis it also looks inside nested models.
    """
    top = _top_index(model, layer_idx)
    if penultimate_layer_idx is None:
        path = _last_conv_or_pool(model, model.layers[: top - 1])
        if path is None:
            raise LayerError(
                f"no Conv or Pooling layer found before layer {layer_idx!r}: pass "
                "penultimate_layer_idx=<index of the layer to compute the CAM at>"
            )
    else:
        path, _ = get_layer(model, penultimate_layer_idx)
        if _top_index(model, penultimate_layer_idx) > top:
            raise LayerError(
                f"penultimate_layer_idx {penultimate_layer_idx!r} comes after layer_idx "
                f"{layer_idx!r}: it needs to be before it"
            )
    shape = layer_output_shape(get_layer(model, path)[1])
    if len(shape) < 3:
        raise LayerError(
            f"layer {path!r} has output shape {shape[1:]}, not a spatial map: pass "
            "penultimate_layer_idx=<index of a convolutional or pooling layer>"
        )
    return path


def visualize_cam(
    model: keras.Model,
    layer_idx: int | str,
    filter_indices: int | Sequence[int] | None,
    seed_input: np.ndarray,
    penultimate_layer_idx: int | str | None = None,
    backprop_modifier: str | None = None,
    grad_modifier: str | Callable | None = None,
) -> np.ndarray:
    """Grad-CAM heatmap for the output of ``filter_indices`` in layer ``layer_idx``
    (keras-vis ``visualize_cam``).

    Parameters
    ----------
    model : keras.Model
        Channels-last model; never modified.
    layer_idx : int or str
        Index into ``model.layers`` (or a vizkit layer name / path) of the output to explain.
    filter_indices : int, list of int, or None
        As :func:`visualize_saliency`.
    seed_input : ndarray, shape (H, W, C) or (1, H, W, C)
        The image, on the model's input scale.
    penultimate_layer_idx : int or str, optional
        Layer whose feature maps are weighted; default: the nearest Conv / Pooling layer before
        ``layer_idx`` (keras-vis's search, skipping the layer right before it).
    backprop_modifier : {None, "guided", "relu"}
        ReLU rule for the backward pass from the output to that layer.
    grad_modifier : str or callable, optional
        Applied to the gradients at the penultimate layer (default: unchanged).

    Returns
    -------
    ndarray, shape (H, W), float32 in [0, 1]
        keras-vis's computation: gradients divided by their maximum, channel weights = their
        spatial mean, ``relu(sum_c w_c A_c)``, zoomed to the input size with
        ``scipy.ndimage.zoom`` (cubic spline), min-max normalized.

    Notes
    -----
    Up to normalization and the upsampling, the vanilla map is vizkit's ``gradcam``
    (``Explanation.extras["cam"]``) at the same layer. As keras-vis, dividing by the largest
    gradient flips the map's sign in the rare case where every gradient is negative.

    References
    ----------
    Selvaraju et al. (2017), Grad-CAM, arXiv:1610.02391.
    """
    from scipy import ndimage

    _check_model(model)
    model, rule = _backprop(model, backprop_modifier)
    modify = _grad_modifier(grad_modifier)
    _sync_caches(model)
    x = _seed_batch(model, seed_input)
    target = _target(model, layer_idx)
    penultimate = _penultimate(model, layer_idx, penultimate_layer_idx)
    grads, acts = _gradients(model, target, filter_indices, x, penultimate, rule)
    grads = modify(grads)
    grads = grads / (np.max(grads) + EPSILON)
    weights = np.mean(grads, axis=tuple(range(grads.ndim - 1)))
    heatmap = np.maximum(np.tensordot(acts[0], weights, axes=([-1], [0])), 0.0)
    heatmap = heatmap.astype(np.float32, copy=False)
    factors = [int(size) / dim for size, dim in zip(x.shape[1:-1], heatmap.shape)]
    heatmap = ndimage.zoom(heatmap, factors)
    return _normalize(heatmap).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------
# Activation maximization
# --------------------------------------------------------------------------------------------
class _UnitsObjective(keras.layers.Layer):
    """keras-vis's ``ActivationMaximization`` as a one-unit output: ``sum_k w_k mean(unit_k)``."""

    def __init__(self, indices: Sequence[int], weights: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._indices = [int(i) for i in indices]
        self._weights = [float(w) for w in weights]

    def call(self, inputs: Any) -> Any:
        x = keras.ops.cast(inputs, "float32")
        chosen = keras.ops.take(x, self._indices, axis=-1)
        axes = tuple(range(1, len(x.shape) - 1))
        per_unit = keras.ops.mean(chosen, axis=axes) if axes else chosen
        weights = keras.ops.convert_to_tensor(self._weights, dtype="float32")
        return keras.ops.sum(per_unit * weights, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], 1)


def _objective_model(model: keras.Model, target: _Target, filter_indices: Any) -> keras.Model:
    """A model whose single output is the summed objective (cached with ``model``)."""
    indices, weights = _units(filter_indices, target.units)
    key = (_KEY, "objective", target.path, target.output, tuple(indices), tuple(weights))
    cache = model_cache(model)
    if key not in cache:
        graph = rebuild(model, [target.path], logits=True, output=target.output)
        objective = _UnitsObjective(indices, weights, name="keras_vis_objective")
        cache[key] = keras.Model(
            graph.inputs, objective(graph.outputs[1]), name=f"{model.name}_keras_vis_objective"
        )
    return cache[key]


def _ignored(name: str, why: str) -> None:
    warnings.warn(f"visualize_activation ignores {name}: {why}", UserWarning, stacklevel=3)


def visualize_activation(
    model: keras.Model,
    layer_idx: int | str,
    filter_indices: int | Sequence[int] | None = None,
    wrt_tensor: Any = None,
    seed_input: np.ndarray | None = None,
    input_range: tuple[float, float] = (0, 255),
    backprop_modifier: str | None = None,
    grad_modifier: str | None = None,
    act_max_weight: float = 1,
    lp_norm_weight: float = 10,
    tv_weight: float = 10,
    **optimizer_params: Any,
) -> np.ndarray:
    """The input that maximizes the output of ``filter_indices`` in layer ``layer_idx``
    (keras-vis ``visualize_activation``), synthesized by :func:`vizkit.maximize_activation`.

    Parameters
    ----------
    model : keras.Model
        Channels-last image model; never modified.
    layer_idx : int or str
        Index into ``model.layers`` (or a vizkit layer name / path). The head is maximized on its
        logit.
    filter_indices : int, list of int, or None
        Unit or channel (channels: their spatial mean). A list maximizes the sum in one image;
        None the mean of the whole layer.
    wrt_tensor : None
        Only None (or the model input) is supported.
    seed_input : ndarray, optional
        Ignored with a warning: vizkit starts from seeded noise in a Fourier parameterization
        (pass ``seed=<int>`` to vary it).
    input_range : (number, number)
        The model's input scale; the image is produced in it. Two ints (the default ``(0, 255)``)
        return ``uint8``, as keras-vis; pass e.g. ``(0., 1.)`` for a model trained on [0, 1].
    backprop_modifier, grad_modifier : None
        Not supported by vizkit's optimizer (an error if given).
    act_max_weight, lp_norm_weight, tv_weight : float
        keras-vis's loss weights, mapped proportionally onto vizkit's regularizers: keras-vis's
        defaults (10 and 10 against 1) give vizkit's default ``l2_weight`` (pull towards
        mid-range) and ``tv_weight`` (total variation), twice the ratio gives twice the weight,
        and 0 turns a regularizer off.
    **optimizer_params
        ``max_iter`` (default 200; capped by ``VIZKIT_MAX_STEPS``) and ``verbose`` (a progress
        bar) as keras-vis; ``input_modifiers`` and ``callbacks`` are ignored with a warning
        (vizkit already jitters, scales and rotates). Anything else goes to
        :func:`vizkit.maximize_activation` (``seed``, ``jitter``, ``learning_rate``, ...).

    Returns
    -------
    ndarray, shape (H, W, C)
        ``uint8`` when both ends of ``input_range`` are ints, else float32 in ``input_range``.

    References
    ----------
    Erhan et al. (2009); Simonyan et al. (2014), arXiv:1312.6034; Olah et al., "Feature
    Visualization", Distill 2017.
    """
    _check_model(model)
    if backprop_modifier is not None:
        raise InputError(
            f"visualize_activation: backprop_modifier={backprop_modifier!r} is not supported "
            "(vizkit optimizes with plain gradients): drop the argument"
        )
    if grad_modifier is not None:
        raise InputError(
            f"visualize_activation: grad_modifier={grad_modifier!r} is not supported: drop the "
            "argument"
        )
    if _wrt_path(model, wrt_tensor) is not None:
        raise InputError("visualize_activation: wrt_tensor must be None (the model input)")
    if not act_max_weight or act_max_weight < 0:
        raise InputError(
            f"visualize_activation: act_max_weight={act_max_weight!r} must be positive (vizkit "
            "maximizes the activation; regularizer-only optimization is not supported)"
        )
    if seed_input is not None:
        _ignored("seed_input", "vizkit starts from seeded noise; pass seed=<int> to vary it")
    params = dict(optimizer_params)
    for name in ("input_modifiers", "callbacks"):
        if params.pop(name, None):
            _ignored(name, "vizkit applies its own jitter, scaling and rotation")
    steps = int(params.pop("max_iter", params.pop("steps", 200)))
    progress = params.pop("progress", bool(params.pop("verbose", False)))
    base = params.get("recipe") or Recipe.for_input(input_shape(model)[1:])
    scale = 1.0 / (act_max_weight * KERAS_VIS_DEFAULT_WEIGHT)
    recipe = {
        "tv_weight": base.tv_weight * float(tv_weight or 0.0) * scale,
        "l2_weight": base.l2_weight * float(lp_norm_weight or 0.0) * scale,
    }
    recipe.update(params)  # vizkit's own names win

    _sync_caches(model)
    low, high = input_range
    target = _target(model, layer_idx)
    values = None if filter_indices is None else np.atleast_1d(np.asarray(filter_indices))
    if values is not None and values.size == 1:
        unit = int(_units(values, target.units)[0][0])
        if target.binary:
            unit = 1  # keras-vis maximized the unit itself: vizkit's class 1
        result = maximize_activation(
            model,
            None if target.head else target.path,
            [unit],
            steps=steps,
            value_range=(float(low), float(high)),
            progress=progress,
            output=target.output,
            **recipe,
        )
    else:  # None or several units: one image for their summed objective
        result = maximize_activation(
            _objective_model(model, target, filter_indices),
            None,
            [0],
            steps=steps,
            value_range=(float(low), float(high)),
            progress=progress,
            **recipe,
        )
    image = np.asarray(result.images[0], dtype=np.float32)
    if isinstance(low, int) and isinstance(high, int):
        return np.clip(image, low, high).astype(np.uint8)
    return image


# --------------------------------------------------------------------------------------------
# Small helpers of vis.visualization
# --------------------------------------------------------------------------------------------
def overlay(array1: np.ndarray, array2: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``array1`` onto ``array2``: ``array1 * alpha + array2 * (1 - alpha)``, with
    ``array1``'s dtype (keras-vis ``overlay``).

    Parameters
    ----------
    array1, array2 : ndarray, same shape
    alpha : float in [0, 1]
        Weight of ``array1`` (1: only ``array1``; 0: only ``array2``).

    Returns
    -------
    ndarray, same shape and dtype as ``array1``
    """
    if alpha < 0.0 or alpha > 1.0:
        raise InputError(f"alpha={alpha} needs to be between 0 and 1")
    array1, array2 = np.asarray(array1), np.asarray(array2)
    if array1.shape != array2.shape:
        raise InputError(
            f"array1 {array1.shape} and array2 {array2.shape} must have the same shape (for a "
            "heatmap over an RGB image, colour it first: np.uint8(cm.jet(heatmap)[..., :3] * 255))"
        )
    return (array1 * alpha + array2 * (1.0 - alpha)).astype(array1.dtype)


def get_num_filters(layer: keras.layers.Layer) -> int:
    """Number of filters (channels) of a layer, or units of a Dense layer (keras-vis)."""
    return int(layer_output_shape(layer)[-1])
