"""Units page: one channel's unit page (activation-maximization image, filter, top patches)."""

from __future__ import annotations

import streamlit as st

from dashboards import state
from dashboards import widgets as w


def body(ctx: state.Context) -> None:
    info = state.model_info(ctx.key, ctx.model)
    layers = info["spatial_layers"]
    if not layers:
        st.error(
            "This model has no layer with a spatial (height x width x channels) output, so "
            "it has no channels to inspect.",
            icon=":material/block:",
        )
        return
    convs = [p for p in state.conv_layers(ctx.key, ctx.model) if p in layers]
    default = convs[-1] if convs else layers[-1]  # a convolution: its unit page shows the filter
    cols = st.columns([3, 2, 2])
    layer = w.select(
        "Layer",
        layers,
        "unit_layer",
        default,
        where=cols[0],
        help="Any layer with a spatial output; convolutions also show their filter.",
    )
    channels = state.layer_channels(ctx.key, layer, ctx.model)
    channel = w.number(
        f"Channel (0-{channels - 1})",
        "unit_channel",
        0,
        lo=0,
        hi=channels - 1,
        step=1,
        where=cols[1],
    )
    k = w.slider("Top examples", 1, 16, "unit_k", 8, where=cols[2])
    cols = st.columns([3, 2, 2])
    reduce = w.select(
        "Score images by",
        ["max", "mean"],
        "unit_reduce",
        "max",
        where=cols[0],
        format_func={"max": "Peak activation (patch around it)", "mean": "Mean activation"}.get,
    )
    patches = w.checkbox(
        "Show receptive-field patches",
        "unit_patches",
        True,
        where=cols[1],
        help="Off: whole images with the receptive field boxed.",
    )
    if ctx.pool is None:
        st.info(
            "Choose sample images or upload images in the sidebar: the unit page searches "
            "them for the patches this channel responds to most."
        )
        return
    st.caption(f"Searching all {len(ctx.pool)} images of the chosen image source.")
    examples = state.top_activations(ctx, layer, [int(channel)], int(k), reduce)

    objective = "mean"
    params = {}
    key = state.activation_key(ctx, layer, [int(channel)], objective, params)
    run = st.button(
        "Synthesize the activation-maximization image",
        key="unit_run_am",
        icon=":material/auto_awesome:",
        help="Gradient ascent on the input; takes a few seconds on small models.",
    )
    maximization = None
    if run or state.job_result(key) is not None or state.job_running(key):
        maximization = state.maximize(ctx, layer, [int(channel)], objective, params)
        examples = examples.with_maximization(maximization)
    w.show_figure(
        lambda: examples.plot(patches=patches),
        f"unit_{layer}_{channel}",
        key=(ctx.key, ctx.pool_key, layer, channel, k, reduce, patches, maximization is not None),
    )
    if maximization is not None:
        row = maximization.to_frame().iloc[0]
        st.caption(
            f"Activation-maximization image: channel mean {row['activation']:.3g} versus "
            f"{row['noise']:.3g} on random noise and {row['mean_input']:.3g} on mid-grey."
        )
    with st.expander("Top examples table"):
        w.show_table(examples.to_frame(), f"unit_{layer}_{channel}_examples", hide_index=True)


w.page("Units", body, needs_images=True)
