"""The Dataset page's work: folders under the data folder, background scans, scan views.

Everything the page reads or writes lies under the server's data folder (``--data``, see
:mod:`dashboards.settings`): a path that leads outside it (``..``, an absolute path, a symbolic
link) is refused with one line. A scan runs as a job in the ``datasets`` worker through
``vizkit.scan`` (resumable: starting it again continues where it stopped), and the page follows
its progress without waiting for it. Opened scans are read with ``vizkit.open_scan``; the views
that read every map (per-class means, errors, ...) are computed in the worker, cached by the
scan's state, and drawn by their own ``plot``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dashboards import caches, jobs
from dashboards.context import Context
from dashboards.settings import settings
from vizkit.errors import InputError

MANIFEST = "manifest.json"  # vizkit.scanning.store.MANIFEST
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SKIP = {".git", ".venv", "venv", "node_modules", "__pycache__", "maps.zarr", "chunks", "tmp"}
MAX_DEPTH = 4
MAX_DIRS = 4000  # directories looked at per search of the data folder
VIEW_SECONDS = 600.0


# --------------------------------------------------------------------------------------------
# Paths under the data folder
# --------------------------------------------------------------------------------------------
def data_root() -> Path:
    return Path(settings().data).resolve()


def inside(text: str, root: Path | None = None, *, must_exist: bool = True) -> Path:
    """The path ``text`` names under the data folder (relative to it, or absolute inside it).

    Raises :class:`~vizkit.errors.InputError` for a path outside it or one that is missing.
    """
    root = (root or data_root()).resolve()
    text = (text or "").strip()
    if not text:
        raise InputError("give a folder inside the data folder")
    path = (root / text).resolve()
    if path != root and root not in path.parents:
        raise InputError(
            f"{text!r} is outside the dashboard's data folder {root}: give a path inside it "
            "(start the server with --data DIR to work on another folder)"
        )
    if must_exist and not path.exists():
        raise InputError(f"{text!r} does not exist in the data folder {root}")
    return path


def relative(path: Path, root: Path | None = None) -> str:
    root = (root or data_root()).resolve()
    found = path.resolve().relative_to(root)
    return "." if str(found) == "." else found.as_posix()


@dataclasses.dataclass(frozen=True)
class Found:
    """What lies under the data folder: scan stores and folders holding images (both as
    paths relative to it), and whether the search stopped early."""

    scans: tuple[str, ...]
    folders: tuple[str, ...]
    truncated: bool = False


def _has_images(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(
                e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES for e in entries
            )
    except OSError:
        return False


def find(root: str | Path) -> Found:
    """Scan stores (folders with a ``manifest.json``) and image folders (images in the folder
    or in its class subfolders) down to ``MAX_DEPTH`` levels, at most ``MAX_DIRS`` folders."""
    root = Path(root).resolve()
    scans, folders, seen = [], [], 0
    todo = [(root, 0)]
    truncated = False
    while todo:
        path, depth = todo.pop(0)
        seen += 1
        if seen > MAX_DIRS:
            truncated = True
            break
        try:
            children = sorted(
                e.name
                for e in os.scandir(path)
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")
            )
        except OSError:
            continue
        if (path / MANIFEST).is_file():
            scans.append(relative(path, root))
            continue  # a store's own folders are not image folders
        subdirs = [path / c for c in children if c not in SKIP]
        if _has_images(path) or (subdirs and any(_has_images(d) for d in subdirs[:50])):
            folders.append(relative(path, root))
        if depth < MAX_DEPTH:
            todo += [(d, depth + 1) for d in subdirs]
    return Found(tuple(scans), tuple(folders), truncated)


def default_masks(folder: str, root: Path | None = None) -> str | None:
    """``masks`` next to an ``images`` folder (the shapes-folder layout), when it exists."""
    path = inside(folder, root)
    if path.name == "images" and (path.parent / "masks").is_dir():
        return relative(path.parent / "masks", root)
    return None


def default_out(folder: str, model: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{folder}-{model}").strip("-.") or "scan"
    return f"scans/{slug}"


def stamp(root: Path) -> tuple[int, ...]:
    """The scan's state: modification times of its manifest and table and how many chunk
    tables it holds (a running scan adds one per chunk)."""
    found = []
    for name in (MANIFEST, "scan.parquet"):
        try:
            found.append((root / name).stat().st_mtime_ns)
        except OSError:
            found.append(0)
    chunks = root / "chunks"
    count = 0
    if chunks.is_dir():
        for key in os.scandir(chunks):
            if key.is_dir():
                count += sum(1 for _ in os.scandir(key.path))
    return (*found, count)


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------
def scan_key(
    ctx: Context,
    folder: Path,
    out: Path,
    methods: Sequence[str],
    metrics: Sequence[str],
    masks: Path | None,
) -> str:
    return jobs.make_key(
        "scan", ctx.key, str(folder), str(out), tuple(methods), tuple(metrics), str(masks)
    )


def start_scan(
    ctx: Context,
    folder: Path,
    out: Path,
    methods: Sequence[str],
    metrics: Sequence[str],
    masks: Path | None,
) -> jobs.Job:
    """Start (or find) the background scan job; the page follows it with :func:`job`."""
    key = scan_key(ctx, folder, out, methods, metrics, masks)
    worker = caches.workers().datasets
    seconds = settings().job_seconds

    def start(job: jobs.Job) -> Any:
        return worker.submit(
            "scan_folder",
            ctx.ref.spec,
            str(folder),
            str(out),
            list(methods),
            list(metrics),
            str(masks) if masks else None,
            tuple(ctx.facts.value_range),
            timeout=seconds,
            progress=job.report,
            label=f"Scanning {folder.name}",
        )

    return caches.jobs().submit(key, f"Scanning {folder.name}...", start, tags=(ctx.key,))


def job(key: str) -> jobs.Job | None:
    return caches.jobs().get(key)


def view(root: Path, name: str, method: str, **options: Any) -> Any:
    """A dataset-level view of the scan at ``root`` (computed in the datasets worker, cached
    while the scan does not change)."""
    key = jobs.make_key("scanview", str(root), stamp(root), name, method, sorted(options.items()))
    worker = caches.workers().datasets
    return jobs.run(
        caches.jobs(),
        key,
        f"Computing the {name.replace('_', ' ')} view...",
        lambda job: worker.submit(
            "scan_view",
            str(root),
            name,
            method,
            options,
            timeout=VIEW_SECONDS,
            progress=job.report,
            label=f"The {name} view",
        ),
    )


def opened(root: Path) -> Any:
    """The scan at ``root`` opened for reading (:func:`vizkit.open_scan`)."""
    if not (root / MANIFEST).is_file():
        raise InputError(
            f"{relative(root)!r} holds no vizkit scan (no {MANIFEST}): choose a scan folder or "
            "scan an image folder first"
        )
    return caches.scan(str(root), stamp(root))
