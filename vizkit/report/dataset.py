"""The report's dataset section: what a whole-dataset scan (:func:`vizkit.scan`) found.

Everything comes from the scan's stored table and maps (:func:`vizkit.open_scan`), nothing is
recomputed: accuracy and per-class precision / recall, the confusion matrix and example maps of
the most frequent mistakes, per method the mean map per class, where the model looks when it is
right and when it is wrong, the worst images (unhealthy maps, least faithful maps, attribution
outside the object) and the spatial-bias (shortcut) check. Views with many classes show the
most frequent ones; the CSV tables keep every class.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vizkit.plotting.figures import new_figure
from vizkit.report.image_sections import method_about
from vizkit.report.plan import Plan
from vizkit.report.writer import Writer, attempt, skip
from vizkit.templates import html as tpl

MAX_CLASSES = 12  # classes shown in the map views (most frequent first)
MAX_MATRIX = 20  # classes up to which the confusion matrix is drawn
MAX_CELLS = 6  # mistakes (label -> prediction cells) with example maps


def _figure(writer: Writer, view: Any, name: str, caption: str, kind: str = "plot") -> tpl.Figure:
    """Draw a scan view on a pyplot-free figure of the view's own size and save it."""
    from vizkit.plotting.scan import figure_size

    fig = new_figure(*figure_size(view, kind), layout="constrained")
    ax = fig.add_subplot()
    if kind == "examples":
        view.plot_examples(ax=ax)
    else:
        view.plot(ax=ax)
    return writer.figure(fig, name, caption)


def _most(view: Any, counts: np.ndarray, fields: tuple[str, ...]) -> Any:
    """``view`` restricted to the ``MAX_CLASSES`` classes with the highest ``counts`` (> 0),
    in class order."""
    keep = np.flatnonzero(counts > 0)
    keep = np.sort(keep[np.argsort(-counts[keep], kind="stable")][:MAX_CLASSES])
    return dataclasses.replace(view, **{f: getattr(view, f)[keep] for f in fields})


def _overview(writer: Writer, section: tpl.Section, scan: Any, plan: Plan) -> None:
    """Size, accuracy, the per-class table and the confusion matrix (labelled images)."""
    import pandas as pd

    from vizkit.results.classification import ConfusionMatrix
    from vizkit.sources import weights_sha256

    table = scan.table
    labelled = table[table["label"] >= 0]
    parts = [f"{len(table)} images", f"{len(scan.skipped)} unreadable files skipped"]
    if len(labelled):
        parts.append(f"accuracy {float(labelled['correct'].mean()):.3f} on {len(labelled)}")
    section.blocks.append(tpl.Text(f"Scan {scan.root}: {', '.join(parts)}."))
    if not scan.complete:
        section.blocks.append(
            tpl.Note(
                "The scan is not complete (interrupted or still running): these views cover "
                "the images stored so far; run the same scan again to finish it."
            )
        )
    if scan.manifest["model"]["weights_sha256"] != weights_sha256(plan.model):
        section.blocks.append(
            tpl.Note(
                f"The scan was made with another model ({scan.manifest['model']['spec']}) than "
                "this report's: its views describe that model."
            )
        )
    if len(skipped := scan.skipped):
        writer.table(pd.DataFrame(skipped), "dataset-skipped")  # CSV only
    if not len(labelled):
        section.blocks.append(tpl.Text("The images have no labels: no accuracy or confusion."))
        return
    view = scan.confusion(scan.methods[0], examples=1)
    matrix = ConfusionMatrix(view.matrix, scan.class_names or ())
    frame = matrix.to_frame()
    frame = frame[(frame["support"] > 0) | (view.matrix.sum(axis=0) > 0)]
    section.blocks.append(writer.table(frame, "dataset-classes", "Per class (labelled images)."))
    names = list(matrix.class_names)
    confusion = pd.DataFrame(view.matrix, columns=names, index=pd.Index(names, name="label"))
    writer.table(confusion, "dataset-confusion", index=True)  # CSV only (the figure shows it)
    if len(view.matrix) <= MAX_MATRIX:
        section.blocks.append(
            _figure(
                writer,
                view,
                "dataset-confusion",
                "Confusion matrix: rows are true labels, columns predictions; off-diagonal "
                "counts are mistakes.",
            )
        )


