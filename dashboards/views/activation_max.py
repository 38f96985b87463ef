"""Activation maximization page: synthesize images for classes or channels, with progress."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboards import display, work
from dashboards import widgets as w
from dashboards.context import Context

MAX_DEFAULT_CLASSES = 10  # classes preselected (all of them up to this many)


def default_classes(ctx: Context) -> list[int]:
    """All classes up to :data:`MAX_DEFAULT_CLASSES`; for a larger head (ImageNet's 1000) the
    classes predicted for the selected images, the ones the user is looking at (a 224-pixel
    class image costs about a CPU-minute)."""
    count = ctx.facts.num_classes
    if count <= MAX_DEFAULT_CLASSES:
        return list(range(count))
    if ctx.images is None or len(ctx.images) == 0:
        return [0]
    top = np.asarray(work.predictions(ctx)).argmax(axis=1)
    return list(dict.fromkeys(int(c) for c in top))[:MAX_DEFAULT_CLASSES]


def targets(ctx: Context) -> tuple[str | None, list[int], str] | None:
    """``(layer, units, objective)``: classes (layer None) or channels of a layer; None to stop."""
    classes = ctx.class_names
    kind = w.select(
        "Targets",
        ["classes", "channels"],
        "am_kind",
        "classes",
        radio=True,
        format_func={"classes": "Output classes (logits)", "channels": "Channels of a layer"}.get,
    )
    objective = "mean"
    if kind == "classes":
        count = ctx.facts.num_classes
        if count < 1:
            st.error("The model's output has no classes to maximize: choose channel targets.")
            return None
        options = list(range(count))
        units = w.multiselect(
            "Classes",
            options,
            "am_classes",
            default_classes(ctx),
            format_func=lambda c: w.class_label(c, classes),
        )
        layer = None
    else:
        cols = st.columns([3, 3, 2])
        layer = w.spatial_layer(ctx, "am_layer", where=cols[0])
        if layer is None:
            return None
        units = w.channel_picker(
            work.layer_channels(ctx, layer), "am_channels", many=True, where=cols[1]
        )
        objective = w.select(
            "Objective",
            ["mean", "center"],
            "am_objective",
            "mean",
            where=cols[2],
            format_func={"mean": "Channel mean", "center": "Centre neuron"}.get,
        )
    if not units:
        st.info("Choose at least one target.")
        return None
    return layer, list(units), objective


def settings(ctx: Context) -> tuple[dict[str, object], int]:
    """The optimization settings (vizkit's recipe for this input size as defaults) and seed."""
    defaults = work.recipe_defaults(ctx)
    params = {"steps": w.slider("Steps", 10, 1000, "am_steps", int(defaults["steps"]), step=10)}
    with st.expander("Regularization and parameterization", expanded=False):
        cols = st.columns(3)
        params["parameterization"] = w.select(
            "Parameterization",
            ["fourier", "pixel"],
            "am_param",
            defaults["parameterization"],
            where=cols[0],
            help="Fourier: smooth, natural-looking images; pixel: raw pixels.",
        )
        params["learning_rate"] = w.number(
            "Learning rate",
            "am_lr",
            float(defaults["learning_rate"]),
            lo=0.0001,
            hi=1.0,
            step=0.005,
            where=cols[1],
        )
        params["decay_power"] = w.slider(
            "Spectrum decay",
            0.0,
            2.0,
            "am_decay",
            float(defaults["decay_power"]),
            step=0.1,
            where=cols[2],
        )
        cols = st.columns(3)
        params["jitter"] = w.slider(
            "Jitter (pixels)", 0, 32, "am_jitter", int(defaults["jitter"]), where=cols[0]
        )
        params["rotation"] = w.slider(
            "Rotation (degrees)",
            0.0,
            45.0,
            "am_rotation",
            float(defaults["rotation"]),
            step=1.0,
            where=cols[1],
        )
        seed = int(w.number("Seed", "am_seed", 0, lo=0, hi=2**31 - 1, step=1, where=cols[2]))
        cols = st.columns(3)
        params["tv_weight"] = w.slider(
            "Total variation weight",
            0.0,
            1.0,
            "am_tv",
            float(defaults["tv_weight"]),
            step=0.01,
            where=cols[0],
        )
        params["l2_weight"] = w.slider(
            "L2 weight", 0.0, 20.0, "am_l2", float(defaults["l2_weight"]), step=0.1, where=cols[1]
        )
        if (ctx.facts.input_shape or (0,))[-1] == 3:
            params["decorrelate"] = w.checkbox(
                "Decorrelate colours",
                "am_decorrelate",
                bool(defaults["decorrelate"]),
                where=cols[2],
            )
        params["polish"] = w.slider(
            "Polish (fraction of steps)",
            0.0,
            0.5,
            "am_polish",
            float(defaults["polish"]),
            step=0.05,
            help="Final steps on the un-augmented image with half the L2 weight: more contrast",
            where=st.columns(3)[0],
        )

    return params, seed


def body(ctx: Context) -> None:
    chosen = targets(ctx)
    if chosen is None:
        return
    layer, units, objective = chosen
    params, seed = settings(ctx)
    key = work.activation_key(ctx, layer, units, objective, params, seed)
    if not w.long_job_button("Run", "am_run", key):
        st.info(
            "Press Run to synthesize the images (progress is shown while it runs; you can "
            "switch pages meanwhile and come back for the result)."
        )
        return
    result = work.maximize(ctx, layer, units, objective, params, seed=seed)
    display.show_figure(result.plot, "activation_maximization", key=key, tags=ctx.tags)
    left, right = st.columns(2)
    with left:
        display.show_table(result.to_frame(), "activation_maximization_table", hide_index=True)
        display.download_npz(
            {
                "images": result.images,
                "units": result.units,
                "activation": result.activation,
                "loss_history": result.loss_history,
            },
            "activation_maximization",
            label="Images (NPZ)",
        )
    with right:
        display.show_figure(
            display.on_axes(5.5, 3.2, result.plot_history),
            "activation_maximization_history",
            key=key,
            tags=ctx.tags,
        )
    if result.predicted is not None:
        hits = int(np.sum(np.asarray(result.predicted) == np.asarray(result.units)))
        st.caption(f"The model classifies {hits} of {len(result)} images as their target class.")


w.page("Activation maximization", body)
