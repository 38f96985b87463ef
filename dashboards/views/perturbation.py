"""Perturbation page: hide parts of each image and map how much the target's score drops.

Lists the registry's methods of the ``"perturbation"`` family (occlusion today) with widgets
generated from their parameters; size parameters (those the registry measures in pixels) are
capped at the image size. Each image gets a row: input, the raw map with its colour bar, overlay.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import about, display, work
from dashboards import widgets as w
from dashboards.context import Context
from vizkit.plotting import plot_explanation_rows


@st.fragment
def rows(ctx: Context, explanation: Any, computed: tuple[Any, ...]) -> None:
    """Colour map and opacity redraw the rows from the cached map only."""
    with st.expander("Display", expanded=False):
        c = st.columns(2)
        cmap = w.select(
            "Colour map",
            ["RdBu_r", "bwr", "coolwarm", "jet", "viridis"],
            "pert_cmap",
            "RdBu_r",
            where=c[0],
        )
        alpha = w.slider("Overlay opacity", 0.0, 1.0, "pert_alpha", 0.5, step=0.05, where=c[1])
    display.show_figure(
        lambda: plot_explanation_rows(
            explanation,
            display.new_figure(9.6, 3.0 * len(explanation)),
            cmap=cmap,
            alpha=alpha,
            colorbar_label=f"drop in the target's {explanation.score_kind}",
        ),
        explanation.method,
        key=(computed, cmap, alpha),
        tags=ctx.tags,
        layout=computed,
        changing=display.beside_inputs,
    )
    st.caption(f"Computed in {explanation.seconds:.2f} s.")
    w.fragment_marker("pert")


def body(ctx: Context) -> None:
    methods = work.registry_methods(lambda info: info.family == work.PERTURBATION)
    if not methods:
        st.info("No perturbation method is registered in this vizkit.")
        return
    cols = st.columns([3, 2])
    method = w.select(
        "Method",
        methods,
        "pert_method",
        methods[0],
        format_func=lambda m: work.method_info(m).label,
        where=cols[0],
    )
    info = work.method_info(method)
    target = w.target_picker(ctx, "pert_target", where=cols[1])
    params = w.param_widgets(
        info, "pert", skip=work.HIDDEN_PARAMS, limits=work.size_limits(ctx, info), columns=3
    )
    about.methods([info])
    st.caption(
        "The map is the drop in the target's score: red where hiding the region lowers it (the "
        "model relies on it), blue where hiding it raises it. Empty size boxes mean automatic: "
        "sized to the image."
    )
    explanation = work.explain(ctx, method, target, None, params)
    rows(ctx, explanation, (ctx.key, ctx.images_key, method, target, params))
    with st.expander("Per-image table and raw maps"):
        display.show_table(explanation.to_frame(), f"{method}_table", hide_index=True)
        display.download_npz(work.maps_arrays([explanation]), f"{method}_maps")


w.page(work.perturbation_title(), body, needs_images=True)
