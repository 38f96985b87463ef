"""Sanity checks on what a model was given: the findings the API warns about and the dashboard
and report show (one function, :func:`check_inputs`, so they always agree).

Findings (each one line that names the fix):

- ``out_of_range``: the images' values lie far outside the scale the model's first layers expect
  (a detected ``Rescaling``/``Normalization`` block or a sample's metadata): all below 2 % of a
  0-255 range (0-1 images given to a 0-255 model), or reaching ten times the range beyond it;
- ``same_class``: three or more images, a head of three or more classes, and every image
  predicted as the same class with at least 99 % probability;
- ``uniform``: every image's top probability is within 2 % of chance (``1/K``) on the way from
  chance to certainty (an untrained head, or inputs the network cannot read);
- ``flat_curves``: a method's deletion and insertion curves are flat for every image (the score
  moves by less than 0.01, in probability): removing or adding pixels changes nothing, so the
  faithfulness numbers say nothing about the map.

The API emits them as :class:`vizkit.VizkitWarning` (filter with
``warnings.filterwarnings("ignore", category=vizkit.VizkitWarning)``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from vizkit.errors import VizkitWarning
from vizkit.results.base import Result

__all__ = ["Finding", "check_inputs", "quiet", "warn_findings"]

SAME_CLASS_PROBABILITY = 0.99
SAME_CLASS_IMAGES = 3
UNIFORM_CONFIDENCE = 0.02
FLAT_SCORE = 0.01
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("vizkit_checks_quiet", default=False)


@dataclasses.dataclass(frozen=True)
class Finding(Result):
    """One sanity finding: ``code`` (``"out_of_range"``, ``"same_class"``, ``"uniform"``,
    ``"flat_curves"``) and a one-line ``message`` that names the fix."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"Finding({self.code!r}, {self.message!r})"


def _used(inputs: Any) -> str:
    spec = getattr(inputs, "input_spec", None)
    if spec is not None:
        return f"the input scale used was {spec.describe()}"
    return "the images were given as model-ready arrays"


_FIX = (
    "if the model expects another input scale, pass value_range= or preprocess= (e.g. "
    "value_range=(0, 255)); vizkit.input_spec(model) says what vizkit detects"
)


def _range_finding(model: Any, x: np.ndarray, inputs: Any) -> Finding | None:
    from vizkit.detection import input_spec

    expected = input_spec(model)
    if expected.source not in ("detected", "sample") or not expected.linear_map or x.size == 0:
        return None
    low, high = expected.value_range
    span = high - low
    top, bottom = float(x.max()), float(x.min())
    shown = f"{bottom:.3g}..{top:.3g}"
    if top - low < span / 50 and bottom >= low - span / 50:
        hint = " (0-1 images?)" if top <= 1.0 + 1e-6 and span > 50 else ""
        return Finding(
            "out_of_range",
            f"the images' values span {shown}{hint}, but the model's first layers expect "
            f"{expected.describe()}: load them with vizkit.load_images(paths, model) or pass "
            f"value_range=({low:g}, {high:g})",
        )
    if top > high + 10 * span or bottom < low - 10 * span:
        return Finding(
            "out_of_range",
            f"the images' values span {shown}, far outside what the model's first layers "
            f"expect, {expected.describe()}: pass value_range=({low:g}, {high:g}) or load them "
            "with vizkit.load_images(paths, model)",
        )
    return None


