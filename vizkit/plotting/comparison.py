"""Comparison grids: rows = images, columns = the input and one column per method.

The look and the rules are those of :mod:`vizkit.plotting.attribution`: titles name the
predicted and the explained class with their probabilities, colour scales are shared only
between maps of the same method, each method column gets a colour bar, and a legend under the
grid says what the colours, the scale and the titles mean. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.attribution import (
    DEFAULT_ALPHA,
    SIGNED_CMAP,
    UNSIGNED_CMAP,
    _draw,
    _image,
    _magnitude_scale,
    explained_text,
    predicted_text,
    resolve_kind,
)
from vizkit.plotting.text import fit

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from vizkit.results.explanation import Comparison, Explanation

SCALES = ("panel", "method", "image")
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

    def values(e: Explanation, i: int) -> np.ndarray:
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


def _grid_height(
    first: Any, titles: list[list[str]], panel_size: float, colorbar: bool, legend: str
) -> float:
    """Figure height (inches) for the panels, their wrapped titles, colour bars and legend."""
    height, width = first.maps.shape[1:3]
    lines = sum(max(t.count("\n") + 1 if t else 0 for t in row) for row in titles)
    return (
        panel_size * len(titles) * height / width
        + lines * 9 * 1.3 / 72
        + 0.12 * len(titles)
        + (0.6 if colorbar else 0.0)
        + (legend.count("\n") + 1) * 8 * 1.3 / 72
        + 0.3
    )


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
    comparison: Comparison,
    fig: Figure | None = None,
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
) -> Figure:
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

    (About 100 lines, a third of them this documentation; the helpers above hold the rest.)
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
        size = (fig_width, _grid_height(first, titles, panel_size, colorbar, legend_text))
        fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for ax in axes.ravel():  # images sit at the bottom of their cell: titles keep the room
        ax.set_anchor("S")  # above (colour bars anchor their columns there too)
    for r, index in enumerate(rows):
        image, image_cmap = _image(first, index)
        ax = axes[r][0]
        ax.imshow(image, cmap=image_cmap, vmin=0.0, vmax=1.0)
        # y=1.0: where matplotlib puts a title over an axes without axis decorations, without
        # measuring the (hidden) axis first
        ax.set_title(titles[r][0], fontsize=9, y=1.0)
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
                panel.set_title(titles[r][c], fontsize=9, y=1.0)
            panel.set_axis_off()
    for c in range(1, cols) if colorbar else ():
        signed = signed_cols[c - 1]
        if kinds[c - 1] != "masked":
            column = [axes[r][c] for r in range(len(rows))]
            colours = cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP)
            _column_colorbar(fig, column, colours, signed, mode, limits[0, c - 1])
    if legend_text:
        fig.supxlabel(legend_text, fontsize=8)
    return fig


__all__ = ["SCALES", "nice_tick", "plot_comparison"]
