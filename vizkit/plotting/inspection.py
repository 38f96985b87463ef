"""Drawing filters and feature maps, and the grid helpers the other inspection plots share
(unit pages and activation maximization are in :mod:`vizkit.plotting.units`).

Every function takes the result and an optional ``matplotlib.figure.Figure`` (a new pyplot-free
figure when None), draws on it and returns it. Colour scaling happens here, never in the results:
signed weights use a diverging colour map centred on zero, activations a sequential one.
No TensorFlow here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.figures import new_figure
from vizkit.plotting.style import DIVERGING_CMAP, SEQUENTIAL_CMAP
from vizkit.plotting.text import fit

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vizkit.results.inspection import FeatureMaps, FeatureMapSet, FilterBank

FILTER_MODES = ("auto", "rgb", "channels", "mean")
FILTER_SCALES = ("shared", "filter")
MAP_ORDERS = ("mean", "max", "index")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------
def _grid(fig: Figure, n: int, cols: int) -> list[Axes]:
    """``n`` axes in rows of ``cols`` (exactly ``n`` axes are left on the figure)."""
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return axes[:n]


def _figure(fig: Figure | None, width: float, height: float) -> Figure:
    if fig is not None:
        return fig
    return new_figure(min(max(width, 3.0), 18.0), min(max(height, 2.0), 24.0))


def _suptitle(fig: Figure, text: str, fontsize: float = 10.0) -> None:
    """A figure title wrapped to the figure's width."""
    fig.suptitle(fit(text, fig.get_figwidth() - 0.3, fontsize), fontsize=fontsize)


