"""One feature-map channel in detail: the input, the channel's map with a colour bar, and the
map over the input, each unit placed on its receptive field's centre. No TensorFlow here."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.inspection import _extent, show_image
from vizkit.plotting.style import SEQUENTIAL_CMAP

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from vizkit.results.inspection import FeatureMaps


def plot_channel(
    maps: FeatureMaps,
    index: int,
    channel: int,
    fig: Figure | None = None,
    *,
    cmap: str = SEQUENTIAL_CMAP,
    alpha: float = 0.55,
) -> Figure:
    """Draw channel ``channel`` of image ``index``: input, map (colour bar), overlay.

    The overlay needs the input images on the result (``feature_maps(..., keep_images=True)``,
    the default); without them only the map is drawn.
    """
    if not maps.spatial:
        raise InputError(
            f"layer {maps.layer!r} has no spatial maps: it outputs units, not channels"
        )
    if not -len(maps) <= index < len(maps):
        raise InputError(f"image index {index} is out of range: there are {len(maps)} images")
    if not 0 <= channel < maps.channels:
        raise InputError(
            f"channel {channel} is out of range: layer {maps.layer!r} has {maps.channels} channels"
        )
    plane = np.asarray(maps.activations[index, ..., channel], dtype=np.float32)
    image = None if maps.images is None else maps.images[index]
    panels = 1 if image is None else 3
    if fig is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(3.0 * panels + 0.4, 3.3), layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    name = maps.names[index] if index < len(maps.names) else f"image {index}"
    size = f"{plane.shape[0]}x{plane.shape[1]}"
    map_ax = axes[0] if image is None else axes[1]
    shown = map_ax.imshow(plane, cmap=cmap, interpolation="nearest")
    fig.colorbar(shown, ax=map_ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    map_ax.set_title(
        "\n".join(textwrap.wrap(f"{maps.layer} channel {channel} ({size})", 30)), fontsize=8
    )
    if image is not None:
        show_image(axes[0], image)
        axes[0].set_title(textwrap.shorten(name, 40), fontsize=8)
        height, width = image.shape[:2]
        show_image(axes[2], image)
        axes[2].imshow(
            plane,
            cmap=cmap,
            alpha=alpha,
            extent=_extent(maps, plane.shape, (height, width)),
            interpolation="bilinear",
        )
        axes[2].set_xlim(-0.5, width - 0.5)
        axes[2].set_ylim(height - 0.5, -0.5)
        axes[2].set_title("over the input (receptive-field centres)", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
