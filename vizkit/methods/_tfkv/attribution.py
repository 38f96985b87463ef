"""tf-keras-vis engines for saliency, Grad-CAM, Grad-CAM++ and LayerCAM (``engine="tf-keras-vis"``).

Each function runs tf-keras-vis on a model vizkit prepared (see :mod:`vizkit.methods._tfkv`) and
returns raw values (``normalize_*=False``): saliency the signed input gradients
``(N, H, W, C)``; the CAMs at the layer's resolution ``(N, h, w)`` (resized by the caller with
the same bilinear resize as the native engine, instead of tf-keras-vis's scipy zoom).

Fixes for tf-keras-vis 0.8.7 on Keras 3, all done outside tf-keras-vis (no monkey-patching):

- a layer inside a nested base model: tf-keras-vis reads ``layer.output``, which belongs to the
  nested model's own graph; vizkit rebuilds the graph with the nested model inlined and puts an
  ``Identity`` marker layer after the chosen layer, whose ``output`` is in the rebuilt graph;
- softmax-to-linear for Sequential models: done by the rebuild (``ReplaceToLinear`` is unused);
- known differences: tf-keras-vis's Grad-CAM++ multiplies by ``exp(score)`` and renormalizes the
  alphas per channel, so its maps differ from vizkit's paper form by more than a scale factor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.models import get_layer, model_cache, rebuild
from vizkit.scoring import Scoring

_CAMS = ("gradcam", "gradcam_pp", "layercam")


def _score(targets: np.ndarray, scoring: Scoring) -> Callable[[Any], Any]:
    chosen = tf.constant(np.asarray(targets, dtype=np.int32))

    def score(output: Any) -> Any:
        return scoring.score(output, chosen)

    return score


def saliency(
    prepared: keras.Model, x: np.ndarray, targets: np.ndarray, scoring: Scoring
) -> np.ndarray:
    """Signed input gradients ``(N, H, W, C)`` computed by ``tf_keras_vis.saliency.Saliency``."""
    from tf_keras_vis.saliency import Saliency

    single = keras.Model(prepared.inputs, prepared.outputs[0])
    grads = Saliency(single, clone=False)(
        _score(targets, scoring),
        tf.constant(x),
        gradient_modifier=None,
        keepdims=True,
        normalize_map=False,
    )
    return np.asarray(grads, dtype=np.float32)


def _marked(model: keras.Model, layer: str, scoring: Scoring) -> tuple[keras.Model, Any]:
    """The rebuilt head-only model with an Identity marker after ``layer`` (cached per model)."""
    cache = model_cache(model)
    key = ("vizkit.methods._tfkv", scoring.head.output, scoring.logits, layer)
    if key not in cache:
        path, _ = get_layer(model, layer)
        marker = keras.layers.Identity(name="vizkit_tfkv_marker")

        def substitute(p: str, lyr: Any) -> Any:
            if p != path:
                return None
            return lambda *args, **kwargs: marker(lyr(*args, **kwargs))

        rebuilt = rebuild(
            model, logits=scoring.logits, output=scoring.head.output, substitute=substitute
        )
        single = keras.Model(rebuilt.inputs, rebuilt.outputs[0])
        cache[key] = (single, marker)
    return cache[key]


def cam(
    method: str,
    model: keras.Model,
    layer: str,
    x: np.ndarray,
    targets: np.ndarray,
    scoring: Scoring,
) -> np.ndarray:
    """A CAM at the layer's resolution ``(N, h, w)`` from tf-keras-vis."""
    if method not in _CAMS:
        raise ValueError(f"no tf-keras-vis engine for {method!r}: choose one of {_CAMS}")
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.layercam import Layercam

    cls = {"gradcam": Gradcam, "gradcam_pp": GradcamPlusPlus, "layercam": Layercam}[method]
    single, marker = _marked(model, layer, scoring)
    maps = cls(single, clone=False)(
        _score(targets, scoring),
        tf.constant(x),
        penultimate_layer=marker,
        seek_penultimate_conv_layer=False,
        expand_cam=False,
        normalize_cam=False,
    )
    return np.asarray(maps, dtype=np.float32)
