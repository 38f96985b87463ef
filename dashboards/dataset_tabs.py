"""The Dataset page's views of an opened scan, one function per tab (see
:mod:`dashboards.views.dataset`, which chooses or starts the scan and lays the tabs out).

Images (filter, sort and pick an image to see its stored maps), mean map per class, the
confusion matrix with the maps of the mistakes, where the model looks when it is wrong, the
worst images, and the spatial-bias (shortcut) check. Everything is read with
``vizkit.open_scan`` (through :mod:`dashboards.datasets`) and drawn by the views' own ``plot``.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboards import datasets, display, work
from dashboards import widgets as w

MAX_DRAWN_CLASSES = 24  # more classes than this: tables instead of one tile per class
MAX_CELLS = 8  # confusion cells shown with example maps
MAX_CHOICES = 500  # images offered in the image picker (after filtering and sorting)
TABLE_COLUMNS = ("id", "path", "label", "prediction", "probability", "correct")


def _class_name(scan: Any, index: int) -> str:
    return scan.class_name(int(index)) if index >= 0 else "unknown"


def column(scan: Any, name: str, method: str) -> str:
    """The table column of ``name``: the table's own, or ``method``'s statistic."""
    return name if name in scan.table.columns else f"{method}.{name}"


def class_count(scan: Any) -> int:
    table = scan.table
    top = max(
        table["label"].to_numpy().max(initial=-1), table["prediction"].to_numpy().max(initial=-1)
    )
    top = int(top)
    return max(len(scan.class_names or ()), top + 1)


def numeric_columns(scan: Any, method: str) -> list[str]:
    """Sortable, filterable numbers: the table's own and ``method``'s statistics."""
    table = scan.table
    base = [c for c in ("probability", "score") if c in table.columns]
    prefix = f"{method}."
    own = [
        c[len(prefix) :]
        for c in table.columns
        if c.startswith(prefix)
        and pd.api.types.is_numeric_dtype(table[c].dtype)
        and not pd.api.types.is_bool_dtype(table[c].dtype)
    ]
    return base + own


def _image_filters(scan: Any, method: str) -> tuple[dict[str, Any], str]:
    """The filter widgets: ``scan.filter`` keyword arguments and the chosen metric column."""
    table = scan.table
    classes = sorted(int(c) for c in set(table["label"]) | set(table["prediction"]) if c >= 0)
    labelled = bool((table["label"] >= 0).any())
    cols = st.columns(4)
    picked = w.multiselect(
        "True class",
        classes,
        "ds_classes",
        [],
        format_func=lambda c: _class_name(scan, c),
        where=cols[0],
        help="Empty: every class.",
    )
    outcome = "all"
    if labelled:
        outcome = w.select(
            "Prediction", ["all", "correct", "wrong"], "ds_outcome", "all", where=cols[1]
        )
    statuses = sorted(set(table[f"{method}.health"]) - {"ok"})
    health = w.select(
        "Map health",
        ["all", "ok", "unhealthy", *statuses],
        "ds_health",
        "all",
        where=cols[2],
        format_func=lambda h: {"all": "any", "unhealthy": "any problem"}.get(h, h),
        help="From vizkit.metrics.map_health: blank, constant, NaN or saturated maps.",
    )
    metric = w.select(
        "Metric range",
        ["", *numeric_columns(scan, method)],
        "ds_metric",
        "",
        where=cols[3],
        format_func=lambda c: c or "none",
    )
    low, high = _metric_range(scan, metric, method) if metric else (None, None)
    options = {
        "label": picked or None,
        "correct": None if outcome == "all" else outcome == "correct",
        "method": method,
        "health": None if health == "all" else health,
        "column": metric or None,
        "low": low,
        "high": high,
    }
    return options, metric


def _metric_range(scan: Any, metric: str, method: str) -> tuple[float | None, float | None]:
    """The range slider of ``metric`` (kept per method and metric, reset when out of range);
    ``(None, None)`` when the metric has no finite spread."""
    values = scan.table[column(scan, metric, method)].to_numpy(np.float64)
    values = values[np.isfinite(values)]
    if not (len(values) and values.min() < values.max()):
        return None, None
    lo, hi = float(values.min()), float(values.max())
    key = f"{w.KEEP}ds_range_{method}_{metric}"
    current = st.session_state.get(key)
    if not (isinstance(current, tuple) and lo <= current[0] <= current[1] <= hi):
        st.session_state[key] = (lo, hi)
    low, high = st.slider(f"{metric} between", lo, hi, key=key)
    return low, high


def _image_table(scan: Any, frame: pd.DataFrame, method: str, by: str, metric: str) -> pd.DataFrame:
    """The images table as shown: class names, the method's health, the sort and range columns."""
    shown = frame[[c for c in TABLE_COLUMNS if c in frame.columns]].copy()
    shown["label"] = [_class_name(scan, c) for c in frame["label"]]
    shown["prediction"] = [_class_name(scan, c) for c in frame["prediction"]]
    shown[f"{method} health"] = frame[f"{method}.health"].to_numpy()
    if by != "id":
        shown[by] = frame[column(scan, by, method)].to_numpy()
    if metric and metric != by:
        shown[metric] = frame[column(scan, metric, method)].to_numpy()
    return shown


