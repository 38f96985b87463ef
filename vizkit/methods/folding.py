"""Graph rewrites that make a model's head cheaper to run many times, and when they are safe.

(Over 500 lines: the folding rule, its probe and the two graph rebuilds are one decision and its
proof; most of the length is the explanation of when a fold is safe.)

Two graphs:

- :func:`forward_graph` (forward-only work: predictions, occlusion's occluded images, Score-CAM's
  masked images) folds inference batch norms into the convolutions before them, which saves
  the batch norms' elementwise work (28% of the bench VGG's forward pass at batch 128). A
  forward pass is continuous in its values, so outputs change by float rounding only; the
  result is checked against the plain head on a probe batch.
- :func:`averaging_graph` (SmoothGrad's noisy copies, integrated gradients' path points) cuts
  off the input's linear prefix (typically the first convolution's pre-activation with its
  batch norm) so its transposed Jacobian is applied once per image, not once per variant, and
  folds a batch norm only where the fold cannot move the input gradient by more than rounding.

**The folding rule** (averaging graph). A fold changes activations by about one float ulp.
Downstream of a kink (ReLU, ReLU6, leaky ReLU, hard-sigmoid / hard-swish, max pooling,
``maximum``/``minimum``/``abs``/``clip``, or any layer or ``keras.ops`` node not known to be
smooth) the input gradient is discontinuous in those activations: a unit within an ulp of its
kink flips, and the gradient jumps by that unit's whole contribution. Measured on the trained
``shapes_vgg`` sample, 4-10% of integrated-gradients path points flip (jumps up to 6% of the
gradient's maximum), so IG with 50 steps moves by 1.7e-4 and SmoothGrad with 20 samples by
1.5e-3 of the map's maximum; on ``imagenet_lite0`` and the ``keras.applications`` MobileNets,
ResNet50V2 and DenseNet121 by 1e-3 to 6e-2. These are rare events at each point, so a probe
cannot bound them: a 32-point probe misses a 4% per-point rate 27% of the time. Hence:

1. a batch norm is folded only when no kink lies downstream of it (:func:`kink` names the
   first one found, recorded in :class:`FoldDecision`); in a ReLU network that is almost
   never, in a smooth one (swish, GELU, sigmoid, tanh: EfficientNet, EfficientNetV2) always;
2. the folded graph is then probed (:func:`probe_error`): input gradients of the folded and
   unfolded graphs at seeded random images on three value scales ([0, 1], [-1, 1], [0, 255])
   and at 0.3 times them (integrated gradients' early path). Without kinks the difference is
   a continuous function of the input (rounding times the network's conditioning), so probe
   points measure its scale; the fold is kept only when they agree to ``PROBE_TOL`` (3e-5) of
   each gradient's maximum, a third of the 1e-4 the methods promise. On small smooth test
   networks made for [0, 1] inputs the probe measures 2e-7 to 7e-7 on that scale and up to 2e-5
   on the (for them saturating) [0, 255] scale, while chaotic networks (such as a randomly
   initialized EfficientNet, whose gradient moves by up to 44% under a one-ulp input change)
   are off by orders of magnitude more.

The decision is made once per model and head (the graph is cached), does not depend on the
images explained, is logged at DEBUG level (``logging.getLogger("vizkit.methods.folding")``)
and is kept on the graph (``method.averaging_graph().fold``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from vizkit._keras import is_operation
from vizkit._tf import keras, tf
from vizkit.methods.graphs import first_output
from vizkit.models import (
    VariableView,
    activation_name,
    get_layer,
    identity,
    layer_output_shape,
    linear_clone,
    rebuild,
)
from vizkit.scoring import flatten

logger = logging.getLogger("vizkit.methods.folding")

#: layers that are affine maps of their input at inference (BatchNormalization with
#: training=False); convolutions and Dense may end the linear prefix with their pre-activation
_AFFINE = (
    keras.layers.BatchNormalization,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Rescaling,
)
_LINEAR = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Dense,
    keras.layers.DepthwiseConv2D,
)
_FOLDABLE = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv2D,
)


def _is_linear(layer: keras.layers.Layer) -> bool:
    return activation_name(layer) in (None, "linear")


def _prefix_kind(layer: keras.layers.Layer) -> str | None:
    """``"affine"``: the whole layer is affine; ``"split"``: its pre-activation is (the prefix
    ends there); None: not part of a linear prefix."""
    if type(layer) in _AFFINE:
        return "affine"
    if type(layer) in _LINEAR:
        if _is_linear(layer):
            return "affine"
        if type(layer) is not keras.layers.DepthwiseConv2D:  # no linear view of that one
            return "split"
    return None


def _foldable(conv: keras.layers.Layer, norm: keras.layers.Layer) -> bool:
    """A linear channels-last convolution feeding a float32 last-axis batch norm."""
    if type(conv) not in _FOLDABLE or type(norm) is not keras.layers.BatchNormalization:
        return False
    rank = len(layer_output_shape(conv))
    return (
        _is_linear(conv)
        and conv.padding != "causal"  # Conv1D pads in call(), outside convolution_op
        and conv.data_format == "channels_last"
        and norm.axis in (-1, rank - 1)
        and conv.compute_dtype == "float32"
        and norm.compute_dtype == "float32"
    )


def _folded_conv(conv: Any, norm: Any, x: Any) -> Any:
    """``norm(conv(x))`` at inference as one convolution: the batch norm's scale goes into the
    kernel, its shift into the bias (computed from the current variables on every call)."""
    ops = keras.ops
    scale = ops.rsqrt(ops.add(norm.moving_variance, norm.epsilon))
    if norm.scale:
        scale = ops.multiply(scale, norm.gamma)
    shift = ops.negative(ops.multiply(norm.moving_mean, scale))
    if norm.center:
        shift = ops.add(shift, norm.beta)
    if conv.use_bias:
        shift = ops.add(shift, ops.multiply(conv.bias, scale))
    if type(conv) is keras.layers.DepthwiseConv2D:
        kernel = conv.kernel  # (kh, kw, channels, multiplier): output c * multiplier + m
        kernel = ops.multiply(kernel, ops.reshape(scale, (1, 1, *kernel.shape[2:])))
        y = ops.depthwise_conv(
            x,
            kernel,
            strides=conv.strides,
            padding=conv.padding,
            dilation_rate=conv.dilation_rate,
            data_format=conv.data_format,
        )
    else:
        y = conv.convolution_op(x, ops.multiply(conv.kernel, scale))
    return ops.add(y, shift)


def _tensors(args: Any, kwargs: Any) -> list[Any]:
    return [t for t in keras.tree.flatten((args, kwargs)) if isinstance(t, keras.KerasTensor)]


# --------------------------------------------------------------------------------------------
# Kinks: where an input gradient is discontinuous in the activations
# --------------------------------------------------------------------------------------------
#: activations with a continuous derivative
SMOOTH_ACTIVATIONS = frozenset(
    {"linear", "sigmoid", "tanh", "softplus", "softsign", "swish", "silu", "gelu", "mish",
     "softmax", "log_softmax", "log_sigmoid", "exponential"}
)  # fmt: skip
#: layers that are smooth at inference (with a smooth activation where they have one)
_SMOOTH_LAYERS = frozenset(
    {"InputLayer", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
     "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
     "SeparableConv2D", "Dense", "EinsumDense", "BatchNormalization", "LayerNormalization",
     "GroupNormalization", "Activation", "Softmax", "Add", "Subtract", "Multiply", "Average",
     "Concatenate", "Dot", "Reshape", "Flatten", "Permute", "RepeatVector", "ZeroPadding1D",
     "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
     "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
     "GlobalAveragePooling2D", "GlobalAveragePooling3D", "UpSampling1D", "UpSampling2D",
     "UpSampling3D", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
     "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Rescaling",
     "Normalization", "Identity", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation",
     "RandomZoom", "RandomTranslation", "RandomContrast", "RandomBrightness"}
)  # fmt: skip
#: ``keras.ops`` graph nodes that are smooth
_SMOOTH_OPS = frozenset(
    {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Negative", "Square", "Sqrt",
     "Rsqrt", "Reciprocal", "Power", "Exp", "Log", "Sigmoid", "Silu", "Swish", "Gelu", "Tanh",
     "Softplus", "Softmax", "LogSoftmax", "Erf", "Identity", "Cast", "Reshape", "Transpose",
     "Concatenate", "Stack", "ExpandDims", "Squeeze", "GetItem", "Slice", "Pad", "Tile",
     "Repeat", "Mean", "Sum", "Matmul", "Einsum"}
)  # fmt: skip


def kink(op: Any) -> str | None:
    """Why ``op``'s derivative may be discontinuous (``"ReLU 're_lu_3'"``), or None when it is
    known to be continuous at inference. Unknown layers and ``keras.ops`` nodes count as kinks."""
    kind = type(op).__name__
    if is_operation(op):
        return None if kind in _SMOOTH_OPS else f"keras.ops {kind} {op.name!r}"
    if kind not in _SMOOTH_LAYERS:
        return f"{kind} {op.name!r}"
    activation = activation_name(op)
    if activation is not None and activation not in SMOOTH_ACTIVATIONS:
        return f"{kind} {op.name!r} (activation {activation})"
    return None


class _Call(NamedTuple):
    path: str
    op: Any
    inputs: list[Any]
    outputs: list[Any]


def _trace(model: keras.Model, logits: bool, output: int | str | None) -> list[_Call]:
    """Every layer and ``keras.ops`` call of the rebuilt head, in execution order (nested
    models inlined)."""
    calls: list[_Call] = []

    def trace(path: str, layer: keras.layers.Layer) -> Any:
        if isinstance(layer, keras.Model):
            return None  # the replay descends into nested models

        def call(*args: Any, **kwargs: Any) -> Any:
            out = layer(*args, **kwargs)
            flat = [t for t in keras.tree.flatten(out) if isinstance(t, keras.KerasTensor)]
            calls.append(_Call(path, layer, _tensors(args, kwargs), flat))
            return out

        return call

    rebuild(model, logits=logits, output=output, substitute=trace)
    return calls


def _pairs(calls: list[_Call]) -> dict[str, _Call]:
    """Convolutions whose output feeds only a batch norm: conv path -> that norm's call."""
    consumers: dict[int, list[_Call]] = {}
    uses: dict[int, int] = {}
    for entry in calls:
        uses[id(entry.op)] = uses.get(id(entry.op), 0) + 1
        for tensor in entry.inputs:
            consumers.setdefault(id(tensor), []).append(entry)
    pairs = {}
    for entry in calls:
        if len(entry.outputs) != 1:
            continue
        after = consumers.get(id(entry.outputs[0]), [])
        if len(after) != 1 or len(after[0].inputs) != 1:
            continue
        norm = after[0]
        if uses[id(entry.op)] == 1 and uses[id(norm.op)] == 1 and _foldable(entry.op, norm.op):
            pairs[entry.path] = norm
    return pairs


