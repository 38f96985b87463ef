"""Attribution page: several methods side by side (rows = images, columns = input + methods)."""

from __future__ import annotations

from typing import Any

import streamlit as st

import vizkit
from dashboards import state
from dashboards import widgets as w

DEFAULT_METHODS = ("gradcam",)
HIDDEN_PARAMS = ("batch_size",)  # a memory knob, not a modelling choice


def body(ctx: state.Context) -> None:
    methods = [m for m in state.method_names() if m != "occlusion"]
    infos = {m: vizkit.get_method(m) for m in methods}
    top = st.columns([3, 2])
    chosen = w.multiselect(
        "Methods",
        methods,
        "attr_methods",
        default=[m for m in DEFAULT_METHODS if m in methods] or methods[:1],
        format_func=lambda m: infos[m].label,
        where=top[0],
        help="Each method becomes a column of the grid. Occlusion has its own page.",
    )
    classes = state.class_names(ctx)
    target = w.target_picker(ctx, classes, "attr_target", where=top[1])

    probs = state.probabilities(ctx.key, ctx.images_key, ctx.model, ctx.images)
    with st.expander("Top classes per image", expanded=False):
        w.show_table(
            state.top_k_frame(ctx.images, probs, classes), "attr_top_classes", hide_index=True
        )
    if not chosen:
        st.info("Choose at least one method.")
        return

    layer = None
    layer_methods = [m for m in chosen if infos[m].needs_layer]
    if layer_methods:
        candidates = state.candidate_layers(ctx.key, ctx.model)
        if not candidates:
            labels = ", ".join(infos[m].label for m in layer_methods)
            st.error(
                f"{labels} cannot run on this model: it has no layer with a spatial (height x "
                "width x channels) output, i.e. no convolutional feature maps to weight. Use a "
                "gradient method (Saliency, Integrated gradients, ...) or occlusion instead.",
                icon=":material/block:",
            )
            chosen = [m for m in chosen if m not in layer_methods]
            if not chosen:
                return
        else:
            layer = w.layer_picker(candidates, "attr_layer")

    params: dict[str, dict[str, Any]] = {}
    if any(infos[m].params for m in chosen):
        with st.expander("Method parameters", expanded=False):
            columns = st.columns(min(len(chosen), 3))
            for i, m in enumerate(chosen):
                where = columns[i % len(columns)]
                where.markdown(f"**{infos[m].label}**")
                params[m] = w.param_widgets(infos[m], "attr", where=where, skip=HIDDEN_PARAMS)

    display = w.display_options("attr")
    explanations = []
    for m in chosen:
        explanations.append(
            state.explain(
                ctx,
                m,
                target,
                layer if infos[m].needs_layer else None,
                params.get(m, {}),
                label=infos[m].label,
            )
        )
    comparison = vizkit.compare(explanations)
    w.show_figure(
        lambda: comparison.plot(
            kind=display["kind"],
            shared_scale=display["shared"],
            cmap=display["cmap"],
            alpha=display["alpha"],
            clip_percentile=display["clip"],
            absolute=display["absolute"],
        ),
        "attribution_grid",
        key=(ctx.key, ctx.images_key, chosen, target, layer, params, display),
    )
    st.caption(
        " · ".join(f"{infos[e.method].label}: {e.seconds * 1000:.0f} ms" for e in explanations)
        + (f" · layer {layer}" if layer else "")
    )
    with st.expander("Per-image table and raw maps"):
        w.show_table(comparison.to_frame(), "attribution_table", hide_index=True)
        w.download_npz(state.maps_arrays(explanations), "attribution_maps")


w.page("Attribution", body, needs_images=True)
