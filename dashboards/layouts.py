"""Reusing a figure's constrained layout when only its colours change.

Constrained layout measures every title, label and tick label of a figure to place its axes:
on the Attribution grid that is about 40% of a drawing's time. A display change (colour map,
opacity, clipping) redraws a figure whose texts, limits and grid are exactly those of the last
drawing, so the positions computed then are still right. :class:`LayoutCache` keeps them by a
signature of everything the layout depends on (figure size, each axes' grid cell, titles,
labels, texts, limits and tick labels, the figure's own texts) plus the caller's key, and puts
them back instead of running the layout engine; a figure whose signature it has not seen is laid
out as usual. The result is pixel for pixel the same picture (a test checks it). No Streamlit.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from typing import Any

KEEP = 64
KEEP_BACKGROUNDS = 8  # a 4-image grid is about 3 MB of pixels


def _ticks(axis: Any) -> tuple[str, ...]:
    try:
        ticks = axis.get_majorticklocs()
        return tuple(axis.get_major_formatter().format_ticks(ticks))
    except Exception:  # noqa: BLE001 - an axis we cannot read makes the figure uncacheable
        return ("?",)


def signature(fig: Any) -> str | None:
    """What the figure's layout depends on, as a hash; None when the figure is not one we can
    lay out again (no layout engine, or sub-figures)."""
    if fig.get_layout_engine() is None or fig.subfigs:
        return None
    parts: list[Any] = [
        tuple(round(float(v), 4) for v in fig.get_size_inches()),
        tuple((t.get_text(), t.get_fontsize()) for t in fig.texts),
        tuple(t.get_text() for legend in fig.legends for t in legend.get_texts()),
    ]
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        legend = ax.get_legend()
        parts.append(
            (
                type(ax).__name__,
                spec.get_geometry() if spec is not None else None,
                tuple(ax.get_title(loc) for loc in ("left", "center", "right")),
                ax.get_xlabel(),
                ax.get_ylabel(),
                tuple(round(float(v), 6) for v in (*ax.get_xlim(), *ax.get_ylim())),
                ax.axison,
                ax.get_aspect(),
                tuple(t.get_text() for t in ax.texts),
                tuple(t.get_text() for t in legend.get_texts()) if legend else None,
                _ticks(ax.xaxis) if ax.axison else (),
                _ticks(ax.yaxis) if ax.axison else (),
            )
        )
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class LayoutCache:
    """Axes and figure-text positions by layout signature (least recently used out)."""

    def __init__(self, keep: int = KEEP) -> None:
        self._items: collections.OrderedDict[str, tuple[Any, ...]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep
        self.hits = 0

    def __len__(self) -> int:
        return len(self._items)

    def key(self, fig: Any, key: Any) -> str | None:
        """The figure's full layout key (its signature and the caller's ``key``); None when the
        figure cannot be laid out again."""
        found = signature(fig)
        return None if found is None else hashlib.sha256(repr((key, found)).encode()).hexdigest()

    def restore(self, fig: Any, full: str) -> bool:
        """Put back the positions stored under ``full`` (turning the figure's layout engine
        off); False when none are stored (draw, then :meth:`store`)."""
        with self._lock:
            stored = self._items.get(full)
            if stored is not None:
                self._items.move_to_end(full)
        if stored is None:
            return False
        axes, texts = stored
        fig.set_layout_engine("none")
        for ax, (original, active) in zip(fig.axes, axes):
            ax.set_position(original, which="original")
            ax.set_position(active, which="active")
        for text, position in zip(fig.texts, texts):
            text.set_position(position)
        self.hits += 1
        return True

    def store(self, fig: Any, full: str) -> None:
        """Keep the positions of a figure drawn with its layout engine."""
        axes = tuple(
            (ax.get_position(original=True).frozen(), ax.get_position(original=False).frozen())
            for ax in fig.axes
        )
        texts = tuple(t.get_position() for t in fig.texts)
        with self._lock:
            self._items[full] = (axes, texts)
            self._items.move_to_end(full)
            while len(self._items) > self._keep:
                self._items.popitem(last=False)


# --------------------------------------------------------------------------------------------
# Drawing only what a display change changes
# --------------------------------------------------------------------------------------------
def _changing_artists(axes: list[Any]) -> list[Any]:
    """What to redraw for ``axes``, in drawing order: a whole axes when its axis is on or it
    has no grid cell (colour bars); otherwise everything in it but its titles, which sit
    outside the image and do not change with colours."""
    drawn: list[Any] = []
    for ax in axes:
        if ax.axison or ax.get_subplotspec() is None:
            drawn.append(ax)
            continue
        kept = (ax.title, ax._left_title, ax._right_title, ax.patch, ax.xaxis, ax.yaxis)
        unchanged = {id(a) for a in (*kept, *ax.spines.values())}
        children = [a for a in ax.get_children() if id(a) not in unchanged]
        drawn.extend(sorted(children, key=lambda a: a.get_zorder()))
    return [a for a in drawn if a.get_visible()]


class Backgrounds:
    """Figure pixels without the artists a display change redraws, by full layout key.

    A display change (colour map, opacity, clipping) alters the map panels and colour bars
    of a grid, not its titles, legend or input images, whose text rendering is most of a
    drawing's time. With the layout put back (:meth:`LayoutCache.restore`), the first drawing
    keeps the figure's pixels drawn without the changing artists; later drawings of that
    layout start from a copy of them and draw only the changing artists on top, in the order
    a full drawing would. The result is pixel for pixel a full drawing's (a test checks it).
    The caller's layout key must name everything the unchanged part shows (the images and
    the options that alter it), as for :class:`LayoutCache`.
    """

    def __init__(self, keep: int = KEEP_BACKGROUNDS) -> None:
        self._items: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep
        self.hits = 0

    def __len__(self) -> int:
        return len(self._items)

    def draw(self, canvas: Any, full: str, axes: list[Any]) -> None:
        """Draw ``canvas``'s figure, redrawing only ``axes``' changing artists over a kept
        background (kept now if missing)."""
        artists = _changing_artists(axes)
        if not artists:
            canvas.draw()
            return
        with self._lock:
            background = self._items.get(full)
            if background is not None:
                self._items.move_to_end(full)
        if background is None:
            for artist in artists:
                artist.set_visible(False)
            try:
                canvas.draw()
                background = canvas.copy_from_bbox(canvas.figure.bbox)
            finally:
                for artist in artists:
                    artist.set_visible(True)
            with self._lock:
                self._items[full] = background
                while len(self._items) > self._keep:
                    self._items.popitem(last=False)
        else:
            canvas.restore_region(background)
            self.hits += 1
        renderer = canvas.get_renderer()
        for artist in artists:
            artist.draw(renderer)