def _kinks_after(calls: list[_Call]) -> dict[int, str | None]:
    """``id(call) -> the first kink at or downstream of that call`` (None: none)."""
    consumers: dict[int, list[_Call]] = {}
    for entry in calls:
        for tensor in entry.inputs:
            consumers.setdefault(id(tensor), []).append(entry)
    after: dict[int, str | None] = {}
    for entry in reversed(calls):  # execution order is topological
        found = kink(entry.op)
        for tensor in entry.outputs:
            for user in consumers.get(id(tensor), []):
                found = found or after[id(user)]
        after[id(entry)] = found
    return after


def _fold_pairs(model: keras.Model, logits: bool, output: int | str | None) -> dict[str, str]:
    """Paths of convolutions whose output feeds only a batch norm -> that norm's path."""
    return {conv: norm.path for conv, norm in _pairs(_trace(model, logits, output)).items()}


# --------------------------------------------------------------------------------------------
# The two graphs
# --------------------------------------------------------------------------------------------
def forward_graph(
    model: keras.Model,
    reference: keras.Model,
    logits: bool,
    output: int | str | None,
) -> keras.Model:
    """The head for forward-only work, with inference batch norms folded into the convolution
    before them (a per-channel scale and shift moved into the kernel and bias).

    The result is checked against ``reference`` (the plain rebuilt head) on a random batch;
    when they differ by more than float rounding, ``reference`` is returned. Not for gradients
    (see the module docstring).
    """
    pairs = _fold_pairs(model, logits, output)
    if not pairs:
        return reference
    probe = _probe_images(reference)[:2]
    expected = np.asarray(first_output(reference(probe, training=False)))
    folded = _rebuild_folded(model, logits, output, pairs)
    got = np.asarray(first_output(folded(probe, training=False)))
    scale = float(np.abs(expected).max()) or 1.0
    if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-3, atol=1e-4 * scale):
        return folded
    return reference


