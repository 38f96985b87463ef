"""Map health: catch maps that cannot be trusted before anyone reads them.

Checks, in order (the first that fails names the map's status):

- ``"nan"``: NaN or infinite values (an overflow in the model or the method);
- ``"blank"``: every value is (near) zero: gradients vanished, most often through a saturated
  softmax; explaining the logit fixes it;
- ``"constant"``: one value everywhere: the map carries no spatial information;
- ``"saturated"``: a large share of pixels sit at the maximum: the map was clipped or comes from a
  layer too coarse to localize.

No TensorFlow here: the dashboard badges maps with :func:`map_health` directly.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.metrics._common import as_maps, is_explanation, method_name, names_of
from vizkit.results.metrics import HealthReport, HealthResult

_GRADIENT_METHODS = (
    "saliency",
    "smoothgrad",
    "gradient_x_input",
    "integrated_gradients",
    "guided_backprop",
    "rectified_backprop",
    "guided_gradcam",
)
_CAM_METHODS = ("gradcam", "gradcam_pp", "layercam", "scorecam", "faster_scorecam")


def _blank_reason(method: str | None, confidence: float | None) -> str:
    sure = (
        f" (the model is {confidence:.4%} sure of the target)"
        if confidence is not None and confidence > 0.999
        else ""
    )
    if method in _CAM_METHODS:
        return (
            "all zeros: no positive evidence for the target at this layer, or gradients "
            f"vanished through a saturated softmax{sure}; explain the logit (score='logit') or "
            "pick an earlier convolutional layer"
        )
    if method == "occlusion":
        return (
            "all zeros: occluding any patch leaves the score unchanged; the softmax may be "
            f"saturated{sure}: score the logit (score='logit') or use larger patches"
        )
    return (
        "all zeros: gradients vanished — the softmax may be saturated"
        f"{sure}; explain the logit (score='logit')"
    )


def _confidences(maps: Any) -> np.ndarray | None:
    """The target's predicted probability per image, when an Explanation carries it.

    Reads ``Explanation.predictions`` (top-k ``classes`` and ``probabilities``); a target outside
    the top k, or a missing field, gives NaN for that image.
    """
    if not is_explanation(maps):
        return None
    predictions = getattr(maps, "predictions", None)
    targets = getattr(maps, "targets", None)
    classes = getattr(predictions, "classes", None)
    probabilities = getattr(predictions, "probabilities", None)
    if classes is None or probabilities is None or targets is None:
        return None
    classes = np.asarray(classes).reshape(len(classes), -1)
    probabilities = np.asarray(probabilities, np.float64).reshape(classes.shape)
    targets = np.asarray(targets, np.int64).reshape(-1)
    if len(classes) != len(targets):
        return None
    found = classes == targets[:, None]
    values = np.where(found, probabilities, 0.0).sum(axis=1)
    return np.where(found.any(axis=1), values, np.nan)


def check_map(
    values: np.ndarray,
    index: int = 0,
    *,
    method: str | None = None,
    confidence: float | None = None,
    atol: float = 1e-12,
    saturation: float = 0.25,
) -> HealthReport:
    """Health of one 2-D map; see :func:`map_health` for the checks and parameters."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    max_abs = float(np.abs(values[finite]).max()) if finite.any() else float("nan")
    if not finite.all():
        bad = int((~finite).sum())
        return HealthReport(
            index=index,
            status="nan",
            reason=(
                f"{bad} of {values.size} values are NaN or infinite: the model or method "
                "overflowed; check the input scaling, or explain the logit (score='logit')"
            ),
            max_abs=max_abs,
        )
    if max_abs <= atol:
        return HealthReport(
            index=index, status="blank", reason=_blank_reason(method, confidence), max_abs=max_abs
        )
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    if span <= 1e-6 * max_abs:
        return HealthReport(
            index=index,
            status="constant",
            reason=(
                f"constant ({hi:.3g} everywhere): the map carries no spatial information; the "
                "layer may be too deep (1x1) or behind global pooling: pick an earlier layer"
            ),
            max_abs=max_abs,
        )
    share = float(np.mean(values >= hi - 0.01 * span))
    if share > saturation:
        return HealthReport(
            index=index,
            status="saturated",
            reason=(
                f"saturated: {share:.0%} of pixels sit at the maximum: the map may be clipped, "
                "or the layer is too coarse to localize; pick a layer with a larger output"
            ),
            max_abs=max_abs,
            saturated_share=share,
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
        Raw maps. An Explanation also gives the method's name and the model's confidence,
        which sharpen the reasons.
    method : str, optional
        Name of the method, when ``maps`` is an array.
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
    confidences = _confidences(maps)
    reports = tuple(
        check_map(
            array[i],
            i,
            method=name,
            confidence=None
            if confidences is None or np.isnan(confidences[i])
            else float(confidences[i]),
            atol=atol,
            saturation=saturation,
        )
        for i in range(len(array))
    )
    result = HealthResult(reports=reports, method=name, names=names_of(maps))
    if warn:
        for line in result.summary():
            warnings.warn(f"{name or 'attribution'}: {line}", UserWarning, stacklevel=2)
    return result
