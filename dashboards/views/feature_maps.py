"""Feature maps page: a layer's activations for one image, top channels and a channel detail."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dashboards import display, work
from dashboards import widgets as w
from dashboards.context import Context
from vizkit.plotting import plot_channel


@st.fragment
def channels_grid(ctx: Context, maps: Any, index: int, computed: tuple[Any, ...]) -> None:
    """The top channels; the display options redraw from the cached activations only."""
    channels = maps.channels
    cols = st.columns(4)
    top_k = w.slider(
        "Channels shown (top k)",
        1,
        max(2, min(64, channels)),
        "fm_top_k",
        min(16, channels),
        where=cols[0],
    )
    order = w.select(
        "Order channels by",
        ["mean", "max", "index"],
        "fm_order",
        "mean",
        where=cols[1],
        format_func={
            "mean": "Mean activation",
            "max": "Peak activation",
            "index": "Channel number",
        }.get,
    )
    scale = w.select(
        "Colour scale",
        ["channel", "shared"],
        "fm_scale",
        "channel",
        where=cols[2],
        format_func={"channel": "Per channel", "shared": "Shared"}.get,
    )
    overlay = w.checkbox("Overlay on the image", "fm_overlay", False, where=cols[3])
    display.show_figure(
        lambda: maps.plot(index=index, top_k=top_k, order=order, overlay=overlay, scale=scale),
        f"feature_maps_{maps.layer}_{index}",
        key=(computed, top_k, order, overlay, scale),
        tags=ctx.tags,
    )
    w.fragment_marker("fm")


@st.fragment
def channel_detail(ctx: Context, maps: Any, index: int, computed: tuple[Any, ...]) -> None:
    ranked = [int(c) for c in maps.order_channels(index, "mean")]
    channel = w.select(
        "Channel",
        ranked,
        "fm_channel",
        ranked[0],
        help="Sorted by mean activation; the first is the strongest.",
    )
    stats = maps.channel_stats(index)
    height, width = maps.activations.shape[1:3]
    cols = st.columns(4)
    cols[0].metric("Mean", f"{stats['mean'][channel]:.3g}")
    cols[1].metric("Peak", f"{stats['max'][channel]:.3g}")
    cols[2].metric("Active", f"{stats['active'][channel]:.0%}", help="Share of positions > 0")
    cols[3].metric("Map size", f"{height}x{width}")
    display.show_figure(
        lambda: plot_channel(maps, index, channel, display.new_figure(9.4, 3.3)),
        f"feature_map_{maps.layer}_channel_{channel}",
        key=(computed, channel),
        tags=ctx.tags,
    )


def body(ctx: Context) -> None:
    cols = st.columns([3, 3])
    convs = [p for p in ctx.facts.conv_layers if p in ctx.facts.spatial_layers]
    # the first convolution (not an input-scaling layer, whose "maps" are the colour channels)
    layer = w.spatial_layer(ctx, "fm_layer", default=convs[0] if convs else None, where=cols[0])
    if layer is None:
        return
    names = list(ctx.images.names) or [f"image {i}" for i in range(len(ctx.images))]
    index = w.select(
        "Image",
        list(range(len(names))),
        "fm_image",
        0,
        format_func=lambda i: names[i],
        where=cols[1],
    )
    maps = work.feature_maps(ctx, layer)
    computed = (ctx.key, ctx.images_key, layer, index)
    grid_tab, detail_tab, table_tab = st.tabs(["Top channels", "Channel detail", "Statistics"])
    with grid_tab:
        channels_grid(ctx, maps, index, computed)
    with detail_tab:
        channel_detail(ctx, maps, index, computed)
    with table_tab:
        frame = maps.to_frame()
        display.show_table(
            frame[frame["image"] == index], f"feature_maps_{layer}_stats", hide_index=True
        )
        display.download_npz(
            {"activations": maps.activations, "layer": np.array(maps.layer)},
            f"feature_maps_{layer}",
            label="Activations (NPZ)",
        )


w.page("Feature maps", body, needs_images=True)
