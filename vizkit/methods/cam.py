"""Class activation maps: Grad-CAM, Grad-CAM++, LayerCAM, Guided Grad-CAM, Score-CAM and Faster
Score-CAM, and the bases other CAM modules build on (:mod:`vizkit.methods.hirescam`,
:mod:`vizkit.methods.eigencam`).

Every CAM explains at one spatial layer (``layer=None``: the first of
:func:`vizkit.candidate_layers`, i.e. the last spatial layer, nested models included). The model
is rebuilt once per (layer, head) with that layer's output exposed, so layers inside a nested
base model work (tf-keras-vis 0.8.7 fails there on Keras 3 because it reads ``layer.output`` of
the nested graph). Three bases, one hook each:

- :class:`CamMethod` (gradient CAMs): ``weigh(activations, gradients) -> (coarse CAM,
  weights)``, plain TensorFlow with no Python control flow on tensors (CAM graphs are traced
  without AutoGraph: converting ``weigh`` while another thread traced a second CAM graph once
  called Eigen-CAM's ``project`` with ``weigh``'s arguments); one compiled function per model
  and layer returns the head output, the resolved targets and their scores, the channel
  weights, the coarse CAM and the CAM resized (bilinear) to the input, in one forward and one
  backward pass.
- :class:`ActivationCAM` (gradient-free, class-agnostic): ``project(activations) -> (coarse
  CAM, weights)``; the same compiled function without the backward pass.
- Score-CAM pushes all channel-masked images through one compiled forward function in
  ``batch_size`` chunks (flattened over images and channels).

Why not tf-keras-vis here: it builds a new ``keras.Model`` and runs eagerly on every call, and
resizes with scipy on the host (3.4x the forward+backward floor in CPU time, measured in
``bench/``, against a 1.5x budget; vizkit's compiled CAMs take about 0.55x); its
Faster Score-CAM picks one channel set for the whole batch (so a map depends on its batch) and
its Score-CAM applies a softmax to every head, which breaks single-unit sigmoid models.
``engine="tf-keras-vis"`` on Grad-CAM, Grad-CAM++ and LayerCAM runs the same computation through
tf-keras-vis on vizkit's rebuilt model, for cross-checking.

Maps are the CAMs as the papers define them (ReLU of the weighted channel sum), not normalized.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vizkit._tf import keras, tf
from vizkit.methods.base import (
    CHANNELS,
    ENGINE,
    TARGETS,
    Chunk,
    Method,
    chunks,
    common_params,
    first_output,
    reduce_channels,
    resize_maps,
)
from vizkit.methods.sweeping import OnePassLayers
from vizkit.registry import Param, register


class CamMethod(OnePassLayers):
    """Gradient CAMs: override :meth:`weigh` (activations, gradients -> coarse CAM, weights)."""

    family = "cam"
    needs_layer = True
    layer: str  # always resolved for methods that need a layer
    #: the hook needs the score's gradient with respect to the layer's activations
    uses_gradients: ClassVar[bool] = True

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        """``(n, h, w, C)`` activations and gradients -> coarse CAM ``(n, h, w)``, weights
        ``(n, C)`` (or None)."""
        raise NotImplementedError

    def cam_fn(self) -> Any:
        """Compiled ``(x, targets) -> (out, resolved, scores, coarse, weights, maps)``."""

        def build() -> Any:
            model, scoring, weigh = self.prepared((self.layer,)), self.scoring, self.weigh
            gradients = self.uses_gradients

            def forward(x: Any, targets: Any) -> Any:
                out, acts = model(x, training=False)
                out = tf.cast(out, tf.float32)
                return (out, *scoring(out, targets), acts)

            @tf.function(
                input_signature=[self._sig, TARGETS], reduce_retracing=True, autograph=False
            )
            def cam(x: Any, targets: Any) -> Any:
                if gradients:
                    with tf.GradientTape(watch_accessed_variables=False) as tape:
                        tape.watch(x)
                        out, resolved, scores, raw = forward(x, targets)
                    # the gradient at the layer's own (float16 under mixed precision) output: a
                    # cast made after it is not on the path to the score
                    grads = tf.cast(tape.gradient(scores, raw), tf.float32)
                else:
                    (out, resolved, scores, raw), grads = forward(x, targets), None
                acts = tf.cast(raw, tf.float32)
                coarse, weights = weigh(acts, grads)
                maps = resize_maps(coarse, tf.shape(x)[1:3])
                return out, resolved, scores, coarse, weights, maps

            return cam

        return self.cached(("cam", self.name, self.layer), build)

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        if self.engine == "tf-keras-vis":
            from vizkit.methods._tfkv import attribution as tfkv

            out, resolved, scores = self.forward(x, targets)
            coarse = tfkv.cam(self.name, self.model, self.layer, x, resolved, self.scoring)
            maps = resize_maps(tf.constant(coarse), x.shape[1:3]).numpy()
            return Chunk(maps, out, resolved, scores, {"cam": coarse})
        out, resolved, scores, coarse, weights, maps = self.cam_fn()(
            tf.constant(x), tf.constant(targets)
        )
        extras = {"cam": coarse.numpy()}
        if weights is not None:
            extras["weights"] = weights.numpy()
        return Chunk(maps, out, resolved, scores, extras)


class ActivationCAM(CamMethod):
    """CAMs computed from a layer's activations alone: override :meth:`project`.

    No backward pass; the map does not depend on the target (the explanation still records
    the targets and their scores).
    """

    family = "activation-cam"
    uses_gradients = False

    @staticmethod
    def project(acts: Any) -> tuple[Any, Any]:
        """``(n, h, w, C)`` activations -> coarse CAM ``(n, h, w)``, weights ``(n, C)``."""
        raise NotImplementedError

    @classmethod
    def weigh(cls, acts: Any, grads: Any) -> tuple[Any, Any]:
        return cls.project(acts)


_REF_GRADCAM = (
    "Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), Grad-CAM: Visual Explanations "
    "from Deep Networks via Gradient-based Localization, ICCV, arXiv:1610.02391"
)
READ_CAM = """
    Bright regions carry positive evidence for the class at the chosen layer; the map has the
    layer's resolution, upsampled (blocky on deep layers). The last convolutional layer gives
    the most class-specific map, earlier layers sharper but less specific maps.
