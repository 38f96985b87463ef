"""Text helpers for figures: wrap titles to the space they have, format probabilities.

Matplotlib does not wrap titles, so a long method name ("Rectified backpropagation
(DeconvNet)") or a nested layer path ("model/base/block5_conv3") runs into its neighbour or off
the figure. :func:`fit` wraps text to a width in inches at a font size, breaking between words
and, inside long words, after ``/``, ``_`` or ``-``. No TensorFlow here.
"""

from __future__ import annotations

import math
import re

#: Average glyph width as a share of the font size (DejaVu Sans is about 0.55-0.6 em).
CHAR_EM = 0.6


def chars_for(width_in: float, fontsize: float) -> int:
    """How many average characters fit in ``width_in`` inches at ``fontsize`` points."""
    return max(4, int(width_in * 72.0 / (CHAR_EM * float(fontsize))))


def _pieces(word: str, width: int) -> list[str]:
    """Split one over-long word after ``/``, ``_`` or ``-`` (hard breaks as a last resort)."""
    parts = [p for p in re.split(r"(?<=[/_\-])", word) if p]
    out: list[str] = []
    line = ""
    for part in parts:
        while len(part) > width:  # no separator close enough: hard break
            if line:
                out.append(line)
                line = ""
            out.append(part[:width])
            part = part[width:]
        if len(line) + len(part) > width and line:
            out.append(line)
            line = part
        else:
            line += part
    if line:
        out.append(line)
    return out


def wrap(text: str, width: int) -> str:
    """Wrap every line of ``text`` to at most ``width`` characters (see module docstring)."""
    width = max(4, int(width))
    lines: list[str] = []
    for raw in str(text).split("\n"):
        line = ""
        for word in raw.split(" "):
            pieces = _pieces(word, width) if len(word) > width else [word]
            for piece in pieces:
                if not line:
                    line = piece
                elif len(line) + 1 + len(piece) <= width:
                    line += " " + piece
                else:
                    lines.append(line)
                    line = piece
        lines.append(line)
    return "\n".join(lines)


def fit(text: str, width_in: float, fontsize: float) -> str:
    """Wrap ``text`` to fit ``width_in`` inches at ``fontsize`` points."""
    return wrap(text, chars_for(width_in, fontsize))


def pct(p: float | None) -> str:
    """A probability as a percentage: ``"87%"``, ``"<1%"``, ``">99%"``, ``"?"`` when unknown."""
    if p is None or not math.isfinite(float(p)):
        return "?"
    p = float(p)
    if 0.0 < p < 0.005:
        return "<1%"
    if 0.995 <= p < 1.0:
        return ">99%"
    return f"{p:.0%}"


__all__ = ["CHAR_EM", "chars_for", "fit", "pct", "wrap"]