def _maps(writer: Writer, group: tpl.Group, scan: Any, method: str, labelled: bool) -> None:
    """Mean map per class, and where the model looks when right and when wrong."""
    by = "label" if labelled else "prediction"
    means = scan.class_means(method, by=by)
    writer.table(means.to_frame(), f"dataset-{method}-class-means")
    shown = _most(means, means.counts, ("classes", "counts", "maps"))
    group.blocks.append(
        _figure(
            writer,
            shown,
            f"dataset-{method}-class-means",
            f"Mean {method} map per {by} (each map divided by its largest absolute value, then "
            "averaged), and over all images. A class whose mean map sits on the object is "
            "recognized by it; a mean map on the same spot for every class points to a "
            "position bias (meaningful for aligned images).",
        )
    )
    if not labelled:
        return
    errors = scan.errors(method)
    writer.table(errors.to_frame(), f"dataset-{method}-errors")
    if errors.wrong_counts.sum() == 0:
        group.blocks.append(tpl.Text("No mistakes: nothing to compare when wrong."))
        return
    fields = ("classes", "correct", "wrong", "correct_counts", "wrong_counts")
    group.blocks.append(
        _figure(
            writer,
            _most(errors, errors.wrong_counts, fields),
            f"dataset-{method}-errors",
            "Where it looks when it is right (top) and when it is wrong (bottom), per true "
            "class: the mean normalized map. A wrong row that leaves the object shows what "
            "misleads the model.",
        )
    )
    confusion = scan.confusion(method)
    cells = slice(0, MAX_CELLS)
    top = dataclasses.replace(
        confusion,
        cells=confusion.cells[cells],
        ids=confusion.ids[cells],
        probabilities=confusion.probabilities[cells],
        maps=confusion.maps[cells],
        images=None if confusion.images is None else confusion.images[cells],
    )
    group.blocks.append(
        _figure(
            writer,
            top,
            f"dataset-{method}-mistakes",
            "Example maps of the most frequent mistakes (label \u2192 prediction), most "
            "confident first; #id is the image's row in the scan table and p the probability "
            "of the wrong class.",
            kind="examples",
        )
    )


def _ranked(writer: Writer, group: tpl.Group, scan: Any, method: str) -> None:
    """The worst images by map health, faithfulness and attribution outside the object."""
    columns = set(scan.table.columns)
    criteria = ["health"]
    if {f"{method}.deletion_auc", f"{method}.insertion_auc"} & columns:
        criteria.append("faithfulness")
    if f"{method}.object_share" in columns:
        criteria.append("outside_mask")
    for criterion in criteria:
        ranked = scan.ranked(method, by=criterion)
        if not len(ranked):
            group.blocks.append(tpl.Text(f"Every {method} map is healthy."))
            continue
        writer.table(ranked.to_frame(), f"dataset-{method}-worst-{criterion}")
        group.blocks.append(
            _figure(
                writer,
                ranked,
                f"dataset-{method}-worst-{criterion}",
                f"Worst images: {ranked.description} ({ranked.total} of {len(scan.table)}); "
                "each caption gives the image's id and the ranking value.",
            )
        )


def _bias(writer: Writer, group: tpl.Group, scan: Any, method: str) -> None:
    """The spatial-bias (shortcut) check: attribution share per region against its area."""
    bias = scan.spatial_bias(method)
    group.blocks.append(
        _figure(
            writer,
            bias,
            f"dataset-{method}-spatial-bias",
            "Share of the attribution on the border band, the corners, the centre (and, with "
            "masks, the object and the background) against each region's share of the "
            "pixels: a region far above its area is where the model reads its answer.",
        )
    )
    writer.table(bias.to_frame(), f"dataset-{method}-spatial-bias")
    if bias.flagged:
        for text in bias.reasons:
            group.blocks.append(tpl.Note(f"{method}: possible shortcut: {text}."))
    else:
        group.blocks.append(tpl.Text(f"{method}: no spatial bias found."))


def dataset_section(writer: Writer, section: tpl.Section, plan: Plan) -> None:
    """The dataset-level views of ``plan.scan`` (the section exists only with a scan)."""
    scan = plan.scan
    if scan is None:
        skip(section, "no scan given (pass scan= or --scan DIR)")
        return
    section.intro = (
        "What the model does over a whole dataset, from the maps stored by vizkit.scan: "
        "accuracy and mistakes, where it looks per class, when it is wrong, its worst maps and "
        "whether it relies on a border, a corner or the background."
    )
    attempt(section, "overview", lambda: _overview(writer, section, scan, plan))
    labelled = bool((scan.table["label"] >= 0).any())
    names = [scan.method_info(m)["method"] for m in scan.methods]
    section.blocks.append(tpl.Group("The scan's methods", method_about(list(dict.fromkeys(names)))))
    for method in scan.methods:
        section.blocks.append(_method_group(writer, section, scan, method, labelled))


def _method_group(
    writer: Writer, section: tpl.Section, scan: Any, method: str, labelled: bool
) -> tpl.Group:
    """One method's views; a failing view is noted in the section and the others go on."""
    info = scan.method_info(method)
    layer = f" at {info['layer']}" if info.get("layer") else ""
    group = tpl.Group(title=f"{info['label']}{layer} ({method})")
    attempt(section, f"{method} maps", lambda: _maps(writer, group, scan, method, labelled))
    attempt(section, f"{method} worst images", lambda: _ranked(writer, group, scan, method))
    attempt(section, f"{method} spatial bias", lambda: _bias(writer, group, scan, method))
    return group
