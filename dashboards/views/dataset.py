"""Dataset page: a whole dataset's explanations, from a scan store (``vizkit.scan``).

Open a scan folder, or scan an image folder with the sidebar's model in the background (with
progress; the page stays usable and shows what is stored so far). Then filter the images (class,
correct or wrong, map health, a metric's range), sort them, and pick any one to see its stored
maps (nothing is recomputed); and the dataset-level views: mean map per class, the confusion
matrix with the maps of the mistakes, where the model looks when it is wrong, the worst images,
and the spatial-bias (shortcut) check. Everything is read with ``vizkit.open_scan`` and drawn by
the views' own ``plot``.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboards import about, caches, datasets, display, work
from dashboards import widgets as w
from dashboards.context import Context

JOB = "_vk_dataset_job"  # (job key, output folder) of this session's last scan
MAX_DRAWN_CLASSES = 24  # more classes than this: tables instead of one tile per class
MAX_CELLS = 8  # confusion cells shown with example maps
MAX_CHOICES = 500  # images offered in the image picker (after filtering and sorting)
SCAN_METRICS = ("deletion", "insertion", "pointing_game", "relevance_mass")
MASK_METRICS = ("pointing_game", "relevance_mass")
TABLE_COLUMNS = ("id", "path", "label", "prediction", "probability", "correct")


# --------------------------------------------------------------------------------------------
# Choosing a scan
# --------------------------------------------------------------------------------------------
def choose_scan(found: datasets.Found) -> Path | None:
    cols = st.columns([3, 3])
    options = list(found.scans)
    picked = None
    if options:
        picked = w.select(
            "Scan folder",
            options,
            "ds_scan",
            options[0],
            where=cols[0],
            help="Folders under the data folder that hold a vizkit scan (manifest.json).",
        )
    else:
        cols[0].info("No scan under the data folder yet: scan an image folder first.")
    typed = w.text(
        "or a path inside the data folder",
        "ds_scan_path",
        "",
        where=cols[1],
        help="Relative to the data folder; written by vizkit.scan(..., out=) or `vizkit scan`.",
    )
    text = typed.strip() or picked
    return datasets.inside(text) if text else None


def scan_form(ctx: Context | None, found: datasets.Found) -> Path | None:
    """The form that starts a scan of an image folder with the sidebar's model."""
    if ctx is None or not ctx.facts.image_model:
        st.info("Choose an image model in the sidebar to scan a folder with it.")
        return _followed()
    if not found.folders:
        st.info("No folder with images under the data folder.")
        return _followed()
    cols = st.columns([3, 3, 2])
    folder = w.select(
        "Image folder",
        list(found.folders),
        "ds_folder",
        next((f for f in found.folders if f.endswith("images")), found.folders[0]),
        where=cols[0],
        help="Class subfolders give the true labels (Keras's image_dataset_from_directory "
        "layout); a flat folder has none.",
    )
    guess = datasets.default_masks(folder)
    mask_options = ["", *(f for f in found.folders if f != folder)]
    masks = w.select(
        "Object masks (optional)",
        mask_options,
        f"ds_masks_{folder}",
        guess or "",
        where=cols[1],
        format_func=lambda f: f or "none",
        help="A folder mirroring the image paths, white on the object: needed for the "
        "pointing game, relevance mass and the object/background part of the bias check.",
    )
    methods = work.registry_methods()
    infos = {m: work.method_info(m) for m in methods}
    cols = st.columns([3, 3, 2])
    chosen = w.multiselect(
        "Methods",
        methods,
        "ds_methods",
        [m for m in work.DEFAULT_ATTRIBUTION if m in methods],
        format_func=lambda m: infos[m].label,
        where=cols[0],
        help="Each method adds its maps; Grad-CAM and saliency cost about one pass per image.",
    )
    offered = [m for m in SCAN_METRICS if masks or m not in MASK_METRICS]
    metrics = w.multiselect("Metrics (optional)", offered, "ds_metrics", [], where=cols[1])
    name = ctx.facts.sample or ctx.facts.name
    out = w.text(
        "Save the scan in",
        f"ds_out_{folder}",
        datasets.default_out(folder, name),
        where=cols[2],
        help="A folder inside the data folder; scanning into it again continues the scan.",
    )
    about.methods([infos[m] for m in chosen])
    folder_path = datasets.inside(folder)
    mask_path = datasets.inside(masks) if masks else None
    out_path = datasets.inside(out, must_exist=False)
    again = (out_path / datasets.MANIFEST).is_file()
    label = "Continue or extend the scan" if again else "Start the scan"
    if st.button(label, key="ds_start", type="primary", icon=":material/play_arrow:"):
        if not chosen:
            st.error("Choose at least one method.", icon=":material/error:")
        else:
            job = datasets.start_scan(ctx, folder_path, out_path, chosen, metrics, mask_path)
            st.session_state[JOB] = (job.key, datasets.relative(out_path))
    st.caption(
        f"Scans with {ctx.entry.label}; runs in the background (you can use other pages "
        "meanwhile). A scan is resumable: stopped or interrupted, it continues where it was."
    )
    return _followed()


def _followed() -> Path | None:
    """Follow this session's scan job; return its output folder once something is stored."""
    if JOB not in st.session_state:
        return None
    key, out = st.session_state[JOB]
    follow(key)
    path = datasets.inside(out, must_exist=False)
    return path if (path / datasets.MANIFEST).is_file() else None


