"""How a head's output becomes predicted classes, target scores and probabilities: the one rule.

Every consumer (the attribution methods' compiled functions, the metrics, activation
maximization, the report, the dashboard through :func:`predict`) goes through
:class:`Scoring`, in TensorFlow; nothing re-derives these values in numpy.

The rule
--------
- ``out`` is the head's output, flattened to ``(N, units)``. It is the head's pre-activation
  (the logit) when the graph that produced it had the head's softmax/sigmoid removed
  (``kind="logit"``, see :func:`vizkit.models.rebuild`) or when the head has no squashing
  activation; otherwise it is the model's own probabilities.
- **A single unit is a binary classifier** (a sigmoid, or a ``Dense(1)`` logit trained with
  ``from_logits=True``): class 1 is the unit, class 0 its negation. The predicted class is 1
  when the logit is above 0 (the probability above 0.5); the score of class 0 is the negated
  logit, or ``1 - p``.
- Several units: the predicted class is the argmax; probabilities are the softmax of the logits
  (a sigmoid per unit for a sigmoid head, a multi-label classifier), or the model's own
  softmax/sigmoid output.
- Targets are class indices, ``-1`` meaning "the predicted class" (resolved in the same graph
  as the scores, so the two always agree). Classes are ranked by their logits when the outputs
  are logits (float32 probabilities of a saturated softmax can tie), else by probability.
- A per-pixel output ``(N, H, W, K)`` (segmentation) is pooled to its mean over positions.
  :mod:`vizkit.targets` plugs other scores into the same functions (a unit's value, a region
  of a segmentation output, any TensorFlow function of the output).

:func:`predict` runs a model once over a batch and returns :class:`~vizkit.results.explanation.
Predictions` (top-k classes and probabilities, and every class's probability), with its
compiled function cached per model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError
from vizkit.models import Head, head_info, model_cache, require_image_model
from vizkit.results.explanation import Predictions

#: What a method explains: the head's pre-activation, or its probability.
KINDS = ("logit", "probability")
#: Classes kept per image in :class:`Predictions` unless asked otherwise.
TOP_K = 5


def flatten(out: Any) -> Any:
    """Head outputs as float32 ``(N, units)``; a per-position output ``(N, ..., K)`` (a
    segmentation map) is pooled to its mean over positions."""
    out = tf.cast(tf.convert_to_tensor(out), tf.float32)
    if out.shape.rank is not None and out.shape.rank > 2:
        out = tf.reduce_mean(out, axis=list(range(1, out.shape.rank - 1)))
    return tf.reshape(out, (tf.shape(out)[0], -1))


@dataclasses.dataclass(frozen=True)
class Scoring:
    """One head scored one way: the single implementation of predict / resolve / score.

    Parameters
    ----------
    head : Head
        From :func:`vizkit.models.head_info`.
    kind : {"logit", "probability"}
        What a target's score is. ``"logit"`` expects the outputs of a graph whose head has its
        softmax/sigmoid removed (``rebuild(..., logits=True)``); ``"probability"`` the model's
        own outputs (a head without a squashing activation gets its softmax or sigmoid here).

    All methods take and return TensorFlow tensors (numpy arrays are converted), so they run
    inside compiled functions and eagerly alike.
    """

    head: Head
    kind: str = "logit"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"score={self.kind!r} is not known: choose one of {', '.join(KINDS)}")

    @property
    def logits(self) -> bool:
        """The graph to score must output the head's pre-activation (``rebuild(logits=...)``)."""
        return self.kind == "logit"

    @property
    def on_logits(self) -> bool:
        """The outputs this scoring reads are logits (not the model's own probabilities)."""
        return self.kind == "logit" or not self.head.squashed

    # -- the rule ----------------------------------------------------------------------------
    def key(self) -> Any:
        """What compiled functions built on this scoring depend on beyond the head and kind
        (None: nothing; target objects return their own key)."""
        return None

    def flat(self, out: Any) -> Any:
        """Outputs as float32 ``(N, units)`` (see :func:`flatten`)."""
        return flatten(out)

    def ranking(self, out: Any) -> Any:
        """Values whose descending order ranks the classes, ``(N, num_classes)``: the logits
        (``[-z, z]`` for a single unit) when the outputs are logits, else the probabilities.

        Ranking by logits keeps classes apart that float32 probabilities would tie (a
        saturated softmax), so the predicted class and the top-k agree with every score.
        """
        out = self.flat(out)
        if not self.on_logits:
            return self.probabilities(out)
        if self.head.binary:
            return tf.concat([-out, out], axis=1)
        return out

    def predicted(self, out: Any) -> Any:
        """Predicted class per row, int32 ``(N,)``: the top of :meth:`ranking` (ties: the lower
        class; a single unit predicts class 1 when its logit is above 0, its probability above
        0.5)."""
        return tf.math.top_k(self.ranking(out), k=1).indices[:, 0]

    def resolve(self, targets: Any, out: Any) -> Any:
        """Targets with ``-1`` replaced by the predicted class, int32 ``(N,)``."""
        targets = tf.cast(tf.convert_to_tensor(targets), tf.int32)
        return tf.where(targets < 0, self.predicted(out), targets)

    def probabilities(self, out: Any) -> Any:
        """Class probabilities, float32 ``(N, num_classes)``; a single unit gives
        ``[P(class 0), P(class 1)]``."""
        out = self.flat(out)
        if self.head.binary:
            if self.on_logits:
                return tf.concat([tf.sigmoid(-out), tf.sigmoid(out)], axis=1)
            return tf.concat([1.0 - out, out], axis=1)
        if not self.on_logits:
            return out
        if self.head.activation == "sigmoid":
            return tf.sigmoid(out)
        return tf.nn.softmax(out, axis=-1)

    def units(self, targets: Any) -> tuple[Any, Any]:
        """``(unit, sign)`` per target class: class ``t``'s logit is ``sign * out[:, unit]``
        (a single unit: unit 0, sign -1 for class 0)."""
        targets = tf.cast(tf.convert_to_tensor(targets), tf.int32)
        if self.head.binary:
            return tf.zeros_like(targets), tf.where(targets == 1, 1.0, -1.0)
        return targets, tf.ones_like(targets, tf.float32)

    def score(self, out: Any, targets: Any) -> Any:
        """Each row's score for its (resolved) target class, float32 ``(N,)``."""
        if self.kind == "probability":
            targets = tf.cast(tf.convert_to_tensor(targets), tf.int32)
            return tf.gather(self.probabilities(out), targets, axis=1, batch_dims=1)
        unit, sign = self.units(targets)
        return tf.gather(self.flat(out), unit, axis=1, batch_dims=1) * sign

    def __call__(self, out: Any, targets: Any) -> tuple[Any, Any]:
        """``(resolved targets, scores)``: what every compiled function returns with ``out``."""
        resolved = self.resolve(targets, out)
        return resolved, self.score(out, resolved)

    def top_k(self, out: Any, k: int = TOP_K) -> tuple[Any, Any, Any]:
        """``(classes (N, k) int32, their probabilities (N, k), all probabilities (N, K))``,
        in the order of :meth:`ranking` (ties: the lower class first)."""
        probs = self.probabilities(out)
        k = min(int(k), self.head.num_classes)
        classes = tf.math.top_k(self.ranking(out), k=k, sorted=True).indices
        return classes, tf.gather(probs, classes, axis=1, batch_dims=1), probs

    def predictions(
        self,
        out: Any,
        k: int = TOP_K,
        *,
        keep_all: bool = False,
        image_names: tuple[str, ...] = (),
        class_names: tuple[str, ...] | None = None,
    ) -> Predictions:
        """:class:`Predictions` from head outputs (top ``k``; every class with ``keep_all``)."""
        classes, values, probs = self.top_k(out, k)
        return Predictions(
            classes=np.asarray(classes, dtype=np.int64),
            probabilities=np.asarray(values, dtype=np.float32),
            all_probabilities=np.asarray(probs, dtype=np.float32) if keep_all else None,
            image_names=tuple(image_names),
            class_names=None if class_names is None else tuple(class_names),
        )


