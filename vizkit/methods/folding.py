"""Graph rewrites that make a model's head cheaper to run many times.

Two rewrites, with different exactness:

- :func:`forward_graph` (forward-only work: predictions, occlusion's occluded images, Score-CAM's
  masked images) folds inference batch norms into the convolutions before them, which saves
  the batch norms' elementwise work (28% of the bench VGG's forward pass at batch 128). Outputs
  change only by float rounding, and a forward pass is continuous in its values, so that is
  where the fold is safe; the result is checked against the plain head on a probe batch.
- :func:`averaging_graph` (SmoothGrad's noisy copies, integrated gradients' path points) cuts
  off the input's linear prefix (typically the first convolution's pre-activation with its
  batch norm) so its transposed Jacobian is applied once per image, not once per variant. It
  never folds: every layer computes exactly what the caller's model computes.

Why the averaging graph never folds: the input gradient of a network with kinks (ReLU, ReLU6,
hard-swish, max pooling) is discontinuous, and at small inputs (1x1 feature maps late in
MobileNetV2 or ResNet50V2 at 32x32) one unit flipping across its kink moves the gradient by
1-2% of its maximum. A rewrite that changes activations by one float ulp flips such units at
some path points, so integrated gradients on a folded graph differed from a plain
``tf.GradientTape`` on the caller's model by up to 1.5% of the map's maximum (ResNet50V2) and
0.7% (MobileNetV2); randomly initialized EfficientNets are worse (their gradient moves by 40%
under a one-ulp input change, swish or not). No output check on a probe batch can see this.
With the prefix's forward computed as in the caller's model, every variant's gradient below the
prefix is the caller's own, and only the order of the final sums differs.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from vizkit._tf import keras
from vizkit.methods.base import first_output
from vizkit.models import (
    VariableView,
    activation_name,
    get_layer,
    identity,
    layer_output_shape,
    linear_clone,
    rebuild,
)

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


def _fold_pairs(model: keras.Model, logits: bool, output: int | str | None) -> dict[str, Any]:
    """Paths of convolutions whose output feeds only a batch norm -> that norm's path."""
    calls: list[tuple[str, Any, list[Any], Any]] = []

    def trace(path: str, layer: keras.layers.Layer) -> Any:
        if isinstance(layer, keras.Model):
            return None  # the replay descends into nested models

        def call(*args: Any, **kwargs: Any) -> Any:
            out = layer(*args, **kwargs)
            calls.append((path, layer, _tensors(args, kwargs), out))
            return out

        return call

    rebuild(model, logits=logits, output=output, substitute=trace)
    consumers: dict[int, list[Any]] = {}
    uses: dict[int, int] = {}
    for entry in calls:
        uses[id(entry[1])] = uses.get(id(entry[1]), 0) + 1
        for tensor in entry[2]:
            consumers.setdefault(id(tensor), []).append(entry)
    pairs = {}
    for path, layer, _, out in calls:
        after = consumers.get(id(out), [])
        if len(after) != 1 or len(after[0][2]) != 1:
            continue
        norm_path, norm = after[0][0], after[0][1]
        if uses[id(layer)] == 1 and uses[id(norm)] == 1 and _foldable(layer, norm):
            pairs[path] = norm_path
    return pairs


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
    shape = [d or 32 for d in reference.inputs[0].shape[1:]]
    probe = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    expected = np.asarray(first_output(reference(probe, training=False)))
    folded = _rebuild_folded(model, logits, output, pairs)
    got = np.asarray(first_output(folded(probe, training=False)))
    scale = float(np.abs(expected).max()) or 1.0
    if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-3, atol=1e-4 * scale):
        return folded
    return reference


def averaging_graph(
    model: keras.Model,
    reference: keras.Model,
    logits: bool,
    output: int | str | None,
) -> tuple[keras.Model | None, keras.Model]:
    """``(prefix, suffix)``: the head as ``suffix(prefix(x))``, arranged for averaging many
    input gradients per image (SmoothGrad's noisy copies, integrated gradients' path points).

    ``prefix`` is the longest chain of affine layers from the input (typically the first
    convolution's pre-activation, with its batch norm) through which alone the input reaches
    the rest. The input gradient is ``J^T dscore/dz`` with ``J`` the prefix's constant
    Jacobian, so a sum of input gradients over many variants is ``J^T`` of the sum of their
    gradients at ``z``: each variant is backpropagated only down to ``z`` and ``J^T`` is
    applied once per image and chunk. The first layer's input gradient (a transposed
    convolution onto 1-3 channels, slow on CPU) leaves the per-variant work. ``prefix`` is None
    when there is no such chain (then ``suffix`` is ``reference``).

    Both parts compute exactly the caller's layers (no batch norm is folded: see the module
    docstring), so callers must run every variant through ``prefix`` rather than build it from
    prefix outputs. The result is checked against ``reference`` on a random batch.
    """
    prefix, suffix = _cut_prefix(model, logits, output)
    if prefix is None or any(
        layer.compute_dtype != "float32" for layer in prefix.layers[1:]
    ):  # mixed precision: J^T applied to a float16 sum of gradients would round it
        return None, reference
    shape = [d or 32 for d in reference.inputs[0].shape[1:]]
    probe = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
    expected = np.asarray(first_output(reference(probe, training=False)))
    got = np.asarray(first_output(suffix(prefix(probe, training=False), training=False)))
    scale = float(np.abs(expected).max()) or 1.0
    if got.shape == expected.shape and np.allclose(got, expected, rtol=1e-5, atol=1e-6 * scale):
        return prefix, suffix
    return None, reference


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
    model: keras.Model, logits: bool, output: int | str | None
) -> tuple[keras.Model | None, keras.Model]:
    """Rebuild, cutting after the linear prefix if there is one; every layer kept as it is.

    There is none when a tensor before the cut also feeds another branch (the input of a
    model with a skip from its input): found while replaying, since Keras before 3.15 builds
    such a suffix model without complaint and fails only when it is called.
    """
    state: dict[str, Any] = {"current": None, "open": True, "z": None, "leak": False}
    inner: set[int] = set()  # ids of the tensors before the cut

    def substitute(path: str, layer: keras.layers.Layer) -> Any:
        if isinstance(layer, keras.Model):
            return None  # the replay descends into nested models

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
                return layer(*args, **kwargs)
            inner.add(id(state["current"]))
            if kind == "split":
                state["open"] = False
                state["z"] = linear_clone(layer)(*args, **kwargs)
                act = keras.layers.Activation(layer.activation, name=f"{layer.name}__act")
                return act(state["z"])
            state["z"] = state["current"] = layer(*args, **kwargs)
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
