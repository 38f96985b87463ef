"""Decide what raw pixels a model expects: :func:`input_spec`, the one place this is decided.

The rules, in order (the README's "Your own model" quotes them):

1. **The user said so**: ``value_range=`` / ``preprocess=`` always win.
2. **A sample model** keeps its metadata (``imagenet_lite0``: 0-255; the trained samples: 0-1).
3. **A preprocessing block inside the model.** vizkit follows the graph from the input through
   layers that leave values unchanged at inference (``InputLayer``, the ``Random*`` augmentation
   layers, ``RandAugment``/``AugMix``/``MixUp``/``CutMix``, ``Resizing``, ``CenterCrop``,
   ``Cropping2D``, ``Dropout``, ``GaussianNoise``, ``GaussianDropout``, ``Identity``, and
   nested models, entered), collecting the ``Rescaling`` and ``Normalization`` layers that come
   first. Such a block is an affine map per channel, ``y = a * x + b``, which vizkit measures
   by running the layers on probe pixels. Raw 0-255 input is detected when the block maps it to
   a span ``max(y) - min(y)`` between 0.5 and 8 (``[-1, 1]`` has span 2, ``[0, 1]`` span 1,
   ImageNet standardization about 4.4), averaged over channels; raw 0-1 input when the block
   maps 0-1 to such a span (the two cannot both hold: they differ by a factor 255).
   ``Rescaling(1/127.5, offset=-1)``, ``Rescaling(1/255)`` and the blocks of
   ``keras.applications`` EfficientNet, EfficientNetV2, MobileNetV3 and ConvNeXt (built with
   their preprocessing) all give 0-255.
4. **Otherwise the default, 0-1**, labelled as a default: the reason says what was found first
   (a ``Conv2D``; ``keras.ops`` arithmetic, which vizkit does not read; a block mapping neither
   scale to a normalized span). Models whose preprocessing lives outside them (ResNet, VGG:
   ``preprocess_input``) cannot be detected: state it with ``preprocess="caffe"`` etc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from vizkit import _keras
from vizkit._tf import keras
from vizkit.contract import InputSpec, default_spec, user_spec

__all__ = ["SPAN", "input_spec", "preprocessing_block"]

#: Output span (max - min) a preprocessing block gives the raw scale it was built for.
SPAN = (0.5, 8.0)
#: Layers that leave values unchanged at inference (augmentation, geometry, regularization).
_TRANSPARENT = {
    "InputLayer", "RandAugment", "AugMix", "MixUp", "CutMix", "Resizing", "CenterCrop",
    "Cropping2D", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "Identity",
}  # fmt: skip
_BLOCK = ("Rescaling", "Normalization")
#: ``keras.applications`` families whose preprocessing lives outside the model
#: (``preprocess_input``): model-name prefix -> (family, convention). Only a hint in the reason.
_OUTSIDE = (
    ("resnet50v2", "ResNet50V2", "-1-1"), ("resnet101v2", "ResNet101V2", "-1-1"),
    ("resnet152v2", "ResNet152V2", "-1-1"), ("resnet50", "ResNet50", "caffe"),
    ("resnet101", "ResNet101", "caffe"), ("resnet152", "ResNet152", "caffe"),
    ("vgg16", "VGG16", "caffe"), ("vgg19", "VGG19", "caffe"),
    ("inception_resnet_v2", "InceptionResNetV2", "-1-1"), ("inception_v3", "InceptionV3", "-1-1"),
    ("xception", "Xception", "-1-1"), ("mobilenetv2", "MobileNetV2", "-1-1"),
    ("mobilenet_", "MobileNet", "-1-1"), ("nasnet", "NASNet", "-1-1"),
    ("densenet", "DenseNet", "torch"),
)  # fmt: skip
_RAW_SCALES = ((0.0, 255.0), (0.0, 1.0))


def _transparent(op: Any) -> bool:
    name = type(op).__name__
    return name in _TRANSPARENT or (name.startswith("Random") and isinstance(op, keras.Layer))


def _entry_ops(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, operation)`` along the input's path, nested models entered, until it branches."""
    graph = _keras.functional_graph(model)
    if graph is None:  # a subclassed model: its first layers are not a graph
        for layer in getattr(model, "layers", [])[:1]:
            yield prefix + layer.name, layer
        return
    for level in _keras.nodes_by_depth(graph):
        operations = [node.operation for node in level]
        if len(operations) != 1:
            yield prefix + "(several branches)", None
            return
        op = operations[0]
        if isinstance(op, keras.Model):
            yield from _entry_ops(op, prefix + op.name + "/")
        elif type(op).__name__ != "InputLayer":
            yield prefix + getattr(op, "name", type(op).__name__), op


def preprocessing_block(model: Any) -> tuple[list[tuple[str, Any]], str]:
    """The ``Rescaling``/``Normalization`` layers the input meets first, and what came next.

    Returns
    -------
    block : list of (path, layer)
        Empty when the first value-changing operation is something else.
    stop : str
        A short description of the first operation after the block (``"Conv2D 'conv1'"``).
    """
    block: list[tuple[str, Any]] = []
    for path, op in _entry_ops(model):
        if op is None:
            return block, "the input feeds several branches"
        if _transparent(op):
            continue
        name = type(op).__name__
        if name in _BLOCK and isinstance(op, keras.Layer):
            block.append((path, op))
            continue
        kind = "keras.ops call" if _keras.is_operation(op) else "layer"
        return block, f"{name} {kind} {path!r}"
    return block, "the end of the model"


