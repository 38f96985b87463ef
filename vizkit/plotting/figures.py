"""Create and save ``matplotlib.figure.Figure`` objects without pyplot.

Reports and the command line build figures with :func:`new_figure`, let result objects draw on
their axes, and write them with :func:`save_figure`: 300 dpi PNG, vector PDF (fonts embedded as
TrueType when the ``"paper"`` style is active) and SVG. Output is deterministic: no creation
dates, fixed SVG ids, so re-running a report gives byte-identical vector files.

No TensorFlow and no pyplot here: figures made this way are never registered with pyplot's global
figure manager, so nothing leaks between figures or threads.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from matplotlib.figure import Figure

from vizkit.errors import InputError

#: Formats :func:`save_figure` writes, and the vector ones among them.
FIGURE_FORMATS = ("png", "pdf", "svg")
VECTOR_FORMATS = ("pdf", "svg")
DEFAULT_DPI = 300

_METADATA = {
    "png": {"Software": "vizkit"},
    "pdf": {"Creator": "vizkit", "Producer": None, "CreationDate": None, "ModDate": None},
    "svg": {"Creator": "vizkit", "Date": None},
}


def new_figure(
    width: float = 6.0,
    height: float = 4.0,
    *,
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained",
) -> Figure:
    """A pyplot-free figure of ``width`` x ``height`` inches (constrained layout by default)."""
    return Figure(figsize=(float(width), float(height)), layout=layout)


def _check_formats(formats: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    bad = [f for f in chosen if f not in FIGURE_FORMATS]
    if bad:
        raise InputError(
            f"unknown figure format {bad[0]!r}: choose from {', '.join(FIGURE_FORMATS)}"
        )
    return chosen


def _write(fig: Figure, target: io.BytesIO | Path, fmt: str, dpi: float) -> None:
    import matplotlib

    with matplotlib.rc_context({"svg.hashsalt": "vizkit"}):
        fig.savefig(
            target,
            format=fmt,
            dpi=dpi,
            bbox_inches="tight",
            pad_inches=0.03,
            metadata=_METADATA[fmt],
            facecolor="white",
        )


def save_figure(
    fig: Figure,
    stem: str | Path,
    formats: Iterable[str] = FIGURE_FORMATS,
    *,
    dpi: float = DEFAULT_DPI,
) -> dict[str, Path]:
    """Write ``fig`` as ``stem.png`` / ``stem.pdf`` / ``stem.svg``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    stem : path without suffix
        Parent folders are created.
    formats : iterable of {"png", "pdf", "svg"}
    dpi : float
        Resolution of the PNG (and of images embedded in the vector files).

    Returns
    -------
    dict
        Format -> written path.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in _check_formats(formats):
        path = stem.with_name(f"{stem.name}.{fmt}")
        _write(fig, path, fmt, dpi)
        written[fmt] = path
    return written


def figure_bytes(fig: Figure, fmt: str = "png", *, dpi: float = DEFAULT_DPI) -> bytes:
    """The figure encoded as ``fmt`` in memory."""
    (fmt,) = _check_formats([fmt])
    buffer = io.BytesIO()
    _write(fig, buffer, fmt, dpi)
    return buffer.getvalue()


def figure_data_uri(fig: Figure, *, dpi: float = 150) -> str:
    """A ``data:image/png;base64,...`` URI for embedding the figure in HTML."""
    return png_data_uri(figure_bytes(fig, "png", dpi=dpi))


def png_data_uri(png: bytes) -> str:
    """Wrap PNG bytes as a ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def save_format_for(path: str | Path) -> str:
    """The figure format a file name asks for (``.png``, ``.pdf`` or ``.svg``)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        raise InputError(
            f"cannot tell the figure format of {str(path)!r}: end the name in .png, .pdf or .svg"
        )
    return suffix


__all__ = [
    "DEFAULT_DPI",
    "FIGURE_FORMATS",
    "VECTOR_FORMATS",
    "figure_bytes",
    "figure_data_uri",
    "new_figure",
    "png_data_uri",
    "save_figure",
    "save_format_for",
]
