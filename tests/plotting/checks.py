"""Checks on drawn figures (never on pixels): nothing outside the figure, no text collisions.

``inside(fig)`` draws the figure as ``savefig`` would at its own size and compares the tight
bounding box of everything drawn with the figure's extent: anything outside would be cut off
in a file saved without ``bbox_inches="tight"``.
"""

from __future__ import annotations

from itertools import combinations

from matplotlib.figure import Figure
from matplotlib.text import Text

TOLERANCE_IN = 0.02


def render(fig: Figure) -> None:
    """Draw ``fig`` as ``savefig`` does (the layout engine runs) on an Agg canvas, once."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if getattr(fig, "_checked", False):
        return
    if not isinstance(fig.canvas, FigureCanvasAgg):  # a bare Figure(): give it an Agg canvas
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    fig._checked = True


def overflow(fig: Figure) -> tuple[float, float, float, float]:
    """How far (inches) the drawn content sticks out left, bottom, right and top."""
    render(fig)
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.get_size_inches()
    return (-box.x0, -box.y0, box.x1 - width, box.y1 - height)


def assert_inside(fig: Figure) -> None:
    out = overflow(fig)
    assert max(out) <= TOLERANCE_IN, f"content outside the figure (l, b, r, t inches): {out}"


def texts(fig: Figure) -> list[Text]:
    """Every text that is drawn: figure texts, titles, axis labels and tick labels of visible
    axes, annotations and legend entries."""
    found: list[Text] = list(fig.texts)
    for name in ("_suptitle", "_supxlabel", "_supylabel"):
        if getattr(fig, name, None) is not None:
            found.append(getattr(fig, name))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        found += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                if not axis.get_visible():
                    continue
                found.append(axis.label)
                ticks = axis.get_major_ticks() + axis.get_minor_ticks()
                for tick in ticks:
                    if tick.get_visible():
                        found += [t for t in (tick.label1, tick.label2) if t.get_visible()]
                found.append(axis.offsetText)
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found += list(legend.get_texts())
            if legend.get_title().get_text():
                found.append(legend.get_title())
    for legend in fig.legends:
        found += list(legend.get_texts())
    unique = {id(t): t for t in found}
    return [t for t in unique.values() if t.get_visible() and t.get_text().strip()]


def overlaps(fig: Figure, pad: float = 0.0) -> list[tuple[str, str]]:
    """Pairs of texts whose drawn extents intersect (by more than ``pad`` pixels)."""
    render(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [(t, t.get_window_extent(renderer)) for t in texts(fig)]
    hits = []
    for (a, box_a), (b, box_b) in combinations(boxes, 2):
        w = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        h = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if w > pad and h > pad:
            hits.append((a.get_text(), b.get_text()))
    return hits
