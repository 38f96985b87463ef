"""The compiled optimizer behind :func:`vizkit.maximize_activation`.

One :class:`Engine` per feature model, objective, image shape and parameterization: the whole
step (image from its parameters, augmented views, forward, backward, penalties, Adam update)
runs inside one ``tf.function``, chunks of steps inside a ``tf.while_loop``. Everything a recipe
can change between runs without changing the graph (step size, spectrum decay and its schedule,
augmentation ranges, number of views, noise, contrast, penalty weights, value range) travels in
one float vector (:func:`hyper`), so new settings do not retrace.

Also here: the float32 feature model (:func:`feature_model`) that the optimization reads, with
float32 copies of mixed-precision layers and, for a ReLU target, its pre-activation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError
from vizkit.models import (
    activation_name,
    identity,
    layer_input_shape,
    linear_clone,
    model_cache,
    rebuild,
)
from vizkit.scoring import Scoring

# Square root of the empirical colour correlation of natural (ImageNet) images, from Lucid
# (Olah et al. 2017): decorrelated colour channels -> RGB.
_COLOR_CORRELATION_SVD_SQRT = np.asarray(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)
COLOR_MATRIX = _COLOR_CORRELATION_SVD_SQRT / np.max(
    np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0)
)
RELU_LEAK = 0.1

# The hyper-parameter vector: names -> positions.
HYPER = (
    "lr", "decay", "decay_start", "anneal_steps", "jitter", "zoom_lo", "zoom_hi", "rotation",
    "tv", "l2", "lo", "hi", "crop_lo", "crop_hi", "noise", "contrast", "views", "centre",
)  # fmt: skip
H = {name: index for index, name in enumerate(HYPER)}


def hyper(**values: float) -> np.ndarray:
    """The float32 vector the compiled loop reads; every name of :data:`HYPER` is required."""
    missing = sorted(set(HYPER) - set(values))
    if missing:
        raise ValueError(f"hyper-parameters missing: {missing}")
    return np.asarray([values[name] for name in HYPER], dtype=np.float32)


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


def is_relu(layer: keras.layers.Layer) -> bool:
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
    built-in relu instead (see :func:`is_relu`).
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
def rfft2d_freqs(height: int, width: int) -> np.ndarray:
    """Spatial frequency (cycles per pixel) of each coefficient of ``rfft2d``."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[: width // 2 + 1 + (width % 2)]
    return np.sqrt(fx * fx + fy * fy).astype(np.float32)


