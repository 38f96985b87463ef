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
than once per sample (see :func:`vizkit.methods.folding.averaging_graph`; batch norms are
folded only by its rule, so the maps equal plain tape gradients up to rounding).
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
    ENGINE,
    SEED,
    TARGETS,
    Chunk,
    Method,
    chunks,
    common_params,
    first_output,
    reduce_channels,
)
from vizkit.methods.rules import is_relu, relu_paths, relu_substitute  # noqa: F401  (re-exported)
from vizkit.registry import Param, register


# --------------------------------------------------------------------------------------------
# Shared gradient machinery
# --------------------------------------------------------------------------------------------
class GradientMethod(Method):
    """Methods built on ``d score / d input`` (optionally under a modified ReLU rule)."""

    family = "gradient"
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
        """Compiled ``(x, targets) -> (head output, resolved targets, scores, d score / d x)``
        for a ReLU rule."""
        rule = self.rule if rule == "default" else rule

        def build() -> Any:
            model, scoring = self.rule_model(rule), self.scoring

            @tf.function(input_signature=[self._sig, TARGETS], reduce_retracing=True)
            def gradients(x: Any, targets: Any) -> Any:
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x)
                    out = tf.cast(first_output(model(x, training=False)), tf.float32)
                    resolved, score = scoring(out, targets)
                return out, resolved, score, tape.gradient(score, x)

            return gradients

        return self.cached(("gradients", rule), build)

    def gradient_chunk(
        self, x: np.ndarray, targets: np.ndarray, rule: str | None = "default"
    ) -> Chunk:
        """Input gradients (as ``maps``, ``(n, H, W, C)``) with the head outputs, resolved
        targets and scores, in chunks of ``batch_size``."""
        fn = self.grad_fn(rule)
        parts = [
            [t.numpy() for t in fn(tf.constant(x[s]), tf.constant(targets[s], tf.int32))]
            for s in chunks(len(x), self.batch_size)
        ]
        out, resolved, scores, grads = (np.concatenate(p) for p in zip(*parts))
        return Chunk(grads, out, resolved, scores, {})

    def gradients(
        self, x: np.ndarray, targets: np.ndarray, rule: str | None = "default"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Head outputs ``(n, units)`` and input gradients ``(n, H, W, C)``."""
        part = self.gradient_chunk(x, targets, rule)
        return part.out.reshape(len(x), -1), part.maps

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        part = self.gradient_chunk(x, targets)
        return part._replace(maps=self.combine(x, part.maps))

    def mean_fn(self, kind: str) -> Any:
        """Compiled averaging loop for SmoothGrad (``kind="noise"``) or integrated gradients
        (``kind="path"``), cached per model; see :mod:`vizkit.methods.averaging`."""
        from vizkit.methods import averaging

        def build() -> Any:
            if self.rule is None:
                prefix, suffix = self.averaging_graph()
            else:
                prefix, suffix = None, self.rule_model(self.rule)
            make = averaging.smoothgrad_fn if kind == "noise" else averaging.integrated_fn
            return make(prefix, suffix, self.scoring, self._sig)

        return self.cached(("mean", kind, self.rule), build)

    def combine(self, x: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return reduce_channels(grads, self.params["channels"])


@register
class Saliency(GradientMethod):
    """Vanilla gradient of the target score with respect to the input pixels.

    References
    ----------
    Simonyan, Vedaldi & Zisserman (2014), arXiv:1312.6034.
    """

    name = "saliency"
    label = "Saliency (vanilla gradient)"
    reference = (
        "Simonyan, Vedaldi & Zisserman (2014), Deep Inside Convolutional Networks: Visualising "
        "Image Classification Models and Saliency Maps, arXiv:1312.6034"
    )
    description = """
        The gradient of the class score with respect to each pixel: how much a tiny change of
        that pixel would move the score. With the default channel sum the map is signed: red
        pixels would raise the score if brightened, blue ones lower it. Read it as a
        sensitivity map, not as what the model relies on. Caveats: speckled on real photos,
        vanishes when a softmax saturates (explain the logit), and it can look alike for every
        class and even for a randomized model; check it with the sanity checks.
    """
    hyperparameters = (CHANNELS, ENGINE, *common_params())

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        if self.engine == "native":
            return super()._attribute(x, targets)
        from vizkit.methods._tfkv import attribution as tfkv

        out, resolved, scores = self.forward(x, targets)
        grads = tfkv.saliency(self.prepared(), x, resolved, self.scoring)
        return Chunk(self.combine(x, grads), out, resolved, scores, {})


@register
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

    name = "smoothgrad"
    label = "SmoothGrad"
    reference = (
        "Smilkov, Thorat, Kim, Viegas & Wattenberg (2017), SmoothGrad: removing noise by adding "
        "noise, arXiv:1706.03825"
    )
    description = """
        Saliency averaged over many noisy copies of the image: the speckle cancels out and the
        regions the gradient consistently points at remain. Read it like saliency (red raises
        the score, blue lowers it). Caveats: the noise level changes the picture (too little
        leaves speckle, too much blurs everything); it costs one gradient pass per sample; it
        keeps saliency's weak sensitivity to the class.
    """
    hyperparameters = (
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
    )

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        out, resolved, scores, mean = self.mean_fn("noise")(
            tf.constant(x),
            tf.constant(targets, dtype=tf.int32),
            tf.constant(self.params["samples"], dtype=tf.int32),
            tf.constant(self.params["noise"], dtype=tf.float32),
            tf.constant(self.params["seed"], dtype=tf.int64),
            tf.constant(self.batch_size, dtype=tf.int32),
        )
        return Chunk(self.combine(x, mean.numpy()), out, resolved, scores, {})


@register
class GradientXInput(GradientMethod):
    """Elementwise product of the input gradient and the input, summed over channels.

    References
    ----------
    Shrikumar et al. (2016), arXiv:1605.01713.
    """

    name = "gradient_x_input"
    label = "Gradient x input"
    reference = (
        "Shrikumar, Greenside, Shcherbina & Kundaje (2016), Not Just a Black Box: Learning "
        "Important Features Through Propagating Activation Differences, arXiv:1605.01713"
    )
    description = """
        The gradient times the pixel value, summed over colour channels: a first-order estimate
        of each pixel's contribution to the score compared with a zero image. Red pixels push
        the score up, blue ones pull it down. Caveats: pixels whose value is zero get nothing
        whatever their importance, so the map depends on the input scale (black is zero on a
        0-1 scale but not on a -1-1 scale); as noisy as the gradient.
    """
    hyperparameters = common_params()

    def combine(self, x: np.ndarray, grads: np.ndarray) -> np.ndarray:
        return (grads * x).sum(axis=-1)


@register
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

    name = "integrated_gradients"
    _custom: np.ndarray | None  # a custom baseline array, set while the parameters are checked
    label = "Integrated gradients"
    reference = (
        "Sundararajan, Taly & Yan (2017), Axiomatic Attribution for Deep Networks, ICML, "
        "arXiv:1703.01365"
    )
    description = """
        Gradients averaged along a straight path from a baseline image (black, or a blurred
        copy) to the image, times the difference from the baseline. The map adds up to the
        score's change from the baseline to the image, so its values are in score units: red
        pixels raise the score relative to the baseline, blue ones lower it. Caveats: the
        picture depends on the baseline (a black baseline gives nothing to black regions); too
        few steps break the sum; it costs one gradient pass per step.
    """
    hyperparameters = (
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
    )

    def _check(self, param: Param, value: Any) -> Any:
        if param.name == "baseline" and not isinstance(value, str):
            array = np.asarray(value, dtype=np.float32)
            if not np.all(np.isfinite(array)):
                raise InputError("integrated_gradients: the custom baseline has NaN or inf values")
            self._custom = array
            return "custom"
        return super()._check(param, value)

    def __init__(self, model: keras.Model, **kwargs: Any) -> None:
        self._custom = None
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
        assert custom is not None  # __init__ refuses baseline="custom" without an array
        if custom.ndim == 4 and custom.shape[0] > 1 and self._rows is not None:
            custom = custom[self._rows]  # one baseline per image of the batch
        try:
            return np.broadcast_to(custom, x.shape).astype(np.float32)
        except ValueError:
            raise InputError(
                f"integrated_gradients: custom baseline of shape {custom.shape} does not "
                f"broadcast to images of shape {x.shape[1:]}"
            ) from None

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        base = self.baselines(x)
        out, resolved, scores, mean = self.mean_fn("path")(
            tf.constant(x),
            tf.constant(targets, dtype=tf.int32),
            tf.constant(base),
            tf.constant(self.params["steps"], dtype=tf.int32),
            tf.constant(self.batch_size, dtype=tf.int32),
        )
        return Chunk((mean.numpy() * (x - base)).sum(axis=-1), out, resolved, scores, {})


_RULE_CAVEAT = """
    Caveat: such maps reconstruct the image more than they explain the class: they change little
    between classes and barely change when the model's weights are randomized (Adebayo et al.,
    2018). Use them to see which image features the network responds to, not why it chose a
    class.
