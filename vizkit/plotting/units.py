"""Drawing unit pages (a unit's top examples, filter and maximization image) and
activation-maximization grids and histories.

Every function takes the result and an optional ``matplotlib.figure.Figure`` (or an Axes for
histories) and returns it; the shared grid helpers live in :mod:`vizkit.plotting.inspection`.
No TensorFlow here.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from vizkit.plotting.inspection import _clean, _figure, _grid, _limit, _suptitle, show_image
from vizkit.plotting.style import DIVERGING_CMAP
from vizkit.plotting.text import fit

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vizkit.results.inspection import ActivationImages, UnitExamples


# --------------------------------------------------------------------------------------------
# Unit pages
# --------------------------------------------------------------------------------------------
def plot_unit_examples(
    examples: UnitExamples,
    fig: Figure | None = None,
    *,
    max_examples: int | None = None,
    patches: bool = True,
) -> Figure:
    """One row per unit: maximization image, filter weights, then the top examples.

    Columns: ``"maximization"`` (when computed), ``"filter"`` (convolutional layers), then up
    to ``max_examples`` examples, best first, each titled with its activation. ``patches=True``
    shows receptive-field crops for channels; False shows whole images with the field boxed.
    """
    k = examples.k if max_examples is None else max(1, min(int(max_examples), examples.k))
    maximization, bank = examples.maximization, examples.filters
    has_max = maximization is not None
    has_filter = bank is not None
    lead = int(has_max) + int(has_filter)
    cols = lead + k
    units = len(examples)
    fig = _figure(fig, cols * 1.3 + 0.8, units * 1.4 + 0.7)
    if units == 0:
        return fig
    axes = fig.subplots(units, cols, squeeze=False)
    crops = examples.patches
    use_patches = patches and crops is not None
    max_lookup: dict[int, int] = {}
    if maximization is not None:
        max_lookup = {int(u): i for i, u in enumerate(maximization.units)}
    filt_lookup: dict[int, int] = {}
    if bank is not None:
        filt_lookup = {int(u): i for i, u in enumerate(bank.indices)}
    filt_limit = _limit(np.asarray(bank.kernels)) if bank is not None else 1.0
    noun = "channel" if examples.kind == "channel" else "unit"
    replaced = 0
    for row, unit in enumerate(examples.units):
        col = 0
        if maximization is not None:
            ax = axes[row, col]
            i = max_lookup.get(int(unit))
            if i is not None:
                show_image(ax, maximization.display[i])
                ax.set_title(f"{maximization.activation[i]:.3g}", fontsize=7)
            _clean(ax)
            col += 1
        if bank is not None:
            ax = axes[row, col]
            i = filt_lookup.get(int(unit))
            if i is not None:
                _draw_kernel(
                    ax, np.asarray(bank.kernels[i], dtype=np.float32), bank.rgb, filt_limit
                )
            _clean(ax)
            col += 1
        for r in range(k):
            ax = axes[row, col + r]
            _clean(ax)
            if examples.sample_indices[row, r] >= 0:
                replaced += int(_draw_example(ax, examples, row, r, use_patches))
        axes[row, 0].set_ylabel(f"{noun} {int(unit)}", fontsize=8)
    filter_header = "filter"
    if bank is not None and not bank.rgb and bank.kernels.shape[-1] > 1:
        filter_header = f"filter (mean of {bank.kernels.shape[-1]} inputs)"
    headers = (["maximization"] if has_max else []) + ([filter_header] if has_filter else [])
    for col, header in enumerate(headers):
        title = axes[0, col].get_title()
        axes[0, col].set_title(header + (f"\n{title}" if title else ""), fontsize=8)
    what = "receptive-field patches" if use_patches else "images"
    text = f"{examples.layer}: top {k} {what} of {examples.searched} searched, per {noun}"
    if replaced:
        text += (
            f"; {replaced} patch(es) mostly outside the image shown as the whole image with "
            "the field boxed"
        )
    _suptitle(fig, text)
    return fig


def _draw_kernel(ax: Axes, kernel: np.ndarray, rgb: bool, limit: float) -> None:
    """A ``(kh, kw, C_in)`` kernel: as colour when ``rgb`` (``limit`` scales it), else one
    input channel as is or several averaged, on a diverging map."""
    if rgb:
        ax.imshow(np.clip(0.5 + kernel / (2 * limit), 0, 1))
        return
    tile = kernel.mean(axis=-1)
    tile_limit = _limit(tile)
    ax.imshow(tile, cmap=DIVERGING_CMAP, vmin=-tile_limit, vmax=tile_limit)


def _draw_example(ax: Axes, examples: UnitExamples, row: int, rank: int, patches: bool) -> bool:
    """One top example titled with its score: its receptive-field patch when ``patches`` and
    the patch is mostly inside the image, else the whole image with the field boxed. True when
    a patch was asked for but the whole image is shown."""
    from matplotlib.patches import Rectangle

    crops = examples.patches
    whole = not patches or in_image_share(examples, row, rank) < MIN_PATCH_SHARE
    if not whole and crops is not None:
        show_image(ax, crops[row, rank])
    else:
        show_image(ax, examples.images[examples.image_ids[row, rank]])
        if examples.boxes is not None:
            top, left, bottom, right = examples.boxes[row, rank]
            ax.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5),
                    right - left + 1,
                    bottom - top + 1,
                    fill=False,
                    edgecolor="#E69F00",
                    linewidth=1.2,
                )
            )
    ax.set_title(f"{examples.scores[row, rank]:.3g}", fontsize=7)
    return patches and whole


#: Receptive-field patches with less of the image than this share (the rest is grey padding)
#: are shown as the whole image with the field boxed instead.
MIN_PATCH_SHARE = 0.5


def in_image_share(examples: UnitExamples, unit: int, rank: int) -> float:
    """Share of example ``(unit, rank)``'s receptive-field patch that lies inside the image."""
    if examples.patches is None or examples.boxes is None:
        return 1.0
    height, width = examples.patches.shape[2:4]
    top, left, bottom, right = (float(v) for v in examples.boxes[unit, rank])
    inside = max(bottom - top + 1.0, 0.0) * max(right - left + 1.0, 0.0)
    return float(min(inside / max(height * width, 1), 1.0))


