"""Count the parameters and tensor sizes a model config implies, before Keras builds it.

Keras allocates every variable (and runs its initializer) while it builds a model from its
config, before it reads a single weight from the file: a ``Dense(250_000_000)`` in a 60-byte
edit of a config costs gigabytes. :func:`estimate` walks the model's layers in order, takes each
layer's input shape from the config (node arguments, ``build_config``) or carries it from the
previous layer, and counts the variables of every Keras layer that has any, with closed forms
that ``tests/test_loading_budget.py`` checks against Keras's own ``count_params`` for every such
layer class. Unknown sizes count as 1, so the count is a lower bound; layers vizkit has no
formula for count as 0. It also reports the largest tensor it saw or computed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

Shape = tuple  # (batch, d1, ..., dn); None where unknown

_IDENTITY = frozenset(
    """Activation ActivityRegularization AlphaDropout BatchNormalization Dropout ELU
    GaussianDropout GaussianNoise GroupNormalization Identity LayerNormalization LeakyReLU Masking
    Normalization PReLU RMSNormalization ReLU Rescaling Softmax SpatialDropout1D SpatialDropout2D
    SpatialDropout3D UnitNormalization LayerScale StochasticDepth CustomScaleLayer RandomFlip
    RandomRotation RandomZoom RandomContrast RandomBrightness RandomTranslation AutoContrast
    RandomGrayscale RandomHue RandomSaturation RandomSharpness RandomShear RandomInvert
    RandomPosterization RandomColorDegeneration RandomColorJitter RandomGaussianBlur
    RandomErasing RandomPerspective RandomElasticTransform Solarization Equalization AugMix
    RandAugment CutMix MixUp Add Subtract Multiply Average Maximum Minimum
    Cast""".split()
)


@dataclasses.dataclass
class Estimate:
    """What building the model would allocate, as far as the config tells."""

    parameters: int = 0
    largest: int = 0  # values per example in the largest tensor seen
    largest_at: tuple[str, Any] | None = None  # (layer, shape)


def _int(value: Any, default: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return default
    return value


def _prod(values: Any) -> int:
    if isinstance(values, int):
        return _int(values)
    if not isinstance(values, (list, tuple)):
        return 1
    return math.prod(_int(v) for v in values)


def _shape(value: Any) -> Shape | None:
    if isinstance(value, (list, tuple)) and value and not isinstance(value[0], (list, tuple)):
        return tuple(v if isinstance(v, int) and not isinstance(v, bool) else None for v in value)
    return None


def _channels(config: dict, shape: Shape | None) -> int:
    if not shape or len(shape) < 2:
        return 1
    first = config.get("data_format") == "channels_first"
    return _int(shape[1] if first else shape[-1])


class _Walker:
    def __init__(self, class_of: Callable[[dict], str | None]):
        self.class_of = class_of
        self.out = Estimate()

    def see(self, layer: str, shape: Shape | None) -> None:
        if shape is None:
            return
        values = _prod([d for d in shape[1:] if d is not None])
        if values > self.out.largest:
            self.out.largest, self.out.largest_at = values, (layer, list(shape))

    # containers ------------------------------------------------------------------------------
    def model(self, node: dict, inputs: list, count: bool = True) -> list:
        kind = self.class_of(node)
        config = node.get("config")
        if not isinstance(config, dict):
            return []
        layers = config.get("layers")
        if isinstance(layers, list) and kind in ("Functional", "Model"):
            return self.functional(config, layers, inputs, count)
        if isinstance(layers, list) and kind == "Sequential":
            return self.sequential(config, layers, inputs, count)
        return self.layer(node, kind, config, inputs, count)

    def functional(self, config: dict, layers: list, inputs: list, count: bool) -> list:
        outputs: dict[str, list] = {}
        given = list(inputs)
        for entry in layers:
            if not isinstance(entry, dict):
                continue
            name = str(entry.get("name") or (entry.get("config") or {}).get("name"))
            kind = self.class_of(entry)
            inner = entry.get("config") if isinstance(entry.get("config"), dict) else {}
            if kind == "InputLayer":
                shape = _shape(inner.get("batch_shape") or inner.get("batch_input_shape"))
                shape = given.pop(0) if given and given[0] is not None else shape
                self.see(name, shape)
                outputs[name] = [[shape]]
                continue
            nodes = entry.get("inbound_nodes") or [None]
            results = []
            for index, call in enumerate(nodes if isinstance(nodes, list) else [None]):
                args = self.call_inputs(call, outputs)
                results.append(self.model(entry, args, count and index == 0))
            outputs[name] = results
        result = []
        for ref in config.get("output_layers") or []:
            if isinstance(ref, list) and ref and isinstance(ref[0], str):
                node = _int(ref[1], 0) if len(ref) > 1 else 0
                result.append(_pick(outputs.get(ref[0]), node))
        return result

    def call_inputs(self, call: Any, outputs: dict) -> list:
        """Input shapes of one call: recorded symbolic tensors, else inbound layers' outputs."""
        shapes: list = []
        if isinstance(call, dict):
            stack = [call.get("args"), call.get("kwargs")]
            while stack:
                item = stack.pop(0)
                if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
                    inner = item.get("config") if isinstance(item.get("config"), dict) else {}
                    shapes.append(_shape(inner.get("shape")))
                elif isinstance(item, dict):
                    stack[0:0] = list(item.values())
                elif isinstance(item, list):
                    stack[0:0] = item
        elif isinstance(call, list):  # legacy: [[layer, node, tensor, kwargs], ...]
            for inbound in call:
                if isinstance(inbound, list) and inbound and isinstance(inbound[0], str):
                    node = _int(inbound[1], 0) if len(inbound) > 1 else 0
                    shapes.append(_pick(outputs.get(inbound[0]), node))
        return shapes

    def sequential(self, config: dict, layers: list, inputs: list, count: bool) -> list:
        shape = inputs[0] if inputs else _shape(config.get("build_input_shape"))
        for entry in layers:
            if not isinstance(entry, dict):
                continue
            inner = entry.get("config") if isinstance(entry.get("config"), dict) else {}
            declared = _shape(inner.get("batch_shape") or inner.get("batch_input_shape"))
            shape = declared or shape
            if self.class_of(entry) == "InputLayer":
                self.see(str(inner.get("name")), shape)
                continue
            built = entry.get("build_config")
            if isinstance(built, dict) and _shape(built.get("input_shape")):
                shape = _shape(built.get("input_shape"))
            outs = self.model(entry, [shape], count)
            shape = outs[0] if outs else None
        return [shape]

    # layers ----------------------------------------------------------------------------------
    def layer(self, node: dict, kind: str | None, config: dict, inputs: list, count: bool) -> list:
        name = str(config.get("name", kind))
        built = node.get("build_config")
        if not inputs and isinstance(built, dict) and _shape(built.get("input_shape")):
            inputs = [_shape(built.get("input_shape"))]
        for shape in inputs:
            self.see(name, shape)
        first = inputs[0] if inputs else None
        if kind in ("Bidirectional", "TimeDistributed"):
            return self.wrapper(kind, config, first, count)
        if kind in ("RNN", "StackedRNNCells", "SpectralNormalization", "Pipeline"):
            out = self.chain(kind, config, first, count)
            self.see(name, out)
            return [out]
        if count and kind is not None:
            self.out.parameters += parameters(kind, config, inputs)
        out = output_shape(kind, config, inputs)
        self.see(name, out)
        return [out]

    def wrapper(self, kind: str, config: dict, shape: Shape | None, count: bool) -> list:
        inner = config.get("layer")
        if not isinstance(inner, dict):
            return [None]
        if kind == "TimeDistributed":
            step = (shape[0],) + tuple(shape[2:]) if shape and len(shape) > 2 else None
            outs = self.model(inner, [step], count)
            out = outs[0] if outs else None
            return [(shape[0], shape[1]) + tuple(out[1:]) if shape and out else None]
        outs = self.model(inner, [shape], count)
        backward = config.get("backward_layer")
        self.model(backward if isinstance(backward, dict) else inner, [shape], count)
        out = outs[0] if outs else None
        if out and config.get("merge_mode", "concat") == "concat" and out[-1] is not None:
            out = out[:-1] + (2 * out[-1],)
        return [out]

    def chain(self, kind: str, config: dict, shape: Shape | None, count: bool) -> Shape | None:
        """Layers that hold other layers: RNN cells, stacked cells, spectral norm, pipelines."""
        key = {"RNN": "cell", "StackedRNNCells": "cells", "Pipeline": "layers"}.get(kind, "layer")
        inner = config.get(key)
        inner = inner if isinstance(inner, list) else [inner]
        step = shape[:1] + shape[2:] if kind == "RNN" and shape and len(shape) > 2 else shape
        out = step
        for layer in inner:
            if isinstance(layer, dict):
                outs = self.model(layer, [out], count)
                out = outs[0] if outs else None
        if kind == "SpectralNormalization" and count and out and out[-1] is not None:
            self.out.parameters += _int(out[-1])  # the power iteration's vector
        if kind == "RNN" and out is not None and shape is not None:
            return shape[:-1] + out[-1:] if config.get("return_sequences") else out
        return out if kind != "SpectralNormalization" else out


