"""Gradient methods: saliency, SmoothGrad, gradient x input, integrated gradients, guided and
rectified (DeconvNet) backpropagation.

All of them run one compiled function, ``x, targets -> (head output, d score / d x)``, cached per
model and backpropagation rule. The target ``-1`` means "the predicted class" and is resolved in
the same pass, so saliency costs one forward and one backward pass.

Why not tf-keras-vis here: its ``Saliency`` runs eagerly (SmoothGrad one sample at a time);
handed vizkit's prepared model it measured 3.2x the forward+backward floor in CPU time for
vanilla gradients against the issue's 1.5x budget (see ``bench/README.md``); its
guided-backprop modifier only touches ``activation=relu`` attributes of top-level layers (not
``ReLU()`` layers, not nested models) and mutates the model it is given. The compiled function
here batches noise samples and integration steps across images into ``batch_size`` chunks, in
one compiled loop, on a graph whose input linear prefix is backpropagated once per image rather
than once per sample (see :func:`vizkit.methods.folding.averaging_graph`; every layer computes
what the caller's model computes, so the maps equal plain tape gradients up to summation order).
``engine="tf-keras-vis"`` on :class:`Saliency` runs the same computation through tf-keras-vis
(on vizkit's rebuilt model) for cross-checking; the tests assert both engines agree.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError, LayerError
from vizkit.methods.base import (
    CHANNELS,
    CHUNKS_IN_FLIGHT,
    SEED,
    Method,
    common_params,
    first_output,
    reduce_channels,
    tf_resolve,
    tf_score,
)
from vizkit.models import (
    activation_name,
    linear_clone,
)
from vizkit.registry import Param, register

FAMILY = "gradient"
_RELU_NAMES = ("relu", "relu6")


# --------------------------------------------------------------------------------------------
# Backpropagation rules for ReLUs (guided, rectified) as substitute layers
# --------------------------------------------------------------------------------------------
@tf.custom_gradient
def _positive_gate(y: Any) -> Any:
    """Identity forward; passes only positive gradients backward (guided backprop's gate)."""

    def grad(dy: Any) -> Any:
        return tf.nn.relu(dy)

    return tf.identity(y), grad


class _RuleLayer(keras.layers.Layer):
    """A ReLU (fused or standalone) whose backward pass follows a modified rule.

    ``guided``: forward unchanged; backward ``dy * (dy > 0) * relu'(z)`` (Springenberg et al.).
    ``rectified``: forward unchanged; backward ``relu(dy)``, ignoring the forward mask (the
    DeconvNet rule of Zeiler & Fergus).
    """

    def __init__(self, pre: Any, act: Any, rule: str, name: str) -> None:
        super().__init__(name=name)
        self._pre = lambda x, kw: pre(x, **kw)  # closures keep the source layer untracked
        self._act = lambda z: act(z)
        self._rule = rule

    def call(self, inputs: Any, **kwargs: Any) -> Any:
        z = self._pre(inputs, kwargs)
        if self._rule == "guided":
            return _positive_gate(self._act(z))
        act = self._act

        @tf.custom_gradient
        def rectified(z: Any) -> Any:
            def grad(dy: Any) -> Any:
                return tf.nn.relu(dy)

            return act(z), grad

        return rectified(z)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._shape(input_shape)


def _no_kwargs(fn: Any) -> Any:
    return lambda x, **kw: fn(x)


def is_relu(layer: keras.layers.Layer) -> bool:
    """True for ``activation="relu"`` (or relu6) layers, ``Activation("relu")`` and ``ReLU()``."""
    if isinstance(layer, keras.Model):
        return False
    if isinstance(layer, keras.layers.ReLU):
        return float(getattr(layer, "negative_slope", 0.0) or 0.0) == 0.0
    return activation_name(layer) in _RELU_NAMES


def relu_substitute(rule: str) -> Any:
    """A :func:`vizkit.models.rebuild` substitute hook applying ``rule`` to every ReLU."""

    def substitute(path: str, layer: keras.layers.Layer) -> Any:
        if not is_relu(layer):
            return None
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            pre, act = (lambda x, **kw: x), layer
        else:  # fused activation: the pre-activation from the layer's own weights
            pre, act = _no_kwargs(linear_clone(layer)), layer.activation
        replacement = _RuleLayer(pre, act, rule, name=f"{layer.name}__{rule}")
        replacement._shape = lambda shape, layer=layer: layer.compute_output_shape(shape)
        return replacement

    return substitute


def relu_paths(model: keras.Model) -> list[str]:
    from vizkit.models import iter_layers

    return [path for path, layer in iter_layers(model) if is_relu(layer)]


# --------------------------------------------------------------------------------------------
# Shared gradient machinery
# --------------------------------------------------------------------------------------------
class GradientMethod(Method):
    """Methods built on ``d score / d input`` (optionally under a modified ReLU rule)."""

    rule: ClassVar[str | None] = None

    def __init__(self, model: keras.Model, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        if self.rule is not None and not relu_paths(model):
            raise LayerError(
                f"{self.name} modifies ReLU backpropagation, but model {model.name!r} has no ReLU "
                "(no activation='relu' layer, Activation('relu') or ReLU()): use saliency or "
                "integrated_gradients instead"
            )

    def rule_model(self, rule: str | None, layers: tuple[str, ...] = ()) -> keras.Model:
        if rule is None:
            return self.prepared(layers)
        return self.prepared(layers, rule=rule, substitute=relu_substitute(rule))

    def grad_fn(self, rule: str | None = None) -> Any:
        """Compiled ``(x, targets) -> (head output, d score / d x)`` for a ReLU rule."""
        rule = self.rule if rule == "default" else rule

        def build() -> Any:
            model = self.rule_model(rule)
            head, logits = self.head, self.logits

            @tf.function(
                input_signature=[self._sig, tf.TensorSpec([None], tf.int32)],
                reduce_retracing=True,
            )
            def gradients(x: Any, targets: Any) -> Any:
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x)
                    out = tf.cast(first_output(model(x, training=False)), tf.float32)
                    score = tf_score(out, tf_resolve(targets, out, head, logits), head, logits)
                return out, tape.gradient(score, x)

            return gradients

        return self.cached(("gradients", rule), build)

    def gradients(
        self, x: np.ndarray, targets: np.ndarray, rule: str | None = "default"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Head outputs and input gradients, in chunks of ``batch_size``."""
        fn = self.grad_fn(rule)
        outs, grads = [], []
        for start in range(0, len(x), self.batch_size):
            stop = start + self.batch_size
            out, grad = fn(tf.constant(x[start:stop]), tf.constant(targets[start:stop]))
            outs.append(out.numpy())
            grads.append(grad.numpy())
        return np.concatenate(outs).reshape(len(x), -1), np.concatenate(grads)

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        out, grads = self.gradients(x, targets)
        return self.combine(x, grads), out, {}

    def mean_fn(self, kind: str) -> Any:
        """Compiled averaging loop for SmoothGrad (``kind="noise"``) or integrated gradients
        (``kind="path"``), cached per model.

        One call runs the clean forward pass (predictions, ``-1`` targets resolved), then a
        ``tf.while_loop`` over chunks of the ``n * k`` variants (image-major, ``chunk`` at a time
        across images, so small batches still fill a chunk, split into equal chunks) that builds
        each chunk's images on-graph, backpropagates them through :meth:`averaging_graph`'s
        suffix down to the linear prefix's output, sums those gradients per image, maps the sums
        through the prefix's transposed Jacobian and adds them into a per-image float64 sum.
        Only the head outputs and the mean gradient come back: no per-chunk round trip to numpy.
        ``CHUNKS_IN_FLIGHT`` (2) chunks are in flight at once, so one chunk's small elementwise
        ops overlap the other's convolutions (13% less CPU time for integrated gradients on the
        bench's VGG, at the memory of two chunks).

        ``noise``: ``(x, targets, samples, noise, seed, chunk)``; the variants are
        ``x + noise * (max - min of the image) * pattern[s]`` with ``samples`` standard normal
        patterns drawn on-graph from a stateless Philox generator keyed by ``seed`` (the same
        patterns for every image, so a map does not depend on its batch).
        ``path``: ``(x, targets, baseline, steps, chunk)``; the variants are
        ``baseline + (j + 0.5) / steps * (x - baseline)`` (midpoint rule, ``(j + 0.5) / steps``
        rounded to float32 once), each run through the prefix.
        """

        def build() -> Any:
            if self.rule is None:
                prefix, suffix = self.averaging_graph()
            else:
                prefix, suffix = None, self.rule_model(self.rule)
            head, logits = self.head, self.logits
            int32 = tf.TensorSpec([], tf.int32)

            def run(model: Any, x: Any) -> Any:
                return model(x, training=False) if model is not None else x

            def mean_over(x: Any, z: Any, targets: Any, k: Any, chunk: Any, point: Any) -> Any:
                # z = prefix(x): the clean pass, and what ``point`` builds variants from
                out = tf.cast(first_output(suffix(z, training=False)), tf.float32)
                targets = tf_resolve(targets, out, head, logits)
                total = tf.shape(x)[0] * k
                parts = (total + chunk - 1) // chunk  # equal chunks: no small last one

                def body(i: Any, acc: Any) -> Any:
                    items = tf.range(i * total // parts, (i + 1) * total // parts)
                    image, variant = items // k, items % k
                    at = point(image, variant)
                    with tf.GradientTape(watch_accessed_variables=False) as tape:
                        tape.watch(at)
                        value = tf.cast(first_output(suffix(at, training=False)), tf.float32)
                        score = tf_score(value, tf.gather(targets, image), head, logits)
                    grads = tape.gradient(score, at)
                    # sum per image (ids are sorted), then back through the linear prefix once
                    # per image of the chunk instead of once per variant
                    grads = tf.math.segment_sum(grads, image - image[0])
                    ids = tf.range(image[0], image[-1] + 1)
                    if prefix is not None:
                        with tf.GradientTape(watch_accessed_variables=False) as tape:
                            at = tf.gather(x, ids)  # any point: the prefix's Jacobian is constant
                            tape.watch(at)
                            mapped = prefix(at, training=False)
                        grads = tape.gradient(
                            mapped, at, output_gradients=tf.cast(grads, mapped.dtype)
                        )
                    grads = tf.cast(grads, tf.float64)
                    return i + 1, tf.tensor_scatter_nd_add(acc, ids[:, None], grads)

                _, acc = tf.while_loop(
                    lambda i, acc: i < parts,
                    body,
                    (tf.constant(0), tf.zeros_like(x, dtype=tf.float64)),
                    parallel_iterations=CHUNKS_IN_FLIGHT,
                )
                return out, tf.cast(acc / tf.cast(k, tf.float64), tf.float32)

            if kind == "noise":

                @tf.function(
                    input_signature=[
                        self._sig,
                        tf.TensorSpec([None], tf.int32),
                        int32,
                        tf.TensorSpec([], tf.float32),
                        tf.TensorSpec([], tf.int64),
                        int32,
                    ],
                    reduce_retracing=True,
                )
                def smoothgrad(
                    x: Any, targets: Any, samples: Any, noise: Any, seed: Any, chunk: Any
                ) -> Any:
                    sigma = noise * (tf.reduce_max(x, [1, 2, 3]) - tf.reduce_min(x, [1, 2, 3]))
                    shape = tf.concat([[samples], tf.shape(x)[1:]], axis=0)
                    patterns = tf.random.stateless_normal(
                        shape, seed=tf.stack([seed, tf.constant(0, tf.int64)]), alg="philox"
                    )

                    def point(image: Any, variant: Any) -> Any:
                        scale = tf.gather(sigma, image)[:, None, None, None]
                        return run(
                            prefix, tf.gather(x, image) + scale * tf.gather(patterns, variant)
                        )

                    return mean_over(x, run(prefix, x), targets, samples, chunk, point)

                return smoothgrad

            @tf.function(
                input_signature=[
                    self._sig,
                    tf.TensorSpec([None], tf.int32),
                    self._sig,
                    int32,
                    int32,
                ],
                reduce_retracing=True,
            )
            def integrated(x: Any, targets: Any, baseline: Any, steps: Any, chunk: Any) -> Any:
                # every path point goes through the prefix as in the caller's model (not as a
                # blend of prefix outputs: see vizkit.methods.folding on why values must match)
                k = tf.cast(steps, tf.float64)
                alphas = tf.cast((tf.range(k, dtype=tf.float64) + 0.5) / k, x.dtype)
                delta = x - baseline

                def point(image: Any, variant: Any) -> Any:
                    alpha = tf.reshape(tf.gather(alphas, variant), [-1, 1, 1, 1])
                    return run(prefix, tf.gather(baseline, image) + alpha * tf.gather(delta, image))

                return mean_over(x, run(prefix, x), targets, steps, chunk, point)

            return integrated

        return self.cached(("mean", kind, self.rule), build)

    def combine(self, x: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return reduce_channels(grads, self.params["channels"])


_REF_SALIENCY = (
    "Simonyan, Vedaldi & Zisserman (2014), Deep Inside Convolutional Networks: Visualising "
    "Image Classification Models and Saliency Maps, arXiv:1312.6034"
)


@register(
    "saliency",
    label="Saliency (vanilla gradient)",
    reference=_REF_SALIENCY,
    family=FAMILY,
    params=(CHANNELS, *common_params()),
)
class Saliency(GradientMethod):
    """Vanilla gradient of the target score with respect to the input pixels.

    References
    ----------
    Simonyan, Vedaldi & Zisserman (2014), arXiv:1312.6034.
    """

    def __init__(self, model: keras.Model, *, engine: str = "native", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.engine = _check_engine(engine)

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        if self.engine == "native":
            return super()._attribute(x, targets)
        from vizkit.methods._tfkv import attribution as tfkv

        out = self.forward(x)
        grads = tfkv.saliency(
            self.prepared(), x, self.resolve(targets, out), self.head, logits=self.logits
        )
        return self.combine(x, grads), out, {}


def _check_engine(engine: str) -> str:
    if engine not in ("native", "tf-keras-vis"):
        raise InputError(f"engine={engine!r}: choose 'native' or 'tf-keras-vis'")
    return engine


@register(
    "smoothgrad",
    label="SmoothGrad",
    reference=(
        "Smilkov, Thorat, Kim, Viegas & Wattenberg (2017), SmoothGrad: removing noise by adding "
        "noise, arXiv:1706.03825"
    ),
    family=FAMILY,
    params=(
        Param(
            "samples",
            int,
            20,
            label="Samples",
            help="Noisy copies averaged per image",
            min=1,
            max=500,
            step=1,
        ),
        Param(
            "noise",
            float,
            0.15,
            label="Noise level",
            help="Noise standard deviation as a fraction of each image's value range",
            min=0.0,
            max=1.0,
            step=0.01,
        ),
        CHANNELS,
        SEED,
        *common_params(),
    ),
)
class SmoothGrad(GradientMethod):
    """Average of gradients at noisy copies of the input.

    The same ``samples`` noise patterns are used for every image, scaled by
    ``noise * (max - min)`` of that image, so a map does not depend on the batch it is in. The
    patterns are standard normal, drawn in the compiled function from TensorFlow's stateless
    Philox generator keyed by ``[seed, 0]`` (``tf.random.stateless_normal((samples, H, W, C),
    seed=[seed, 0], alg="philox")``): same seed, same map, and pattern ``s`` does not depend on
    ``samples``.

    References
    ----------
    Smilkov et al. (2017), arXiv:1706.03825.
    """

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        out, mean = self.mean_fn("noise")(
            tf.constant(x),
            tf.constant(targets, dtype=tf.int32),
            tf.constant(self.params["samples"], dtype=tf.int32),
            tf.constant(self.params["noise"], dtype=tf.float32),
            tf.constant(self.params["seed"], dtype=tf.int64),
            tf.constant(self.batch_size, dtype=tf.int32),
        )
        return self.combine(x, mean.numpy()), out.numpy(), {}


@register(
    "gradient_x_input",
    label="Gradient x input",
    reference=(
        "Shrikumar, Greenside, Shcherbina & Kundaje (2016), Not Just a Black Box: Learning "
        "Important Features Through Propagating Activation Differences, arXiv:1605.01713"
    ),
    family=FAMILY,
    params=common_params(),
)
class GradientXInput(GradientMethod):
    """Elementwise product of the input gradient and the input, summed over channels.

    References
    ----------
    Shrikumar et al. (2016), arXiv:1605.01713.
    """

    def combine(self, x: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return (grads * x).sum(axis=-1)


@register(
    "integrated_gradients",
    label="Integrated gradients",
    reference=(
        "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks, ICML, "
        "arXiv:1703.01365"
    ),
    family=FAMILY,
    params=(
        Param(
            "steps",
            int,
            50,
            label="Steps",
            help="Points on the path (midpoint rule)",
            min=1,
            max=1024,
            step=1,
        ),
        Param(
            "baseline",
            str,
            "black",
            label="Baseline",
            help="Reference image: black (all zeros) or a blurred copy; the constructor also "
            "takes a number or an array (custom)",
            choices=("black", "blurred", "custom"),
        ),
        Param(
            "blur_sigma",
            float,
            5.0,
            label="Blur sigma",
            help="Gaussian blur radius in pixels for the blurred baseline",
            min=0.1,
            max=100.0,
            step=0.1,
        ),
        *common_params(),
    ),
)
class IntegratedGradients(GradientMethod):
    """Path integral of gradients from a baseline to the input, times (input - baseline).

    Maps sum (over pixels and channels) to ``score(x) - score(baseline)`` up to the error of
    the midpoint rule with ``steps`` points. ``baseline`` is ``"black"`` (zeros),
    ``"blurred"`` (Gaussian blur of each image) or a custom number / array broadcastable to one
    image ``(H, W, C)`` or the batch.

    References
    ----------
    Sundararajan, Taly & Yan (2017), arXiv:1703.01365.
    """

    def _check(self, param: Param, value: Any) -> Any:
        if param.name == "baseline" and not isinstance(value, str):
            array = np.asarray(value, dtype=np.float32)
            if not np.all(np.isfinite(array)):
                raise InputError("integrated_gradients: the custom baseline has NaN or inf values")
            self._custom = array
            return "custom"
        return super()._check(param, value)

    def __init__(self, model: keras.Model, **kwargs: Any) -> None:
        self._custom: np.ndarray | None = None
        super().__init__(model, **kwargs)
        if self.params["baseline"] == "custom" and self._custom is None:
            raise InputError(
                "integrated_gradients: baseline='custom' needs the baseline itself: pass "
                "baseline=<number or array>"
            )

    def _public_params(self) -> dict[str, Any]:
        params = dict(self.params)
        if self._custom is not None:
            params["baseline"] = self._custom
        return params

    def baselines(self, x: np.ndarray) -> np.ndarray:
        kind = self.params["baseline"]
        if kind == "black":
            return np.zeros_like(x)
        if kind == "blurred":
            from scipy.ndimage import gaussian_filter

            sigma = self.params["blur_sigma"]
            return np.stack(
                [gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest") for img in x]
            ).astype(np.float32)
        custom = self._custom
        if custom.ndim == 4 and custom.shape[0] > 1 and self._rows is not None:
            custom = custom[self._rows]  # one baseline per image of the batch
        try:
            return np.broadcast_to(custom, x.shape).astype(np.float32)
        except ValueError:
            raise InputError(
                f"integrated_gradients: custom baseline of shape {custom.shape} does not "
                f"broadcast to images of shape {x.shape[1:]}"
            ) from None

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        base = self.baselines(x)
        out, mean = self.mean_fn("path")(
            tf.constant(x),
            tf.constant(targets, dtype=tf.int32),
            tf.constant(base),
            tf.constant(self.params["steps"], dtype=tf.int32),
            tf.constant(self.batch_size, dtype=tf.int32),
        )
        return (mean.numpy() * (x - base)).sum(axis=-1), out.numpy(), {}


@register(
    "guided_backprop",
    label="Guided backpropagation",
    reference=(
        "Springenberg, Dosovitskiy, Brox & Riedmiller (2015), Striving for Simplicity: The All "
        "Convolutional Net, arXiv:1412.6806"
    ),
    family=FAMILY,
    params=(CHANNELS, *common_params()),
)
class GuidedBackprop(GradientMethod):
    """Gradient where every ReLU passes back only positive gradients at positive inputs.

    Covers ``activation="relu"`` layers, ``Activation("relu")`` and ``ReLU()`` layers, inside
    nested models too, on a rebuilt graph (the caller's model is untouched).

    References
    ----------
    Springenberg et al. (2015), arXiv:1412.6806.
    """

    rule = "guided"


@register(
    "rectified_backprop",
    label="Rectified backpropagation (DeconvNet)",
    reference=(
        "Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, "
        "arXiv:1311.2901"
    ),
    family=FAMILY,
    params=(CHANNELS, *common_params()),
)
class RectifiedBackprop(GradientMethod):
    """The DeconvNet rule: every ReLU passes back ``relu(gradient)``, ignoring its input's sign.

    References
    ----------
    Zeiler & Fergus (2014), arXiv:1311.2901.
    """

    rule = "rectified"
