"""How results show themselves in a console and a notebook: short ``repr`` and ``_repr_html_``.

Every :class:`~vizkit.results.base.Result` prints as one short line (arrays as their shape and
dtype, never their values) and renders in Jupyter as what it means: a model summary as its
layer table, image batches as thumbnails, an explanation as its figure, a metric as its table.
Figures are drawn on a pyplot-free ``Figure`` and embedded as PNG, so notebooks never show them
twice. No TensorFlow here.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from typing import Any

import numpy as np

#: Longest ``repr`` a result gives (characters).
MAX_REPR = 300
#: Notebook limits: thumbnails, table rows, images in an explanation's figure.
MAX_THUMBNAILS = 16
MAX_ROWS = 30
MAX_FIGURE_IMAGES = 4
THUMBNAIL_PX = 96
HTML_DPI = 80


# --------------------------------------------------------------------------------------------
# repr
# --------------------------------------------------------------------------------------------
def short_value(value: Any, limit: int = 48) -> str:
    """A compact description of a field value: arrays by shape and dtype, long things cut."""
    if isinstance(value, np.ndarray):
        shape = "x".join(str(d) for d in value.shape) or "scalar"
        return f"array({shape}, {value.dtype})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return f"{type(value).__name__}(...)"
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"{type(value).__name__}({len(value)} items)"
    if isinstance(value, dict) and len(value) > 4:
        return f"dict({len(value)} keys)"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_repr(result: Any) -> str:
    """``Type(field=value, ...)`` in at most :data:`MAX_REPR` characters."""
    parts = []
    for field in dataclasses.fields(result):
        if not field.repr:
            continue
        parts.append(f"{field.name}={short_value(getattr(result, field.name, None))}")
    text = f"{type(result).__name__}({', '.join(parts)})"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 4] + "...)"


# --------------------------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------------------------
def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_html(fig: Any, alt: str = "") -> str:
    """A figure as an embedded PNG ``<img>``."""
    from vizkit.plotting.figures import figure_bytes

    uri = _png_uri(figure_bytes(fig, "png", dpi=HTML_DPI))
    return f'<img src="{uri}" alt="{html.escape(alt)}" style="max-width:100%">'


def _heading(result: Any) -> str:
    return f"<div><code>{html.escape(repr(result))}</code></div>"


def thumbnails_html(images: np.ndarray, names: Any = (), limit: int = MAX_THUMBNAILS) -> str:
    """Images ``(N, H, W, C)`` in [0, 1] (or uint8) as a row of captioned thumbnails."""
    from PIL import Image

    cells = []
    for i, image in enumerate(np.asarray(images)[:limit]):
        array = np.asarray(image)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        picture = Image.fromarray(array)
        scale = max(1, THUMBNAIL_PX // max(picture.size))
        if scale > 1:  # small images grow by whole pixels, staying sharp
            picture = picture.resize((picture.width * scale, picture.height * scale), 0)
        picture.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        name = str(names[i]) if i < len(names) else f"image {i}"
        cells.append(
            '<figure style="display:inline-block;margin:2px;text-align:center">'
            f'<img src="{_png_uri(buffer.getvalue())}" alt="{html.escape(name)}">'
            f'<figcaption style="font-size:smaller">{html.escape(name)}</figcaption></figure>'
        )
    more = len(images) - limit
    tail = f"<div>... and {more} more</div>" if more > 0 else ""
    return "<div>" + "".join(cells) + "</div>" + tail


def frame_html(frame: Any, limit: int = MAX_ROWS) -> str:
    """A DataFrame as an HTML table, cut to ``limit`` rows."""
    shown = frame.head(limit)
    table = shown.to_html(border=0, index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
    more = len(frame) - limit
    return table + (f"<div>... {more} more rows</div>" if more > 0 else "")


def summary_html(summary: Any) -> str:
    """A model summary as its layer table plus totals."""
    frame = summary.to_frame()
    columns = [
        c
        for c in ("path", "type", "output_shape", "params", "activation", "rf_h", "macs")
        if c in frame.columns
    ]
    frame = frame[columns].astype(object).where(frame[columns].notna(), "")
    totals = (
        f"{summary.total_params:,} parameters ({summary.trainable_params:,} trainable), "
        f"{summary.total_macs:,} MACs per sample"
    )
    return f"<div><b>{html.escape(summary.name)}</b>: {html.escape(totals)}</div>" + frame_html(
        frame, limit=200
    )


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------
def _figure_of(result: Any) -> Any:
    """The result's own figure on a pyplot-free Figure, or None when it has no cheap one."""
    from matplotlib.figure import Figure

    name = type(result).__name__
    if name == "Explanation":
        from vizkit.results.explanation import Comparison

        rows = list(range(min(len(result), MAX_FIGURE_IMAGES)))
        return Comparison((result,)).plot(images=rows)
    if name in ("Comparison", "LayerSweep"):
        rows = list(range(min(result.num_images, MAX_FIGURE_IMAGES)))
        return result.plot(images=rows)
    if name == "FeatureMaps":
        return result.plot(0)
    if name in ("FilterBank", "UnitExamples", "ActivationImages", "FeatureMapSet"):
        return result.plot()
    if name in ("PerturbationCurve", "PointingGameResult", "RelevanceMassResult"):
        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        result.plot(ax=fig.add_subplot())
        return fig
    return None


def result_html(result: Any) -> str:
    """What a result shows in a notebook (see the module docstring)."""
    heading = _heading(result)
    try:
        fig = _figure_of(result)
        if fig is not None:
            body = figure_html(fig, alt=type(result).__name__)
            if hasattr(result, "to_frame") and type(result).__name__ == "ActivationImages":
                body += frame_html(result.to_frame())
            return heading + body
        display = getattr(result, "display", None)
        if isinstance(display, np.ndarray) and display.ndim == 4:
            return heading + thumbnails_html(display, getattr(result, "names", ()) or ())
        if hasattr(result, "to_frame"):
            return heading + frame_html(result.to_frame())
    except Exception as error:  # noqa: BLE001 - a display must never raise in a notebook
        return heading + f"<div>(no preview: {html.escape(str(error))})</div>"
    return heading


__all__ = [
    "figure_html",
    "frame_html",
    "result_html",
    "short_repr",
    "short_value",
    "summary_html",
    "thumbnails_html",
]
