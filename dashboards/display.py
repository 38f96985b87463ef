"""Showing results: one-line errors, figures (cached as PNG bytes), tables and downloads.

- :func:`error_message` and :func:`guard` turn every failure into one ``st.error`` line (no
  traceback ever reaches the browser; details go to the server log).
- :func:`show_figure` draws a figure once per content key: the :class:`FigureCache` keeps the
  display PNG, never the ``Figure`` (a live figure holds its canvas and every drawn array), so
  reruns that do not change the picture cost a dictionary lookup and memory stays flat. The PNG
  (300 dpi) and PDF downloads rebuild the figure when clicked.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import streamlit as st

from dashboards.layouts import Backgrounds, LayoutCache
from vizkit.errors import VizkitError, one_line
from vizkit.plotting.figures import figure_bytes as encode

log = logging.getLogger("vizkit.dashboard")
DISPLAY_DPI = 110
DOWNLOAD_DPI = 300
FIGURES_MB = 64


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
def error_message(err: BaseException, what: str = "This view") -> str:
    """The one line shown for ``err``: vizkit's own sentence, or a short generic reason."""
    if isinstance(err, VizkitError):
        return one_line(str(err))
    if isinstance(err, MemoryError):
        return f"{what} ran out of memory: choose fewer images, a smaller layer or fewer steps."
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if first.endswith(":") and len(lines) > 1:  # e.g. TensorFlow's "in user code:" preamble
        first = lines[-1]
    first = one_line(first)
    if len(first) > 180:
        first = first[:177] + "..."
    reason = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return (
        f"{what} failed ({reason}). Try other settings or another model; "
        "the server log has the details."
    )


@contextlib.contextmanager
def guard(what: str = "This view") -> Iterator[None]:
    """Show any exception as one ``st.error`` line. Streamlit's rerun/stop signals pass through."""
    try:
        yield
    except Exception as err:  # noqa: BLE001 - this is the last line of defence
        if not isinstance(err, VizkitError):
            log.exception("dashboard error in %s", what)
        st.error(error_message(err, what), icon=":material/error:")


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
class FigureCache:
    """Display PNGs by content key, least recently used first out within a byte budget."""

    def __init__(self, keep_mb: float = FIGURES_MB) -> None:
        self._items: collections.OrderedDict[str, tuple[bytes, frozenset[str]]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()
        self._keep = int(keep_mb * 2**20)
        self._size = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        return self._size

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: str, png: bytes, tags: Iterable[str] = ()) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old[0])
            self._items[key] = (png, frozenset(t for t in tags if t))
            self._size += len(png)
            while self._size > self._keep and len(self._items) > 1:
                _, (dropped, _) = self._items.popitem(last=False)
                self._size -= len(dropped)

    def evict(self, tags: Iterable[str]) -> int:
        tags = set(tags)
        with self._lock:
            gone = [k for k, (_, t) in self._items.items() if t & tags]
            for key in gone:
                self._size -= len(self._items.pop(key)[0])
        return len(gone)


_RENDER_LOCK = threading.Lock()  # matplotlib's text and font caches are shared by threads


_LAYOUTS = LayoutCache()
_BACKGROUNDS = Backgrounds()


def screen_png(
    fig: Any,
    dpi: float = DISPLAY_DPI,
    layout: Any = None,
    changing: Callable[[Any], list[Any]] | None = None,
) -> bytes:
    """The PNG shown on the page, drawn once.

    Saving with a tight bounding box (what downloads and reports do) draws the figure twice;
    a figure with a layout engine (constrained layout, the vizkit default) already keeps every
    label inside, so the page's PNG is drawn once and compressed at zlib level 1 (a larger file
    on a local link, a third of the encoding time). Figures without a layout engine keep the
    tight box. With a ``layout`` key (what the figure's structure depends on besides its
    texts, e.g. its kind), a layout computed for an identical figure is reused
    (:mod:`dashboards.layouts`); with ``changing`` too (``fig -> axes`` that display options
    alter), only those axes' images and colour bars are drawn over the rest of the figure kept
    from an earlier drawing of the same layout.
    """
    if fig.get_layout_engine() is None:
        return encode(fig, "png", dpi=dpi)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    fig.set_dpi(dpi)
    fig.patch.set_facecolor("white")
    full = _LAYOUTS.key(fig, layout) if layout is not None else None
    laid_out = full is not None and _LAYOUTS.restore(fig, full)
    canvas = FigureCanvasAgg(fig)
    if full is not None and changing is not None:
        if not laid_out:  # lay out now (as drawing would), so the background is kept at once
            fig.get_layout_engine().execute(fig)
            _LAYOUTS.store(fig, full)
            fig.set_layout_engine("none")
        _BACKGROUNDS.draw(canvas, full, changing(fig))
    else:
        canvas.draw()
        if full is not None and not laid_out:
            _LAYOUTS.store(fig, full)
    width, height = canvas.get_width_height(physical=True)
    rgba = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
    buffer = io.BytesIO()
    rgba.convert("RGB").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def beside_inputs(fig: Any) -> list[Any]:
    """A grid's axes that display options change: every column but the first (the inputs),
    and the axes outside the grid (colour bars)."""
    changing = []
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is None or spec.colspan.start > 0:
            changing.append(ax)
    return changing


