"""Model page: layer table, architecture diagram, totals; training curves and test results of
sample models."""

from __future__ import annotations

from typing import Any

import streamlit as st

import vizkit
from dashboards import caches, display
from dashboards import widgets as w
from dashboards.context import Context

COLUMNS = [
    "path",
    "type",
    "output_shape",
    "params",
    "trainable_params",
    "activation",
    "macs",
    "rf_h",
    "rf_w",
    "jump_h",
    "jump_w",
]


def _count(value: int) -> str:
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{int(value):,}"


def _shape(shape: Any) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def body(ctx: Context) -> None:
    summary = ctx.facts.summary
    st.caption(
        f"**{summary.name}** · input {', '.join(_shape(s) for s in summary.input_shapes)} → "
        f"output {', '.join(_shape(s) for s in summary.output_shapes)}"
    )
    cols = st.columns(5)
    cols[0].metric("Parameters", _count(summary.total_params), help=f"{summary.total_params:,}")
    cols[1].metric("Trainable", _count(summary.trainable_params))
    cols[2].metric("Non-trainable", _count(summary.non_trainable_params))
    cols[3].metric("MACs / image", _count(summary.total_macs), help="Multiply-accumulates")
    cols[4].metric("FLOPs / image", _count(summary.flops), help="2 x MACs")
    if summary.uncounted:
        st.caption("MACs not counted for: " + ", ".join(summary.uncounted))

    layers_tab, diagram_tab = st.tabs(["Layers", "Architecture"])
    with layers_tab:
        frame = summary.to_frame()
        frame = frame[[c for c in COLUMNS if c in frame.columns]].copy()
        frame["output_shape"] = frame["output_shape"].map(_shape)
        display.show_table(frame, f"{summary.name}_layers", hide_index=True)
    with diagram_tab:
        expand = w.checkbox("Expand nested models", "model_expand", True)
        width = max(8.0, min(3 + 0.5 * len(summary), 16.0))
        display.show_figure(
            display.on_axes(width, 4.5, lambda ax: summary.plot(ax=ax, expand=expand)),
            f"{summary.name}_architecture",
            key=(ctx.key, expand),
            tags=ctx.tags,
        )

    if ctx.sample:
        _sample_results(ctx.sample, ctx)


def _sample_results(name: str, ctx: Context) -> None:
    st.header("Training and test results")
    history = caches.sample_history(name)
    if history:
        display.show_figure(
            lambda: vizkit.plot_history(history, fig=display.new_figure(10, 3.6)),
            f"{name}_training_curves",
            key=ctx.key,
            caption="Training curves",
        )
    matrix = caches.sample_confusion(name)
    st.metric("Test accuracy", f"{matrix.accuracy:.1%}", help=f"{matrix.total} images")
    left, right = st.columns([3, 2])
    with left:
        normalize = w.checkbox("Normalize rows (recall)", "model_cm_normalize", False)
        display.show_figure(
            display.on_axes(5.2, 4.6, lambda ax: matrix.plot(ax, normalize=normalize)),
            f"{name}_confusion_matrix",
            key=(ctx.key, normalize),
            caption="Confusion matrix (test set)",
        )
    with right:
        st.subheader("Per-class report")
        display.show_table(matrix.to_frame().round(3), f"{name}_class_report", hide_index=True)


w.page("Model", body)