"""


@register
class GradCAM(CamMethod):
    """Channels weighted by their spatially averaged gradients, summed, ReLU.

    ``extras["weights"]`` holds the channel weights ``(N, C)``, ``extras["cam"]`` the CAM at
    the layer's resolution.

    References
    ----------
    Selvaraju et al. (2017), arXiv:1610.02391.
    """

    name = "gradcam"
    label = "Grad-CAM"
    reference = _REF_GRADCAM
    description = (
        """
        Weights each channel of a convolutional layer by the average gradient of the class
        score, sums the channels and keeps the positive part: a coarse heat map of the regions
        that raise the class score.
        """
        + READ_CAM
        + """
        Caveat: a blank map means no positive evidence at this layer (or a saturated softmax:
        explain the logit).
        """
    )
    hyperparameters = (ENGINE, *common_params())

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        weights = tf.reduce_mean(grads, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nhwc,nc->nhw", acts, weights)), weights


@register
class GradCAMPlusPlus(CamMethod):
    """Grad-CAM with pixel-wise weights ``alpha = g^2 / (2 g^2 + sum(A) g^3)`` on positive
    gradients (the closed form for an exponential score, as in the paper).

    References
    ----------
    Chattopadhyay et al. (2018), arXiv:1710.11063.
    """

    name = "gradcam_pp"
    label = "Grad-CAM++"
    reference = (
        "Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), Grad-CAM++: Improved Visual "
        "Explanations for Deep Convolutional Networks, WACV, arXiv:1710.11063"
    )
    description = (
        """
        Grad-CAM with weights from higher-order gradients, meant to cover several objects of a
        class and more of each object than Grad-CAM.
        """
        + READ_CAM
        + """
        Caveat: its weights assume an exponential score; in practice its maps are often close
        to Grad-CAM's, and as coarse.
        """
    )
    hyperparameters = (ENGINE, *common_params())

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        g2 = tf.square(grads)
        g3 = g2 * grads
        total = tf.reduce_sum(acts, axis=(1, 2), keepdims=True)
        denom = 2.0 * g2 + total * g3
        alphas = g2 / tf.where(denom != 0.0, denom, tf.ones_like(denom))
        weights = tf.reduce_sum(alphas * tf.nn.relu(grads), axis=(1, 2))
        return tf.nn.relu(tf.einsum("nhwc,nc->nhw", acts, weights)), weights


@register
class LayerCAM(CamMethod):
    """Activations weighted pixel-wise by their positive gradients, summed, ReLU.

    References
    ----------
    Jiang et al. (2021), IEEE Transactions on Image Processing 30, 5875-5888.
    """

    name = "layercam"
    label = "LayerCAM"
    reference = (
        "Jiang, Zhang, Hou, Cheng & Wei (2021), LayerCAM: Exploring Hierarchical Class "
        "Activation Maps for Localization, IEEE TIP 30, "
        "https://ieeexplore.ieee.org/document/9462463"
    )
    description = (
        """
        Weights every activation by its own positive gradient, location by location (Grad-CAM
        uses one weight per channel), and sums the channels: finer maps than Grad-CAM at
        earlier layers, where Grad-CAM gets noisy.
        """
        + READ_CAM
        + "Caveat: at the last layer it is close to Grad-CAM."
    )
    hyperparameters = (ENGINE, *common_params())

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        cam = tf.nn.relu(tf.reduce_sum(tf.nn.relu(grads) * acts, axis=-1))
        return cam, tf.reduce_mean(tf.nn.relu(grads), axis=(1, 2))


@register
class GuidedGradCAM(CamMethod):
    """Guided backpropagation multiplied pixel-wise by the (upsampled) Grad-CAM map.

    References
    ----------
    Selvaraju et al. (2017), arXiv:1610.02391.
    """

    name = "guided_gradcam"
    label = "Guided Grad-CAM"
    reference = _REF_GRADCAM
    description = """
        Guided backpropagation multiplied by the upsampled Grad-CAM map: fine image detail,
        restricted to the regions Grad-CAM finds for the class. Caveats: inside those regions
        it inherits guided backpropagation's weak sensitivity to the class and the model's
        weights (Adebayo et al., 2018), and outside them Grad-CAM's coarse region.
    """
    hyperparameters = (CHANNELS, *common_params())
    weigh = staticmethod(GradCAM.weigh)
    one_pass_layers = False  # the guided-backpropagation half is per image, not per layer

    def __init__(self, model: keras.Model, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        from vizkit.methods.saliency import GuidedBackprop

        self._guided = GuidedBackprop(
            model,
            output=self.head.output,
            channels=self.params["channels"],
            score=self.params["score"],
            batch_size=self.batch_size,
        )

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        out, resolved, scores, coarse, weights, cams = self.cam_fn()(
            tf.constant(x), tf.constant(targets)
        )
        self._guided.scoring = self.scoring  # a target object explains both parts
        _, grads = self._guided.gradients(x, resolved.numpy())
        maps = reduce_channels(grads * cams.numpy()[..., None], self.params["channels"])
        extras = {"cam": coarse.numpy(), "weights": weights.numpy()}
        return Chunk(maps, out, resolved, scores, extras)


# --------------------------------------------------------------------------------------------
# Score-CAM
# --------------------------------------------------------------------------------------------
_REF_SCORECAM = (
    "Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), Score-CAM: Score-Weighted Visual "
    "Explanations for Convolutional Neural Networks, CVPR Workshops, arXiv:1910.01279"
)
_SCORECAM_CAVEAT = """
    Caveat: it explains classes the model believes in. For a class that keeps a near-zero
    probability on every masked image, every weight is near zero and the map is blank or nearly
    so; a blank map then says "no part of the image alone makes this class likely", not "no
    evidence".
