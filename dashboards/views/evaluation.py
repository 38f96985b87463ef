"""Evaluation page: how far to trust the maps, with the metric table and curves next to them."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import about, display, work
from dashboards import widgets as w
from dashboards.context import Context

DEFAULT_METHODS = ("gradcam", "saliency")
METRIC_LABELS = {
    "deletion": "Deletion (lower is better)",
    "insertion": "Insertion (higher is better)",
    "pointing_game": "Pointing game",
    "relevance_mass": "Relevance mass",
    "map_health": "Map health",
    "cascading_randomization": "Sanity check: model randomization (slow)",
}


def settings() -> dict[str, Any]:
    """Options of the deletion/insertion metrics."""
    with st.expander("Settings", expanded=False):
        c = st.columns(4)
        return {
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


def results(ctx: Context, result: Any, explanations: list[Any], shown: tuple[Any, ...]) -> None:
    """The metric table, the maps and the curves of a finished evaluation."""
    infos = {e.method: work.method_info(e.method) for e in explanations}
    for method, notes in result.warnings.items():
        for note in notes:
            st.warning(f"**{infos[method].label}**: {note}", icon=":material/warning:")
    st.subheader("Metrics")
    table = result.to_frame().reset_index()
    table["method"] = table["method"].map(lambda m: infos[m].label if m in infos else m)
    display.show_table(table.round(4), "evaluation_metrics", hide_index=True)
    maps_col, numbers_col = st.columns([3, 2])
    with maps_col:
        st.subheader("Maps")
        display.show_figure(
            lambda: work.compare(explanations).plot(panel_size=1.9),
            "evaluation_maps",
            key=shown[:5],
            tags=ctx.tags,
        )
    with numbers_col:
        st.subheader("Curves")
        for kind in ("deletion", "insertion"):
            if result.curves(kind):
                display.show_figure(
                    display.on_axes(4.6, 3.0, lambda ax, kind=kind: result.plot(ax, kind=kind)),
                    f"evaluation_{kind}_curves",
                    key=shown,
                    tags=ctx.tags,
                )
        for method in result.methods:
            cascade = result.get(method, "cascading_randomization")
            if cascade is not None:
                display.show_figure(
                    display.on_axes(4.6, 3.0, cascade.plot),
                    f"evaluation_{method}_randomization",
                    key=shown,
                    tags=ctx.tags,
                )


def body(ctx: Context) -> None:
    methods = work.registry_methods()
    infos = {m: work.method_info(m) for m in methods}
    has_masks = ctx.images.masks is not None
    offered, default_metrics = work.metric_names(has_masks)
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
    target = w.target_picker(ctx, "eval_target", where=cols[2])
    about.methods([infos[m] for m in chosen], where=cols[0])
    about.metrics(metrics, where=cols[1])
    options = settings()
    if not chosen or not metrics:
        st.info("Choose at least one method and one metric.")
        return

    layer = None
    if any(infos[m].needs_layer for m in chosen):
        candidates = ctx.facts.candidates
        if not candidates:
            st.error(
                "Methods that need a layer cannot run on this model: it has no layer with a "
                "spatial output. Choose methods that need no layer.",
                icon=":material/block:",
            )
            return
        layer = w.layer_picker(candidates, "eval_layer")
    explanations = [work.explain(ctx, m, target, layer, work.default_params(m)) for m in chosen]
    result = work.evaluation(ctx, explanations, metrics, target, options)
    results(
        ctx,
        result,
        explanations,
        (ctx.key, ctx.images_key, chosen, target, layer, metrics, options),
    )


w.page("Evaluation", body, needs_images=True)