def render(
    build: Callable[[], Any],
    fmt: str = "png",
    dpi: float = DISPLAY_DPI,
    layout: Any = None,
    changing: Callable[[Any], list[Any]] | None = None,
) -> bytes:
    """Build a figure and encode it (:func:`screen_png` for the page's PNG, vizkit's
    :func:`~vizkit.plotting.figures.figure_bytes` for downloads). The figure is dropped: the
    garbage collection Streamlit runs after every script run frees it (``fig.clear()`` would
    take a third of a drawing's time to rebuild empty axes)."""
    with _RENDER_LOCK:
        fig = build()
        if fmt == "png" and dpi == DISPLAY_DPI:
            return screen_png(fig, dpi, layout, changing)
        return encode(fig, fmt, dpi=dpi)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"


def show_figure(
    build: Callable[[], Any],
    name: str,
    *,
    key: Any = None,
    tags: Iterable[str] = (),
    caption: str | None = None,
    where: Any = None,
    width: Any = "content",
    layout: Any = None,
    changing: Callable[[Any], list[Any]] | None = None,
) -> bytes:
    """Show the figure ``build()`` makes as an image with PNG and PDF downloads; return the PNG.

    With a ``key`` (anything whose ``repr`` names the figure's content completely) the display
    PNG is cached, tagged with ``tags`` (the model and image keys, so it is forgotten with their
    session). ``build`` must draw from results only: the downloads call it again when clicked.
    ``layout`` names what the figure's arrangement depends on besides the texts drawn (e.g. the
    results and the kind of panels, not the colour map): figures that share it and their texts
    reuse one layout, and with ``changing`` (e.g. :func:`beside_inputs`) redraw only the axes
    it returns (:func:`screen_png`).
    """
    from dashboards import caches
    from dashboards.jobs import make_key

    where = where or st
    started, cpu = time.perf_counter(), time.thread_time()
    png, cached = None, False
    cache_key = make_key("figure", name, key)
    if key is not None:
        cache = caches.figures()
        png = cache.get(cache_key)
        cached = png is not None
        if png is None:
            png = render(build, layout=layout, changing=changing)
            cache.put(cache_key, png, tags)
    else:
        png = render(build, layout=layout, changing=changing)
    # output_format "auto" would re-encode a PNG without alpha as JPEG on every run
    where.image(png, caption=caption, width=width, output_format="PNG")
    stem = slug(name)
    seconds = (time.perf_counter() - started, time.thread_time() - cpu)
    figure_marker(stem, cache_key, cached, seconds, where)
    row = where.container(horizontal=True)
    for fmt, mime in (("png", "image/png"), ("pdf", "application/pdf")):
        row.download_button(
            fmt.upper(),
            data=lambda fmt=fmt: render(build, fmt, DOWNLOAD_DPI),
            file_name=f"{stem}.{fmt}",
            mime=mime,
            key=f"dl_{stem}_{fmt}",
            on_click="ignore",
            icon=":material/download:",
        )
    return png


def figure_marker(
    stem: str, key: str, cached: bool, seconds: tuple[float, float], where: Any
) -> None:
    """A hidden element naming the figure just shown (the latency bench and browser tests wait
    for ``#vk-figure-<stem>``'s ``data-render`` to change): its content key, whether it came
    from the cache, and the wall and CPU seconds its PNG took."""
    renders = st.session_state.setdefault("_vk_figures", {})
    renders[stem] = count = renders.get(stem, 0) + 1
    where.html(
        f'<div id="vk-figure-{stem}" class="vk-figure" data-render="{count}" '
        f'data-key="{key[:16]}" data-cached="{int(cached)}" data-seconds="{seconds[0]:.3f}" '
        f'data-cpu="{seconds[1]:.3f}" style="display:none"></div>'
    )


def show_table(
    frame: Any, name: str, *, where: Any = None, height: Any = "auto", **kwargs: Any
) -> Any:
    """A sortable table with a CSV download; returns what ``st.dataframe`` returns (the
    selection, with ``on_select=``)."""
    where = where or st
    shown = where.dataframe(frame, height=height, **kwargs)
    stem = slug(name)
    where.download_button(
        "CSV",
        data=frame.to_csv(index=False).encode(),
        file_name=f"{stem}.csv",
        mime="text/csv",
        key=f"dl_{stem}_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    return shown


def download_npz(
    arrays: dict[str, Any], name: str, *, label: str = "Maps (NPZ)", where: Any = None
) -> None:
    where = where or st
    stem = slug(name)

    def encode_npz() -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **{slug(k): np.asarray(v) for k, v in arrays.items()})
        return buffer.getvalue()

    where.download_button(
        label,
        data=encode_npz,
        file_name=f"{stem}.npz",
        mime="application/octet-stream",
        key=f"dl_{stem}_npz",
        on_click="ignore",
        icon=":material/download:",
    )


def new_figure(width: float, height: float) -> Any:
    from vizkit.plotting.figures import new_figure as make

    return make(width, height)


def on_axes(width: float, height: float, draw: Callable[[Any], Any]) -> Callable[[], Any]:
    """A figure builder: a new ``width`` x ``height`` figure with one axes that ``draw`` fills."""

    def build() -> Any:
        fig = new_figure(width, height)
        draw(fig.add_subplot())
        return fig

    return build