"""


class _ScoreCamBase(Method):
    family = "score-cam"
    needs_layer = True
    layer: str  # always resolved for methods that need a layer
    max_channels: ClassVar[bool] = False

    def activations_fn(self) -> Any:
        """Compiled ``(x, targets) -> (out, resolved, scores, activations)``."""

        def build() -> Any:
            model, scoring = self.prepared((self.layer,)), self.scoring

            @tf.function(input_signature=[self._sig, TARGETS], reduce_retracing=True)
            def activations(x: Any, targets: Any) -> Any:
                out, acts = model(x, training=False)
                out = tf.cast(out, tf.float32)
                return (out, *scoring(out, targets), tf.cast(acts, tf.float32))

            return activations

        return self.cached(("activations", self.layer), build)

    def masked_fn(self) -> Any:
        """Compiled: scores of images masked by (upsampled, min-max normalized) channels."""

        def build() -> Any:
            model, scoring = self.head_graph(), self.scoring
            i32 = tf.TensorSpec([None], tf.int32)

            @tf.function(
                input_signature=[self._sig, tf.TensorSpec([None, None, None, None]), i32, i32, i32],
                reduce_retracing=True,
            )
            def masked(x: Any, acts: Any, image: Any, channel: Any, targets: Any) -> Any:
                chosen = tf.gather(acts, image)  # (b, h, w, C)
                planes = tf.gather(tf.transpose(chosen, (0, 3, 1, 2)), channel, batch_dims=1)
                masks = resize_maps(planes, tf.shape(x)[1:3])
                low = tf.reduce_min(masks, axis=(1, 2), keepdims=True)
                high = tf.reduce_max(masks, axis=(1, 2), keepdims=True)
                masks = (masks - low) / (high - low + keras.config.epsilon())
                images = tf.gather(x, image) * masks[..., None]
                return scoring.score(first_output(model(images)), targets)

            return masked

        return self.cached(("scorecam_masked",), build)

    def channels_for(self, acts: np.ndarray) -> list[np.ndarray]:
        """Channel indices to score per image (all, or the ``max_n`` with the largest std)."""
        count = acts.shape[-1]
        if not self.max_channels or self.params["max_n"] >= count:
            return [np.arange(count, dtype=np.int32)] * len(acts)
        spread = acts.std(axis=(1, 2))
        top = np.argsort(-spread, axis=1, kind="stable")[:, : self.params["max_n"]]
        return [np.sort(row).astype(np.int32) for row in top]

    def images_per_chunk(self) -> int:
        return max(1, self.batch_size)

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        out, resolved, base, acts = (
            t.numpy() for t in self.activations_fn()(tf.constant(x), tf.constant(targets))
        )
        chosen = self.channels_for(acts)
        image = np.concatenate([np.full(len(c), i, np.int32) for i, c in enumerate(chosen)])
        channel = np.concatenate(chosen)
        fn = self.masked_fn()
        x_t, acts_t = tf.constant(x), tf.constant(acts)
        scores = np.concatenate(
            [
                fn(
                    x_t,
                    acts_t,
                    tf.constant(image[s]),
                    tf.constant(channel[s]),
                    tf.constant(resolved[image[s]]),
                ).numpy()
                for s in chunks(len(image), self.forward_batch_size)
            ]
        )
        weights = np.zeros((acts.shape[0], acts.shape[-1]), dtype=np.float32)
        weights[image, channel] = scores
        coarse = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0.0)
        maps = resize_maps(tf.constant(coarse), x.shape[1:3]).numpy()
        return Chunk(maps, out, resolved, base, {"cam": coarse, "weights": weights})


@register
class ScoreCAM(_ScoreCamBase):
    """Channels weighted by the target score of the input masked by each (upsampled,
    normalized) channel; gradient-free.

    References
    ----------
    Wang et al. (2020), arXiv:1910.01279.
    """

    name = "scorecam"
    label = "Score-CAM"
    reference = _REF_SCORECAM
    description = (
        """
        Masks the image with each channel of a layer (upsampled and scaled to 0-1) and weighs
        the channel by the target's probability on the masked image; no gradients. Bright
        regions are those whose visibility alone keeps the class probable. It needs one forward
        pass per channel, so it is slow on wide layers.
        """
        + _SCORECAM_CAVEAT
    )
    hyperparameters = common_params(score="probability")


@register
class FasterScoreCAM(_ScoreCamBase):
    """Score-CAM on the ``max_n`` channels with the largest spatial spread, chosen per image.

    References
    ----------
    Wang et al. (2020), arXiv:1910.01279; Faster Score-CAM by tabayashi0117.
    """

    name = "faster_scorecam"
    label = "Faster Score-CAM"
    reference = _REF_SCORECAM + "; Faster Score-CAM: https://github.com/tabayashi0117/Score-CAM"
    description = (
        """
        Score-CAM on only the channels with the most spatial variation in each image (max_n),
        for a fraction of the cost. Read it like Score-CAM; it can miss regions that only the
        skipped channels cover.
        """
        + _SCORECAM_CAVEAT
    )
    hyperparameters = (
        Param(
            "max_n",
            int,
            10,
            label="Channels",
            help="Score only the channels with the largest spatial standard deviation",
            min=1,
            max=4096,
            step=1,
        ),
        *common_params(score="probability"),
    )
    max_channels = True
