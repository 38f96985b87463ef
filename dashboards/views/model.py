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


MATRIX_MAX_CLASSES = 30  # a larger confusion matrix is unreadable on a page
MATRIX_MIN_PER_CLASS = 3  # and one over a handful of test images says nothing
TOP_K = 5


def _sample_results(name: str, ctx: Context) -> None:
    history = caches.sample_history(name)
    found = caches.sample_test_predictions(name)
    classes, count = found.probabilities.shape[1], len(found.labels)
    if history:
        st.header("Training and test results")
        display.show_figure(
            lambda: vizkit.plot_history(history, fig=display.new_figure(10, 3.6)),
            f"{name}_training_curves",
            key=ctx.key,
            caption="Training curves",
        )
    else:
        st.header("Where the weights come from")
        _provenance(caches.sample_metadata(name))
    if classes <= MATRIX_MAX_CLASSES and count >= MATRIX_MIN_PER_CLASS * classes:
        _confusion(name, ctx)
    else:
        _per_image(name, found)


def _provenance(metadata: dict[str, Any]) -> None:
    """What a converted (not trained here) sample is, where its weights and images come from."""
    weights = metadata.get("weights") or {}
    lines = [f"**{metadata.get('title', metadata.get('name', ''))}**."]
    if weights.get("origin"):
        lines.append(f"Weights: {weights['origin']} ({weights.get('licence', 'licence unknown')}).")
    if metadata.get("preprocessing"):
        lines.append(f"Input: {metadata['preprocessing']}.")
    if metadata.get("data_origin"):
        lines.append(f"Test images: {metadata['data_origin']}.")
    st.markdown(" ".join(lines))
    top1 = weights.get("published_imagenet_top1")
    if top1:
        st.metric(
            "Published ImageNet top-1 accuracy",
            f"{float(top1):.1%}",
            help="On the 50,000 ImageNet validation images, as published for these weights.",
        )
    st.caption("No training curves: the weights were converted from a published checkpoint.")


def _confusion(name: str, ctx: Context) -> None:
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


def _per_image(name: str, found: Any) -> None:
    """Few test images over many classes: each image's top classes instead of a matrix."""
    import numpy as np
    import pandas as pd

    names = found.class_names
    images = caches.sample_images(name)
    titles = list(images.names or ()) if len(images) == len(found.labels) else []
    order = np.argsort(-found.probabilities, axis=1, kind="stable")[:, :TOP_K]
    top1 = found.predictions == found.labels
    top5 = np.array([label in row for label, row in zip(found.labels, order)])
    count = len(found.labels)
    st.subheader(f"Its {count} test image{'s' if count != 1 else ''}")
    cols = st.columns(3)
    cols[0].metric("Top-1 right", f"{int(top1.sum())} of {count}")
    cols[1].metric(f"Top-{TOP_K} right", f"{int(top5.sum())} of {count}")
    cols[2].metric("Classes", f"{found.probabilities.shape[1]:,}")
    rows = []
    for i, (label, row) in enumerate(zip(found.labels, order)):
        rows.append(
            {
                "image": titles[i] if titles else f"image {i}",
                "true class": w.class_label(int(label), names),
                "prediction": w.class_label(int(row[0]), names),
                "probability": round(float(found.probabilities[i, row[0]]), 3),
                f"top {TOP_K}": ", ".join(
                    f"{names[c] if c < len(names) else c} {found.probabilities[i, c]:.0%}"
                    for c in row
                ),
                "top-1 right": bool(top1[i]),
                f"top-{TOP_K} right": bool(top5[i]),
            }
        )
    display.show_table(pd.DataFrame(rows), f"{name}_test_predictions", hide_index=True)
    st.caption(
        f"A confusion matrix needs many test images per class; with {count} image(s) over "
        f"{found.probabilities.shape[1]:,} classes each image's top classes say more."
    )


w.page("Model", body)