def _prediction_findings(predictions: Any, inputs: Any, num_classes: int | None) -> list[Finding]:
    found = []
    top = np.asarray(predictions.top)
    prob = np.asarray(predictions.top_probability, dtype=np.float64)
    if num_classes is None or num_classes < 3 or len(top) == 0:
        return found
    name = str(int(top[0]))
    names = getattr(predictions, "class_names", None)
    if names and 0 <= int(top[0]) < len(names):
        name = f"{int(top[0])} ({names[int(top[0])]})"
    if (
        len(top) >= SAME_CLASS_IMAGES
        and np.all(top == top[0])
        and np.all(prob >= SAME_CLASS_PROBABILITY)
    ):
        found.append(
            Finding(
                "same_class",
                f"all {len(top)} images are predicted as class {name} with at least "
                f"{SAME_CLASS_PROBABILITY:.0%} probability, which often means the model cannot "
                f"read the inputs ({_used(inputs)}): {_FIX}",
            )
        )
    chance = 1.0 / num_classes
    confidence = (prob - chance) / (1.0 - chance)
    if np.all(confidence < UNIFORM_CONFIDENCE):
        found.append(
            Finding(
                "uniform",
                f"every image's probabilities are nearly uniform (top {prob.max():.3g}, chance "
                f"{chance:.3g}): the model is untrained or cannot read the inputs "
                f"({_used(inputs)}): {_FIX}",
            )
        )
    return found


def _flat(curve: Any) -> bool:
    scores = np.asarray(curve.scores, dtype=np.float64)
    if scores.size == 0:
        return False
    tolerance = FLAT_SCORE
    if getattr(curve, "score", "probability") != "probability":
        tolerance *= max(1.0, float(np.abs(scores).max()))
    return bool(np.all(np.ptp(scores, axis=1) < tolerance))


def _curve_findings(evaluation: Any, inputs: Any) -> list[Finding]:
    found = []
    deletion, insertion = evaluation.curves("deletion"), evaluation.curves("insertion")
    for method in evaluation.methods:
        curves = [c for c in (deletion.get(method), insertion.get(method)) if c is not None]
        if curves and all(_flat(c) for c in curves):
            kinds = " and ".join(c.kind for c in curves)
            found.append(
                Finding(
                    "flat_curves",
                    f"the {kinds} curves of {method} are flat (the score moves by less than "
                    f"{FLAT_SCORE:g} whatever is removed or added): their areas say nothing "
                    f"about the map; the model may not read the inputs ({_used(inputs)}): {_FIX}",
                )
            )
    return found


def check_inputs(
    model: Any,
    inputs: Any,
    predictions: Any = None,
    evaluation: Any = None,
    *,
    output: int | str | None = None,
) -> list[Finding]:
    """Sanity findings about ``inputs`` given to ``model`` (see the module for each rule).

    Parameters
    ----------
    model : keras.Model
    inputs : ImageBatch or ndarray (N, H, W, C)
        The images as the model saw them.
    predictions : Predictions, optional
        From :func:`vizkit.predict` or ``Explanation.predictions``; without them the
        prediction checks are skipped (nothing is computed here).
    evaluation : EvaluationResult, optional
        From :func:`vizkit.metrics.run_evaluation`: its deletion/insertion curves are checked.
    output : int or str, optional
        Head of a multi-output model.

    Returns
    -------
    list of Finding
        Empty when nothing looks wrong.
    """
    from vizkit.classes import num_classes_of

    x = np.asarray(getattr(inputs, "array", inputs), dtype=np.float32)
    found: list[Finding] = []
    if x.ndim == 4:
        finding = _range_finding(model, x, inputs)
        if finding is not None:
            found.append(finding)
    if predictions is not None:
        found += _prediction_findings(predictions, inputs, num_classes_of(model, output))
    if evaluation is not None:
        found += _curve_findings(evaluation, inputs)
    return found


def warn_findings(findings: Sequence[Finding], stacklevel: int = 3) -> None:
    """Emit each finding as a :class:`VizkitWarning` (unless inside :func:`quiet`)."""
    if _QUIET.get():
        return
    for finding in findings:
        warnings.warn(finding.message, VizkitWarning, stacklevel=stacklevel)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No sanity warnings inside (vizkit's own re-runs: randomized models, evaluation)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def is_quiet() -> bool:
    """True inside :func:`quiet`."""
    return _QUIET.get()
