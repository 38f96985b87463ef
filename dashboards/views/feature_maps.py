"""Feature maps page: a layer's activations for one image, top channels and a channel detail."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dashboards import state
from dashboards import widgets as w


def body(ctx: state.Context) -> None:
    info = state.model_info(ctx.key, ctx.model)
    layers = info["spatial_layers"]
    if not layers:
        st.error(
            "This model has no layer with a spatial (height x width x channels) output, so "
            "there are no feature maps to show.",
            icon=":material/block:",
        )
        return
    cols = st.columns([3, 3])
    layer = w.layer_picker(
        layers,
        "fm_layer",
        where=cols[0],
        help="Any layer with a spatial output, nested models included.",
    )
    names = list(ctx.images.names) or [f"image {i}" for i in range(len(ctx.images))]
    index = w.select(
        "Image",
        list(range(len(names))),
        "fm_image",
        0,
        format_func=lambda i: names[i],
        where=cols[1],
    )
    maps = state.feature_maps(ctx.key, ctx.images_key, layer, ctx.model, ctx.images)
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

    grid_tab, detail_tab, table_tab = st.tabs(["Top channels", "Channel detail", "Statistics"])
    with grid_tab:
        w.show_figure(
            lambda: maps.plot(index=index, top_k=top_k, order=order, overlay=overlay, scale=scale),
            f"feature_maps_{layer}_{names[index]}",
            key=(ctx.key, ctx.images_key, layer, index, top_k, order, overlay, scale),
        )
    with detail_tab:
        ranked = [int(c) for c in maps.order_channels(index, order)]
        channel = w.select(
            "Channel",
            ranked,
            "fm_channel",
            ranked[0],
            where=st,
            help="Sorted by the chosen order; the first is the strongest.",
        )
        _channel_detail(maps, index, channel, names[index], ctx)
    with table_tab:
        frame = maps.to_frame()
        w.show_table(frame[frame["image"] == index], f"feature_maps_{layer}_stats", hide_index=True)
        w.download_npz(
            {"activations": maps.activations, "layer": np.array(maps.layer)},
            f"feature_maps_{layer}",
            label="Activations (NPZ)",
        )


def _channel_detail(maps, index: int, channel: int, name: str, ctx: state.Context) -> None:
    act = np.asarray(maps.activations[index, ..., channel], dtype=np.float32)
    stats = maps.channel_stats(index)
    cols = st.columns(4)
    cols[0].metric("Mean", f"{stats['mean'][channel]:.3g}")
    cols[1].metric("Peak", f"{stats['max'][channel]:.3g}")
    cols[2].metric("Active", f"{stats['active'][channel]:.0%}", help="Share of positions > 0")
    cols[3].metric("Map size", f"{act.shape[0]}x{act.shape[1]}")

    def build() -> Any:
        fig = w.new_figure(9.0, 3.2)
        axes = fig.subplots(1, 3)
        image = ctx.images.display[index]
        rgb = image[..., 0] if image.shape[-1] == 1 else image
        axes[0].imshow(rgb, cmap="gray" if image.shape[-1] == 1 else None)
        axes[0].set_title(name, fontsize=9)
        shown = axes[1].imshow(act, cmap="viridis")
        axes[1].set_title(f"channel {channel} ({act.shape[0]}x{act.shape[1]})", fontsize=9)
        fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04)
        axes[2].imshow(rgb, cmap="gray" if image.shape[-1] == 1 else None)
        height, width = image.shape[:2]
        axes[2].imshow(
            act,
            cmap="viridis",
            alpha=0.55,
            extent=(-0.5, width - 0.5, height - 0.5, -0.5),
            interpolation="bilinear",
        )
        axes[2].set_title("overlay (upsampled)", fontsize=9)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        return fig

    w.show_figure(
        build,
        f"feature_map_{maps.layer}_channel_{channel}",
        key=(ctx.key, ctx.images_key, maps.layer, index, channel),
    )


w.page("Feature maps", body, needs_images=True)
