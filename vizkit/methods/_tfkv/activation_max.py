"""tf-keras-vis ``ActivationMaximization`` behind vizkit's interface (``backend="tf-keras-vis"``).

A reference path for comparisons and benchmarks; vizkit's own compiled optimizer
(:mod:`vizkit.activation_max`) is the default because it is several times faster per step and
supports the Fourier parameterization. What this adapter fixes on Keras 3:

- it is handed vizkit's prepared float32 logit graph (:func:`vizkit.activation_engine.feature_model`),
  so no ``model_modifier`` (``ReplaceToLinear`` crashes on ``Sequential`` and mutates layers) is
  used, mixed-precision models are optimized in float32 (tf-keras-vis alone silently returns its
  seed on ``mixed_float16`` models), and the caller's model is never touched;
- the result is a numpy array, not a ``tf.Tensor``;
- randomness is seeded (its ``Jitter`` draws from numpy's global generator, which is restored
  afterwards; its ``Rotate2D``/``Scale`` get seeded generators of their own);
- several targets (one per seed image) run in one batch.

tf-keras-vis optimizes raw pixels with RMSprop and its own regularizers (total variation 1.0,
L1 norm 0.3, in its units); vizkit's recipe contributes the step count, jitter, rotation and zoom.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tf_keras_vis.activation_maximization import ActivationMaximization
from tf_keras_vis.activation_maximization.callbacks import Callback
from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D, Scale
from tf_keras_vis.activation_maximization.regularizers import Norm, TotalVariation2D

from vizkit._tf import keras, tf

__all__ = ["run_activation_maximization"]


class _Record(Callback):
    """Collects the objective and loss per step and reports progress."""

    def __init__(self, progress: Callable[[int], Any] | None) -> None:
        self.progress = progress
        self.scores: list[np.ndarray] = []
        self.losses: list[np.ndarray] = []

    def __call__(self, i, values, grads, scores, model_outputs, **kwargs) -> None:  # noqa: ANN001
        score = np.asarray(scores[0], dtype=np.float32).reshape(-1)
        regs = kwargs.get("regularizations") or []
        penalty = sum(np.asarray(value, dtype=np.float32).reshape(-1) for _, value in regs)
        self.scores.append(score)
        self.losses.append(penalty - score)
        if self.progress is not None:
            self.progress(i + 1)


def run_activation_maximization(
    features: Any,
    *,
    units: np.ndarray,
    signs: np.ndarray,
    objective: str,
    recipe: Any,
    steps: int,
    value_range: tuple[float, float],
    seed: int,
    progress: Callable[[int], Any] | None = None,
    rectify: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimize one image per target with tf-keras-vis.

    Parameters
    ----------
    features : keras.Model
        Float32 model from the input to the target layer's output (logits for classes; the
        pre-activation when ``rectify``).
    units, signs : ndarray, shape (B,)
        Index into the last axis, and +1/-1 (class 0 of a single-unit head is the negated
        logit).
    objective : {"mean", "center"}
        Reduction of a spatial output.
    recipe : vizkit.activation_max.Recipe
        Its polish phase is not translated: every step is augmented.
    steps : int
    value_range : (float, float)
    seed : int
    progress : callable, optional
        Called with the number of finished steps.
    rectify : bool
        Apply a ReLU to ``features``' output (it is a pre-activation).

    Returns
    -------
    images (B, H, W, C), losses (steps, B), scores (steps, B) : ndarray
    """
    unit_t = tf.constant(np.asarray(units, dtype=np.int32))
    sign_t = tf.constant(np.asarray(signs, dtype=np.float32))

    def score(output: Any) -> Any:
        out = tf.cast(output, tf.float32)
        if rectify:
            out = tf.nn.relu(out)
        rank = out.shape.rank
        if rank == 4 and objective == "center":
            out = out[:, out.shape[1] // 2, out.shape[2] // 2, :]
        elif rank > 2:
            out = tf.reduce_mean(out, axis=list(range(1, rank - 1)))
        return tf.gather(out, unit_t, axis=1, batch_dims=1) * sign_t

    low, high = (float(v) for v in value_range)
    batch = len(units)
    shape = (batch, *tuple(int(d) for d in features.inputs[0].shape[1:]))
    rng = np.random.default_rng(seed)
    seed_input = rng.uniform(low, high, shape).astype(np.float32)
    rotate = Rotate2D(degree=float(recipe.rotation))
    rotate.random_generator = np.random.default_rng(seed + 1)
    modifiers: list[Any] = [Jitter(jitter=max(1, int(recipe.jitter))), rotate]
    low_zoom, high_zoom = recipe.scale
    if (low_zoom, high_zoom) != (1.0, 1.0):
        zoom = Scale(low=float(low_zoom), high=float(high_zoom))
        zoom.random_generator = np.random.default_rng(seed + 2)
        modifiers.append(zoom)
    record = _Record(progress)
    state = np.random.get_state()
    np.random.seed(seed % (2**32))
    try:
        # tf-keras-vis calls the model with a list of inputs: give it a model built on a list,
        # so Keras 3 does not warn about the input structure (same layers, nothing copied).
        listed = keras.Model(list(features.inputs), features.outputs, name=features.name)
        visualizer = ActivationMaximization(listed, clone=False)
        result = visualizer(
            score,
            seed_input=seed_input,
            input_range=(low, high),
            input_modifiers=modifiers,
            regularizers=[TotalVariation2D(weight=1.0), Norm(weight=0.3, p=1)],
            steps=int(steps),
            callbacks=[record],
        )
    finally:
        np.random.set_state(state)
    images = np.asarray(result, dtype=np.float32)
    return images, np.stack(record.losses), np.stack(record.scores)
