"""Evaluation page: how far to trust the maps, with the metric table and curves next to them."""

from __future__ import annotations

from typing import Any

import streamlit as st

import vizkit
from dashboards import state
from dashboards import widgets as w

DEFAULT_METHODS = ("gradcam", "saliency")
METRIC_LABELS = {
    "deletion": "Deletion (lower is better)",
    "insertion": "Insertion (higher is better)",
    "pointing_game": "Pointing game",
    "relevance_mass": "Relevance mass",
    "map_health": "Map health",
    "cascading_randomization": "Sanity check: model randomization (slow)",
}


def body(ctx: state.Context) -> None:
    if not state.metrics_available():
        st.info(
            "The evaluation metrics (deletion/insertion, localization, sanity checks) are not "
            "part of this vizkit install.",
            icon=":material/hourglass_empty:",
        )
        return
    methods = state.method_names()
    infos = {m: vizkit.get_method(m) for m in methods}
    has_masks = ctx.images.masks is not None
    offered, default_metrics = state.metric_names(has_masks)
    cols = st.columns([3, 3, 2])
    chosen = w.multiselect(
        "Methods",
        methods,
        "eval_methods",
        [m for m in DEFAULT_METHODS if m in methods],
        format_func=lambda m: infos[m].label,
        where=cols[0],
        max_selections=6,
    )
    metrics = w.multiselect(
        "Metrics",
        offered,
        "eval_metrics",
        default_metrics,
        where=cols[1],
        format_func=lambda m: METRIC_LABELS.get(m, m),
        help=None
        if has_masks
        else "Localization metrics need ground-truth masks (the shapes sample images carry them).",
    )
    target = w.target_picker(ctx, state.class_names(ctx), "eval_target", where=cols[2])
    with st.expander("Settings", expanded=False):
        c = st.columns(4)
        options: dict[str, Any] = {
            "steps": w.slider("Deletion/insertion steps", 5, 50, "eval_steps", 20, where=c[0]),
            "deletion_fill": w.select(
                "Deletion fill", ["zero", "mean", "blur"], "eval_del_fill", "zero", where=c[1]
            ),
            "insertion_fill": w.select(
                "Insertion canvas", ["blur", "zero", "mean"], "eval_ins_fill", "blur", where=c[2]
            ),
            "score": w.select(
                "Score", ["probability", "logit"], "eval_score", "probability", where=c[3]
            ),
        }
    if not chosen or not metrics:
        st.info("Choose at least one method and one metric.")
        return

    layer = None
    if any(infos[m].needs_layer for m in chosen):
        candidates = state.candidate_layers(ctx.key, ctx.model)
        if not candidates:
            st.error(
                "CAM methods cannot run on this model: it has no layer with a spatial "
                "output. Choose gradient methods or occlusion.",
                icon=":material/block:",
            )
            return
        layer = w.layer_picker(candidates, "eval_layer")
    explanations = [
        state.explain(
            ctx,
            m,
            target,
            layer if infos[m].needs_layer else None,
            state.default_params(m),
            label=infos[m].label,
        )
        for m in chosen
    ]
    result = state.evaluation(ctx, explanations, metrics, target, options)

    for method, notes in result.warnings.items():
        for note in notes:
            st.warning(f"**{infos[method].label}**: {note}", icon=":material/warning:")
    st.subheader("Metrics")
    table = result.to_frame().reset_index()
    table["method"] = table["method"].map(lambda m: infos[m].label if m in infos else m)
    w.show_table(table.round(4), "evaluation_metrics", hide_index=True)
    maps_col, numbers_col = st.columns([3, 2])
    with maps_col:
        st.subheader("Maps")
        shown = (ctx.key, ctx.images_key, chosen, target, layer)
        w.show_figure(
            lambda: vizkit.compare(explanations).plot(panel_size=1.9), "evaluation_maps", key=shown
        )
    with numbers_col:
        st.subheader("Curves")
        computed = (*shown, metrics, options)
        for kind in ("deletion", "insertion"):
            if result.curves(kind):
                w.show_figure(
                    w.on_axes(4.6, 3.0, lambda ax, kind=kind: result.plot(ax, kind=kind)),
                    f"evaluation_{kind}_curves",
                    key=computed,
                )
        for method in result.methods:
            cascade = result.get(method, "cascading_randomization")
            if cascade is not None:
                w.show_figure(
                    w.on_axes(4.6, 3.0, cascade.plot),
                    f"evaluation_{method}_randomization",
                    key=computed,
                )


w.page("Evaluation", body, needs_images=True)
