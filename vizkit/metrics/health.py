"""Map health: catch maps that cannot be trusted before anyone reads them.

Checks, in order (the first that fails names the map's status):

- ``"nan"``: NaN or infinite values (an overflow in the model or the method);
- ``"blank"``: every value is (near) zero, or (Score-CAM) the target's probability stays below
  ``SCORE_CAM_WEAK`` on every masked image, so the map is noise scaled to near zero;
- ``"constant"``: one value everywhere: the map carries no spatial information;
- ``"saturated"``: a large share of pixels sit at the maximum.

The likely cause and the fix depend on how the method computes its map, so the advice is chosen
by the method's family from the registry (``Explanation.family``, or the family of a registered
method name): a vanished gradient for gradient methods, a layer with no positive evidence for
gradient CAMs, a class the model never finds likely for Score-CAM, a patch size for occlusion.

No TensorFlow at import: the dashboard badges maps with :func:`map_health` directly (only
naming a method for a bare array looks its family up in the registry).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.metrics._common import as_maps, is_explanation, method_name, names_of
from vizkit.results.metrics import HealthReport, HealthResult

_LAYER_FAMILIES = ("cam", "score-cam", "activation-cam")
#: A Score-CAM map (probability score) whose target never reaches this probability on any
#: masked image is blank in all but float rounding: it is flagged as blank.
SCORE_CAM_WEAK = 1e-3
_SOFTMAX = "the softmax may be saturated{sure}: explain the logit (score='logit')"

#: Why a map is all zeros, and what to do, per method family ({sure}: the model's confidence).
_BLANK = {
    "gradient": "all zeros: gradients vanished; " + _SOFTMAX,
    "cam": (
        "all zeros: no positive evidence for the target at this layer, or gradients vanished "
        "through a saturated softmax{sure}; explain the logit (score='logit') or pick an "
        "earlier convolutional layer"
    ),
    "activation-cam": (
        "all zeros: the layer's activations do not vary across the image (dead or constant "
        "channels); pick another layer"
    ),
    "perturbation": (
        "all zeros: hiding any patch leaves the score unchanged; {softmax} or use larger patches"
    ).replace("{softmax}", _SOFTMAX),
    "score-cam": (
        "all zeros: every channel-masked image gives the target a score of zero or less, so "
        "no channel gets weight; pick another layer, or keep score='probability' (the logit "
        "of a masked image is often negative)"
    ),
}
_SCORE_CAM_IMPROBABLE = (
    "all zeros: Score-CAM weighs each channel by the target's score on the image masked by "
    "that channel, and class {target} ({probability}, the model predicts {predicted}) stays "
    "improbable on every masked image, so every weight is about zero. Score-CAM only shows "
    "evidence for classes the model finds likely: explain the predicted class, or use Grad-CAM "
    "or occlusion for this one"
)
_CONSTANT = {
    "gradient": (
        "the gradient is the same at every pixel: the score does not depend on where things "
        "are in the image (check the input scale, or that the model uses its input)"
    ),
    "perturbation": (
        "every patch changes the score by the same amount: the patch covers most of the image "
        "or the stride skips it; use a smaller patch_size and stride"
    ),
    "layer": "the layer may be too deep (1x1) or behind global pooling: pick an earlier layer",
}
_SATURATED = {
    "gradient": "the map may be clipped: check the input scale and the model's input range",
    "perturbation": "the patch covers most of the object: use a smaller patch_size or stride",
    "layer": (
        "the map may be clipped, or the layer is too coarse to localize; pick a layer with a "
        "larger output"
    ),
}


@dataclasses.dataclass(frozen=True)
class _Context:
    """What sharpens the advice for one map."""

    family: str | None = None
    confidence: float | None = None  # the model's probability of the target
    target: int | None = None
    predicted: int | None = None
    best_weight: float | None = None  # Score-CAM: the target's best probability on a masked image

    @property
    def kind(self) -> str:
        """The advice group: a family, with the layer-based families sharing ``"layer"``."""
        return "layer" if self.family in _LAYER_FAMILIES else (self.family or "gradient")


def _blank_reason(context: _Context) -> str:
    confidence = context.confidence
    sure = (
        f" (the model is {confidence:.4%} sure of the target)"
        if confidence is not None and confidence > 0.999
        else ""
    )
    known = context.target is not None and context.predicted is not None
    if context.family == "score-cam" and known and context.target != context.predicted:
        probability = "probability unknown" if confidence is None else f"p = {confidence:.2%}"
        return _SCORE_CAM_IMPROBABLE.format(
            target=context.target, probability=probability, predicted=context.predicted
        )
    return _BLANK.get(context.family or "gradient", _BLANK["gradient"]).format(sure=sure)


def _contexts(maps: Any, n: int, family: str | None) -> list[_Context]:
    """Per-image context from an Explanation: target, predicted class and its probability.

    Reads ``Explanation.predictions`` (top-k ``classes`` and ``probabilities``); a target outside
    the top k, or a missing field, leaves the confidence unknown.
    """
    empty = [_Context(family=family)] * n
    if not is_explanation(maps):
        return empty
    predictions = getattr(maps, "predictions", None)
    targets = getattr(maps, "targets", None)
    classes = getattr(predictions, "classes", None)
    probabilities = getattr(predictions, "probabilities", None)
    if classes is None or probabilities is None or targets is None:
        return empty
    classes = np.asarray(classes).reshape(len(classes), -1)
    probabilities = np.asarray(probabilities, np.float64).reshape(classes.shape)
    targets = np.asarray(targets, np.int64).reshape(-1)
    if len(classes) != len(targets) or len(targets) != n:
        return empty
    found = classes == targets[:, None]
    values = np.where(found, probabilities, 0.0).sum(axis=1)
    best = _best_weights(maps, family, n)
    return [
        _Context(
            family=family,
            confidence=float(values[i]) if found[i].any() else None,
            target=int(targets[i]),
            predicted=int(classes[i, 0]),
            best_weight=None if best is None else float(best[i]),
        )
        for i in range(n)
    ]


def _best_weights(maps: Any, family: str | None, n: int) -> np.ndarray | None:
    """Score-CAM with probability scores: each image's largest channel weight (the target's
    best probability on a masked image)."""
    weights = (getattr(maps, "extras", None) or {}).get("weights")
    if family != "score-cam" or getattr(maps, "score_kind", None) != "probability":
        return None
    if weights is None or len(weights) != n:
        return None
    return np.asarray(weights, np.float64).reshape(n, -1).max(axis=1)


def family_of(maps: Any = None, method: str | None = None) -> str | None:
    """The method family of an Explanation (its ``family``), or of a registered method name."""
    family = getattr(maps, "family", None) if is_explanation(maps) else None
    if family:
        return str(family)
    if not method:
        return None
    from vizkit.registry import get_method

    try:
        return get_method(method).family
    except InputError:  # a custom function's name, a label: no family known
        return None


def check_map(
    values: np.ndarray,
    index: int = 0,
    *,
    method: str | None = None,
    family: str | None = None,
    confidence: float | None = None,
    target: int | None = None,
    predicted: int | None = None,
    atol: float = 1e-12,
    saturation: float = 0.25,
) -> HealthReport:
    """Health of one 2-D map; see :func:`map_health` for the checks and parameters.

    ``family`` (or a registered ``method`` name) picks the advice; ``confidence`` (the model's
    probability of the target), ``target`` and ``predicted`` sharpen it.
    """
    context = _Context(family or family_of(None, method), confidence, target, predicted)
    return _check(np.asarray(values, np.float64), index, context, atol, saturation)


def _check(
    values: np.ndarray, index: int, context: _Context, atol: float, saturation: float
) -> HealthReport:
    finite = np.isfinite(values)
    max_abs = float(np.abs(values[finite]).max()) if finite.any() else float("nan")
    if not finite.all():
        bad = int((~finite).sum())
        reason = (
            f"{bad} of {values.size} values are NaN or infinite: the model or method "
            "overflowed; check the input scaling, or explain the logit (score='logit')"
        )
        return HealthReport(index=index, status="nan", reason=reason, max_abs=max_abs)
    weak = context.best_weight is not None and context.best_weight < SCORE_CAM_WEAK
    if max_abs <= atol or weak:
        reason = _blank_reason(context)
        return HealthReport(index=index, status="blank", reason=reason, max_abs=max_abs)
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    if span <= 1e-6 * max_abs:
        reason = (
            f"constant ({hi:.3g} everywhere): the map carries no spatial information; "
            + _CONSTANT[context.kind]
        )
        return HealthReport(index=index, status="constant", reason=reason, max_abs=max_abs)
    share = float(np.mean(values >= hi - 0.01 * span))
    if share > saturation:
        reason = f"saturated: {share:.0%} of pixels sit at the maximum: " + _SATURATED[context.kind]
        return HealthReport(
            index=index, status="saturated", reason=reason, max_abs=max_abs, saturated_share=share
        )
    return HealthReport(index=index, status="ok", max_abs=max_abs, saturated_share=share)


def map_health(
    maps: Any,
    *,
    method: str | None = None,
    atol: float = 1e-12,
    saturation: float = 0.25,
    warn: bool = False,
) -> HealthResult:
    """Flag blank, constant, NaN and saturated maps, with the likely cause and fix.

    Parameters
    ----------
    maps : ndarray (N, H, W), one map (H, W), or an Explanation
        Raw maps. An Explanation also gives the method's family, the targets and the model's
        predictions, which choose and sharpen the advice.
    method : str, optional
        Name of the method, when ``maps`` is an array (a registered name gives its family).
    atol : float
        A map whose largest absolute value is at most this is blank.
    saturation : float
        A map with more than this share of pixels within 1% of its range from the maximum is
        saturated.
    warn : bool
        Also issue a :class:`UserWarning` per failing status (for scripts and notebooks).

    Returns
    -------
    HealthResult
        A sequence of :class:`HealthReport` (``.status``, ``.reason``, ``.badge``, ``.ok``).
    """
    if not 0.0 < float(saturation) <= 1.0:
        raise InputError(f"saturation must be a share in (0, 1], not {saturation!r}")
    name = method or method_name(maps)
    array = as_maps(maps)
    contexts = _contexts(maps, len(array), family_of(maps, name))
    reports = tuple(
        _check(array[i], i, contexts[i], float(atol), float(saturation)) for i in range(len(array))
    )
    result = HealthResult(reports=reports, method=name, names=names_of(maps))
    if warn:
        for line in result.summary():
            warnings.warn(f"{name or 'attribution'}: {line}", UserWarning, stacklevel=2)
    return result
