"""Activation maximization: synthesize the input that most excites a class, channel or unit.

Starting from faint noise, gradient ascent changes an image until the chosen target (a class
*logit*, the mean or centre neuron of a convolutional channel, or a dense unit) is as large as
possible. Raw gradient ascent gives high-frequency noise that the network responds to but a person
cannot read; the recipe that makes readable images follows Olah et al., "Feature Visualization",
Distill 2017 (https://distill.pub/2017/feature-visualization/) and Mordvintsev et al.,
"Differentiable Image Parameterizations", Distill 2018:

- the image is parameterized in **Fourier space** with a ``1/f**decay_power`` spectrum (low
  frequencies first) and, for RGB, **decorrelated colour**, then squashed into the model's value
  range with a sigmoid (or, with ``parameterization="pixel"``, one sigmoid per pixel);
- every step sees a **randomly jittered, scaled and rotated** copy (transformation robustness);
- optional **total-variation** and **L2** penalties;
- a final **polish** (``Recipe.polish``, the last 10% of the steps): the image as it will be
  shown, without augmentation and with a lighter L2 penalty.

Defaults adapt to the input size (:meth:`Recipe.for_input`): 28x28x1 digits get 1-2 pixel jitter
and no colour decorrelation, 64x64x3 images a few pixels, 224x224 RGB the Lucid settings.

Why vizkit runs its own optimizer instead of tf-keras-vis
--------------------------------------------------------
tf-keras-vis 0.8.7's ``ActivationMaximization`` runs each step eagerly in Python and applies its
rotation and scaling with scipy on host numpy arrays, so a step costs several forward+backward
passes (4 to 6x on the sample models, see ``bench/bench_activation_max.py``); it returns a ``tf.Tensor``, does nothing on ``mixed_float16``
models, optimizes unconstrained pixels (clipping only the returned copy) and has no Fourier
parameterization. Here the *whole* step (parameterization, augmentation, forward, backward,
regularizers, Adam update) runs inside one compiled ``tf.function``, and chunks of steps run in a
``tf.while_loop`` between progress reports, so 200 steps cost about as much as 200 bare
forward+backward passes; several targets are optimized together as one batch. The
tf-keras-vis-backed path (``backend="tf-keras-vis"``, in :mod:`vizkit.methods._tfkv`) is kept as a
reference implementation for comparison and benchmarking.

Dead units: when the target layer ends in a plain ReLU, the optimization sees its input ``z`` and
scores ``relu(z)`` with a small gradient also where ``z < 0`` (Lucid's "redirected ReLU"), so a
channel that is zero on the grey start image can still be reached; reported values are exact.

Mixed precision: the optimization always runs in float32. Layers with a ``mixed_float16`` /
``mixed_bfloat16`` policy are replaced by float32 copies (same weights, copied when the graph is
first built and cached per model object: after changing such a model's weights in place, pass a
new model object) in a rebuilt graph; the caller's model is never modified.

Tests and CI cap the number of steps with the environment variable ``VIZKIT_MAX_STEPS``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError, LayerError
from vizkit.models import (
    activation_name,
    get_layer,
    head_info,
    identity,
    layer_input_shape,
    layer_output_shape,
    linear_clone,
    model_cache,
    rebuild,
    require_image_model,
)
from vizkit.progress import Progress
from vizkit.results.inspection import ActivationImages
from vizkit.scoring import Scoring

__all__ = ["maximize_activation", "Recipe", "max_steps", "ENV_MAX_STEPS"]

ENV_MAX_STEPS = "VIZKIT_MAX_STEPS"
OBJECTIVES = ("mean", "center")
PARAMETERIZATIONS = ("fourier", "pixel")
BACKENDS = ("vizkit", "tf-keras-vis")
MAX_DEFAULT_UNITS = 16
NOISE_SAMPLES = 64  # uniform-noise images averaged for the noise baseline (shared by targets)
NOISE_SEED = 20170707  # fixed: the noise baseline does not depend on the run's seed

# Square root of the empirical colour correlation of natural (ImageNet) images, from Lucid
# (Olah et al. 2017): decorrelated colour channels -> RGB.
_COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
_COLOR_MATRIX = _COLOR_CORRELATION_SVD_SQRT / np.max(
    np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0)
)

ProgressHook = Callable[[int, int], Any]


def max_steps(steps: int) -> int:
    """``steps`` capped by the environment variable ``VIZKIT_MAX_STEPS`` (for fast tests)."""
    cap = os.environ.get(ENV_MAX_STEPS, "").strip()
    if cap:
        try:
            return max(1, min(int(steps), int(cap)))
        except ValueError:
            raise InputError(
                f"environment variable {ENV_MAX_STEPS}={cap!r} must be a whole number of steps"
            ) from None
    return int(steps)


# --------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that shapes an activation-maximization image.

    Attributes
    ----------
    steps : int
        Gradient-ascent steps (capped by ``VIZKIT_MAX_STEPS``).
    learning_rate : float
        Adam step size on the parameters (Fourier coefficients or pixel logits).
    parameterization : {"fourier", "pixel"}
        Fourier: the image is the inverse FFT of a spectrum scaled by ``1 / f**decay_power``
        (Mordvintsev et al. 2018); pixel: one free value per pixel. Both pass through a sigmoid
        into the model's value range.
    decay_power : float
        Spectrum decay; larger favours smoother images. Fourier only.
    decorrelate : bool
        Optimize RGB in a decorrelated colour basis (natural-image statistics). 3-channel only.
    jitter : int
        Largest random shift per step, in pixels.
    scale : (float, float)
        Range of the random zoom factor per step.
    rotation : float
        Largest random rotation per step, in degrees.
    tv_weight : float
        Weight of the total-variation penalty (mean absolute neighbour difference, on the
        0..1 scale), relative to the objective's current magnitude.
    l2_weight : float
        Weight of the L2 penalty (mean squared distance from mid-range, on the 0..1 scale),
        relative to the objective's current magnitude.
    init_std : float
        Standard deviation of the random starting parameters.
    polish : float
        Fraction of the steps, at the end, that optimize the image as it will be shown (no
        jitter, zoom or rotation) with the L2 weight times ``polish_l2``. The augmented phase
        finds a robust, readable structure; the polish raises contrast within it (on the digits
        CNN, +9% on the weakest class logit with images that look the same). 0 turns it off.
    polish_l2 : float
        Factor on ``l2_weight`` during the polish.
    """

    steps: int = 200
    learning_rate: float = 0.05
    parameterization: str = "fourier"
    decay_power: float = 1.0
    decorrelate: bool = True
    jitter: int = 2
    scale: tuple[float, float] = (0.9, 1.1)
    rotation: float = 8.0
    tv_weight: float = 0.3
    l2_weight: float = 5.0
    init_std: float = 0.01
    polish: float = 0.1
    polish_l2: float = 0.5

    @classmethod
    def for_input(cls, shape: Sequence[int | None], **overrides: Any) -> Recipe:
        """Defaults for an input of shape ``(H, W, C)`` (or ``(N, H, W, C)``), then overrides.

        Jitter is about 1/16 of the smaller side (1 pixel at minimum), so 28x28 digits move by
        2 pixels and 224x224 images by 14; rotation and zoom stay moderate on small inputs, where
        a few degrees already move the border pixels by a large fraction of a stroke. Small
        inputs (32 pixels or less) take a larger step size (0.1 instead of 0.05): their spectrum
        has few coefficients, and 40 steps already give readable digits. ImageNet-size inputs
        (128 pixels or more) take a steeper spectrum (``decay_power=1.5`` instead of Lucid's
        1.0) and half the step size (0.025): on EfficientNet-Lite0 (``imagenet_lite0``) Lucid's
        1/f gives a texture collage in which no object stands out, 1/f**1.5 gives larger object
        parts (goldfish, a ladybug, bus windows; 1/f**2 saturates into flat colour blobs), and the
        smaller step keeps its colours from saturating; more steps (512, Lucid's count) only add
        clutter.
        """
        dims = [int(d) for d in tuple(shape)[-3:] if d is not None]
        if len(dims) != 3:
            raise InputError(
                f"activation maximization needs a fixed input size (height, width, channels); "
                f"got {tuple(shape)}"
            )
        height, width, channels = dims
        side = min(height, width)
        small = side <= 32
        base = cls(
            learning_rate=0.1 if small else (0.025 if side >= 128 else 0.05),
            jitter=max(1, round(side / 16)),
            rotation=6.0 if small else 10.0,
            scale=(0.92, 1.08) if small else (0.9, 1.1),
            decorrelate=channels == 3,
            decay_power=1.5 if side >= 128 else 1.0,
        )
        return base.replace(**overrides)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed; unknown names raise :class:`InputError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InputError(
                f"unknown activation-maximization parameter(s) {', '.join(unknown)}: "
                f"choose from {', '.join(sorted(names))}"
            )
        recipe = dataclasses.replace(self, **changes)
        recipe.validate()
        return recipe

    def validate(self) -> None:
        """Raise :class:`InputError` on a value that cannot work."""
        if self.parameterization not in PARAMETERIZATIONS:
            raise InputError(
                f"parameterization {self.parameterization!r} is not one of "
                f"{', '.join(PARAMETERIZATIONS)}"
            )
        if int(self.steps) < 1:
            raise InputError(f"steps must be at least 1, not {self.steps}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be positive, not {self.learning_rate}")
        low, high = self.scale
        if not 0 < low <= high:
            raise InputError(f"scale {self.scale} must be (low, high) with 0 < low <= high")
        if not 0 <= self.polish <= 1:
            raise InputError(f"polish must be a fraction between 0 and 1, not {self.polish}")
        for name in (
            "jitter",
            "rotation",
            "tv_weight",
            "l2_weight",
            "init_std",
            "decay_power",
            "polish_l2",
        ):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative, not {getattr(self, name)}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Target:
    path: str  # layer path ("" for the head)
    kind: str  # "class", "channel" or "unit"
    output: int  # the model output the head belongs to
    chosen: np.ndarray  # (B,) int64: the classes, channels or units asked for
    units: np.ndarray  # (B,) int32 index into the last axis
    signs: np.ndarray  # (B,) float32: -1 scores the negated logit (class 0 of a single-unit head)
    labels: tuple[str, ...]
    layer_units: int
    class_names: tuple[str, ...] | None


def resolve_units(units: Any, available: int, noun: str) -> np.ndarray:
    if units is None:
        return np.arange(min(available, MAX_DEFAULT_UNITS), dtype=np.int64)
    if isinstance(units, (bool, np.bool_)):
        raise InputError(f"{noun} must be an index, not {units!r}")
    values = np.atleast_1d(np.asarray(units))
    if values.size == 0:
        raise InputError(f"no {noun}s given: pass at least one index")
    if values.dtype.kind not in "iu":
        raise InputError(f"{noun}s must be integer indices, got {values.tolist()!r}")
    values = values.astype(np.int64).reshape(-1)
    bad = values[(values < -available) | (values >= available)]
    if bad.size:
        raise InputError(
            f"{noun} {int(bad[0])} is out of range: the layer has {available} "
            f"{noun}s (0 to {available - 1})"
        )
    return values % available


def _resolve_target(
    model: keras.Model,
    layer: Any,
    units: Any,
    output: int | str | None,
    class_names: Sequence[str] | None,
) -> _Target:
    path = None if layer is None else get_layer(model, layer)[0]
    try:
        head = head_info(model, output)
    except InputError:
        if path is None:
            raise
        head = head_info(model, 0)  # an inner layer of a multi-output model
    if path is None or path == head.path:
        count = head.num_classes
        chosen = resolve_units(units, count, "class")
        indices, signs = (np.asarray(v) for v in Scoring(head, "logit").units(chosen))
        names = tuple(class_names) if class_names is not None else None
        if names is not None and len(names) != count:
            raise InputError(f"{len(names)} class names given for {count} classes")
        labels = tuple(
            f"class {u}" + (f" ({names[u]})" if names is not None else "") for u in chosen
        )
        return _Target(
            path=head.path,
            kind="class",
            output=head.output,
            chosen=chosen,
            units=indices,
            signs=signs,
            labels=labels,
            layer_units=count,
            class_names=names,
        )
    _, lyr = get_layer(model, path)
    if isinstance(lyr, keras.Model):
        raise LayerError(
            f"layer {path!r} is a nested model: pick one of its layers, e.g. {path}/<name>"
        )
    shape = layer_output_shape(lyr)
    if shape[-1] is None:
        raise LayerError(f"layer {path!r} has no fixed number of channels: pick another layer")
    count = int(shape[-1])
    spatial = len(shape) >= 4
    noun = "channel" if spatial else "unit"
    chosen = resolve_units(units, count, noun)
    return _Target(
        path=path,
        kind=noun,
        output=head.output,
        chosen=chosen,
        units=chosen.astype(np.int32),
        signs=np.ones(len(chosen), dtype=np.float32),
        labels=tuple(f"{noun} {u}" for u in chosen),
        layer_units=count,
        class_names=None,
    )


# --------------------------------------------------------------------------------------------
# Float32 graphs for mixed-precision models
# --------------------------------------------------------------------------------------------
def _is_low_precision(layer: keras.layers.Layer) -> bool:
    compute = str(getattr(layer, "compute_dtype", "float32") or "float32")
    return compute in ("float16", "bfloat16")


def _copy_layer(
    layer: keras.layers.Layer, path: str, *, float32: bool, linear: bool
) -> keras.layers.Layer:
    """A copy of ``layer`` (same weights, taken now) in float32 and/or without its activation."""
    try:
        config = layer.get_config()
        if float32:
            config["dtype"] = "float32"
        if linear:
            config["activation"] = "linear"
        config["name"] = f"{layer.name}__vizkit"
        clone = type(layer).from_config(config)
        clone.build(layer_input_shape(layer))
        clone.set_weights(layer.get_weights())
    except Exception as err:  # custom layers that cannot round-trip their config
        policy = getattr(getattr(layer, "dtype_policy", None), "name", "its dtype policy")
        raise InputError(
            f"layer {path!r} ({type(layer).__name__}, {policy}) cannot be copied for "
            f"activation maximization ({type(err).__name__}: {err}); build the model with a "
            "float32 policy, or pick another layer"
        ) from err
    return clone


def float32_substitute(path: str, layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """For :func:`vizkit.models.rebuild`: a float32 copy of a mixed-precision layer (same weights).

    Returns None for float32 layers and nested models (which ``rebuild`` inlines).
    """
    if isinstance(layer, keras.Model) or not _is_low_precision(layer):
        return None
    return _copy_layer(layer, path, float32=True, linear=False)


def _needs_float32(model: keras.Model) -> bool:
    from vizkit.models import iter_layers

    return any(_is_low_precision(layer) for _, layer in iter_layers(model))


def _is_relu(layer: keras.layers.Layer) -> bool:
    """True for a plain ReLU: a ReLU/Activation("relu") layer or a layer with relu activation."""
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return (
            config.get("max_value") is None
            and not config.get("negative_slope")
            and not config.get("threshold")
        )
    return activation_name(layer) == "relu"


def feature_model(
    model: keras.Model, path: str, *, pre_relu: bool = False, output: int = 0
) -> keras.Model:
    """A cached float32 functional model ``input -> output of layer path`` (head as logits).

    ``pre_relu=True`` returns the input of a ReLU layer / the pre-activation of a layer with a
    built-in relu instead (see :func:`_is_relu`).
    """
    cache = model_cache(model)
    key = ("vizkit.activation_max.feature_model", path, pre_relu, output)
    if key not in cache:
        low = _needs_float32(model)

        def substitute(where: str, layer: keras.layers.Layer) -> Any:
            if pre_relu and where == path:
                if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
                    return identity
                if type(layer) in (keras.layers.Dense, keras.layers.Conv2D) and not low:
                    return linear_clone(layer)  # shares the layer's variables
                return _copy_layer(layer, where, float32=_is_low_precision(layer), linear=True)
            return float32_substitute(where, layer) if low else None

        full = rebuild(model, [path], logits=True, output=output, substitute=substitute)
        cache[key] = keras.Model(full.inputs[0], full.outputs[1], name=f"{model.name}_features")
    return cache[key]


# --------------------------------------------------------------------------------------------
# The compiled optimizer
# --------------------------------------------------------------------------------------------
_RELU_LEAK = 0.1
_H_LR, _H_DECAY, _H_JITTER, _H_SLO, _H_SHI, _H_ROT, _H_TV, _H_L2, _H_LO, _H_HI = range(10)


def _rfft2d_freqs(height: int, width: int) -> np.ndarray:
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[: width // 2 + 1 + (width % 2)]
    return np.sqrt(fx * fx + fy * fy).astype(np.float32)


class _Engine:
    """Compiled step loop for one feature model, objective, image shape and parameterization."""

    def __init__(
        self,
        features: keras.Model,
        objective: str,
        image_shape: tuple[int, int, int],
        parameterization: str,
        decorrelate: bool,
        rectify: bool = False,
        rule: Scoring | None = None,
    ) -> None:
        self.features = features
        self.rule = rule  # the head's scoring, for class targets
        self.rectify = rectify
        self.objective = objective
        self.height, self.width, self.channels = image_shape
        self.parameterization = parameterization
        self.decorrelate = decorrelate and self.channels == 3
        self.freqs = _rfft2d_freqs(self.height, self.width)
        self.run = tf.function(self._run, reduce_retracing=True)
        self.evaluate = tf.function(self._evaluate, reduce_retracing=True)
        self.evaluate_all = tf.function(self._evaluate_all, reduce_retracing=True)

    # parameters ------------------------------------------------------------------------------
    def param_shape(self, batch: int) -> tuple[int, ...]:
        if self.parameterization == "pixel":
            return (batch, self.height, self.width, self.channels)
        fh, fw = self.freqs.shape
        return (2, batch, self.channels, fh, fw)

    def _image(self, params: tf.Tensor, hyper: tf.Tensor) -> tf.Tensor:
        """Parameters -> image in the model's value range, ``(B, H, W, C)``."""
        if self.parameterization == "pixel":
            raw = params
        else:
            decay = hyper[_H_DECAY]
            floor = 1.0 / max(self.height, self.width)
            scale = tf.pow(tf.maximum(tf.constant(self.freqs), floor), -decay)
            scale = scale * math.sqrt(self.height * self.width)
            spectrum = tf.complex(params[0] * scale, params[1] * scale)
            planes = tf.signal.irfft2d(spectrum)[:, :, : self.height, : self.width]
            raw = tf.transpose(planes, (0, 2, 3, 1)) / 4.0
        if self.decorrelate:
            raw = tf.einsum("bhwc,dc->bhwd", raw, tf.constant(_COLOR_MATRIX))
        low, high = hyper[_H_LO], hyper[_H_HI]
        return low + (high - low) * tf.sigmoid(raw)

    # augmentation ----------------------------------------------------------------------------
    def _augment(self, images: tf.Tensor, hyper: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Random shift, zoom and rotation per image: one bilinear resampling."""
        batch = tf.shape(images)[0]
        rnd = tf.random.stateless_uniform((batch, 4), seed=seed, minval=0.0, maxval=1.0)
        jitter = hyper[_H_JITTER]
        shift = (rnd[:, 0:2] * 2.0 - 1.0) * jitter
        shift = tf.round(shift)
        zoom = hyper[_H_SLO] + rnd[:, 2] * (hyper[_H_SHI] - hyper[_H_SLO])
        angle = (rnd[:, 3] * 2.0 - 1.0) * hyper[_H_ROT]
        cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
        cx, cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        # output (x, y) samples input A @ ((x, y) - c) + c + shift
        a0, a1, b0, b1 = cos, -sin, sin, cos
        a2 = cx + shift[:, 0] - a0 * cx - a1 * cy
        b2 = cy + shift[:, 1] - b0 * cx - b1 * cy
        zeros = tf.zeros_like(cos)
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.constant([self.height, self.width], tf.int32),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )

    # objective -------------------------------------------------------------------------------
    def _select(
        self, outputs: tf.Tensor, units: tf.Tensor, signs: tf.Tensor, leak: float = 0.0
    ) -> tf.Tensor:
        """The objective of image ``i`` for its own target ``units[i]``: shape ``(B,)``."""
        return tf.gather(self._objectives(outputs, leak), units, axis=1, batch_dims=1) * signs

    def _objectives(self, outputs: tf.Tensor, leak: float = 0.0) -> tf.Tensor:
        """Every unit's objective (channel mean or centre, unit value, logit): ``(B, units)``."""
        out = tf.cast(outputs, tf.float32)
        if self.rectify:
            # ``features`` gives the pre-activation z: the value is relu(z), but while optimizing
            # a small gradient also flows where z < 0, so units dead on the start image can
            # still be reached (the "redirected ReLU" idea of Lucid).
            rectified = tf.nn.relu(out)
            out = rectified + leak * (out - tf.stop_gradient(out)) if leak else rectified
        rank = out.shape.rank
        if rank == 4 and self.objective == "center":
            h, w = out.shape[1], out.shape[2]
            out = out[:, h // 2, w // 2, :]
        elif rank > 2:
            out = tf.reduce_mean(out, axis=list(range(1, rank - 1)))
        return out

    def _evaluate_all(self, images: tf.Tensor, units: tf.Tensor, signs: tf.Tensor) -> tf.Tensor:
        """Exact objective of every target on every image: ``(images, targets)``."""
        outputs = self.features(images, training=False)
        return tf.gather(self._objectives(outputs), units, axis=1) * signs

    def _evaluate(
        self, images: tf.Tensor, units: tf.Tensor, signs: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Exact objective per image (no augmentation), and for class targets the predicted
        class (:meth:`vizkit.scoring.Scoring.predicted` on the logits)."""
        outputs = self.features(images, training=False)
        score = self._select(outputs, units, signs)
        if self.rule is None:
            return score, tf.zeros_like(units)
        return score, self.rule.predicted(outputs)

    # the loop --------------------------------------------------------------------------------
    def _run(
        self,
        params: tf.Tensor,
        m: tf.Tensor,
        v: tf.Tensor,
        start: tf.Tensor,
        count: tf.Tensor,
        units: tf.Tensor,
        signs: tf.Tensor,
        hyper: tf.Tensor,
        seed: tf.Tensor,
    ) -> tuple[tf.Tensor, ...]:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        span = hyper[_H_HI] - hyper[_H_LO]

        def body(i, params, m, v, losses, scores):
            step = start + i
            with tf.GradientTape() as tape:
                tape.watch(params)
                images = self._image(params, hyper)
                augmented = self._augment(images, hyper, tf.stack([seed, step]))
                outputs = self.features(augmented, training=False)
                score = self._select(outputs, units, signs, leak=_RELU_LEAK)
                unit = (images - hyper[_H_LO]) / span
                tv = tf.reduce_mean(tf.abs(unit[:, 1:] - unit[:, :-1]), axis=[1, 2, 3])
                tv += tf.reduce_mean(tf.abs(unit[:, :, 1:] - unit[:, :, :-1]), axis=[1, 2, 3])
                l2 = tf.reduce_mean(tf.square(unit - 0.5), axis=[1, 2, 3])
                magnitude = tf.stop_gradient(tf.abs(score)) + 1e-3
                penalty = magnitude * (hyper[_H_TV] * tv + hyper[_H_L2] * l2)
                loss = penalty - score
                total = tf.reduce_sum(loss)
            grad = tape.gradient(total, params)
            t = tf.cast(step + 1, tf.float32)
            m = beta1 * m + (1.0 - beta1) * grad
            v = beta2 * v + (1.0 - beta2) * tf.square(grad)
            m_hat = m / (1.0 - tf.pow(beta1, t))
            v_hat = v / (1.0 - tf.pow(beta2, t))
            params = params + (-hyper[_H_LR]) * m_hat / (tf.sqrt(v_hat) + eps)
            return i + 1, params, m, v, losses.write(i, loss), scores.write(i, score)

        losses = tf.TensorArray(tf.float32, size=count, element_shape=tf.TensorShape([None]))
        scores = tf.TensorArray(tf.float32, size=count, element_shape=tf.TensorShape([None]))
        _, params, m, v, losses, scores = tf.while_loop(
            lambda i, *_: i < count,
            body,
            (tf.constant(0), params, m, v, losses, scores),
        )
        return params, m, v, losses.stack(), scores.stack(), self._image(params, hyper)


def _engine(
    model: keras.Model,
    target: _Target,
    objective: str,
    recipe: Recipe,
    shape: tuple[int, int, int],
) -> _Engine:
    cache = model_cache(model)
    decorrelate = bool(recipe.decorrelate) and shape[2] == 3
    rectify = target.kind != "class" and _is_relu(get_layer(model, target.path)[1])
    key = (
        "vizkit.activation_max.engine",
        target.path,
        target.output,
        objective,
        recipe.parameterization,
        decorrelate,
        rectify,
    )
    if key not in cache:
        features = feature_model(model, target.path, pre_relu=rectify, output=target.output)
        rule = Scoring(head_info(model, target.output), "logit") if target.kind == "class" else None
        cache[key] = _Engine(
            features, objective, shape, recipe.parameterization, decorrelate, rectify, rule
        )
    return cache[key]


def _hyper(recipe: Recipe, value_range: tuple[float, float]) -> np.ndarray:
    hyper = np.zeros(10, dtype=np.float32)
    hyper[_H_LR] = recipe.learning_rate
    hyper[_H_DECAY] = recipe.decay_power
    hyper[_H_JITTER] = recipe.jitter
    hyper[_H_SLO], hyper[_H_SHI] = recipe.scale
    hyper[_H_ROT] = math.radians(recipe.rotation)
    hyper[_H_TV] = recipe.tv_weight
    hyper[_H_L2] = recipe.l2_weight
    hyper[_H_LO], hyper[_H_HI] = value_range
    return hyper


def noise_images(image_shape: tuple[int, ...], value_range: tuple[float, float]) -> np.ndarray:
    """The ``NOISE_SAMPLES`` uniform-noise images of the noise baseline (fixed seed)."""
    rng = np.random.default_rng(NOISE_SEED)
    low, high = value_range
    return rng.uniform(low, high, (NOISE_SAMPLES, *image_shape)).astype(np.float32)


def _optimize_native(
    engine: _Engine,
    target: _Target,
    recipe: Recipe,
    steps: int,
    value_range: tuple[float, float],
    seed: int,
    progress: Progress,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    batch = len(target.units)
    rng = np.random.default_rng(seed)
    params = tf.constant(
        rng.normal(0.0, recipe.init_std, engine.param_shape(batch)).astype(np.float32)
    )
    m = tf.zeros_like(params)
    v = tf.zeros_like(params)
    units = tf.constant(target.units, tf.int32)
    signs = tf.constant(target.signs, tf.float32)
    augmented = tf.constant(_hyper(recipe, value_range))
    polish = recipe.replace(
        jitter=0, rotation=0.0, scale=(1.0, 1.0), l2_weight=recipe.l2_weight * recipe.polish_l2
    )
    polished = tf.constant(_hyper(polish, value_range))
    main = steps - round(recipe.polish * steps)
    chunk = max(1, min(50, math.ceil(steps / 20)))
    losses, scores = [], []
    done = 0
    images = None
    seed_t = tf.constant(int(seed) % (2**31 - 1), tf.int32)
    while done < steps:
        # chunks never straddle the switch to the polish phase
        end = main if done < main else steps
        count = min(chunk, end - done)
        hyper = augmented if done < main else polished
        params, m, v, loss, score, images = engine.run(
            params,
            m,
            v,
            tf.constant(done, tf.int32),
            tf.constant(count, tf.int32),
            units,
            signs,
            hyper,
            seed_t,
        )
        losses.append(loss.numpy())
        scores.append(score.numpy())
        done += count
        progress.update(done)
    assert images is not None
    return images.numpy(), np.concatenate(losses), np.concatenate(scores)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def maximize_activation(
    model: keras.Model,
    layer: str | int | None = None,
    units: int | Sequence[int] | None = None,
    *,
    objective: str = "mean",
    steps: int | None = None,
    recipe: Recipe | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    progress: bool | ProgressHook | None = None,
    output: int | str | None = None,
    class_names: Sequence[str] | None = None,
    backend: str = "vizkit",
    **params: Any,
) -> ActivationImages:
    """Synthesize, for each target, the input that maximizes it.

    Parameters
    ----------
    model : keras.Model
        An image model (Sequential or Functional, nested models allowed). Never modified;
        mixed-precision models are optimized in float32.
    layer : str or int, optional
        The layer whose units to maximize (path such as ``"base/conv2"``, or index). None means
        the output classes, scored on the **logit** (a softmax/sigmoid head is bypassed).
    units : int or sequence of int, optional
        Classes, channels or units to maximize, all in one batched optimization. None means the
        first 16 (all classes of a small classifier).
    objective : {"mean", "center"}
        For a channel of a convolutional layer: maximize its spatial mean, or the single neuron
        at the centre of the feature map. Ignored for classes and dense units.
    steps : int, optional
        Gradient-ascent steps (default from the recipe); capped by ``VIZKIT_MAX_STEPS``.
    recipe : Recipe, optional
        The full recipe; default :meth:`Recipe.for_input` for the model's input size.
    value_range : (float, float)
        The model's input scale (what black and white map to); images are produced in it.
    seed : int
        Seeds the starting noise and the random augmentation: equal seeds give equal images.
    progress : None, bool or callable
        None shows a tqdm bar in notebooks, True everywhere (stderr), False never; a callable
        is called as ``progress(done_steps, total_steps)`` after each chunk of steps (the
        dashboard's bar). See :mod:`vizkit.progress`.
    output : int or str, optional
        Which output of a multi-output model holds the classes.
    class_names : sequence of str, optional
        Names of the classes, for titles.
    backend : {"vizkit", "tf-keras-vis"}
        ``"vizkit"``: the compiled optimizer described in the module docstring.
        ``"tf-keras-vis"``: tf-keras-vis' ``ActivationMaximization`` on the same float32 logit
        graph, with vizkit's recipe translated to its regularizers and input modifiers (pixel
        parameterization only; slower; for comparison).
    **params
        Overrides of single :class:`Recipe` fields (``jitter=1``, ``tv_weight=0.1``,
        ``parameterization="pixel"``, ...).

    Returns
    -------
    ActivationImages
        Images ``(B, H, W, C)`` in ``value_range`` (``display`` gives them in [0, 1]), the
        achieved activation per target, its value on random noise and on a mid-grey input, and
        the loss and objective history ``(steps, B)``.

    References
    ----------
    Erhan et al., "Visualizing Higher-Layer Features of a Deep Network", 2009; Simonyan et al.,
    "Deep Inside Convolutional Networks", 2014; Olah et al., "Feature Visualization", Distill
    2017; Mordvintsev et al., "Differentiable Image Parameterizations", Distill 2018.
    """
    shape = require_image_model(model, "activation maximization")
    image_shape = tuple(int(d) if d is not None else -1 for d in shape[1:])
    if -1 in image_shape:
        raise InputError(
            f"activation maximization needs a fixed input size; model {model.name!r} accepts "
            f"{tuple(shape[1:])}: wrap it in a model with a fixed Input shape"
        )
    if objective not in OBJECTIVES:
        raise InputError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise InputError(f"value_range {value_range} must be (low, high) with high > low")
    base = recipe if recipe is not None else Recipe.for_input(image_shape)
    if steps is not None:
        params["steps"] = int(steps)
    recipe = base.replace(**params)
    total = max_steps(recipe.steps)
    target = _resolve_target(model, layer, units, output, class_names)

    progress_bar = Progress(progress, total, desc="activation maximization", unit="step")
    try:
        if backend == "vizkit":
            engine = _engine(model, target, objective, recipe, image_shape)
            images, losses, scores = _optimize_native(
                engine, target, recipe, total, (low, high), seed, progress_bar
            )
        else:
            from vizkit.methods._tfkv.activation_max import run_activation_maximization

            engine = _engine(model, target, objective, recipe, image_shape)
            images, losses, scores = run_activation_maximization(
                engine.features,
                units=target.units,
                signs=target.signs,
                objective=objective,
                recipe=recipe,
                steps=total,
                value_range=(low, high),
                seed=seed,
                progress=progress_bar.update,
                rectify=engine.rectify,
            )
    finally:
        progress_bar.close()

    # The final images and mid-grey, scored exactly; and the noise baseline: the mean over
    # NOISE_SAMPLES uniform-noise images (one noise image is a poor baseline, its logits vary a
    # lot), the same images for every target and every run.
    batch = len(target.units)
    units = tf.constant(target.units, tf.int32)
    signs = tf.constant(target.signs, tf.float32)
    grey = np.full((batch, *image_shape), (low + high) / 2.0, dtype=np.float32)
    values, classes = engine.evaluate(
        tf.constant(np.concatenate([images.astype(np.float32), grey])),
        tf.concat([units, units], axis=0),
        tf.concat([signs, signs], axis=0),
    )
    achieved, mean_activation = values.numpy().reshape(2, batch)
    predicted = classes.numpy()[:batch].astype(np.int64) if target.kind == "class" else None
    noise = noise_images(image_shape, (low, high))
    on_noise = engine.evaluate_all(tf.constant(noise), units, signs).numpy()
    noise_activation, noise_spread = on_noise.mean(axis=0), on_noise.std(axis=0)

    return ActivationImages(
        images=images.astype(np.float32),
        units=target.chosen,
        labels=target.labels,
        layer=target.path,
        kind=target.kind,
        objective=objective if target.kind == "channel" else "value",
        activation=achieved.astype(np.float32),
        noise_activation=noise_activation.astype(np.float32),
        mean_activation=mean_activation.astype(np.float32),
        loss_history=losses.astype(np.float32),
        score_history=scores.astype(np.float32),
        value_range=(low, high),
        predicted=predicted,
        class_names=target.class_names,
        steps=total,
        params=recipe.as_dict(),
        backend=backend,
        model_name=model.name,
        noise_spread=noise_spread.astype(np.float32),
    )