#: largest probe difference (of each input gradient's maximum) at which a fold is kept
PROBE_TOL = 3e-5


@dataclasses.dataclass(frozen=True)
class FoldDecision:
    """Which batch norms the averaging graph folds, and why the others stay.

    Attributes
    ----------
    folded : tuple of str
        Paths of the folded batch norms.
    kept : tuple of (str, str)
        ``(batch norm path, reason)`` for every foldable batch norm left as it is: the first
        kink downstream of it, or the probe's verdict.
    probe_error : float or None
        Largest difference between the folded and unfolded graphs' input gradients on the
        probe, as a fraction of each gradient's maximum (None: no probe ran).
    """

    folded: tuple[str, ...] = ()
    kept: tuple[tuple[str, str], ...] = ()
    probe_error: float | None = None

    def __str__(self) -> str:
        total = len(self.folded) + len(self.kept)
        text = f"{len(self.folded)} of {total} batch norms folded"
        if self.probe_error is not None:
            text += f" (probe: gradients differ by {self.probe_error:.1e} of their maximum)"
        if self.kept:
            text += f"; kept {self.kept[0][0]!r}: {self.kept[0][1]}"
        return text


@dataclasses.dataclass(frozen=True)
class AveragingGraph:
    """:func:`averaging_graph`'s result; unpacks as ``prefix, suffix``."""

    prefix: keras.Model | None
    suffix: keras.Model
    fold: FoldDecision = FoldDecision()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.prefix, self.suffix))