def scoring(model: keras.Model, output: int | str | None = None, kind: str = "logit") -> Scoring:
    """The :class:`Scoring` of ``model``'s chosen output head."""
    return Scoring(head_info(model, output), kind)


# --------------------------------------------------------------------------------------------
# vizkit.predict
# --------------------------------------------------------------------------------------------
def _predict_fn(model: keras.Model, rule: Scoring) -> Any:
    """Compiled ``x -> head outputs (N, units)`` on the model itself, cached per model."""
    key = ("vizkit.scoring", "predict", rule.head.output)
    cache = model_cache(model)
    if key not in cache:
        shape = require_image_model(model, "predict")
        index = rule.head.output
        many = len(model.outputs) > 1

        @tf.function(
            input_signature=[tf.TensorSpec((None, *shape[1:]), tf.float32)],
            reduce_retracing=True,
        )
        def forward(x: Any) -> Any:
            out = model(x, training=False)
            if many or isinstance(out, (list, tuple)):
                out = out[index]
            return rule.flat(out)

        cache[key] = forward
    return cache[key]


def predict(
    model: keras.Model,
    images: Any,
    output: int | str | None = None,
    *,
    k: int = TOP_K,
    batch_size: int | None = None,
    value_range: tuple[float, float] | str | None = None,
    preprocess: str | Any = None,
    class_names: Any = None,
) -> Predictions:
    """The model's predictions for a batch: top-``k`` classes and every class's probability.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier (never modified).
    images : ndarray (N, H, W, C), ImageBatch, paths or PIL images
        On the model's input scale (see :func:`vizkit.load_images`).
    output : int or str, optional
        Head of a multi-output model.
    k : int
        Classes kept per image in ``classes``/``probabilities`` (at most the number of classes).
    batch_size : int, optional
        Images per forward pass (default: sized to the model, as the methods do).
    value_range, preprocess : optional
        The input scale of images loaded here (paths, PIL images, uint8 arrays); see
        :func:`vizkit.load_images`. Default: what :func:`vizkit.input_spec` decides.
    class_names : sequence of str, optional
        One name per class (default: the images', a sample's, or ImageNet's for 1000 classes).

    Returns
    -------
    Predictions
        ``classes``/``probabilities`` ``(N, k)``, ``all_probabilities`` ``(N, K)``, ``top``,
        ``to_frame(class_names)``. Probabilities follow :class:`Scoring`: a softmax of a
        logits head, a sigmoid per unit for a sigmoid head, ``[1 - p, p]`` for a single unit.

    Notes
    -----
    The model itself runs (any Keras model works, no graph rebuilt), so a softmax head is
    ranked by its float32 probabilities; explanations rank by logits. The two agree except
    where a saturated softmax rounds several classes to the same probability. Sanity findings
    (:func:`vizkit.check_inputs`) are emitted as :class:`vizkit.VizkitWarning`.
    """
    from vizkit.checks import check_inputs, is_quiet, warn_findings
    from vizkit.classes import model_class_names
    from vizkit.inputs import ImageBatch, as_batch, prepare_inputs
    from vizkit.methods.batching import auto_batch_size, chunks

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, not {k!r}")
    images = prepare_inputs(
        images, model, value_range=value_range, preprocess=preprocess, class_names=class_names
    )
    x = as_batch(images, model)
    if len(x) == 0:
        raise InputError("no images given: pass at least one image")
    rule = scoring(model, output, "probability")
    size = auto_batch_size(model, forward_only=True) if batch_size is None else int(batch_size)
    if size < 1:
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")
    fn = _predict_fn(model, rule)
    parts = [fn(tf.constant(x[s])) for s in chunks(len(x), size)]
    out = tf.concat(parts, axis=0)
    batch = images if isinstance(images, ImageBatch) else None
    names = batch.class_names if batch is not None else None
    predictions = rule.predictions(
        out,
        k,
        keep_all=True,
        image_names=batch.names if batch is not None else (),
        class_names=names if names is not None else model_class_names(model, rule.head.output),
    )
    if batch is not None:
        predictions = dataclasses.replace(predictions, input_spec=batch.input_spec)
    if not is_quiet():
        warn_findings(check_inputs(model, images, predictions, output=output))
    return predictions
