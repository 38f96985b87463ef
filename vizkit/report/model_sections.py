"""Report sections about the model itself: summary, training curves, first-layer filters,
feature maps, activation maximization, and the reproducibility record.

Each section function takes ``(writer, section, plan)``, fills the section with figures (drawn
by the results' own ``plot`` methods), tables and text, and marks it skipped with the reason
when there is nothing to show.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from vizkit.errors import LayerError
from vizkit.plotting.figures import new_figure
from vizkit.report.plan import Plan
from vizkit.report.writer import Writer, attempt, frame_html, skip
from vizkit.templates import html as tpl

_SUMMARY_COLUMNS = ("path", "type", "output_shape", "params", "activation", "macs", "rf_h", "rf_w")
NO_IMAGES = "no images given (pass inputs= or --images)"


def summary_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """The layer table (CSV with every layer) and the architecture diagram."""
    from vizkit.plotting.summary import architecture_size
    from vizkit.summary import summarize

    summary = summarize(plan.model, expand_nested=plan.expand_nested)
    nested = [info.path for info in summary.layers if info.container]
    section.intro = (
        "Layers, output shapes, parameters, multiply-accumulates (MACs) and receptive fields."
    )
    if nested and not plan.expand_nested:
        section.intro += (
            f" Nested models ({', '.join(nested)}) are shown as one row and one box with their "
            "totals (expand_nested=True or --expand-nested lists their layers; the CSV always "
            "does)."
        )
    frame = summary.to_frame(expand_nested=True)  # the CSV lists every layer
    table = writer.table(frame, "summary-layers", "Layers (all columns in the CSV).")
    shown_frame = summary.to_frame()
    shown = [c for c in _SUMMARY_COLUMNS if c in shown_frame.columns]
    table.html = frame_html(
        shown_frame[shown].astype(object).where(shown_frame[shown].notna(), None)
    )
    section.blocks.append(table)
    totals = summary.totals()
    section.blocks.append(
        tpl.Text(
            f"Total parameters {totals['total_params']:,} ({totals['trainable_params']:,} "
            f"trainable, {totals['non_trainable_params']:,} non-trainable); "
            f"{totals['macs']:,} multiply-accumulates per image."
        )
    )

    def architecture() -> None:
        fig = new_figure(*architecture_size(summary))
        summary.plot(ax=fig.add_subplot())
        section.blocks.append(
            writer.figure(fig, "architecture", f"Architecture of {summary.name}.")
        )

    attempt(section, "architecture figure", architecture)


def training_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """Loss and metrics per epoch (the figure; the history as CSV)."""
    history = plan.history
    if history is None:
        skip(section, plan.history_source)
        return
    import pandas as pd

    from vizkit.plotting.summary import choose_history_metrics
    from vizkit.summary import plot_history

    section.intro = f"Loss and accuracy per epoch, training and validation ({plan.history_source})."
    fig = new_figure(3.6 * len(choose_history_metrics(history)), 2.8)
    plot_history(history, fig)
    section.blocks.append(writer.figure(fig, "training-curves", "Training curves."))
    if len({len(v) for v in history.values()}) == 1:
        frame = pd.DataFrame(history)
        frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
        writer.table(frame, "training-history")  # CSV only; the figure shows it


def filters_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """The kernels of the model's first convolution (:func:`vizkit.first_conv_layer`)."""
    from vizkit.inspection import conv_filters

    try:
        bank = conv_filters(plan.model)  # the first convolution
    except LayerError:
        skip(section, "the model has no convolutional layer")
        return
    section.intro = f"Kernels of the first convolutional layer, {bank.layer}."
    fig = bank.plot()  # a new pyplot-free figure sized for the grid
    section.blocks.append(writer.figure(fig, f"filters-{bank.layer}", f"Filters of {bank.layer}."))
    writer.table(bank.to_frame(), f"filters-{bank.layer}")  # CSV only: one row per filter