def averaging_graph(
    model: keras.Model,
    reference: keras.Model,
    logits: bool,
    output: int | str | None,
) -> AveragingGraph:
    """The head as ``suffix(prefix(x))``, arranged for averaging many input gradients per image
    (SmoothGrad's noisy copies, integrated gradients' path points).

    ``prefix`` is the longest chain of affine layers from the input (typically the first
    convolution's pre-activation, with its batch norm) through which alone the input reaches
    the rest. The input gradient is ``J^T dscore/dz`` with ``J`` the prefix's constant
    Jacobian, so a sum of input gradients over many variants is ``J^T`` of the sum of their
    gradients at ``z``: each variant is backpropagated only down to ``z`` and ``J^T`` is
    applied once per image and chunk. The first layer's input gradient (a transposed
    convolution onto 1-3 channels, slow on CPU) leaves the per-variant work. ``prefix`` is None
    when there is no such chain (then ``suffix`` is ``reference`` or its folded version).

    Batch norms are folded by the module's rule (no kink downstream, then a probe); every other
    layer computes exactly what the caller's model computes, so callers must run every variant
    through ``prefix`` rather than build it from prefix outputs. The cut is checked against
    ``reference`` on a random batch.
    """
    calls = _trace(model, logits, output)
    pairs = _pairs(calls)
    after = _kinks_after(calls)
    fold = {conv: norm.path for conv, norm in pairs.items() if after[id(norm)] is None}
    kept = tuple(
        (norm.path, f"{after[id(norm)]} is downstream")
        for norm in pairs.values()
        if after[id(norm)] is not None
    )
    exact = _checked_cut(model, reference, logits, output)
    graph = AveragingGraph(*exact, FoldDecision((), kept))
    if fold:
        folded = _checked_cut(model, reference, logits, output, fold)
        if folded[1] is reference:  # the cut's check failed: fold without cutting
            folded = (None, _rebuild_folded(model, logits, output, fold))
        error = probe_error(exact, folded)
        if error <= PROBE_TOL:
            graph = AveragingGraph(*folded, FoldDecision(tuple(fold.values()), kept, error))
        else:
            reason = f"the probe's gradients differ by {error:.1e} of their maximum"
            refused = tuple((norm, reason) for norm in fold.values())
            graph = AveragingGraph(*exact, FoldDecision((), refused + kept, error))
    logger.debug("averaging graph of %r: %s", model.name, graph.fold)
    return graph