def images_tab(scan: Any, root: Path, method: str) -> None:
    options, metric = _image_filters(scan, method)
    cols = st.columns([2, 1, 3])
    by = w.select("Sort by", ["id", *numeric_columns(scan, method)], "ds_sort", "id", where=cols[0])
    descending = w.checkbox("Largest first", "ds_descending", False, where=cols[1])
    frame = scan.filter(**options)
    frame = scan.sort(by, method=method, ascending=not descending, frame=frame)
    cols[2].caption(f"{len(frame):,} of {len(scan.table):,} images. Click a row to see its maps.")
    event = display.show_table(
        _image_table(scan, frame, method, by, metric),
        f"{root.name}_images",
        hide_index=True,
        height=280,
        on_select="rerun",
        selection_mode="single-row",
        key="ds_table",
    )
    ids = [int(i) for i in frame["id"].to_numpy()[:MAX_CHOICES]]
    if not ids:
        st.info("No image matches these filters.")
        return
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    if rows and rows[0] < len(ids) and st.session_state.get("_vk_ds_row") != rows[0]:
        st.session_state["_vk_ds_row"] = rows[0]
        st.session_state[w.KEEP + "ds_image"] = ids[rows[0]]
    paths = dict(zip(frame["id"], frame["path"]))
    image = w.select(
        "Image",
        ids,
        "ds_image",
        ids[0],
        format_func=lambda i: f"#{i} {paths.get(i, '')}",
        help=f"The first {MAX_CHOICES} images in the table's order.",
    )
    stored_maps(scan, root, int(image))


def stored_maps(scan: Any, root: Path, image: int) -> None:
    """The image's stored maps for every method of the scan (read, not recomputed)."""
    explanations = [scan.explanation(m, [image]) for m in scan.methods]
    comparison = work.compare(explanations)
    display.show_figure(
        lambda: comparison.plot(kind="auto"),
        f"{root.name}_image_{image}",
        key=(str(root), datasets.stamp(root), image, scan.methods),
    )
    row = scan.table.set_index("id").loc[image]
    notes = [f"{m}: {row[f'{m}.health']} {row[f'{m}.health_reason']}".strip() for m in scan.methods]
    st.caption(f"{row['path']} · stored maps, nothing recomputed · " + " · ".join(notes))


def _too_many(scan: Any, what: str) -> bool:
    count = class_count(scan)
    if count > MAX_DRAWN_CLASSES:
        st.info(
            f"{count} classes are too many to draw {what} one tile per class: the table below "
            "has the numbers.",
            icon=":material/info:",
        )
        return True
    return False


def class_tab(scan: Any, root: Path, method: str) -> None:
    by = w.select(
        "Group images by",
        ["label", "prediction"],
        "ds_means_by",
        "label",
        radio=True,
        format_func={"label": "True class", "prediction": "Predicted class"}.get,
    )
    found = datasets.view(root, "class_means", method, by=by)
    count = len(found.classes) + 1
    if not _too_many(scan, "the mean maps"):
        display.show_figure(
            display.on_axes(1.6 * count + 0.5, 2.5, lambda ax: found.plot(ax=ax)),
            f"{root.name}_{method}_class_means",
            key=(str(root), datasets.stamp(root), method, by),
        )
    st.caption(
        "Each map is divided by its largest absolute value before averaging, so every image "
        "weighs the same. For aligned images (same framing) this shows where the model looks "
        "for each class."
    )
    with warnings.catch_warnings():  # a class without images has an all-NaN mean map
        warnings.simplefilter("ignore", RuntimeWarning)
        frame = found.to_frame()
    display.show_table(frame, f"{root.name}_{method}_class_means", hide_index=True)


