"""Dataset page: a whole dataset's explanations, from a scan store (``vizkit.scan``).

Open a scan folder, or scan an image folder with the sidebar's model in the background (with
progress; the page stays usable and shows what is stored so far). Then filter the images (class,
correct or wrong, map health, a metric's range), sort them, and pick any one to see its stored
maps (nothing is recomputed); and the dataset-level views: mean map per class, the confusion
matrix with the maps of the mistakes, where the model looks when it is wrong, the worst images,
and the spatial-bias (shortcut) check. Everything is read with ``vizkit.open_scan`` and drawn by
the views' own ``plot``. This module chooses or starts the scan and lays out the tabs; each tab
is a function of :mod:`dashboards.dataset_tabs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from dashboards import about, caches, dataset_tabs, datasets, display, work
from dashboards import widgets as w
from dashboards.context import Context

JOB = "_vk_dataset_job"  # (job key, output folder) of this session's last scan
SCAN_METRICS = ("deletion", "insertion", "pointing_game", "relevance_mass")
MASK_METRICS = ("pointing_game", "relevance_mass")


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
    for tab, (name, draw) in zip(st.tabs(list(dataset_tabs.TABS)), dataset_tabs.TABS.items()):
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