def _pick(results: list | None, node: int) -> Shape | None:
    if not results or node >= len(results) or not results[node]:
        return None
    return results[node][0]


def estimate(config: dict, class_of: Callable[[dict], str | None]) -> Estimate:
    """Parameters and the largest tensor the model in ``config`` implies (see module doc)."""
    walker = _Walker(class_of)
    walker.model(config, [])
    return walker.out


# --------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------
def _rank(kind: str) -> int:
    for rank in (1, 2, 3):
        if f"{rank}D" in kind:
            return rank
    return 2


def _kernel(config: dict, kind: str) -> int:
    size = config.get("kernel_size", 1)
    return _int(size) ** _rank(kind) if isinstance(size, int) else _prod(size)


def parameters(kind: str, config: dict, inputs: list) -> int:
    """Variables a Keras layer of class ``kind`` creates for these input shapes (lower bound)."""
    shape = inputs[0] if inputs else None
    c = _channels(config, shape)
    bias = 1 if config.get("use_bias", True) else 0
    units = _int(config.get("units"), 0)
    filters = _int(config.get("filters"), 0)
    if kind == "Dense":
        return c * units + bias * units
    if kind in ("Embedding", "ReversibleEmbedding"):
        table = _int(config.get("input_dim"), 0) * _int(config.get("output_dim"), 0)
        untied = kind == "ReversibleEmbedding" and not config.get("tie_weights", True)
        return table * (2 if untied else 1)
    if kind.startswith(("Conv", "SeparableConv", "DepthwiseConv")) and "LSTM" not in kind:
        k = _kernel(config, kind)
        dm = _int(config.get("depth_multiplier"), 1)
        if kind.startswith("DepthwiseConv"):
            return k * c * dm + bias * c * dm
        if kind.startswith("SeparableConv"):
            return k * c * dm + c * dm * filters + bias * filters
        if "Transpose" in kind:
            return k * filters * c + bias * filters
        groups = max(_int(config.get("groups"), 1), 1)
        return k * (c // groups) * filters + bias * filters
    if kind.startswith("ConvLSTM"):
        k = _kernel(config, kind)
        return 4 * filters * (k * c + k * filters + bias)
    gates = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}.get(kind.removesuffix("Cell"))
    if gates:
        extra = 3 * units if kind.startswith("GRU") and config.get("reset_after", True) else 0
        return gates * (c * units + units * units + bias * units) + bias * extra
    if kind == "EinsumDense":
        return _einsum(config, shape)
    if kind in ("MultiHeadAttention", "GroupedQueryAttention"):
        return _attention(kind, config, inputs)
    if kind in ("BatchNormalization", "LayerNormalization", "RMSNormalization"):
        d = _axis_size(config.get("axis", -1), shape)
        if kind == "BatchNormalization":
            return d * (2 + bool(config.get("center", True)) + bool(config.get("scale", True)))
        if kind == "RMSNormalization":
            return d
        return d * (bool(config.get("center", True)) + bool(config.get("scale", True)))
    if kind == "GroupNormalization":
        return c * (bool(config.get("center", True)) + bool(config.get("scale", True)))
    if kind == "Normalization" and config.get("mean") is None:
        return 2 * _axis_size(config.get("axis", -1), shape) + 1
    if kind == "PReLU":
        shared = config.get("shared_axes") or []
        shared = [shared] if isinstance(shared, int) else shared
        dims = [1 if i in shared else d for i, d in enumerate(shape or (), start=0) if i > 0]
        return _prod(dims)
    if kind == "LayerScale":
        return _int(config.get("projection_dim"), 0)
    if kind == "STFTSpectrogram":
        frame = _int(config.get("frame_length"), 0)
        fft = _int(config.get("fft_length"), 0) or 2 ** math.ceil(math.log2(max(frame, 1)))
        kernels = 1 if config.get("mode") in ("real", "imag") else 2
        return kernels * frame * (fft // 2 + 1)
    if kind == "AdditiveAttention":
        return _int(shape[-1] if shape else 1) if config.get("use_scale", True) else 0
    return 0


def _axis_size(axis: Any, shape: Shape | None) -> int:
    if not shape:
        return 1
    axes = [axis] if isinstance(axis, int) else axis if isinstance(axis, list) else [-1]
    size = 1
    for a in axes:
        if isinstance(a, int) and -len(shape) <= a < len(shape):
            size *= _int(shape[a])
    return size


def _einsum(config: dict, shape: Shape | None) -> int:
    from vizkit.loading._allow import quiet_keras

    quiet_keras()
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    out = config.get("output_shape")
    out = [out] if isinstance(out, int) else out
    try:
        kernel, bias = _analyze_einsum_string(
            config.get("equation"), config.get("bias_axes"), shape, out
        )[:2]
    except Exception:  # noqa: BLE001 - Keras will refuse the equation itself
        return 0
    return _prod(list(kernel)) + (_prod(list(bias)) if bias else 0)


def _attention(kind: str, config: dict, inputs: list) -> int:
    def last(i: int, fallback: int) -> int:
        shape = inputs[i] if len(inputs) > i else None
        return _int(shape[-1]) if shape else fallback

    q = last(0, 1)
    v = last(1, q)
    k = last(2, v)
    bias = 1 if config.get("use_bias", True) else 0
    if kind == "GroupedQueryAttention":
        d = _int(config.get("head_dim"), 0)
        hq, hkv = _int(config.get("num_query_heads"), 0), _int(config.get("num_key_value_heads"), 0)
        return (q * hq * d + k * hkv * d + v * hkv * d + hq * d * q) + bias * (
            hq * d + 2 * hkv * d + q
        )
    heads, key_dim = _int(config.get("num_heads"), 0), _int(config.get("key_dim"), 0)
    value_dim = _int(config.get("value_dim"), 0) or key_dim
    out = config.get("output_shape")
    out_dim = _prod(out) if out else q
    weights = q * heads * key_dim + k * heads * key_dim + v * heads * value_dim
    weights += heads * value_dim * out_dim
    return weights + bias * (2 * heads * key_dim + heads * value_dim + out_dim)


def output_shape(kind: str | None, config: dict, inputs: list) -> Shape | None:
    """The output shape of common Keras layers (None when vizkit does not know it)."""
    shape = inputs[0] if inputs else None
    if shape is None or kind is None:
        return None
    batch = shape[0]
    if kind in _IDENTITY:
        return shape
    if kind == "Dense":
        return shape[:-1] + (_int(config.get("units"), 0),)
    if kind == "Flatten":
        return (batch, _prod([d for d in shape[1:] if d is not None]))
    if kind == "Reshape":
        target = config.get("target_shape")
        return (batch, *target) if isinstance(target, (list, tuple)) else None
    if kind == "Embedding":
        return shape + (_int(config.get("output_dim"), 0),)
    if kind in ("RepeatVector",):
        return (batch, _int(config.get("n"), 0)) + shape[1:]
    if kind.startswith(
        ("GlobalAveragePooling", "GlobalMaxPooling", "GlobalAvgPool", "GlobalMaxPool")
    ):
        if config.get("keepdims"):
            return None
        return (batch, _channels(config, shape))
    if kind in ("Concatenate",) and all(inputs):
        axis = config.get("axis", -1)
        if isinstance(axis, int) and all(s[axis] is not None for s in inputs):
            total = sum(s[axis] for s in inputs)
            out = list(shape)
            out[axis] = total
            return tuple(out)
    if kind in ("Resizing", "CenterCrop", "RandomCrop"):
        h, w = _int(config.get("height"), 0), _int(config.get("width"), 0)
        return (batch, h, w, shape[-1]) if len(shape) == 4 else None
    if kind.startswith(("Conv", "SeparableConv", "DepthwiseConv", "MaxPooling", "AveragePooling")):
        return _conv_output(kind, config, shape)
    if kind.startswith(("MaxPool", "AvgPool")):
        return _conv_output(kind, config, shape)
    if kind.endswith("Cell"):
        return shape[:-1] + (_int(config.get("units"), 0),)
    if kind in ("SimpleRNN", "LSTM", "GRU"):
        units = _int(config.get("units"), 0)
        return shape[:-1] + (units,) if config.get("return_sequences") else (batch, units)
    return None


def _conv_output(kind: str, config: dict, shape: Shape) -> Shape | None:
    rank = _rank(kind)
    if len(shape) != rank + 2 or config.get("data_format") == "channels_first":
        return None
    pooling = "Pool" in kind
    size = config.get("pool_size" if pooling else "kernel_size", 2 if pooling else 1)
    strides = config.get("strides") or size if pooling else config.get("strides", 1)
    dilation = 1 if pooling else config.get("dilation_rate", 1)
    sizes, steps, dilations = (
        [v] * rank if isinstance(v, int) else v for v in (size, strides, dilation)
    )
    if not all(isinstance(v, (list, tuple)) for v in (sizes, steps, dilations)):
        return None
    spatial = []
    for dim, k, s, d in zip(shape[1:-1], sizes, steps, dilations):
        k, s = (max(_int(k), 1) - 1) * max(_int(d), 1) + 1, max(_int(s), 1)
        if dim is None:
            spatial.append(None)
        elif "Transpose" in kind:
            spatial.append(dim * s + (max(k - s, 0) if config.get("padding") == "valid" else 0))
        elif config.get("padding") == "same":
            spatial.append(-(-dim // s))
        else:
            spatial.append(max((dim - k) // s + 1, 0))
    if pooling or kind.startswith("DepthwiseConv"):
        channels = shape[-1]
        if kind.startswith("DepthwiseConv") and channels is not None:
            channels *= _int(config.get("depth_multiplier"), 1)
    else:
        channels = _int(config.get("filters"), 0)
    return (shape[0], *spatial, channels)