"""


@register
class GuidedBackprop(GradientMethod):
    """Gradient where every ReLU passes back only positive gradients at positive inputs.

    Covers ``activation="relu"`` layers, ``Activation("relu")`` and ``ReLU()`` layers, inside
    nested models too, on a rebuilt graph (the caller's model is untouched).

    References
    ----------
    Springenberg et al. (2015), arXiv:1412.6806.
    """

    name = "guided_backprop"
    label = "Guided backpropagation"
    reference = (
        "Springenberg, Dosovitskiy, Brox & Riedmiller (2015), Striving for Simplicity: The All "
        "Convolutional Net, arXiv:1412.6806"
    )
    description = (
        """
        A gradient in which every ReLU lets only positive signals flow back, which gives sharp,
        edge-like pictures of the image structures that excite the network.
        """
        + _RULE_CAVEAT
    )
    hyperparameters = (CHANNELS, *common_params())
    rule = "guided"


@register
class RectifiedBackprop(GradientMethod):
    """The DeconvNet rule: every ReLU passes back ``relu(gradient)``, ignoring its input's sign.

    References
    ----------
    Zeiler & Fergus (2014), arXiv:1311.2901.
    """

    name = "rectified_backprop"
    label = "Rectified backpropagation (DeconvNet)"
    reference = (
        "Zeiler & Fergus (2014), Visualizing and Understanding Convolutional Networks, ECCV, "
        "arXiv:1311.2901"
    )
    description = (
        """
        The DeconvNet rule: every ReLU passes back the positive part of the signal whatever it
        did on the forward pass. Shows the image structures that excite the network, like
        guided backpropagation.
        """
        + _RULE_CAVEAT
    )
    hyperparameters = (CHANNELS, *common_params())
    rule = "rectified"
