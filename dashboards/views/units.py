"""Units page: one channel's unit page (activation-maximization image, filter, top patches)."""

from __future__ import annotations

import streamlit as st

from dashboards import display, work
from dashboards import widgets as w
from dashboards.context import Context


def body(ctx: Context) -> None:
    facts = ctx.facts
    convs = [p for p in facts.conv_layers if p in facts.spatial_layers]
    cols = st.columns([3, 2, 2])
    layer = w.spatial_layer(
        ctx,
        "unit_layer",
        # two thirds of the way in: parts of objects, with receptive fields smaller than the
        # image (the last convolution of an ImageNet net sees the whole image)
        default=convs[len(convs) * 2 // 3] if convs else (facts.spatial_layers or (None,))[-1],
        where=cols[0],
        help="Any layer with a spatial output; convolutions also show their filter.",
    )
    if layer is None:
        return
    channel = int(w.channel_picker(work.layer_channels(ctx, layer), "unit_channel", where=cols[1]))
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
    st.caption(f"Searching all {len(ctx.pool)} images of the chosen image source.")
    examples = work.top_activations(ctx, layer, [channel], int(k), reduce)

    objective, params = "mean", {}
    key = work.activation_key(ctx, layer, [channel], objective, params)
    maximization = None
    if w.long_job_button(
        "Synthesize the activation-maximization image",
        "unit_run_am",
        key,
        help="Gradient ascent on the input; takes a few seconds on small models.",
    ):
        maximization = work.maximize(ctx, layer, [channel], objective, params)
        examples = examples.with_maximization(maximization)
    display.show_figure(
        lambda: examples.plot(patches=patches),
        f"unit_{layer}_{channel}",
        key=(ctx.key, ctx.pool_key, layer, channel, k, reduce, patches, maximization is not None),
        tags=ctx.tags,
    )
    if maximization is not None:
        row = maximization.to_frame().iloc[0]
        st.caption(
            f"Activation-maximization image: channel mean {row['activation']:.3g} versus "
            f"{row['noise']:.3g} on random noise and {row['mean_input']:.3g} on mid-grey."
        )
    with st.expander("Top examples table"):
        display.show_table(examples.to_frame(), f"unit_{layer}_{channel}_examples", hide_index=True)


w.page("Units", body, needs_images=True)
