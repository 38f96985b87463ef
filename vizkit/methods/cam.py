"""Class activation maps: Grad-CAM, Grad-CAM++, Score-CAM, Faster Score-CAM, LayerCAM and
Guided Grad-CAM.

Every CAM explains at one spatial layer (``layer=None``: the first of
:func:`vizkit.candidate_layers`, i.e. the last spatial layer, nested models included). The model
is rebuilt once per (layer, head) with that layer's output exposed, so layers inside a nested
base model work (tf-keras-vis 0.8.7 fails there on Keras 3 because it reads ``layer.output`` of
the nested graph). The gradient CAMs run one compiled function per model and layer that returns
the head output, the channel weights, the coarse CAM and the CAM resized (bilinear) to the
input, in one forward and one backward pass. Score-CAM pushes all channel-masked images through
one compiled forward function in ``batch_size`` chunks (flattened over images and channels).

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
from vizkit.errors import InputError
from vizkit.methods.base import (
    CHANNELS,
    Method,
    chunks,
    common_params,
    first_output,
    reduce_channels,
    resize_maps,
    tf_resolve,
    tf_score,
)
from vizkit.registry import Param, register

FAMILY = "cam"


class CamMethod(Method):
    """Gradient CAMs: override :meth:`weigh` (activations, gradients -> coarse CAM, weights)."""

    needs_layer = True

    def __init__(self, model: keras.Model, *, engine: str = "native", **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        from vizkit.methods.saliency import _check_engine

        self.engine = _check_engine(engine)
        if self.engine != "native" and self.name not in ("gradcam", "gradcam_pp", "layercam"):
            raise InputError(f"{self.name} has no tf-keras-vis engine: use engine='native'")

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        """``(n, h, w, C)`` activations and gradients -> coarse CAM ``(n, h, w)``, weights."""
        raise NotImplementedError

    def cam_fn(self) -> Any:
        def build() -> Any:
            model = self.prepared((self.layer,))
            head, logits, weigh = self.head, self.logits, self.weigh

            @tf.function(
                input_signature=[self._sig, tf.TensorSpec([None], tf.int32)],
                reduce_retracing=True,
            )
            def cam(x: Any, targets: Any) -> Any:
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x)
                    out, raw = model(x, training=False)
                    out = tf.cast(out, tf.float32)
                    score = tf_score(out, tf_resolve(targets, out, head, logits), head, logits)
                # the gradient at the layer's own (float16 under mixed precision) output: a cast
                # made after it is not on the path to the score
                grads = tf.cast(tape.gradient(score, raw), tf.float32)
                acts = tf.cast(raw, tf.float32)
                coarse, weights = weigh(acts, grads)
                return out, coarse, weights, resize_maps(coarse, tf.shape(x)[1:3])

            return cam

        return self.cached(("cam", self.name, self.layer), build)

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        if self.engine == "tf-keras-vis":
            from vizkit.methods._tfkv import attribution as tfkv

            out = self.forward(x)
            coarse = tfkv.cam(
                self.name,
                self.model,
                self.layer,
                x,
                self.resolve(targets, out),
                self.head,
                self.logits,
            )
            maps = resize_maps(tf.constant(coarse), x.shape[1:3]).numpy()
            return maps, out, {"cam": coarse}
        out, coarse, weights, maps = self.cam_fn()(tf.constant(x), tf.constant(targets))
        extras = {"cam": coarse.numpy()}
        if weights is not None:
            extras["weights"] = weights.numpy()
        return maps.numpy(), out.numpy(), extras


_REF_GRADCAM = (
    "Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra (2017), Grad-CAM: Visual Explanations "
    "from Deep Networks via Gradient-based Localization, ICCV, arXiv:1610.02391"
)


@register(
    "gradcam",
    label="Grad-CAM",
    reference=_REF_GRADCAM,
    family=FAMILY,
    params=common_params(),
    needs_layer=True,
)
class GradCAM(CamMethod):
    """Channels weighted by their spatially averaged gradients, summed, ReLU.

    ``extras["weights"]`` holds the channel weights ``(N, C)``, ``extras["cam"]`` the CAM at
    the layer's resolution.

    References
    ----------
    Selvaraju et al. (2017), arXiv:1610.02391.
    """

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        weights = tf.reduce_mean(grads, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nhwc,nc->nhw", acts, weights)), weights


@register(
    "gradcam_pp",
    label="Grad-CAM++",
    reference=(
        "Chattopadhyay, Sarkar, Howlader & Balasubramanian (2018), Grad-CAM++: Improved Visual "
        "Explanations for Deep Convolutional Networks, WACV, arXiv:1710.11063"
    ),
    family=FAMILY,
    params=common_params(),
    needs_layer=True,
)
class GradCAMPlusPlus(CamMethod):
    """Grad-CAM with pixel-wise weights ``alpha = g^2 / (2 g^2 + sum(A) g^3)`` on positive
    gradients (the closed form for an exponential score, as in the paper).

    References
    ----------
    Chattopadhyay et al. (2018), arXiv:1710.11063.
    """

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        g2 = tf.square(grads)
        g3 = g2 * grads
        total = tf.reduce_sum(acts, axis=(1, 2), keepdims=True)
        denom = 2.0 * g2 + total * g3
        alphas = g2 / tf.where(denom != 0.0, denom, tf.ones_like(denom))
        weights = tf.reduce_sum(alphas * tf.nn.relu(grads), axis=(1, 2))
        return tf.nn.relu(tf.einsum("nhwc,nc->nhw", acts, weights)), weights


@register(
    "layercam",
    label="LayerCAM",
    reference=(
        "Jiang, Zhang, Hou, Cheng & Wei (2021), LayerCAM: Exploring Hierarchical Class "
        "Activation Maps for Localization, IEEE TIP 30"
    ),
    family=FAMILY,
    params=common_params(),
    needs_layer=True,
)
class LayerCAM(CamMethod):
    """Activations weighted pixel-wise by their positive gradients, summed, ReLU.

    References
    ----------
    Jiang et al. (2021), IEEE Transactions on Image Processing 30, 5875-5888.
    """

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        cam = tf.nn.relu(tf.reduce_sum(tf.nn.relu(grads) * acts, axis=-1))
        return cam, tf.reduce_mean(tf.nn.relu(grads), axis=(1, 2))


@register(
    "guided_gradcam",
    label="Guided Grad-CAM",
    reference=_REF_GRADCAM,
    family=FAMILY,
    params=(CHANNELS, *common_params()),
    needs_layer=True,
)
class GuidedGradCAM(CamMethod):
    """Guided backpropagation multiplied pixel-wise by the (upsampled) Grad-CAM map.

    References
    ----------
    Selvaraju et al. (2017), arXiv:1610.02391.
    """

    weigh = staticmethod(GradCAM.weigh)

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

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        out, coarse, weights, cams = self.cam_fn()(tf.constant(x), tf.constant(targets))
        resolved = self.resolve(targets, out.numpy())
        _, grads = self._guided.gradients(x, resolved)
        maps = reduce_channels(grads * cams.numpy()[..., None], self.params["channels"])
        extras = {"cam": coarse.numpy(), "weights": weights.numpy()}
        return maps, out.numpy(), extras


# --------------------------------------------------------------------------------------------
# Score-CAM
# --------------------------------------------------------------------------------------------
_REF_SCORECAM = (
    "Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), Score-CAM: Score-Weighted Visual "
    "Explanations for Convolutional Neural Networks, CVPR Workshops, arXiv:1910.01279"
)


class _ScoreCamBase(Method):
    needs_layer = True
    max_channels: ClassVar[bool] = False

    def activations_fn(self) -> Any:
        def build() -> Any:
            model = self.prepared((self.layer,))

            @tf.function(input_signature=[self._sig], reduce_retracing=True)
            def activations(x: Any) -> Any:
                out, acts = model(x, training=False)
                return tf.cast(out, tf.float32), tf.cast(acts, tf.float32)

            return activations

        return self.cached(("activations", self.layer), build)

    def masked_fn(self) -> Any:
        """Compiled: scores of images masked by (upsampled, min-max normalized) channels."""

        def build() -> Any:
            model = self.head_graph()
            head, logits = self.head, self.logits
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
                out = tf.cast(first_output(model(images)), tf.float32)
                return tf_score(out, targets, head, logits)

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

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Any:
        out, acts = (t.numpy() for t in self.activations_fn()(tf.constant(x)))
        targets = self.resolve(targets, out)
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
                    tf.constant(targets[image[s]]),
                ).numpy()
                for s in chunks(len(image), self.forward_batch_size)
            ]
        )
        weights = np.zeros((acts.shape[0], acts.shape[-1]), dtype=np.float32)
        weights[image, channel] = scores
        coarse = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0.0)
        maps = resize_maps(tf.constant(coarse), x.shape[1:3]).numpy()
        return maps, out, {"cam": coarse, "weights": weights}


@register(
    "scorecam",
    label="Score-CAM",
    reference=_REF_SCORECAM,
    family=FAMILY,
    params=common_params(score="probability"),
    needs_layer=True,
)
class ScoreCAM(_ScoreCamBase):
    """Channels weighted by the target score of the input masked by each (upsampled,
    normalized) channel; gradient-free.

    References
    ----------
    Wang et al. (2020), arXiv:1910.01279.
    """


@register(
    "faster_scorecam",
    label="Faster Score-CAM",
    reference=_REF_SCORECAM + "; Faster Score-CAM: https://github.com/tabayashi0117/Score-CAM",
    family=FAMILY,
    params=(
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
    ),
    needs_layer=True,
)
class FasterScoreCAM(_ScoreCamBase):
    """Score-CAM on the ``max_n`` channels with the largest spatial spread, chosen per image.

    References
    ----------
    Wang et al. (2020), arXiv:1910.01279; Faster Score-CAM by tabayashi0117.
    """

    max_channels = True