def _affine(block: list[tuple[str, Any]], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` per channel with ``block(x) = a * x + b``, measured on probe pixels.

    The slope comes from the widest probes (0 and 255), so float16 layers (mixed precision)
    measure it to their precision; two more probes check that the block is affine.
    """
    probes = np.array([0.0, 255.0, 1.0, 127.5], np.float32)
    x = np.broadcast_to(probes[:, None, None, None], (len(probes), 1, 1, channels)).copy()
    for _, layer in block:
        x = np.asarray(layer(x), dtype=np.float64)
    y = x[:, 0, 0]
    b, a = y[0], (y[1] - y[0]) / 255.0
    tolerance = 1e-2 * (np.abs(y).max() + 1e-6)
    if not np.allclose(y[2:], a * probes[2:, None] + b, rtol=0, atol=tolerance):
        raise ValueError("not affine")
    return a, b


def _layer_text(layer: Any) -> str:
    """``Rescaling(scale=0.00784, offset=-1)``, ``Normalization(mean=..., variance=...)``."""
    config = layer.get_config()
    keys = ("scale", "offset") if type(layer).__name__ == "Rescaling" else ("mean", "variance")
    parts = []
    for key in keys:
        value = config.get(key)
        if value is None:
            continue
        values = np.ravel(np.asarray(value, dtype=np.float64))
        shown = ", ".join(f"{v:.4g}" for v in values[:3]) + (", ..." if values.size > 3 else "")
        parts.append(f"{key}={shown if values.size == 1 else '[' + shown + ']'}")
    if type(layer).__name__ == "Normalization" and config.get("mean") is None:
        parts.append("adapted")
    return f"{type(layer).__name__}({', '.join(parts)})"


def _from_block(block: list[tuple[str, Any]], channels: int) -> InputSpec | None:
    layers = " + ".join(f"{_layer_text(layer)} {path!r}" for path, layer in block)
    try:
        a, b = _affine(block, channels)
    except Exception:  # noqa: BLE001 - not affine, or not callable on probe pixels
        return default_spec(f"{layers} at the input is not an affine map vizkit can read")
    for low, high in _RAW_SCALES:
        span = float(np.mean(np.abs(a))) * (high - low)
        if SPAN[0] <= span <= SPAN[1]:
            out_low = float(np.min(np.minimum(a * low + b, a * high + b)))
            out_high = float(np.max(np.maximum(a * low + b, a * high + b)))
            reason = f"{layers} at the input maps {low:g}-{high:g} to {out_low:.3g}..{out_high:.3g}"
            return InputSpec.linear((low, high), source="detected", reason=reason)
    return default_spec(f"{layers} at the input maps neither 0-255 nor 0-1 to a normalized range")


def sample_of(model: Any) -> str | None:
    """The sample name of a model ``vizkit.sample_model`` returned (by identity), else None."""
    from vizkit import samples

    finder = getattr(samples, "sample_name_of", None)  # absent from stand-ins in tests
    return finder(model) if finder is not None else None


def input_spec(model: Any, *, value_range: Any = None, preprocess: Any = None) -> InputSpec:
    """What raw pixels ``model`` expects, and how vizkit decided (see the module's rules).

    Parameters
    ----------
    model : keras.Model
    value_range : (low, high) or str, optional
        The user's statement (``(0, 255)``, ``"-1-1"``): returned as the spec.
    preprocess : str, callable or InputSpec, optional
        ``"0-1"``, ``"0-255"``, ``"-1-1"``, ``"caffe"``, ``"torch"``, or a function of
        float32 ``(N, H, W, C)`` RGB in 0..255 (``keras.applications.*.preprocess_input``).

    Returns
    -------
    InputSpec
        ``value_range``, ``preprocess``, ``source`` (user, sample, detected, default),
        ``reason`` and ``describe()``.

    Examples
    --------
    >>> vizkit.input_spec(transfer_model).describe()  # doctest: +SKIP
    "0-255 (detected: Rescaling(scale=0.007843, offset=-1) 'rescaling' at the input maps 0-255
    to -1..1)"
    """
    stated = user_spec(value_range, preprocess)
    if stated is not None:
        return stated
    from vizkit import samples

    sample = sample_of(model)
    if sample is not None:
        low, high = (float(v) for v in samples.sample_metadata(sample)["value_range"])
        return InputSpec.linear(
            (low, high), source="sample", reason=f"metadata of sample model {sample!r}"
        )
    shape = tuple(model.inputs[0].shape) if getattr(model, "inputs", None) else ()
    channels = int(shape[-1]) if len(shape) == 4 and shape[-1] else 3
    block, stop = preprocessing_block(model)
    if block:
        return _from_block(block, channels)
    if stop.split(" ")[1:2] == ["keras.ops"]:
        return default_spec(
            f"the input first meets a {stop}, whose scaling vizkit does not read: state the "
            "scale with value_range= or preprocess="
        )
    return default_spec(
        f"no Rescaling or Normalization layer at the input (first: {stop}){_hint(model)}; pass "
        "value_range= or preprocess= if the model expects another scale"
    )


def _hint(model: Any) -> str:
    """``"; the name ... suggests keras.applications VGG16, whose preprocess_input is caffe"``
    for a model (or a nested base) named like a family whose preprocessing is outside it."""
    names = [str(model.name).lower()]
    names += [str(layer.name).lower() for layer in model.layers if isinstance(layer, keras.Model)]
    for name in names:
        for prefix, family, convention in _OUTSIDE:
            if name.startswith(prefix):
                return (
                    f"; the name {name!r} suggests keras.applications {family}, whose "
                    f"preprocess_input is preprocess={convention!r}"
                )
    return ""