def _checked_cut(
    model: keras.Model,
    reference: keras.Model,
    logits: bool,
    output: int | str | None,
    fold: dict[str, str] | None = None,
) -> tuple[keras.Model | None, keras.Model]:
    """:func:`_cut_prefix`, or ``(None, head)`` when there is no prefix, it is not float32, or
    the cut graph's outputs differ from ``reference``'s by more than rounding."""
    prefix, suffix = _cut_prefix(model, logits, output, fold)
    if prefix is None:
        return None, suffix if fold else reference
    if any(layer.compute_dtype != "float32" for layer in prefix.layers[1:]):
        return None, reference  # mixed precision: J^T applied to a float16 sum would round it
    probe = _probe_images(reference)[:2]
    expected = np.asarray(first_output(reference(probe, training=False)))
    got = np.asarray(first_output(suffix(prefix(probe, training=False), training=False)))
    scale = float(np.abs(expected).max()) or 1.0
    tol = (1e-3, 1e-4) if fold else (1e-5, 1e-6)  # a fold changes values by rounding
    if got.shape == expected.shape and np.allclose(got, expected, rtol=tol[0], atol=tol[1] * scale):
        return prefix, suffix
    return None, reference


def _probe_images(reference: keras.Model) -> np.ndarray:
    """Seeded random images: two on each of the scales [0, 1], [-1, 1] and [0, 255], then the
    same at 0.3 times (12 images)."""
    shape = [d or 32 for d in reference.inputs[0].shape[1:]]
    unit = np.random.default_rng(0).random((6, *shape), dtype=np.float32)
    scaled = np.concatenate([unit[:2], 2 * unit[2:4] - 1, 255 * unit[4:]])
    return np.concatenate([scaled, np.float32(0.3) * scaled])


def probe_error(
    exact: tuple[keras.Model | None, keras.Model], folded: tuple[keras.Model | None, keras.Model]
) -> float:
    """Largest difference between two ``(prefix, suffix)`` graphs' input gradients of their top
    logit on :func:`_probe_images`, as a fraction of each image's gradient maximum."""
    x = tf.constant(_probe_images(exact[1] if exact[0] is None else exact[0]))

    def gradients(graph: tuple[Any, Any], targets: Any) -> tuple[np.ndarray, Any]:
        prefix, suffix = graph
        with tf.GradientTape() as tape:
            tape.watch(x)
            z = x if prefix is None else prefix(x, training=False)
            out = flatten(first_output(suffix(z, training=False)))
            if targets is None:
                targets = tf.argmax(out, axis=1, output_type=tf.int32)
            score = tf.gather(out, targets, axis=1, batch_dims=1)
        grads = tape.gradient(score, x).numpy().astype(np.float64)
        return grads.reshape(len(grads), -1), targets

    want, targets = gradients(exact, None)
    got, _ = gradients(folded, targets)
    scale = np.abs(want).max(axis=1)
    diff = np.abs(got - want).max(axis=1)
    if not np.isfinite(diff).all():
        return float("inf")
    zero = scale == 0  # an all-zero gradient must be matched exactly
    ratio = np.where(zero, np.where(diff > 0, np.inf, 0.0), diff / np.where(zero, 1.0, scale))
    return float(ratio.max())


