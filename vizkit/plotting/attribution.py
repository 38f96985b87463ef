"""Drawing attribution maps: one panel on a given Axes, and comparison grids on a Figure.

What a reader sees, by default:

- **Overlays blend by strength**: the photo is shown in grey (so red and blue can only mean
  attribution), and each pixel of the map is as opaque as it is strong, so weak attribution
  leaves the photo visible instead of washing it out (a uniform 50% white layer made signed
  maps look like faded photographs).
- **Diverging colours for signed maps** (``RdBu_r``: red raises the explained class's score,
  blue lowers it, white is no effect) and a sequential map (``inferno``) for magnitudes.
- **Honest colour scales**: a panel is scaled to its own 99.5th percentile of ``|value|``; a
  shared scale is shared only between maps of the same method (same units): per method across
  images (``shared_scale="method"``) or per image across the columns of one method, e.g. several
  target classes (``"image"``). Methods with different units are never put on one scale.
- **Named classes**: every title says which class a map explains and its probability, next to
  the prediction; grids say so in a one-line legend under a colour bar per method.

No TensorFlow here. Only the ``ax=None`` path of :func:`plot_explanation` touches pyplot; grids
(:mod:`vizkit.plotting.comparison`) are drawn on a ``matplotlib.figure.Figure`` with constrained
layout (made directly when none is given), so nothing is clipped when the figure is saved at
its own size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.text import fit, pct

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from vizkit.results.explanation import Explanation

KINDS = ("auto", "overlay", "heatmap", "masked")
SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "inferno"
#: Opacity of the strongest attribution in overlays (weaker values are more transparent).
DEFAULT_ALPHA = 0.85
#: How opacity grows with strength in overlays: ``alpha * strength ** OVERLAY_GAMMA``.
OVERLAY_GAMMA = 0.6
#: ``kind="auto"`` shows maps whose neighbouring pixels differ by more than this share of the
#: mean absolute value as heatmaps (pixel-level gradient maps: about 1.2 on the samples), and
#: smoother maps as overlays (Grad-CAM about 0.06, occlusion about 0.15).
FINE_DETAIL = 0.5


# --------------------------------------------------------------------------------------------
# Values and names
# --------------------------------------------------------------------------------------------
def _magnitude_scale(values: np.ndarray, clip_percentile: float | None) -> float:
    magnitude = np.abs(np.asarray(values, dtype=np.float64))
    magnitude = magnitude[np.isfinite(magnitude)]
    if magnitude.size == 0:
        return 1.0
    if clip_percentile is None or clip_percentile >= 100:
        top = float(magnitude.max(initial=0.0))
    else:
        top = float(np.percentile(magnitude, clip_percentile))
        if top <= 0:
            top = float(magnitude.max(initial=0.0))
    return top if top > 0 else 1.0


def display_map(
    explanation: Explanation,
    index: int,
    *,
    absolute: bool | None = None,
    clip_percentile: float | None = 99.5,
    scale: float | None = None,
) -> tuple[np.ndarray, float, float, bool]:
    """Map ``index`` scaled for display: ``(values, vmin, vmax, signed)``.

    Signed maps land in [-1, 1] (zero stays zero), non-negative maps in [0, 1]. ``scale``
    overrides the divisor (for colour scales shared between panels).
    """
    values = np.asarray(explanation.maps[index], dtype=np.float32)
    if absolute:
        values = np.abs(values)
    signed = bool((values < 0).any()) and not absolute
    divisor = scale if scale is not None else _magnitude_scale(values, clip_percentile)
    scaled = np.clip(values / divisor, -1.0 if signed else 0.0, 1.0)
    return scaled, (-1.0 if signed else 0.0), 1.0, signed


def class_probability(explanation: Explanation, index: int, cls: int) -> tuple[float | None, str]:
    """Probability of class ``cls`` for image ``index`` and its text (``"87%"``).

    Read from the explanation's top-k predictions (or from its scores when the maps explain a
    probability). A class outside the top k is shown as below the k-th probability (``"<3%"``).
    """
    preds = explanation.predictions
    row = [int(c) for c in preds.classes[index]]
    probs = np.asarray(preds.probabilities[index], dtype=np.float64)
    if cls in row:
        p = float(probs[row.index(cls)])
        return p, pct(p)
    if explanation.score_kind == "probability" and int(explanation.targets[index]) == cls:
        p = float(explanation.scores[index])
        return p, pct(p)
    if len(probs):
        bound = float(probs.min())
        return None, "<1%" if bound < 0.01 else f"<{bound:.0%}"
    return None, "?"


def predicted_text(explanation: Explanation, index: int) -> str:
    """``"circle (>99%)"``: the predicted class of image ``index`` and its probability."""
    cls = int(explanation.predictions.top[index])
    return f"{explanation.class_name(cls)} ({class_probability(explanation, index, cls)[1]})"


def explained_text(explanation: Explanation, index: int) -> str:
    """``"square (<1%)"``: the class map ``index`` explains and its probability."""
    cls = int(explanation.targets[index])
    return f"{explanation.class_name(cls)} ({class_probability(explanation, index, cls)[1]})"


def _image(explanation: Explanation, index: int) -> tuple[np.ndarray, str | None]:
    image = explanation.display_inputs[index]
    if image.shape[-1] == 1:
        return image[..., 0], "gray"
    return image, None


def _grey(image: np.ndarray) -> np.ndarray:
    """The photo as light-to-mid grey (luminance in [0.15, 0.85]) under an overlay."""
    if image.ndim == 3:
        weights = np.array([0.299, 0.587, 0.114][: image.shape[-1]], dtype=np.float32)
        image = image[..., : len(weights)] @ (weights / weights.sum())
    return 0.15 + 0.7 * np.clip(image, 0.0, 1.0)


def fine_grained(explanation: Explanation, rows: Sequence[int] | None = None) -> bool:
    """True for pixel-level maps (gradients), which read best as heatmaps; False for smooth
    maps (CAMs, occlusion), which read best over the photo. See :data:`FINE_DETAIL`."""
    maps = np.asarray(explanation.maps if rows is None else explanation.maps[list(rows)])
    maps = np.nan_to_num(maps.astype(np.float64))
    if maps.shape[1] < 2 or maps.shape[2] < 2:
        return False
    level = np.abs(maps).mean()
    if level == 0:
        return False
    step = (np.abs(np.diff(maps, axis=1)).mean() + np.abs(np.diff(maps, axis=2)).mean()) / 2
    return bool(step / level > FINE_DETAIL)


def resolve_kind(kind: str, explanation: Explanation, rows: Sequence[int] | None = None) -> str:
    """``kind`` with ``"auto"`` decided for ``explanation`` (heatmap or overlay)."""
    if kind not in KINDS:
        raise InputError(f"kind={kind!r}: choose one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "heatmap" if fine_grained(explanation, rows) else "overlay"


def _panel_width(ax: Any) -> float:
    """Width of ``ax`` in inches (before layout; good enough to wrap its title)."""
    return max(ax.get_position().width * ax.figure.get_figwidth(), 0.8)


# --------------------------------------------------------------------------------------------
# One panel
# --------------------------------------------------------------------------------------------
def _draw(
    ax: Any,
    explanation: Explanation,
    index: int,
    *,
    kind: str,
    cmap: str | None,
    alpha: float,
    absolute: bool,
    limit: float,
    signed: bool,
) -> Any:
    """Draw map ``index`` with colour limits ``±limit`` (or ``[0, limit]``); return the mappable.

    Raw values are drawn (the colour limits do the scaling), so a colour bar reads in the
    map's own units.
    """
    values = np.asarray(explanation.maps[index], dtype=np.float32)
    if absolute:
        values = np.abs(values)
    vmin, vmax = (-limit if signed else 0.0), limit
    cmap = cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP)
    image, image_cmap = _image(explanation, index)
    if kind == "masked":
        weight = np.clip(np.abs(values) / limit, 0.0, 1.0)
        ax.imshow(image * (weight if image.ndim == 2 else weight[..., None]), cmap=image_cmap)
        return None
    if kind == "heatmap":
        return ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.imshow(_grey(image), cmap="gray", vmin=0.0, vmax=1.0)
    strength = np.abs(values) / limit if signed else (values - vmin) / (vmax - vmin)
    strength = np.nan_to_num(np.clip(strength, 0.0, 1.0))
    opacity = (float(alpha) * strength**OVERLAY_GAMMA).astype(np.float32)
    return ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, alpha=opacity)


def _panel_title(explanation: Explanation, index: int) -> str:
    label = explanation.label or explanation.method
    return (
        f"{label}\nexplains {explained_text(explanation, index)}\n"
        f"predicted {predicted_text(explanation, index)}"
    )


def plot_explanation(
    explanation: Explanation,
    index: int = 0,
    ax: Axes | None = None,
    *,
    kind: str = "auto",
    cmap: str | None = None,
    alpha: float = DEFAULT_ALPHA,
    clip_percentile: float | None = 99.5,
    absolute: bool | None = None,
    title: str | bool = True,
    colorbar: bool = False,
    scale: float | None = None,
) -> Axes:
    """Draw one explanation panel on ``ax`` and return ``ax``.

    Parameters
    ----------
    explanation : Explanation
    index : int
        Which image of the batch.
    ax : matplotlib Axes, optional
        Where to draw; None makes a new pyplot figure (constrained layout).
    kind : {"auto", "overlay", "heatmap", "masked"}
        Map over the photo (in grey, each pixel as opaque as its attribution is strong), map
        alone, or the photo dimmed where attribution is low. ``"auto"``: heatmap for
        pixel-level maps (gradients), overlay for smooth ones (CAMs, occlusion); see
        :func:`fine_grained`.
    cmap : str, optional
        Default: diverging ``RdBu_r`` for signed maps, ``inferno`` otherwise.
    alpha : float
        Opacity of the strongest attribution in overlays.
    clip_percentile : float, optional
        Percentile of absolute values mapped to the end of the colour scale.
    absolute : bool, optional
        Show magnitudes; None keeps signs (masked views always use magnitudes).
    title : bool or str
        True for "method / explained class (probability) / predicted class (probability)", a
        string for a custom title, False for none.
    colorbar : bool
        Add a colour bar, in the map's own units.
    scale : float, optional
        The value at the end of the colour scale, shared with other panels (overrides
        ``clip_percentile``).
    """
    kind = resolve_kind(kind, explanation)
    if not -len(explanation) <= index < len(explanation):
        raise InputError(f"image index {index} is out of range for {len(explanation)} images")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(3.4, 3.6), layout="constrained")
    use_abs = True if kind == "masked" else bool(absolute)
    raw = np.asarray(explanation.maps[index], dtype=np.float32)
    shown = np.abs(raw) if use_abs else raw
    signed = bool((shown < 0).any())
    limit = float(scale) if scale is not None else _magnitude_scale(shown, clip_percentile)
    mappable = _draw(
        ax,
        explanation,
        index,
        kind=kind,
        cmap=cmap,
        alpha=alpha,
        absolute=use_abs,
        limit=limit,
        signed=signed,
    )
    if colorbar and mappable is not None:
        bar = ax.figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04)
        bar.ax.tick_params(labelsize=7)
    if title:
        text = title if isinstance(title, str) else _panel_title(explanation, index)
        ax.set_title(fit(text, _panel_width(ax), 9), fontsize=9)
    ax.set_axis_off()
    return ax


__all__ = [
    "DEFAULT_ALPHA",
    "KINDS",
    "class_probability",
    "fine_grained",
    "resolve_kind",
    "display_map",
    "explained_text",
    "plot_explanation",
    "predicted_text",
]
