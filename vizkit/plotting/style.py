"""Figure styles for papers and screens, applied with a context manager.

``style("paper")`` sets serif fonts, 300 dpi output, a colourblind-safe colour cycle (Okabe & Ito)
and perceptually uniform colour maps, and embeds fonts in PDF/PS files as TrueType (Type 42) so
journals and LaTeX accept the figures. ``style("screen")`` keeps sans-serif fonts and a lighter
dpi for dashboards and notebooks. Both keep SVG text as paths, so SVG files need no fonts.

Styles change :data:`matplotlib.rcParams` only inside the ``with`` block (through
:func:`matplotlib.rc_context`); figures must be *drawn and saved* inside the block for fonts and
dpi to apply::

    from matplotlib.figure import Figure
    import vizkit

    with vizkit.style("paper"):
        fig = Figure(figsize=(3.4, 2.4))
        explanation.plot(0, ax=fig.add_subplot())
        fig.savefig("gradcam.pdf")

No TensorFlow here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from cycler import cycler

from vizkit.errors import InputError

#: Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour
#: vision deficiencies, and in greyscale by lightness for the first few entries.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
    "#000000",  # black
)

#: Colour maps the styles recommend: sequential maps (attribution magnitude, activations) and a
#: diverging map for signed values; all are readable with colour vision deficiencies.
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"

_COMMON: dict[str, Any] = {
    "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
    "image.cmap": SEQUENTIAL_CMAP,
    "image.interpolation": "nearest",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType: fonts are embedded and text stays selectable
    "ps.fonttype": 42,
    "svg.fonttype": "path",  # SVG text as outlines: no fonts needed to view the file
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}

STYLES: dict[str, dict[str, Any]] = {
    "paper": {
        **_COMMON,
        "font.family": "serif",
        "font.serif": [
            "DejaVu Serif",
            "Liberation Serif",
            "Times New Roman",
            "Nimbus Roman",
            "STIXGeneral",
        ],
        "mathtext.fontset": "dejavuserif",
        "font.size": 8.0,
        "axes.titlesize": 9.0,
        "axes.labelsize": 8.0,
        "xtick.labelsize": 7.0,
        "ytick.labelsize": 7.0,
        "legend.fontsize": 7.0,
        "figure.titlesize": 10.0,
        "lines.linewidth": 1.2,
        "axes.linewidth": 0.6,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "figure.dpi": 100.0,
        "savefig.dpi": 300.0,
    },
    "screen": {
        **_COMMON,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
        "mathtext.fontset": "dejavusans",
        "font.size": 10.0,
        "axes.titlesize": 11.0,
        "axes.labelsize": 10.0,
        "xtick.labelsize": 9.0,
        "ytick.labelsize": 9.0,
        "legend.fontsize": 9.0,
        "figure.titlesize": 12.0,
        "lines.linewidth": 1.6,
        "figure.dpi": 100.0,
        "savefig.dpi": 150.0,
    },
}

#: dpi of saved raster files per style (what ``savefig.dpi`` is set to).
STYLE_DPI: dict[str, float] = {name: float(rc["savefig.dpi"]) for name, rc in STYLES.items()}


def style_names() -> list[str]:
    """Names :func:`style` accepts."""
    return list(STYLES)


def style_params(name: str = "paper", **overrides: Any) -> dict[str, Any]:
    """The rcParams a style sets (a fresh dict), with ``overrides`` applied.

    Override keys are rcParams names, e.g. ``style_params("paper", **{"font.size": 9})``.
    """
    if name not in STYLES:
        raise InputError(f"unknown style {name!r}: choose one of {', '.join(STYLES)}")
    params = dict(STYLES[name])
    params.update(overrides)
    return params


@contextlib.contextmanager
def style(name: str = "paper", rc: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Apply a figure style inside a ``with`` block; rcParams are restored afterwards.

    Parameters
    ----------
    name : {"paper", "screen"}
        ``"paper"``: serif fonts, 300 dpi, colourblind-safe colours, fonts embedded in PDFs.
        ``"screen"``: sans-serif fonts, 150 dpi, same colours.
    rc : mapping, optional
        Extra rcParams to set on top of the style.

    Yields
    ------
    dict
        The rcParams that were applied.
    """
    import matplotlib

    params: dict[Any, Any] = style_params(name, **dict(rc or {}))
    with matplotlib.rc_context(params):
        yield params


__all__ = [
    "DIVERGING_CMAP",
    "OKABE_ITO",
    "SEQUENTIAL_CMAP",
    "STYLES",
    "STYLE_DPI",
    "style",
    "style_names",
    "style_params",
]
