"""Drawing the dataset-level views of a scan (:mod:`vizkit.results.scan`).

Galleries of maps are drawn as one montage image in a single Axes (tiles separated by white
gaps, captions as text), so every view takes ``ax=`` and the dashboard and reports can place it
anywhere. Only ``ax=None`` touches pyplot. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from vizkit.plotting.attribution import SIGNED_CMAP, UNSIGNED_CMAP
from vizkit.plotting.metrics import WARNING_COLOR
from vizkit.results.scan import ClassMeanMaps, ConfusionView, ErrorMaps, RankedImages, SpatialBias

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

#: Every dataset-level view of a scan.
ScanView: TypeAlias = ClassMeanMaps | ConfusionView | ErrorMaps | RankedImages | SpatialBias

GAP = 2  # pixels between montage tiles (at map resolution)


def _axes(ax: Axes | None, width: float = 6.0, height: float = 3.0) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), layout="constrained").add_subplot()


def figure_size(view: ScanView, kind: str = "plot", *, cols: int = 6) -> tuple[float, float]:
    """The figure size (inches) a view's ``plot`` (or ``plot_examples`` with
    ``kind="examples"``) takes when it makes its own figure: for reports and pages that build
    their figures without pyplot and pass ``ax=`` in."""
    if isinstance(view, ClassMeanMaps):
        return 1.6 * (len(view.maps) + 1) + 0.5, 2.2
    if isinstance(view, ConfusionView) and kind == "examples":
        m, e = view.ids.shape if view.ids.size else (0, 0)
        return 1.4 * max(e, 1) + 1.0, 1.5 * max(m, 1) + 0.5
    if isinstance(view, ConfusionView):
        k = len(view.matrix)
        return 0.5 * k + 2.5, 0.5 * k + 2.0
    if isinstance(view, ErrorMaps):
        return 1.5 * (len(view.classes) + 1) + 0.8, 3.6
    if isinstance(view, RankedImages):
        k = len(view.ids)
        cols = max(1, min(cols, k or 1))
        return 1.4 * cols + 0.5, 1.6 * max(1, -(-k // cols)) + 0.4
    if isinstance(view, SpatialBias):
        return 4.5, 3.0
    raise TypeError(f"figure_size does not know a {type(view).__name__}")


def _colour(values: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Maps ``(..., h, w)`` to RGB in [0, 1] with one shared scale, and the per-pixel strength
    ``|value| / scale``: signed maps on a diverging map centred on zero, non-negative ones on a
    sequential map; NaN tiles stay white."""
    from matplotlib import colormaps

    values = np.asarray(values, np.float32)
    finite = np.isfinite(values)
    signed = bool((values[finite] < 0).any())
    top = scale or float(np.abs(values[finite]).max(initial=0.0)) or 1.0
    if signed:
        unit = (np.clip(values / top, -1, 1) + 1) / 2
        rgb = colormaps[SIGNED_CMAP](np.nan_to_num(unit, nan=0.5))[..., :3]
    else:
        unit = np.clip(values / top, 0, 1)
        rgb = colormaps[UNSIGNED_CMAP](np.nan_to_num(unit))[..., :3]
    rgb[~finite] = 1.0
    strength = np.clip(np.abs(np.nan_to_num(values)) / top, 0, 1)
    return rgb, strength, top


def _overlay(
    coloured: tuple[np.ndarray, np.ndarray, float], image: np.ndarray | None
) -> np.ndarray:
    """The map over the image, each pixel as opaque as its attribution is strong (so weak
    attribution shows the image, not the colour map's middle)."""
    rgb, strength, _ = coloured
    if image is None:
        return rgb
    base = image.astype(np.float32) / 255.0
    if base.shape[-1] == 1:
        base = np.repeat(base, 3, axis=-1)
    alpha = 0.85 * np.sqrt(strength)[..., None]
    return (1 - alpha) * base + alpha * rgb


