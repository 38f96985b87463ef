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
are drawn on a ``matplotlib.figure.Figure`` with constrained layout (made directly when none is
given), so nothing is clipped when the figure is saved at its own size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.text import fit, pct

KINDS = ("auto", "overlay", "heatmap", "masked")
SCALES = ("panel", "method", "image")
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
SIGNED_LEGEND = (
    "Red: the pixel raises the explained class's score; blue: it lowers it; "
    "white or clear: no effect."
)
UNSIGNED_LEGEND = "Bright: the pixels that matter most for the explained class."
ROW_LEGEND = (
    "Row titles: image (true label when known) / predicted class (probability) / "
    "explained class (probability)."
)
_SCALE_LEGEND = {
    "panel": "Each panel is scaled to its own 99.5th percentile of |value|.",
    "method": "One colour scale per method, shared across images.",
    "image": "One colour scale per image, shared by the panels of the same method.",
}


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


def class_probability(explanation: Any, index: int, cls: int) -> tuple[float | None, str]:
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


def predicted_text(explanation: Any, index: int) -> str:
    """``"circle (>99%)"``: the predicted class of image ``index`` and its probability."""
    cls = int(explanation.predictions.top[index])
    return f"{explanation.class_name(cls)} ({class_probability(explanation, index, cls)[1]})"


def explained_text(explanation: Any, index: int) -> str:
    """``"square (<1%)"``: the class map ``index`` explains and its probability."""
    cls = int(explanation.targets[index])
    return f"{explanation.class_name(cls)} ({class_probability(explanation, index, cls)[1]})"


def _image(explanation: Any, index: int) -> tuple[np.ndarray, str | None]:
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


def fine_grained(explanation: Any, rows: Sequence[int] | None = None) -> bool:
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


def resolve_kind(kind: str, explanation: Any, rows: Sequence[int] | None = None) -> str:
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
    explanation: Any,
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


def _panel_title(explanation: Any, index: int) -> str:
    label = explanation.label or explanation.method
    return (
        f"{label}\nexplains {explained_text(explanation, index)}\n"
        f"predicted {predicted_text(explanation, index)}"
    )


