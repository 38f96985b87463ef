"""Filters page: the kernels of a convolutional layer (nested models included)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import display, work
from dashboards import widgets as w
from dashboards.context import Context


@st.fragment
def filters_figure(ctx: Context, bank: Any, computed: tuple[Any, ...]) -> None:
    """Display options redraw the filters from the cached kernels only."""
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
    display.show_figure(
        lambda: bank.plot(mode=mode, scale=scale, cmap=cmap, colorbar=colorbar),
        f"filters_{bank.layer}",
        key=(computed, mode, scale, cmap, colorbar),
        tags=ctx.tags,
    )
    w.fragment_marker("filters")


def body(ctx: Context) -> None:
    layers = list(ctx.facts.conv_layers)
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
        layers[0],  # the first convolution, as vizkit.conv_filters picks by default
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
    max_filters = int(w.slider("Filters shown (at most)", 1, 256, "flt_max", 64, where=cols[2]))
    bank = work.conv_filters(ctx, layer, order, max_filters)
    st.caption(
        f"{bank.layer} ({bank.layer_type}): showing {len(bank)} of {bank.total_filters} filters, "
        f"kernels {bank.kernels.shape[1]}x{bank.kernels.shape[2]} over "
        f"{bank.kernels.shape[3]} input channel(s)."
    )
    filters_figure(ctx, bank, (ctx.key, layer, order, max_filters))
    with st.expander("Per-filter statistics and raw kernels"):
        display.show_table(bank.to_frame(), f"filters_{layer}_stats", hide_index=True)
        display.download_npz(
            {"kernels": bank.kernels, "indices": bank.indices},
            f"filters_{layer}",
            label="Kernels (NPZ)",
        )


w.page("Filters", body)