def confusion_tab(scan: Any, root: Path, method: str) -> None:
    if not bool((scan.table["label"] >= 0).any()):
        st.info("This scan has no true labels (a flat folder): no confusion matrix.")
        return
    found = datasets.view(root, "confusion", method, examples=4)
    k = len(found.matrix)
    left, right = st.columns([2, 3])
    with left:
        if not _too_many(scan, "the matrix"):
            display.show_figure(
                display.on_axes(0.5 * k + 2.5, 0.5 * k + 2.0, lambda ax: found.plot(ax=ax)),
                f"{root.name}_{method}_confusion",
                key=(str(root), datasets.stamp(root), method, "matrix"),
            )
        st.metric("Accuracy", f"{found.accuracy:.1%}")
    with right:
        cells = min(len(found.cells), MAX_CELLS)
        if not cells:
            st.success("No mistakes: every labelled image is predicted right.")
        else:
            top = dataclasses.replace(  # the most populated cells only
                found,
                cells=found.cells[:cells],
                ids=found.ids[:cells],
                probabilities=found.probabilities[:cells],
                maps=found.maps[:cells],
                images=None if found.images is None else found.images[:cells],
            )
            examples = found.ids.shape[1]
            display.show_figure(
                display.on_axes(
                    1.4 * examples + 1.0, 1.5 * cells + 0.5, lambda ax: top.plot_examples(ax=ax)
                ),
                f"{root.name}_{method}_mistakes",
                key=(str(root), datasets.stamp(root), method, "examples"),
                caption=f"The {cells} most frequent mistakes (of {len(found.cells)}), most "
                "confident first: label → prediction, image number and probability.",
            )
    display.show_table(found.to_frame(), f"{root.name}_{method}_mistakes", hide_index=True)


def errors_tab(scan: Any, root: Path, method: str) -> None:
    if not bool((scan.table["label"] >= 0).any()):
        st.info("This scan has no true labels (a flat folder): right and wrong are unknown.")
        return
    found = datasets.view(root, "errors", method)
    if not _too_many(scan, "right and wrong"):
        count = len(found.classes) + 1
        display.show_figure(
            display.on_axes(1.5 * count + 0.8, 3.8, lambda ax: found.plot(ax=ax)),
            f"{root.name}_{method}_errors",
            key=(str(root), datasets.stamp(root), method),
        )
    st.caption(
        "Mean map of the images predicted right (top) and wrong (bottom), over all classes and "
        "per true class: a wrong-row map that differs from the right one shows what misleads."
    )
    display.show_table(found.to_frame(), f"{root.name}_{method}_errors", hide_index=True)


def worst_tab(scan: Any, root: Path, method: str) -> None:
    criteria = ["health", "faithfulness", "outside_mask", *numeric_columns(scan, method)]
    labels = {
        "health": "Unhealthy maps",
        "faithfulness": "Least faithful (needs the deletion or insertion metric)",
        "outside_mask": "Attribution outside the object (needs masks)",
    }
    cols = st.columns([3, 2])
    by = w.select(
        "Rank by",
        criteria,
        "ds_rank_by",
        "health",
        where=cols[0],
        format_func=lambda c: labels.get(c, f"highest {c}"),
    )
    k = w.slider("Images", 4, 48, "ds_rank_k", 12, step=4, where=cols[1])
    found = datasets.view(root, "ranked", method, by=by, k=int(k))
    if not len(found):
        st.success(f"No image: {found.description} ({found.total} in the scan).")
        return
    per_row = 6
    rows = -(-len(found) // per_row)
    display.show_figure(
        display.on_axes(1.4 * per_row + 0.5, 1.7 * rows + 0.5, lambda ax: found.plot(ax=ax)),
        f"{root.name}_{method}_ranked_{by}",
        key=(str(root), datasets.stamp(root), method, by, int(k)),
    )
    display.show_table(found.to_frame(), f"{root.name}_{method}_ranked_{by}", hide_index=True)


def bias_tab(scan: Any, root: Path, method: str) -> None:
    found = datasets.view(root, "spatial_bias", method)
    left, right = st.columns([2, 3])
    with left:
        display.show_figure(
            display.on_axes(4.8, 3.2, lambda ax: found.plot(ax=ax)),
            f"{root.name}_{method}_spatial_bias",
            key=(str(root), datasets.stamp(root), method),
        )
    with right:
        if found.flagged:
            for reason in found.reasons:
                st.warning(reason, icon=":material/warning:")
        else:
            st.success(
                "No spatial bias found: border, corners"
                + (" and background" if "object" in found.regions else "")
                + " get no more attribution than their share of the image.",
                icon=":material/check_circle:",
            )
        st.caption(
            "Share of the attribution (absolute values) on each region against the region's "
            f"share of the pixels, over {found.images} images. A model that decides from a "
            "watermark, a frame or the background puts much more on those regions."
        )
        display.show_table(
            found.to_frame().round(3), f"{root.name}_{method}_spatial_bias", hide_index=True
        )


TABS = {
    "Images": images_tab,
    "Per class": class_tab,
    "Confusion": confusion_tab,
    "When wrong": errors_tab,
    "Worst images": worst_tab,
    "Spatial bias": bias_tab,
}