class Engine:
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
        self.freqs = rfft2d_freqs(self.height, self.width)
        self.run = tf.function(self._run, reduce_retracing=True)
        self.evaluate = tf.function(self._evaluate, reduce_retracing=True)
        self.evaluate_all = tf.function(self._evaluate_all, reduce_retracing=True)

    # parameters ------------------------------------------------------------------------------
    def param_shape(self, batch: int) -> tuple[int, ...]:
        if self.parameterization == "pixel":
            return (batch, self.height, self.width, self.channels)
        fh, fw = self.freqs.shape
        return (2, batch, self.channels, fh, fw)

    def _image(self, params: tf.Tensor, hyper: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        """Parameters -> image in the model's value range, ``(B, H, W, C)``, at ``step``."""
        if self.parameterization == "pixel":
            raw = params
        else:
            # coarse to fine: the decay moves from decay_start to decay over anneal_steps
            anneal = hyper[H["anneal_steps"]]
            done = tf.minimum(1.0, tf.cast(step, tf.float32) / tf.maximum(anneal, 1.0))
            start, end = hyper[H["decay_start"]], hyper[H["decay"]]
            decay = tf.where(anneal > 0, start + (end - start) * done, end)
            floor = 1.0 / max(self.height, self.width)
            scale = tf.pow(tf.maximum(tf.constant(self.freqs), floor), -decay)
            scale = scale * math.sqrt(self.height * self.width)
            spectrum = tf.complex(params[0] * scale, params[1] * scale)
            planes = tf.signal.irfft2d(spectrum)[:, :, : self.height, : self.width]
            raw = tf.transpose(planes, (0, 2, 3, 1)) / 4.0
        contrast = hyper[H["contrast"]]

        def fixed_contrast() -> tf.Tensor:
            centred = raw - tf.reduce_mean(raw, axis=[1, 2], keepdims=True)
            spread = tf.math.reduce_std(centred, axis=[1, 2, 3], keepdims=True)
            return centred * (contrast / (spread + 1e-6))

        raw = tf.cond(contrast > 0, fixed_contrast, lambda: raw)
        if self.decorrelate:
            raw = tf.einsum("bhwc,dc->bhwd", raw, tf.constant(COLOR_MATRIX))
        low, high = hyper[H["lo"]], hyper[H["hi"]]
        return low + (high - low) * tf.sigmoid(raw)

    # augmentation ----------------------------------------------------------------------------
    def _augment(self, images: tf.Tensor, hyper: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """``views`` augmented copies of each image (consecutive): one bilinear resampling each.

        A view is a random square crop (side ``crop_lo..crop_hi`` of the image, placed anywhere
        inside it) enlarged to the full size, zoomed by ``zoom_lo..zoom_hi``, rotated by up to
        ``rotation`` and shifted by up to ``jitter`` pixels; then Gaussian noise.
        """
        views = tf.cast(hyper[H["views"]], tf.int32)
        images = tf.repeat(images, views, axis=0)
        count = tf.shape(images)[0]
        rnd = tf.random.stateless_uniform((count, 4), seed=seed, minval=0.0, maxval=1.0)
        crop_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        side = tf.random.stateless_uniform((count,), seed=crop_seed, minval=0.0, maxval=1.0)
        side = hyper[H["crop_lo"]] + side * (hyper[H["crop_hi"]] - hyper[H["crop_lo"]])
        room = (1.0 - side)[:, None] * tf.constant([self.width, self.height], tf.float32) / 2.0
        shift = tf.round((rnd[:, 0:2] * 2.0 - 1.0) * (hyper[H["jitter"]] + room))
        zoom_lo, zoom_hi = hyper[H["zoom_lo"]], hyper[H["zoom_hi"]]
        zoom = (zoom_lo + rnd[:, 2] * (zoom_hi - zoom_lo)) / side
        angle = (rnd[:, 3] * 2.0 - 1.0) * hyper[H["rotation"]]
        cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
        cx, cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        # output (x, y) samples input A @ ((x, y) - c) + c + shift
        a0, a1, b0, b1 = cos, -sin, sin, cos
        a2 = cx + shift[:, 0] - a0 * cx - a1 * cy
        b2 = cy + shift[:, 1] - b0 * cx - b1 * cy
        zeros = tf.zeros_like(cos)
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.constant([self.height, self.width], tf.int32),
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )
        noise = hyper[H["noise"]] * (hyper[H["hi"]] - hyper[H["lo"]])
        noise_seed = tf.random.experimental.stateless_fold_in(seed, 2)
        return tf.cond(
            noise > 0,
            lambda: out + noise * tf.random.stateless_normal(tf.shape(out), seed=noise_seed),
            lambda: out,
        )

    # objective -------------------------------------------------------------------------------
    def _select(
        self,
        outputs: tf.Tensor,
        units: tf.Tensor,
        signs: tf.Tensor,
        leak: float = 0.0,
        centre: tf.Tensor | float = 0.0,
    ) -> tf.Tensor:
        """The objective of image ``i`` for its own target ``units[i]``: shape ``(B,)``.

        ``centre`` (class targets of a head with several logits) subtracts that fraction of the
        mean logit: 1 maximizes the class logit minus the mean logit.
        """
        values = self._objectives(outputs, leak)
        if self.rule is not None and values.shape[-1] != 1:
            values = values - centre * tf.reduce_mean(values, axis=-1, keepdims=True)
        return tf.gather(values, units, axis=1, batch_dims=1) * signs

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
        """``count`` Adam steps from step ``start``: the new state, the per-step loss and the
        objective (mean over the views, on the augmented images), and the image after them."""
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        span = hyper[H["hi"]] - hyper[H["lo"]]
        views = tf.cast(hyper[H["views"]], tf.int32)
        view_units = tf.repeat(units, views)
        view_signs = tf.repeat(signs, views)

        def body(i, params, m, v, losses, scores):
            step = start + i
            with tf.GradientTape() as tape:
                tape.watch(params)
                images = self._image(params, hyper, step)
                augmented = self._augment(images, hyper, tf.stack([seed, step]))
                outputs = self.features(augmented, training=False)
                exact = self._select(outputs, view_units, view_signs, leak=RELU_LEAK)
                target = self._select(
                    outputs, view_units, view_signs, leak=RELU_LEAK, centre=hyper[H["centre"]]
                )
                score = tf.reduce_mean(tf.reshape(exact, (-1, views)), axis=1)
                goal = tf.reduce_mean(tf.reshape(target, (-1, views)), axis=1)
                unit = (images - hyper[H["lo"]]) / span
                tv = tf.reduce_mean(tf.abs(unit[:, 1:] - unit[:, :-1]), axis=[1, 2, 3])
                tv += tf.reduce_mean(tf.abs(unit[:, :, 1:] - unit[:, :, :-1]), axis=[1, 2, 3])
                l2 = tf.reduce_mean(tf.square(unit - 0.5), axis=[1, 2, 3])
                magnitude = tf.stop_gradient(tf.abs(goal)) + 1e-3
                penalty = magnitude * (hyper[H["tv"]] * tv + hyper[H["l2"]] * l2)
                loss = penalty - goal
                total = tf.reduce_sum(loss)
            grad = tape.gradient(total, params)
            t = tf.cast(step + 1, tf.float32)
            m = beta1 * m + (1.0 - beta1) * grad
            v = beta2 * v + (1.0 - beta2) * tf.square(grad)
            m_hat = m / (1.0 - tf.pow(beta1, t))
            v_hat = v / (1.0 - tf.pow(beta2, t))
            params = params + (-hyper[H["lr"]]) * m_hat / (tf.sqrt(v_hat) + eps)
            return i + 1, params, m, v, losses.write(i, loss), scores.write(i, score)

        losses = tf.TensorArray(tf.float32, size=count, element_shape=tf.TensorShape([None]))
        scores = tf.TensorArray(tf.float32, size=count, element_shape=tf.TensorShape([None]))
        _, params, m, v, losses, scores = tf.while_loop(
            lambda i, *_: i < count,
            body,
            (tf.constant(0), params, m, v, losses, scores),
        )
        image = self._image(params, hyper, start + count)
        return params, m, v, losses.stack(), scores.stack(), image