def _clean(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def show_image(ax: Axes, image: np.ndarray, **kwargs: Any) -> Any:
    """Show an ``(H, W, C)`` image in [0, 1] (or uint8): grey for one channel, RGB for three."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    if image.ndim == 3 and image.shape[-1] == 1:
        return ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, **kwargs)
    return ax.imshow(np.clip(image, 0.0, 1.0), **kwargs)


def _limit(values: np.ndarray) -> float:
    top = float(np.nanmax(np.abs(values))) if values.size else 0.0
    return top if top > 0 else 1.0


def _strip(kernel: np.ndarray, channels: int) -> np.ndarray:
    """``(kh, kw, C)`` -> one row of the first ``channels`` planes, NaN gaps in between."""
    kh, kw, _ = kernel.shape
    planes = [kernel[..., c] for c in range(min(channels, kernel.shape[-1]))]
    gap = np.full((kh, 1), np.nan, dtype=np.float32)
    parts: list[np.ndarray] = []
    for i, plane in enumerate(planes):
        if i:
            parts.append(gap)
        parts.append(plane.astype(np.float32))
    return np.concatenate(parts, axis=1)


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------
def plot_filter_bank(
    bank: FilterBank,
    fig: Figure | None = None,
    *,
    mode: str = "auto",
    scale: str = "shared",
    max_channels: int = 8,
    cmap: str = DIVERGING_CMAP,
    colorbar: bool = True,
    cols: int | None = None,
) -> Figure:
    """Draw one axes per filter, titled with the filter's index in the layer.

    Parameters
    ----------
    bank : FilterBank
    fig : Figure, optional
    mode : {"auto", "rgb", "channels", "mean"}
        ``"rgb"``: colour tiles (first layer on RGB input; weights mapped around mid-grey);
        ``"channels"``: each filter's input channels side by side (up to ``max_channels``);
        ``"mean"``: the kernel averaged over input channels. ``"auto"`` picks ``"rgb"`` for an
        RGB first layer, ``"channels"`` when kernels have 2 to ``max_channels`` input channels,
        ``"mean"`` otherwise.
    scale : {"shared", "filter"}
        One colour scale for all filters (symmetric about zero, so zero is white), or each
        filter scaled by its own largest absolute weight.
    max_channels : int
        Input channels shown per filter in ``"channels"`` mode.
    cmap : str
        Diverging colour map (default ``RdBu_r``).
    colorbar : bool
        Add a colour bar (not in ``"rgb"`` mode).
    cols : int, optional
        Axes per row.
    """
    if mode not in FILTER_MODES:
        raise InputError(f"mode {mode!r} is not one of {', '.join(FILTER_MODES)}")
    if scale not in FILTER_SCALES:
        raise InputError(f"scale {scale!r} is not one of {', '.join(FILTER_SCALES)}")
    kernels = np.asarray(bank.kernels, dtype=np.float32)
    count, _, _, channels = kernels.shape if kernels.ndim == 4 else (0, 0, 0, 0)
    if mode == "auto":
        if bank.rgb:
            mode = "rgb"
        elif 1 < channels <= max_channels:
            mode = "channels"
        else:
            mode = "mean"
    if mode == "rgb" and channels != 3:
        raise InputError(
            f"mode 'rgb' needs kernels with 3 input channels; layer {bank.layer!r} has "
            f"{channels}: use mode='channels' or 'mean'"
        )
    if mode == "mean":
        tiles = [k.mean(axis=-1) for k in kernels]
    elif mode == "channels":
        tiles = [_strip(k, max_channels) for k in kernels]
    else:
        tiles = list(kernels)
    shared = _limit(np.stack(tiles)) if tiles else 1.0
    wide = mode == "channels" and min(channels, max_channels) > 1
    if cols is None:
        cols = max(1, math.ceil(math.sqrt(count / (3 if wide else 1)))) if count else 1
    rows = math.ceil(max(count, 1) / cols)
    tile_w = 1.2 * (min(channels, max_channels) if wide else 1) ** 0.6
    fig = _figure(fig, cols * tile_w + (1.0 if colorbar else 0.3), rows * 1.2 + 0.6)
    if count == 0:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no filters", ha="center", va="center")
        _clean(ax)
        return fig
    axes = _grid(fig, count, cols)
    mappable = None
    for ax, tile, index in zip(axes, tiles, bank.indices):
        limit = shared if scale == "shared" else _limit(tile)
        if mode == "rgb":
            ax.imshow(np.clip(0.5 + tile / (2 * limit), 0.0, 1.0), interpolation="nearest")
        else:
            shown = tile if scale == "shared" else tile / limit
            vmax = limit if scale == "shared" else 1.0
            mappable = ax.imshow(shown, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest")
        title = f"#{int(index)}"
        if bank.input_channels is not None:
            title += f" (in {int(bank.input_channels[list(bank.indices).index(index)])})"
        ax.set_title(title, fontsize=8)
        _clean(ax)
    how = {"rgb": "RGB", "channels": "filter x input channels", "mean": "mean over inputs"}[mode]
    order = "sorted by L2 norm" if bank.order == "norm" else "as stored"
    shown = f"{count} of {bank.total_filters}" if bank.total_filters > count else f"{count}"
    _suptitle(fig, f"{bank.layer} ({bank.layer_type}): {shown} filters, {how}, {order}")
    if colorbar and mappable is not None:
        bar = fig.colorbar(mappable, ax=axes, shrink=0.8)
        bar.set_label("weight" if scale == "shared" else "weight / max |weight| per filter")
    return fig


# --------------------------------------------------------------------------------------------
# Feature maps
# --------------------------------------------------------------------------------------------
def plot_feature_maps(
    maps: FeatureMaps,
    index: int = 0,
    fig: Figure | None = None,
    *,
    channels: Sequence[int] | None = None,
    top_k: int | None = 16,
    order: str = "mean",
    overlay: bool = False,
    cmap: str = SEQUENTIAL_CMAP,
    scale: str = "channel",
    alpha: float = 0.6,
    cols: int | None = None,
) -> Figure:
    """Draw image ``index``'s activations, one axes per channel titled ``"ch <number>"``.

    Parameters
    ----------
    maps : FeatureMaps
    index : int
        Which image.
    channels : sequence of int, optional
        Channels to show (in this order); otherwise the first ``top_k`` by ``order``.
    top_k : int, optional
        How many channels (None: all).
    order : {"mean", "max", "index"}
        Ranking of channels: by decreasing mean or max activation on this image, or by number.
    overlay : bool
        Draw each map semi-transparently over the input image (stretched to its size).
    cmap : str
    scale : {"channel", "shared"}
        Colour limits per channel, or one range over the channels shown.
    alpha : float
        Opacity of the map in overlays.
    cols : int, optional

    (About 100 lines with this documentation: one pass over the panels it draws.)
    """
    if order not in MAP_ORDERS:
        raise InputError(f"order {order!r} is not one of {', '.join(MAP_ORDERS)}")
    if scale not in ("channel", "shared"):
        raise InputError(f"scale {scale!r} is not one of 'channel', 'shared'")
    if not -len(maps) <= index < len(maps):
        raise InputError(f"image index {index} is out of range: there are {len(maps)} images")
    acts = np.asarray(maps.activations[index], dtype=np.float32)
    if channels is not None:
        chosen = np.asarray(list(channels), dtype=np.int64).reshape(-1)
        bad = chosen[(chosen < 0) | (chosen >= maps.channels)]
        if bad.size:
            raise InputError(
                f"channel {int(bad[0])} is out of range: layer {maps.layer!r} has "
                f"{maps.channels} channels"
            )
    else:
        chosen = maps.order_channels(index, order)
        if top_k is not None:
            chosen = chosen[: max(1, int(top_k))]
    name = maps.names[index] if index < len(maps.names) else f"image {index}"

    if not maps.spatial:  # dense units: a bar chart of the chosen units
        return _unit_bars(maps, acts, chosen, name, fig)

    image = maps.images[index] if maps.images is not None else None
    if overlay and image is None:
        raise InputError("overlay=True needs the input images: compute with keep_images=True")
    count = len(chosen)
    panels = count + (1 if image is not None else 0)
    if cols is None:
        cols = max(1, math.ceil(math.sqrt(panels)))
    rows = math.ceil(panels / cols)
    fig = _figure(fig, cols * 1.5 + 1.0, rows * 1.55 + 0.8)
    axes = _grid(fig, panels, cols)
    if image is not None:  # the input first, so the maps can be read against it
        show_image(axes[0], image)
        axes[0].set_title(fit(f"input: {name}", 1.4, 8), fontsize=8)
        _clean(axes[0])
        axes = axes[1:]
    selected = acts[..., chosen]
    lo_all, hi_all = float(selected.min()), float(selected.max())
    if hi_all <= lo_all:
        hi_all = lo_all + 1e-6
    for ax, c in zip(axes, chosen):
        plane = acts[..., c]
        lo, hi = (lo_all, hi_all) if scale == "shared" else (float(plane.min()), float(plane.max()))
        if hi <= lo:
            hi = lo + 1e-6
        if overlay and image is not None:  # checked above: overlay needs the images
            show_image(ax, image)
            height, width = image.shape[:2]
            ax.imshow(
                plane,
                cmap=cmap,
                vmin=lo,
                vmax=hi,
                alpha=alpha,
                extent=_extent(maps, plane.shape, (height, width)),
                interpolation="bilinear",
            )
            ax.set_xlim(-0.5, width - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
        else:
            ax.imshow(plane, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(f"ch {int(c)}", fontsize=8)
        _clean(ax)
    _activation_colorbar(fig, axes, cmap, scale, lo_all, hi_all)
    how = {"mean": "highest mean", "max": "highest max", "index": "by number"}[order]
    what = f"{count} of {maps.channels} channels" + ("" if channels is not None else f", {how}")
    size = "x".join(str(d) for d in acts.shape[:2])
    ranges = "one colour range" if scale == "shared" else "each channel on its own colour range"
    _suptitle(fig, f"{maps.layer} ({size}): {what}, {name}; {ranges}")
    return fig


def _unit_bars(
    maps: FeatureMaps, acts: np.ndarray, chosen: np.ndarray, name: str, fig: Figure | None
) -> Figure:
    """Dense units: a bar chart of the chosen units' activations."""
    fig = _figure(fig, 6.0, 3.0)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(chosen)), acts[chosen])
    every = max(1, math.ceil(len(chosen) / 24))  # at most 24 labels: no collisions
    ticks = np.arange(0, len(chosen), every)
    ax.set_xticks(ticks, [str(int(chosen[i])) for i in ticks], fontsize=7)
    ax.set_xlabel("unit")
    ax.set_ylabel("activation")
    ax.set_title(fit(f"{maps.layer}: {len(chosen)} of {maps.channels} units, {name}", 5.5, 10))
    return fig


