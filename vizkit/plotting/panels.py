"""One explanation in detail: per image, the input, the raw map with a colour bar, an overlay.

The map panel shows the method's raw values (a signed map on a colour scale symmetric around
zero), so the colour bar reads in the method's own units, e.g. the drop in the target's
probability for occlusion. No TensorFlow here.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vizkit.results.explanation import Explanation

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "inferno"


def _limit(values: np.ndarray, clip_percentile: float | None) -> float:
    magnitude = np.abs(values[np.isfinite(values)])
    if magnitude.size == 0:
        return 1.0
    if clip_percentile is None or clip_percentile >= 100:
        top = float(magnitude.max())
    else:
        top = float(np.percentile(magnitude, clip_percentile)) or float(magnitude.max())
    return top if top > 0 else 1.0


def _probability(explanation: Explanation, index: int, target: int) -> float | None:
    row = list(explanation.predictions.classes[index])
    if target in row:
        return float(explanation.predictions.probabilities[index][row.index(target)])
    return None


def _input_title(explanation: Explanation, index: int) -> str:
    """Image name, the explained class and the prediction, with their probabilities."""
    target = int(explanation.targets[index])
    predicted = int(explanation.predictions.top[index])
    p_target = _probability(explanation, index, target)
    target_text = explanation.class_name(target) + (
        f" ({p_target:.0%})" if p_target is not None else ""
    )
    return "\n".join(
        [
            textwrap.shorten(explanation.image_name(index), 40),
            f"explains: {target_text}",
            f"predicted: {explanation.class_name(predicted)} "
            f"({float(explanation.predictions.top_probability[index]):.0%})",
        ]
    )


def _raw_map(
    ax: Axes,
    values: np.ndarray,
    cmap: str | None,
    clip_percentile: float | None,
    label: str | None,
) -> None:
    """The map in its own units: symmetric around zero when signed, with a colour bar."""
    values = np.asarray(values, dtype=np.float32)
    top = _limit(values, clip_percentile)
    signed = bool((values < 0).any())
    shown = ax.imshow(
        values,
        cmap=cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP),
        vmin=-top if signed else 0.0,
        vmax=top,
    )
    bar = ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if label:
        bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def plot_explanation_rows(
    explanation: Explanation,
    fig: Figure | None = None,
    *,
    images: Any = None,
    cmap: str | None = None,
    alpha: float = 0.5,
    clip_percentile: float | None = None,
    map_title: str | None = None,
    colorbar_label: str | None = None,
    panel_size: float = 2.9,
) -> Figure:
    """Rows = images; columns = input, map with colour bar, overlay. Returns the figure.

    Parameters
    ----------
    explanation : Explanation
    fig : matplotlib Figure, optional
        Where to draw (a new pyplot-free ``Figure`` when None).
    images : sequence of int, optional
        Which images (default: all).
    cmap : str, optional
        Default: diverging ``RdBu_r`` for signed maps, ``inferno`` otherwise.
    alpha : float
        Map opacity in the overlay.
    clip_percentile : float, optional
        Percentile of absolute values at the ends of the colour scale (None: the maximum).
    map_title : str, optional
        Title of the map column (default: the method's label and score, e.g. ``Occlusion
        (probability)``).
    colorbar_label : str, optional
    panel_size : float
        Inches per panel.
    """
    rows = list(range(len(explanation))) if images is None else [int(i) for i in images]
    if not rows:
        raise InputError("images=[] selects no images to plot")
    for i in rows:
        if not 0 <= i < len(explanation):
            raise InputError(f"image index {i} is out of range for {len(explanation)} images")
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3 * panel_size + 0.6, panel_size * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 3, squeeze=False)
    display = explanation.display_inputs
    label = explanation.label or explanation.method
    title = map_title or f"{label} ({explanation.score_kind})"
    for r, index in enumerate(rows):
        image = display[index]
        gray = image.shape[-1] == 1
        axes[r, 0].imshow(
            image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0.0, vmax=1.0
        )
        axes[r, 0].set_title(_input_title(explanation, index), fontsize=8)
        _raw_map(axes[r, 1], explanation.maps[index], cmap, clip_percentile, colorbar_label)
        axes[r, 1].set_title("\n".join(textwrap.wrap(title, 28)), fontsize=8)
        explanation.plot(
            index,
            axes[r, 2],
            kind="overlay",
            cmap=cmap,
            alpha=alpha,
            clip_percentile=clip_percentile,
            absolute=False,
            title="overlay",
            colorbar=False,  # the raw map next to it carries the colour bar
        )
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig
