"""Drawing classification results (confusion matrices) on a given Axes. No TensorFlow here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from vizkit.results.classification import ConfusionMatrix

MAX_ANNOTATED = 20  # classes up to which every cell shows its number


def plot_confusion_matrix(
    matrix: ConfusionMatrix,
    ax: Axes | None = None,
    *,
    normalize: bool = False,
    cmap: str = "Blues",
    values: bool = True,
    colorbar: bool = True,
) -> Axes:
    """Rows = true class, columns = predicted class; counts (or row shares) in the cells.

    Parameters
    ----------
    matrix : ConfusionMatrix
    ax : matplotlib Axes, optional
        Where to draw; None makes a new pyplot figure.
    normalize : bool
        Show each row as shares of its true class (the diagonal is then the recall).
    cmap : str
    values : bool
        Write the number in each cell (up to 20 classes).
    colorbar : bool
    """
    if ax is None:
        import matplotlib.pyplot as plt

        size = 1.5 + 0.45 * len(matrix)
        _, ax = plt.subplots(figsize=(size + 1.0, size))
    counts = np.asarray(matrix.counts, dtype=np.float64)
    shown = matrix.normalized() if normalize else counts
    image = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    n = len(matrix)
    ticks = np.arange(n)
    names = list(matrix.class_names)
    rotate = max((len(name) for name in names), default=0) > 3
    ax.set_xticks(ticks, names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    if values and n <= MAX_ANNOTATED:
        threshold = (shown.max() if shown.size else 0) / 2
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
                colour = "white" if shown[i, j] > threshold else "black"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    if colorbar:
        bar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("share of the true class" if normalize else "images")
    title = f"accuracy {matrix.accuracy:.1%} on {matrix.total} images"
    ax.set_title(title, fontsize=9)
    return ax
