"""Filters page: the kernels of a convolutional layer (nested models included)."""

from __future__ import annotations

import streamlit as st

from dashboards import state
from dashboards import widgets as w


def body(ctx: state.Context) -> None:
    layers = state.conv_layers(ctx.key, ctx.model)
    if not layers:
        st.error(
            "This model has no Conv2D, SeparableConv2D or DepthwiseConv2D layer, so there are "
            "no filters to show.",
            icon=":material/block:",
        )
        return
    cols = st.columns([3, 2, 2])
    layer = w.select(
        "Convolutional layer",
        layers,
        "flt_layer",
        layers[0],
        where=cols[0],
        help="Every convolution, nested models included (outer/inner).",
    )
    order = w.select(
        "Sort filters",
        ["norm", "index"],
        "flt_order",
        "norm",
        where=cols[1],
        format_func={"norm": "By L2 norm", "index": "As stored"}.get,
    )
    max_filters = w.slider("Filters shown (at most)", 1, 256, "flt_max", 64, where=cols[2])
    bank = state.conv_filters(ctx.key, layer, order, int(max_filters), ctx.model)
    cols = st.columns(4)
    modes = ["auto", "rgb", "channels", "mean"] if bank.rgb else ["auto", "channels", "mean"]
    mode = w.select(
        "Show",
        modes,
        "flt_mode",
        "auto",
        where=cols[0],
        format_func={
            "auto": "Automatic",
            "rgb": "Colour tiles (first layer)",
            "channels": "Every input channel",
            "mean": "Mean over input channels",
        }.get,
    )
    scale = w.select(
        "Colour scale",
        ["shared", "filter"],
        "flt_scale",
        "shared",
        where=cols[1],
        format_func={"shared": "Shared", "filter": "Per filter"}.get,
    )
    cmap = w.select(
        "Colour map",
        ["RdBu_r", "bwr", "coolwarm", "PuOr", "gray", "viridis"],
        "flt_cmap",
        "RdBu_r",
        where=cols[2],
    )
    colorbar = w.checkbox("Colour bar", "flt_colorbar", True, where=cols[3])

    st.caption(
        f"{bank.layer} ({bank.layer_type}): showing {len(bank)} of {bank.total_filters} filters, "
        f"kernels {bank.kernels.shape[1]}x{bank.kernels.shape[2]} over "
        f"{bank.kernels.shape[3]} input channel(s)."
    )
    w.show_figure(
        lambda: bank.plot(mode=mode, scale=scale, cmap=cmap, colorbar=colorbar),
        f"filters_{layer}",
        key=(ctx.key, layer, order, max_filters, mode, scale, cmap, colorbar),
    )
    with st.expander("Per-filter statistics and raw kernels"):
        w.show_table(bank.to_frame(), f"filters_{layer}_stats", hide_index=True)
        w.download_npz(
            {"kernels": bank.kernels, "indices": bank.indices},
            f"filters_{layer}",
            label="Kernels (NPZ)",
        )


w.page("Filters", body)