def plot_explanation(
    explanation: Any,
    index: int = 0,
    ax: Any = None,
    *,
    kind: str = "auto",
    cmap: str | None = None,
    alpha: float = DEFAULT_ALPHA,
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


# --------------------------------------------------------------------------------------------
# Grids
# --------------------------------------------------------------------------------------------
def _scale_mode(shared_scale: bool | str | None) -> str:
    if shared_scale is None or shared_scale is False:
        return "panel"
    if shared_scale is True:
        return "method"
    if shared_scale not in SCALES:
        raise InputError(
            f"shared_scale={shared_scale!r}: choose one of {', '.join(map(repr, SCALES))} "
            "(True means 'method')"
        )
    return str(shared_scale)


def _unit_key(explanation: Any) -> tuple:
    """Maps with equal keys share units and may share a colour scale."""
    return (explanation.method, explanation.layer, explanation.score_kind)


def _limits(
    explanations: list[Any],
    rows: list[int],
    mode: str,
    use_abs: bool,
    clip_percentile: float | None,
) -> dict[tuple[int, int], float]:
    """End of the colour scale for every panel ``(row, column)``."""

    def values(e: Any, i: int) -> np.ndarray:
        v = np.asarray(e.maps[i], dtype=np.float32)
        return np.abs(v) if use_abs else v

    limits: dict[tuple[int, int], float] = {}
    keys = [_unit_key(e) for e in explanations]
    for c, e in enumerate(explanations):
        same = [k for k, key in enumerate(keys) if key == keys[c]]
        for r, i in enumerate(rows):
            if mode == "method":
                pool = [values(explanations[k], j) for k in same for j in rows]
            elif mode == "image":
                pool = [values(explanations[k], i) for k in same]
            else:
                pool = [values(e, i)]
            limits[r, c] = _magnitude_scale(np.stack(pool), clip_percentile)
    return limits


def _row_title(first: Any, index: int, explained: bool) -> str:
    lines = [first.image_name(index), f"predicted {predicted_text(first, index)}"]
    if explained:
        lines.append(f"explains {explained_text(first, index)}")
    return "\n".join(lines)


def _method_title(explanation: Any, index: int, header: bool, same_targets: bool) -> str:
    """A method panel's title: its name and layer over the first row; the explained class
    when the methods explain different classes."""
    lines = []
    if header:
        lines.append(explanation.label or explanation.method)
        if explanation.layer:
            lines.append(explanation.layer)
    if not same_targets:
        lines.append(f"explains {explained_text(explanation, index)}")
    return "\n".join(lines)


def _column_colorbar(
    fig: Any, axes: list[Any], cmap: str, signed: bool, mode: str, limit: float | None
) -> Any:
    """A colour bar under one method's column: raw units when the column shares one scale."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    top = limit if (mode == "method" and limit is not None) else 1.0
    norm = Normalize(-top if signed else 0.0, top)
    bar = fig.colorbar(
        ScalarMappable(norm=norm, cmap=cmap),
        ax=axes,
        location="bottom",
        fraction=0.06,
        shrink=0.8,
        aspect=12,
        pad=0.02,
    )
    if mode != "method":
        bar.set_ticks([-1.0, 0.0, 1.0] if signed else [0.0, 1.0])
        bar.set_ticklabels(["-max", "0", "+max"] if signed else ["0", "max"])
    else:
        tick = nice_tick(top)
        ticks = [-tick, 0.0, tick] if signed else [0.0, tick]
        bar.set_ticks(ticks)
        bar.set_ticklabels([f"{t:.2g}" if t else "0" for t in ticks])
    bar.ax.tick_params(labelsize=7)
    return bar


def nice_tick(limit: float) -> float:
    """The largest 1, 2 or 5 times a power of ten within 90% of ``limit`` (a colour-bar tick
    that stays inside the bar, so neighbouring bars' labels cannot collide)."""
    limit = abs(float(limit)) * 0.9
    if not np.isfinite(limit) or limit <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(limit))
    for step in (5.0, 2.0, 1.0):
        if step * power <= limit:
            return float(step * power)
    return float(power)


def _legend(signed: bool, unsigned: bool, mode: str, row_titles: bool) -> str:
    parts = []
    if signed:
        parts.append(SIGNED_LEGEND)
    if unsigned:
        parts.append(UNSIGNED_LEGEND)
    parts.append(_SCALE_LEGEND[mode])
    if row_titles:
        parts.append(ROW_LEGEND)
    return " ".join(parts)


def plot_comparison(
    comparison: Any,
    fig: Any = None,
    *,
    images: Sequence[int] | None = None,
    kind: str = "auto",
    shared_scale: bool | str | None = "panel",
    absolute: bool | None = None,
    clip_percentile: float | None = 99.5,
    cmap: str | None = None,
    alpha: float = DEFAULT_ALPHA,
    panel_size: float = 2.2,
    colorbar: bool = True,
    legend: bool = True,
) -> Any:
    """Grid: one row per image, columns input + one per method; returns the Figure.

    Input panels are titled with the image's name, the predicted class and the explained
    class, each with its probability (when the methods explain different classes, each panel
    names its own). Method columns are headed with the method's name (and layer) and get a
    colour bar; a legend under the grid says what the colours, the scale and the titles mean.

    Parameters
    ----------
    shared_scale : {"panel", "method", "image"} or bool
        ``"panel"`` (or False): each panel on its own scale; ``"method"`` (or True): one scale
        per method across the images, with the colour bar in the map's units; ``"image"``: one
        scale per image shared by the columns of the same method (several target classes).
        Different methods never share a scale: their units differ.
    colorbar, legend : bool
        Colour bar per method column; the explanatory legend under the grid.
    kind, absolute, clip_percentile, cmap, alpha
        As in :func:`plot_explanation`.
    """
    from matplotlib.figure import Figure

    mode = _scale_mode(shared_scale)
    explanations = list(comparison.explanations)
    rows = list(range(comparison.num_images)) if images is None else list(images)
    if not rows:
        raise InputError("images=[] selects no images to plot")
    cols = 1 + len(explanations)
    first = explanations[0]
    kinds = [resolve_kind(kind, e, rows) for e in explanations]
    use_abs = kind == "masked" or bool(absolute)
    limits = _limits(explanations, rows, mode, use_abs, clip_percentile)
    same_targets = all(np.array_equal(e.targets[rows], first.targets[rows]) for e in explanations)
    signed_cols = [
        (not use_abs) and any(bool((np.asarray(e.maps[i]) < 0).any()) for i in rows)
        for e in explanations
    ]
    fig_width = panel_size * cols if fig is None else fig.get_figwidth()
    width = 0.92 * fig_width / cols
    titles = [
        [fit(_row_title(first, index, same_targets), width, 9)]
        + [fit(_method_title(e, index, r == 0, same_targets), width, 9) for e in explanations]
        for r, index in enumerate(rows)
    ]
    legend_text = ""
    if legend:
        text = _legend(any(signed_cols), not all(signed_cols), mode, True)
        legend_text = fit(text, fig_width - 0.3, 8)
    if fig is None:
        height, image_width = first.maps.shape[1:3]
        lines = sum(max(t.count("\n") + 1 if t else 0 for t in row) for row in titles)
        fig = Figure(
            figsize=(
                fig_width,
                panel_size * len(rows) * height / image_width
                + lines * 9 * 1.3 / 72
                + 0.12 * len(rows)
                + (0.6 if colorbar else 0.0)
                + (legend_text.count("\n") + 1) * 8 * 1.3 / 72
                + 0.3,
            ),
            layout="constrained",
        )
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for ax in axes.ravel():  # images sit at the bottom of their cell: titles keep the room
        ax.set_anchor("S")  # above (colour bars anchor their columns there too)
    for r, index in enumerate(rows):
        image, image_cmap = _image(first, index)
        ax = axes[r][0]
        ax.imshow(image, cmap=image_cmap, vmin=0.0, vmax=1.0)
        ax.set_title(titles[r][0], fontsize=9)
        ax.set_axis_off()
        for c, explanation in enumerate(explanations, start=1):
            panel = axes[r][c]
            _draw(
                panel,
                explanation,
                index,
                kind=kinds[c - 1],
                cmap=cmap,
                alpha=alpha,
                absolute=use_abs,
                limit=limits[r, c - 1],
                signed=signed_cols[c - 1],
            )
            if titles[r][c]:
                panel.set_title(titles[r][c], fontsize=9)
            panel.set_axis_off()
    if colorbar:
        for c in range(1, cols):
            if kinds[c - 1] == "masked":
                continue
            signed = signed_cols[c - 1]
            _column_colorbar(
                fig,
                [axes[r][c] for r in range(len(rows))],
                cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP),
                signed,
                mode,
                limits[0, c - 1],
            )
    if legend_text:
        fig.supxlabel(legend_text, fontsize=8)
    return fig


__all__ = [
    "DEFAULT_ALPHA",
    "KINDS",
    "SCALES",
    "class_probability",
    "fine_grained",
    "resolve_kind",
    "display_map",
    "explained_text",
    "plot_comparison",
    "plot_explanation",
    "predicted_text",
]