# --------------------------------------------------------------------------------------------
# Activation maximization
# --------------------------------------------------------------------------------------------
def plot_activation_images(
    images: ActivationImages,
    fig: Figure | None = None,
    *,
    cols: int | None = None,
    title: str | None = None,
) -> Figure:
    """A grid of the synthesized images (rows of at most five up to ten images, see
    :func:`default_columns`), each titled with its label, the achieved objective, its gain over
    uniform noise in noise standard deviations, and (for classes) the predicted class."""
    count = len(images)
    if cols is None:
        cols = default_columns(count)
    rows = math.ceil(max(count, 1) / cols)
    fig = _figure(fig, cols * 1.7 + 0.3, rows * 2.0 + 0.7)
    if count == 0:
        return fig
    axes = _grid(fig, count, cols)
    display = images.display
    gains = images.gain_over_noise
    for i, ax in enumerate(axes):
        show_image(ax, display[i], interpolation="bilinear")
        text = f"{images.labels[i]}\n{images.activation[i]:.3g}"
        if np.isfinite(gains[i]):
            text += f", {gains[i]:+.0f} sd vs noise"
        if images.predicted is not None and images.kind == "class":
            text += f"\npredicted {_class(images, int(images.predicted[i]))}"
        ax.set_title(fit(text, 1.6, 8), fontsize=8)
        _clean(ax)
    if title is None:
        what = {"mean": "channel mean", "center": "centre neuron", "value": "value"}.get(
            images.objective, images.objective
        )
        target = "logit" if images.kind == "class" else what
        title = f"Activation maximization: {images.layer} ({target}, {images.steps} steps)"
    _suptitle(fig, title)
    return fig


def default_columns(count: int) -> int:
    """Columns of an image grid: one row up to 5, two rows up to 10 (2x5 for ten classes),
    then about 1.5 times wider than tall, at most 8."""
    if count <= 5:
        return max(count, 1)
    if count <= 10:
        return math.ceil(count / 2)
    return min(8, math.ceil(math.sqrt(count * 1.5)))


def _class(images: ActivationImages, index: int) -> str:
    names = images.class_names
    return str(names[index]) if names and 0 <= index < len(names) else str(index)


def plot_activation_history(images: ActivationImages, ax: Axes) -> Axes:
    """The objective per step for each target on ``ax``."""
    history = np.asarray(images.score_history)
    steps = np.arange(1, len(history) + 1)
    for i in range(history.shape[1] if history.ndim == 2 else 0):
        ax.plot(steps, history[:, i], linewidth=1.0, label=images.labels[i])
    ax.set_xlabel("step")
    ax.set_ylabel("objective (augmented image)")
    ax.set_title(fit(f"{images.layer}: optimization history", 5.0, 10))
    if history.ndim == 2 and history.shape[1] <= 10:  # beside the curves, never over them
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax
