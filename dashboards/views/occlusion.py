"""Occlusion page: slide a patch over each image and map the drop in the target probability."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

import vizkit
from dashboards import state
from dashboards import widgets as w

METHOD = "occlusion"


def body(ctx: state.Context) -> None:
    if METHOD not in state.method_names():
        st.error("This vizkit install has no occlusion method.")
        return
    info = vizkit.get_method(METHOD)
    height, width = ctx.images.shape[1:3]
    side = int(min(height, width))
    classes = state.class_names(ctx)
    cols = st.columns([2, 2, 2, 3])
    params = {}
    by_name = {p.name: p for p in info.params}
    for where, name in zip(cols[:3], ("patch_size", "stride", "fill")):
        if name in by_name:
            sub = dataclasses.replace(info, params=(by_name[name],))
            params.update(
                w.param_widgets(
                    sub, "occ", where=where, limits={"patch_size": side, "stride": side}
                )
            )
    target = w.target_picker(ctx, classes, "occ_target", where=cols[3])
    other = [p for p in info.params if p.name not in ("patch_size", "stride", "fill", "batch_size")]
    if other:
        with st.expander("More parameters"):
            sub = dataclasses.replace(info, params=tuple(other))
            params.update(w.param_widgets(sub, "occ", where=st))
    n_patches = ((height - params.get("patch_size", 8)) // max(params.get("stride", 4), 1) + 2) * (
        (width - params.get("patch_size", 8)) // max(params.get("stride", 4), 1) + 2
    )
    st.caption(
        f"About {max(n_patches, 1) * len(ctx.images):,} occluded images go through the model "
        f"({len(ctx.images)} image(s) of {height}x{width}). The map shows, per pixel, the drop in "
        "the target's probability averaged over the patches that covered it (red: hiding it hurts "
        "the prediction, blue: hiding it helps)."
    )
    with st.expander("Display", expanded=False):
        c = st.columns(2)
        cmap = w.select(
            "Colour map",
            ["RdBu_r", "bwr", "coolwarm", "jet", "viridis"],
            "occ_cmap",
            "RdBu_r",
            where=c[0],
        )
        alpha = w.slider("Overlay opacity", 0.0, 1.0, "occ_alpha", 0.5, step=0.05, where=c[1])

    explanation = state.explain(ctx, METHOD, target, None, params, label="occlusion")
    w.show_figure(
        lambda: state_figure(explanation, cmap, alpha),
        "occlusion",
        key=(ctx.key, ctx.images_key, target, params, cmap, alpha),
    )
    st.caption(f"Computed in {explanation.seconds:.2f} s.")
    with st.expander("Per-image table and raw maps"):
        w.show_table(explanation.to_frame(), "occlusion_table", hide_index=True)
        w.download_npz(state.maps_arrays([explanation]), "occlusion_maps")


def state_figure(explanation: Any, cmap: str, alpha: float) -> Any:
    """Rows = images; columns = input, probability-drop map with colour bar, overlay."""
    n = len(explanation)
    fig = w.new_figure(9.0, 2.9 * n)
    axes = fig.subplots(n, 3, squeeze=False)
    display = explanation.display_inputs
    for i in range(n):
        image = display[i]
        axes[i, 0].imshow(
            image[..., 0] if image.shape[-1] == 1 else image,
            cmap="gray" if image.shape[-1] == 1 else None,
        )
        target = int(explanation.targets[i])
        axes[i, 0].set_title(
            f"target {explanation.class_name(target)}\n"
            f"p(pred {explanation.class_name(int(explanation.predictions.top[i]))}) = "
            f"{float(explanation.predictions.top_probability[i]):.2f}",
            fontsize=9,
        )
        explanation.plot(
            i,
            axes[i, 1],
            kind="heatmap",
            cmap=cmap,
            colorbar=True,
            clip_percentile=None,
            absolute=False,
            title="probability drop",
        )
        explanation.plot(
            i,
            axes[i, 2],
            kind="overlay",
            cmap=cmap,
            alpha=alpha,
            clip_percentile=None,
            absolute=False,
            title="overlay",
        )
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


w.page("Occlusion", body, needs_images=True)