def montage(
    ax: Axes,
    tiles: Sequence[np.ndarray],
    captions: Sequence[str],
    cols: int,
    *,
    row_labels: Sequence[str] | None = None,
    colours: Sequence[str] | None = None,
) -> Axes:
    """Draw ``tiles`` (each ``(h, w, 3)`` in [0, 1]) in a grid on ``ax`` with captions below."""
    if not tiles:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    h, w = tiles[0].shape[:2]
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    caption = max(6, h // 4)
    canvas = np.ones((rows * (h + caption + GAP), cols * (w + GAP) - GAP, 3), np.float32)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        y, x = r * (h + caption + GAP), c * (w + GAP)
        canvas[y : y + h, x : x + w] = tile
    ax.imshow(canvas, interpolation="nearest")
    for k, text in enumerate(captions):
        r, c = divmod(k, cols)
        y, x = r * (h + caption + GAP) + h, c * (w + GAP) + w / 2
        colour = colours[k] if colours else "black"
        ax.text(x, y + 1, text, ha="center", va="top", fontsize=7, color=colour)
    if row_labels:
        for r, text in enumerate(row_labels):
            ax.text(
                -2,
                r * (h + caption + GAP) + h / 2,
                text,
                ha="right",
                va="center",
                fontsize=8,
                rotation=90,
            )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return ax


def plot_class_means(view: ClassMeanMaps, ax: Axes | None = None, *, overall: bool = True) -> Axes:
    maps = [m for m in view.maps]
    captions = [
        f"{view.class_name(int(c))} (n={int(n)})" for c, n in zip(view.classes, view.counts)
    ]
    if overall:
        maps.append(view.overall)
        captions.append(f"all (n={int(np.sum(view.counts))})")
    ax = _axes(ax, *figure_size(view))
    rgb, _, _ = _colour(np.stack(maps)) if maps else (np.zeros((0, 1, 1, 3)), False, 1.0)
    montage(ax, list(rgb), captions, cols=len(maps))
    ax.set_title(f"{view.method}: mean map per {view.by}", fontsize=9)
    return ax


def plot_confusion(view: ConfusionView, ax: Axes | None = None) -> Axes:
    matrix = np.asarray(view.matrix)
    k = len(matrix)
    ax = _axes(ax, *figure_size(view))
    ax.imshow(matrix, cmap="Blues")
    top = matrix.max(initial=0)
    for i in range(k):
        for j in range(k):
            colour = "white" if matrix[i, j] > top / 2 else "black"
            ax.text(
                j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8, color=colour
            )
    names = [view.class_name(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("label")
    ax.set_title(f"confusion (accuracy {view.accuracy:.3f})", fontsize=9)
    return ax


def plot_confusion_examples(
    view: ConfusionView, ax: Axes | None = None, *, overlay: bool = True
) -> Axes:
    m, e = view.ids.shape if view.ids.size else (0, 0)
    ax = _axes(ax, *figure_size(view, "examples"))
    tiles, captions, labels = [], [], []
    for c in range(m):
        i, j = (int(v) for v in view.cells[c])
        labels.append(f"{view.class_name(i)}\u2192{view.class_name(j)}")
        for k in range(e):
            if view.ids[c, k] < 0:
                tiles.append(np.ones((*view.maps.shape[2:4], 3), np.float32))
                captions.append("")
                continue
            image = view.images[c, k] if (overlay and view.images is not None) else None
            tiles.append(_overlay(_colour(view.maps[c, k]), image))
            captions.append(f"#{int(view.ids[c, k])} p={view.probabilities[c, k]:.2f}")
    montage(ax, tiles, captions, cols=max(e, 1), row_labels=labels)
    ax.set_title(f"{view.method}: mistakes (label\u2192prediction)", fontsize=9)
    return ax


def plot_error_maps(view: ErrorMaps, ax: Axes | None = None) -> Axes:
    columns = [
        (
            "all",
            view.overall_correct,
            view.overall_wrong,
            int(np.sum(view.correct_counts)),
            int(np.sum(view.wrong_counts)),
        )
    ]
    for c, right, wrong, nr, nw in zip(
        view.classes, view.correct, view.wrong, view.correct_counts, view.wrong_counts
    ):
        columns.append((view.class_name(int(c)), right, wrong, int(nr), int(nw)))
    ax = _axes(ax, *figure_size(view))
    stack = np.stack([col[1] for col in columns] + [col[2] for col in columns])
    rgb, _, _ = _colour(stack)
    n = len(columns)
    captions = [f"{col[0]} right (n={col[3]})" for col in columns]
    captions += [f"{col[0]} wrong (n={col[4]})" for col in columns]
    montage(ax, list(rgb), captions, cols=n, row_labels=["correct", "wrong"])
    ax.set_title(f"{view.method}: where it looks when right and when wrong", fontsize=9)
    return ax


def plot_ranked(
    view: RankedImages, ax: Axes | None = None, *, overlay: bool = True, cols: int = 6
) -> Axes:
    k = len(view.ids)
    cols = max(1, min(cols, k or 1))
    ax = _axes(ax, *figure_size(view, cols=cols))
    tiles, captions, colours = [], [], []
    for i in range(k):
        image = view.images[i] if (overlay and view.images is not None) else None
        tiles.append(_overlay(_colour(view.maps[i]), image))
        value = view.values[i]
        shown = f"{value:.3g}" if np.isfinite(value) else view.notes[i].split(":")[0]
        captions.append(f"#{int(view.ids[i])} {shown}")
        colours.append(WARNING_COLOR if view.criterion == "health" else "black")
    montage(ax, tiles, captions, cols=cols, colours=colours)
    ax.set_title(f"{view.method}: {view.description} ({view.total} images)", fontsize=9)
    return ax


def plot_spatial_bias(view: SpatialBias, ax: Axes | None = None) -> Axes:
    ax = _axes(ax, *figure_size(view))
    x = np.arange(len(view.regions))
    ax.bar(x - 0.2, view.shares, width=0.4, label="attribution share", color="#0072B2")
    ax.bar(x + 0.2, view.areas, width=0.4, label="area share", color="0.7")
    ax.set_xticks(x, list(view.regions), fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share")
    ax.legend(fontsize=7, frameon=False)
    verdict = "possible shortcut" if view.flagged else "no spatial bias found"
    ax.set_title(
        f"{view.method}: {verdict}", fontsize=9, color=WARNING_COLOR if view.flagged else "black"
    )
    return ax