def _rebuild_folded(
    model: keras.Model, logits: bool, output: int | str | None, fold: dict[str, str]
) -> keras.Model:
    """The rebuilt head with each ``fold`` pair (conv path -> batch-norm path) folded."""
    norms = set(fold.values())

    def substitute(path: str, layer: keras.layers.Layer) -> Any:
        if isinstance(layer, keras.Model):
            return None  # the replay descends into nested models
        if path in fold:
            norm = get_layer(model, fold[path])[1]
            return VariableView(
                f"{layer.name}__{norm.name}__folded",
                layer.dtype_policy,
                functools.partial(_folded_conv, layer, norm),
                layer.compute_output_shape,
            )
        return identity if path in norms else None

    return rebuild(model, logits=logits, output=output, substitute=substitute)


def _cut_prefix(
    model: keras.Model,
    logits: bool,
    output: int | str | None,
    fold: dict[str, str] | None = None,
) -> tuple[keras.Model | None, keras.Model]:
    """Rebuild with the ``fold`` pairs (conv path -> batch-norm path) folded, cutting after the
    linear prefix if there is one; every other layer kept as it is.

    There is no prefix when a tensor before the cut also feeds another branch (the input of a
    model with a skip from its input): found while replaying, since Keras before 3.15 builds
    such a suffix model without complaint and fails only when it is called.
    """
    fold = fold or {}
    norms = set(fold.values())
    state: dict[str, Any] = {"current": None, "open": True, "z": None, "leak": False}
    inner: set[int] = set()  # ids of the tensors before the cut

    def substitute(path: str, layer: keras.layers.Layer) -> Any:
        if isinstance(layer, keras.Model):
            return None  # the replay descends into nested models
        target: Any
        if path in fold:
            norm = get_layer(model, fold[path])[1]
            target = VariableView(
                f"{layer.name}__{norm.name}__folded",
                layer.dtype_policy,
                functools.partial(_folded_conv, layer, norm),
                layer.compute_output_shape,
            )
        else:
            target = identity if path in norms else layer

        def call(*args: Any, **kwargs: Any) -> Any:
            tensors = _tensors(args, kwargs)
            if state["current"] is None:  # the first call consumes the model input
                state["current"] = tensors[0] if len(tensors) == 1 else object()
            if any(id(t) in inner for t in tensors):
                state["leak"] = True  # a tensor before the cut feeds another branch
            kind = None
            if state["open"] and len(tensors) == 1 and tensors[0] is state["current"]:
                kind = _prefix_kind(layer)
            if kind is None:
                state["open"] = False
                return target(*args, **kwargs)
            inner.add(id(state["current"]))
            if kind == "split":
                state["open"] = False
                state["z"] = linear_clone(layer)(*args, **kwargs)
                act = keras.layers.Activation(layer.activation, name=f"{layer.name}__act")
                return act(state["z"])
            state["z"] = state["current"] = target(*args, **kwargs)
            return state["z"]

        return call

    rebuilt = rebuild(model, logits=logits, output=output, substitute=substitute)
    if state["z"] is not None and not state["leak"]:
        try:
            prefix = keras.Model(rebuilt.inputs[0], state["z"], name=f"{model.name}_prefix")
            suffix = keras.Model(state["z"], rebuilt.outputs[0], name=f"{model.name}_suffix")
            return prefix, suffix
        except ValueError:  # the input (or a prefix tensor) also feeds another branch
            pass
    return None, rebuilt
