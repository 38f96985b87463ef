"""Drawing attribution maps: one panel on a given Axes, and comparison grids on a Figure.

No TensorFlow here. Only the ``ax=None`` path of :func:`plot_explanation` touches pyplot; grids
are drawn on a ``matplotlib.figure.Figure`` (made directly when none is given), so dashboards and
reports never share pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vizkit.errors import InputError

KINDS = ("overlay", "heatmap", "masked")
SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "inferno"


def _magnitude_scale(values: np.ndarray, clip_percentile: float | None) -> float:
    magnitude = np.abs(values)
    if clip_percentile is None or clip_percentile >= 100:
        top = float(magnitude.max(initial=0.0))
    else:
        top = float(np.percentile(magnitude, clip_percentile))
        if top <= 0:
            top = float(magnitude.max(initial=0.0))
    return top if top > 0 else 1.0


def display_map(
    explanation: Any,
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


def _image(explanation: Any, index: int) -> tuple[np.ndarray, str | None]:
    image = explanation.display_inputs[index]
    if image.shape[-1] == 1:
        return image[..., 0], "gray"
    return image, None


def _title(explanation: Any, index: int) -> str:
    target = int(explanation.targets[index])
    probs = explanation.predictions
    prob = None
    row = probs.classes[index]
    if target in row:
        prob = float(probs.probabilities[index][list(row).index(target)])
    label = explanation.label or explanation.method
    name = explanation.class_name(target)
    return f"{label}\n{name}" + (f" ({prob:.0%})" if prob is not None else "")


def plot_explanation(
    explanation: Any,
    index: int = 0,
    ax: Any = None,
    *,
    kind: str = "overlay",
    cmap: str | None = None,
    alpha: float = 0.5,
    clip_percentile: float | None = 99.5,
    absolute: bool | None = None,
    title: str | bool = True,
    colorbar: bool = False,
    scale: float | None = None,
) -> Any:
    """Draw one explanation panel on ``ax`` and return ``ax``.

    Parameters
    ----------
    explanation : Explanation
    index : int
        Which image of the batch.
    ax : matplotlib Axes, optional
        Where to draw; None makes a new pyplot figure.
    kind : {"overlay", "heatmap", "masked"}
        Map over the image, map alone, or the image dimmed where attribution is low.
    cmap : str, optional
        Default: diverging ``RdBu_r`` for signed maps, ``inferno`` otherwise.
    alpha : float
        Map opacity in overlays.
    clip_percentile : float, optional
        Percentile of absolute values mapped to the end of the colour scale.
    absolute : bool, optional
        Show magnitudes; None keeps signs (masked views always use magnitudes).
    title : bool or str
        True for "method / target (probability)", a string for a custom title, False for none.
    colorbar : bool
        Add a colour bar.
    scale : float, optional
        Divisor shared with other panels (overrides ``clip_percentile``).
    """
    if kind not in KINDS:
        raise InputError(f"kind={kind!r}: choose one of {', '.join(KINDS)}")
    if not -len(explanation) <= index < len(explanation):
        raise InputError(f"image index {index} is out of range for {len(explanation)} images")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(3.2, 3.2))
    use_abs = True if kind == "masked" else bool(absolute)
    values, vmin, vmax, signed = display_map(
        explanation, index, absolute=use_abs, clip_percentile=clip_percentile, scale=scale
    )
    cmap = cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP)
    image, image_cmap = _image(explanation, index)
    mappable = None
    if kind == "overlay":
        ax.imshow(image, cmap=image_cmap, vmin=0.0, vmax=1.0)
        mappable = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, alpha=alpha)
    elif kind == "heatmap":
        mappable = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    else:
        weight = values if image.ndim == 2 else values[..., None]
        ax.imshow(image * weight, cmap=image_cmap, vmin=0.0, vmax=1.0)
    if colorbar and mappable is not None:
        ax.figure.colorbar(mappable, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title if isinstance(title, str) else _title(explanation, index), fontsize=9)
    ax.set_axis_off()
    return ax


def plot_comparison(
    comparison: Any,
    fig: Any = None,
    *,
    images: Sequence[int] | None = None,
    kind: str = "overlay",
    shared_scale: bool = False,
    absolute: bool | None = None,
    clip_percentile: float | None = 99.5,
    cmap: str | None = None,
    alpha: float = 0.5,
    panel_size: float = 2.2,
) -> Any:
    """Grid: one row per image, columns input + one per method; returns the Figure.

    Input panels are titled with the predicted class and its probability; method panels (first
    row) with the method's name. ``shared_scale`` uses one colour scale per row (the largest of
    the panels' clip values), otherwise each panel has its own.
    """
    from matplotlib.figure import Figure

    explanations = list(comparison.explanations)
    rows = list(range(comparison.num_images)) if images is None else list(images)
    if not rows:
        raise InputError("images=[] selects no images to plot")
    cols = 1 + len(explanations)
    if fig is None:
        fig = Figure(
            figsize=(panel_size * cols, panel_size * len(rows) + 0.4), layout="constrained"
        )
    axes = fig.subplots(len(rows), cols, squeeze=False)
    first = explanations[0]
    for r, index in enumerate(rows):
        image, image_cmap = _image(first, index)
        ax = axes[r][0]
        ax.imshow(image, cmap=image_cmap, vmin=0.0, vmax=1.0)
        predicted = int(first.predictions.top[index])
        prob = float(first.predictions.top_probability[index])
        ax.set_title(
            f"{first.image_name(index)}: {first.class_name(predicted)} ({prob:.0%})", fontsize=9
        )
        ax.set_axis_off()
        scale = None
        if shared_scale:
            scale = max(
                _magnitude_scale(
                    np.abs(e.maps[index]) if (absolute or kind == "masked") else e.maps[index],
                    clip_percentile,
                )
                for e in explanations
            )
        for c, explanation in enumerate(explanations, start=1):
            title: str | bool = False
            if r == 0:
                title = explanation.label or explanation.method
                if explanation.layer:
                    title += f"\n{explanation.layer}"
            plot_explanation(
                explanation,
                index,
                axes[r][c],
                kind=kind,
                cmap=cmap,
                alpha=alpha,
                clip_percentile=clip_percentile,
                absolute=absolute,
                title=title,
                scale=scale,
            )
    return fig