def _default_feature_layers(model: Any, limit: int = 3) -> list[str]:
    """First, middle and last convolutions (or layers with 4-D outputs, if none)."""
    from vizkit.models import conv_layers, spatial_layer_paths

    pool = conv_layers(model) or spatial_layer_paths(model)
    if len(pool) <= limit:
        return pool
    picks = sorted({0, len(pool) // 2, len(pool) - 1})
    return [pool[i] for i in picks][:limit]


def feature_maps_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """Feature maps of the chosen layers for the first image."""
    from vizkit.inspection import feature_maps

    batch = plan.batch
    if batch is None:
        skip(section, NO_IMAGES)
        return
    chosen = plan.layers if plan.layers is not None else _default_feature_layers(plan.model)
    if not chosen:
        skip(section, "the model has no layer with a spatial (N, H, W, C) output")
        return
    name = batch.names[0] if batch.names else "image 0"
    section.intro = f"Activations of {', '.join(chosen)} for the first image ({name})."
    first = batch[0]
    for layer in chosen:

        def one(layer: str = layer) -> None:
            fig = feature_maps(plan.model, first, layer).plot(0)
            section.blocks.append(
                writer.figure(fig, f"feature-maps-{layer}", f"Feature maps of {layer} ({name}).")
            )

        attempt(section, f"layer {layer}", one)


def _maximized_classes(plan: Plan) -> list[int]:
    """Every class up to ``max_classes``; for larger heads (ImageNet's 1000) the classes the
    model predicts for the report's images, which are the ones a reader is looking at (and a
    224-pixel class image costs about a CPU-minute)."""
    count = len(plan.class_names)
    if count <= plan.max_classes or plan.batch is None:
        return list(range(min(plan.max_classes, count)))
    import warnings

    from vizkit.errors import VizkitWarning
    from vizkit.scoring import predict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VizkitWarning)  # the images section reports them
        top = predict(plan.model, plan.batch, k=1).classes[:, 0]
    return list(dict.fromkeys(int(c) for c in top))[: plan.max_classes]


def activation_max_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """Synthetic inputs that maximize each class logit (up to ``max_classes``)."""
    from vizkit.activation_max import maximize_activation

    names = plan.class_names
    units = _maximized_classes(plan)
    which = (
        "the classes predicted for the report's images"
        if len(names) > plan.max_classes and plan.batch is not None
        else "the first classes"
    )
    section.intro = (
        f"Synthetic inputs that maximize each class logit ({len(units)} of "
        f"{len(names)} classes: {which}; seed {plan.seed})."
    )
    images = maximize_activation(
        plan.model,
        units=units,
        seed=plan.seed,
        progress=writer.hook("optimizing"),
        class_names=list(names),
        value_range=plan.batch.value_range if plan.batch is not None else (0.0, 1.0),
    )
    fig = images.plot()  # rows of five: two rows for ten classes
    section.blocks.append(
        writer.figure(
            fig,
            "activation-maximization",
            "Activation maximization per class: each image's title gives the class logit it "
            "reaches, how far that is above the logit on uniform noise (in standard deviations "
            "of the noise images' logits), and the class the model predicts for it.",
        )
    )
    writer.table(images.to_frame(), "activation-maximization")


def _plain(value: Any) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, (list, tuple)):
        return ", ".join("None" if v is None else str(v) for v in value) or "(none)"
    return str(value)


def reproducibility_section(writer: Writer, section: tpl.Section, settings: dict[str, Any]) -> None:
    """Settings, seeds, hashes and versions (also in ``settings.json``)."""
    import pandas as pd

    section.intro = (
        "Everything needed to rebuild this report: settings, seeds, hashes of the model and the "
        "inputs, and package versions (also in settings.json)."
    )
    if settings.get("command_line"):
        section.blocks.append(tpl.Text("Reproduce with:"))
        section.blocks.append(tpl.Code(settings["command_line"]))
    model, inputs, chosen = settings["model"], settings["inputs"], settings["settings"]
    rows = [
        ("model", model["spec"]),
        ("model name", model["name"]),
        ("model file SHA-256", model["file_sha256"] or "(no file)"),
        ("weights SHA-256", model["weights_sha256"]),
        ("input shape", model["input_shape"]),
    ]
    if inputs:
        rows += [
            ("images", ", ".join(inputs["names"])),
            ("image array SHA-256", inputs["sha256"]),
            ("image value range", inputs["value_range"]),
        ]
    if settings.get("scan"):
        scan = settings["scan"]
        rows += [("scan", scan["path"]), ("scan images", scan["images"])]
    rows += [(key.replace("_", " "), value) for key, value in chosen.items()]
    rows += [("created", settings["created"])]
    frame = pd.DataFrame({"setting": [r[0] for r in rows], "value": [_plain(r[1]) for r in rows]})
    section.blocks.append(writer.table(frame, "settings", "Settings and seeds."))
    versions = settings["versions"]
    frame = pd.DataFrame({"package": list(versions), "version": list(versions.values())})
    section.blocks.append(writer.table(frame, "versions", "Package versions."))
    platform_info = settings["platform"]
    section.blocks.append(
        tpl.Text(f"Platform: {platform_info['system']} ({platform_info['machine']}).")
    )
    section.blocks.append(tpl.Details("settings.json", json.dumps(settings, indent=1, default=str)))