def _activation_colorbar(
    fig: Figure, axes: list[Axes], cmap: str, scale: str, lo: float, hi: float
) -> Any:
    """One colour bar for a feature-map grid: activation values when the scale is shared,
    otherwise "each channel's own min to max"."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    if not axes:
        return None
    shared = scale == "shared"
    norm = Normalize(lo, hi) if shared else Normalize(0.0, 1.0)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.8, aspect=25)
    if shared:
        bar.set_label("activation", fontsize=8)
    else:  # the titles say "each channel on its own range"
        bar.set_ticks([0.0, 1.0])
        bar.set_ticklabels(["min", "max"])
    bar.ax.tick_params(labelsize=7)
    return bar


def plot_feature_map_set(
    maps: FeatureMapSet,
    index: int = 0,
    fig: Figure | None = None,
    *,
    top_k: int = 6,
    order: str = "mean",
    cmap: str = SEQUENTIAL_CMAP,
) -> Figure:
    """One row per layer: image ``index``, then the layer's ``top_k`` channels in ``order``,
    each row with a colour bar (each channel on its own range) and a title naming the layer and
    its size. Dense layers show a bar chart of their top units."""
    if order not in MAP_ORDERS:
        raise InputError(f"order {order!r} is not one of {', '.join(MAP_ORDERS)}")
    layers = list(maps.maps)
    if not layers:
        raise InputError("no layers to plot")
    first = layers[0]
    if not -len(first) <= index < len(first):
        raise InputError(f"image index {index} is out of range: there are {len(first)} images")
    image = first.images[index] if first.images is not None else None
    k = max(1, int(top_k))
    cols = k + (1 if image is not None else 0)
    fig = _figure(fig, cols * 1.45 + 1.2, len(layers) * 1.75 + 0.7)
    subfigs = fig.subfigures(len(layers), 1, squeeze=False)[:, 0]
    for sub, fm in zip(subfigs, layers):
        acts = np.asarray(fm.activations[index], dtype=np.float32)
        size = "x".join(str(d) for d in acts.shape[:-1])
        label = f"{fm.layer} ({size}, {fm.channels} channels)"
        if not fm.spatial:
            ax = sub.add_subplot()
            chosen = fm.order_channels(index, order)[:k]
            ax.bar(np.arange(len(chosen)), acts[chosen])
            ax.set_xticks(np.arange(len(chosen)), [str(int(c)) for c in chosen], fontsize=7)
            ax.set_ylabel("activation", fontsize=8)
            ax.set_title(fit(f"{fm.layer}: top {len(chosen)} units", 5.0, 9), fontsize=9)
            continue
        chosen = fm.order_channels(index, order)[:k]
        axes = sub.subplots(1, cols, squeeze=False)[0].tolist()
        if image is not None:
            show_image(axes[0], image)
            axes[0].set_title("input", fontsize=8)
            _clean(axes[0])
            axes = axes[1:]
        for ax, c in zip(axes, chosen):
            plane = acts[..., c]
            lo, hi = float(plane.min()), float(plane.max())
            ax.imshow(plane, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1e-6)
            ax.set_title(f"ch {int(c)}", fontsize=8)
        for ax in axes:
            _clean(ax)
        for ax in axes[len(chosen) :]:
            ax.set_visible(False)
        _activation_colorbar(sub, axes[: len(chosen)], cmap, "channel", 0.0, 1.0)
        sub.suptitle(fit(label, fig.get_figwidth() - 0.3, 9), fontsize=9)
    name = first.names[index] if index < len(first.names) else f"image {index}"
    how = {"mean": "highest mean", "max": "highest max", "index": "lowest number"}[order]
    _suptitle(
        fig,
        f"Feature maps of {len(layers)} layers for {name}: channels with the {how} activation, "
        "each on its own colour range",
    )
    return fig


def _extent(
    maps: FeatureMaps, grid: tuple[int, ...], size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """``imshow`` extent placing each unit's cell on its receptive-field centre."""
    if maps.origin is None or maps.stride is None:
        height, width = size
        return (-0.5, width - 0.5, height - 0.5, -0.5)
    (r0, c0), (sr, sc) = maps.origin, maps.stride
    rows, cols = grid[0], grid[1]
    left, right = c0 - sc / 2, c0 + (cols - 1) * sc + sc / 2
    top, bottom = r0 - sr / 2, r0 + (rows - 1) * sr + sr / 2
    return (left, right, bottom, top)
