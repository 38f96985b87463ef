"""The reproducibility record of a report (``settings.json``) and the command that rebuilds it.

The record holds the exact settings and seeds, the model's spec, file and weights hashes, the
images' hash and what the image batch carries (names, value range, class names, ...), the scan
it summarizes, package versions and the platform.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import os
import platform
import shlex
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.sources import IN_MEMORY, describe

if TYPE_CHECKING:
    from vizkit.inputs import ImageBatch
    from vizkit.report.plan import Plan
    from vizkit.scanning.reader import Scan

PACKAGES = (
    "vizkit",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "scipy",
    "matplotlib",
    "pandas",
    "pillow",
    "tf-keras-vis",
    "scikit-learn",
)


def package_versions() -> dict[str, str]:
    """Installed versions of vizkit and the packages it builds on."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name != "tensorflow-cpu":
                versions[name] = "not installed"
    return versions


def _plain_value(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return True
    return isinstance(value, tuple) and all(isinstance(v, (str, int, float)) for v in value)


def batch_record(batch: ImageBatch) -> dict[str, Any]:
    """What the image batch carries, for the record: count, shape, hash and every plain
    metadata field of the batch (names, value range, class names, ...; arrays are hashed)."""
    array = np.ascontiguousarray(np.asarray(batch.array, dtype=np.float32))
    record: dict[str, Any] = {"count": len(batch), "shape": list(array.shape)}
    for field in dataclasses.fields(batch):
        value = getattr(batch, field.name)
        if field.name != "array" and _plain_value(value):
            record[field.name] = list(value) if isinstance(value, tuple) else value
    record["sha256"] = hashlib.sha256(array.tobytes()).hexdigest()
    return record


def scan_record(scan: Scan) -> dict[str, Any]:
    """The scan a report summarizes: folder, size, methods, state and the model it used."""
    manifest = scan.manifest
    assert manifest is not None  # an opened scan always has its manifest
    return {
        "path": str(scan.root),
        "images": len(scan.table),
        "skipped": len(scan.skipped),
        "methods": list(scan.methods),
        "complete": scan.complete,
        "weights_sha256": manifest["model"]["weights_sha256"],
        "source": manifest.get("source"),
    }


def image_paths(images: Any) -> list[str]:
    """Image arguments as strings when they are all paths, else []."""
    items = [images] if isinstance(images, (str, os.PathLike)) else images
    try:
        items = list(items)
    except TypeError:
        return []
    if items and all(isinstance(i, (str, os.PathLike)) for i in items):
        return [os.fspath(i) for i in items]
    return []


def command_line(plan: Plan) -> str:
    """The command that rebuilds the report ("" when the model or images are in memory)."""
    if plan.command:
        return " ".join(shlex.quote(str(a)) for a in plan.command)
    given = plan.inputs_given
    if plan.resolved.spec == IN_MEMORY or (given is not None and not image_paths(given)):
        return ""
    parts = ["vizkit", "report", "--model", plan.resolved.spec]
    if given is not None:
        parts += ["--images", *image_paths(given)]
    parts += ["--methods", ",".join(plan.methods)]
    if plan.layers:
        parts += ["--layers", ",".join(plan.layers)]
    if plan.targets is not None:
        parts += ["--targets", ",".join(str(t) for t in np.atleast_1d(plan.targets))]
    parts += ["--formats", ",".join(plan.formats), "--style", plan.style, "--seed", str(plan.seed)]
    parts += ["--max-images", str(plan.max_images), "--max-classes", str(plan.max_classes)]
    parts += ["--expand-nested"] if plan.expand_nested else []
    parts += ["--scan", str(plan.scan.root)] if plan.scan is not None else []
    parts += ["--out", "REPORT_DIR"]
    return " ".join(shlex.quote(a) for a in parts)


def settings_record(plan: Plan) -> dict[str, Any]:
    """The whole record (``settings.json``) before the sections run."""
    targets = plan.targets
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command_line": command_line(plan),
        "model": describe(plan.resolved),
        "inputs": None if plan.batch is None else batch_record(plan.batch),
        "image_options": {k: repr(v) for k, v in plan.image_options.items()},
        "scan": None if plan.scan is None else scan_record(plan.scan),
        "settings": {
            "methods": plan.methods,
            "layers": plan.layers,
            "targets": None if targets is None else np.atleast_1d(targets).tolist(),
            "formats": list(plan.formats),
            "style": plan.style,
            "seed": plan.seed,
            "max_images": plan.max_images,
            "max_classes": plan.max_classes,
            "top_k": plan.top_k,
            "metrics": None if plan.metrics is None else list(plan.metrics),
            "history": plan.history_source,
            "expand_nested": plan.expand_nested,
            "max_steps_env": os.environ.get("VIZKIT_MAX_STEPS"),
        },
        "versions": package_versions(),
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "python": sys.version.split()[0],
        },
    }