@st.fragment(run_every=1.0)
def follow(key: str) -> None:
    """The running scan's progress, refreshed every second; a finished scan reruns the page."""
    job = datasets.job(key)
    if job is None or job.future is None:
        return
    future = job.future
    if not future.done():
        st.progress(job.fraction, text=f"{job.text} ({job.elapsed:.0f} s)")
        return
    error = future.exception()
    if error is not None:
        st.error(display.error_message(error, "The scan"), icon=":material/error:")
        return
    done = future.result()
    st.success(
        f"Scanned {done['images']} images into {datasets.relative(Path(done['root']))}"
        + (f" ({done['skipped']} files skipped)" if done["skipped"] else "")
        + ".",
        icon=":material/check_circle:",
    )
    if st.session_state.get("_vk_dataset_shown") != key:  # once: show the finished scan
        st.session_state["_vk_dataset_shown"] = key
        st.rerun(scope="app")


# --------------------------------------------------------------------------------------------
# An opened scan
# --------------------------------------------------------------------------------------------
def _class_name(scan: Any, index: int) -> str:
    return scan.class_name(int(index)) if index >= 0 else "unknown"


def summary(scan: Any, root: Path) -> None:
    table = scan.table
    model = scan.manifest.get("model", {})
    labelled = bool((table["label"] >= 0).any()) if len(table) else False
    cols = st.columns(5)
    cols[0].metric("Images", f"{len(table):,}")
    cols[1].metric("Accuracy", f"{table['correct'].mean():.1%}" if labelled else "no labels")
    cols[2].metric("Skipped files", f"{len(scan.skipped):,}")
    cols[3].metric("Methods", len(scan.methods), help=", ".join(scan.methods))
    cols[4].metric("State", "complete" if scan.complete else "partial")
    st.caption(
        f"{datasets.relative(root)} · model {model.get('name', '?')} ({model.get('spec', '?')}) "
        f"· methods {', '.join(scan.methods)} "
        f"· maps {'x'.join(str(v) for v in scan.manifest['settings']['map_shape'])} "
        + ("" if scan.complete else "· still running or interrupted: showing what is stored")
    )


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


def images_tab(scan: Any, root: Path, method: str) -> None:
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
    numbers = numeric_columns(scan, method)
    metric = w.select(
        "Metric range",
        ["", *numbers],
        "ds_metric",
        "",
        where=cols[3],
        format_func=lambda c: c or "none",
    )
    low = high = None
    if metric:
        values = scan.table[column(scan, metric, method)].to_numpy(np.float64)
        values = values[np.isfinite(values)]
        if len(values) and values.min() < values.max():
            lo, hi = float(values.min()), float(values.max())
            key = f"{w.KEEP}ds_range_{method}_{metric}"
            current = st.session_state.get(key)
            if not (isinstance(current, tuple) and lo <= current[0] <= current[1] <= hi):
                st.session_state[key] = (lo, hi)
            low, high = st.slider(f"{metric} between", lo, hi, key=key)
    cols = st.columns([2, 1, 3])
    by = w.select("Sort by", ["id", *numbers], "ds_sort", "id", where=cols[0])
    descending = w.checkbox("Largest first", "ds_descending", False, where=cols[1])
    frame = scan.filter(
        label=picked or None,
        correct=None if outcome == "all" else outcome == "correct",
        method=method,
        health=None if health == "all" else health,
        column=metric or None,
        low=low,
        high=high,
    )
    frame = scan.sort(by, method=method, ascending=not descending, frame=frame)
    shown = frame[[c for c in TABLE_COLUMNS if c in frame.columns]].copy()
    shown["label"] = [_class_name(scan, c) for c in frame["label"]]
    shown["prediction"] = [_class_name(scan, c) for c in frame["prediction"]]
    shown[f"{method} health"] = frame[f"{method}.health"].to_numpy()
    if by != "id":
        shown[by] = frame[column(scan, by, method)].to_numpy()
    if metric and metric != by:
        shown[metric] = frame[column(scan, metric, method)].to_numpy()
    cols[2].caption(f"{len(frame):,} of {len(table):,} images. Click a row to see its maps.")
    event = display.show_table(
        shown,
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


def show(root: Path) -> None:
    scan = datasets.opened(root)
    summary(scan, root)
    if not len(scan.table):
        st.info("Nothing stored yet: the first chunk is still being computed.")
        return
    method = w.select(
        "Method",
        list(scan.methods),
        "ds_method",
        scan.methods[0],
        format_func=lambda m: scan.method_info(m).get("label") or m,
        help="The scan's method whose maps the views use.",
    )
    for tab, (name, draw) in zip(st.tabs(list(TABS)), TABS.items()):
        with tab, display.guard(f"The {name} view"):
            draw(scan, root, method)


def body(ctx: Context | None) -> None:
    root = datasets.data_root()
    found = caches.data_folders(str(root))
    source = w.select(
        "Work on",
        ["open", "scan"],
        "ds_source",
        "open" if found.scans else "scan",
        radio=True,
        format_func={"open": "A scan", "scan": "Scan an image folder"}.get,
        help=f"Everything is read from and written to the data folder {root}.",
    )
    chosen = choose_scan(found) if source == "open" else scan_form(ctx, found)
    if found.truncated:
        st.caption("The data folder is large: only part of it was searched.")
    if chosen is not None:
        st.divider()
        show(chosen)


def page() -> None:
    from dashboards import context

    st.title("Dataset")
    with display.guard("The Dataset page"):
        body(context.current())


page()
