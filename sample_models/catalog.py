"""Where the sample models live and whether they are up to date (no TensorFlow here).

Each sample is a directory ``<root>/<name>/`` holding :data:`FILES`. ``<root>`` is
``$VIZKIT_SAMPLES_DIR`` when set, else ``sample_models/build/`` (git-ignored). A sample is
*stale* when a file is missing, its metadata cannot be read, or its ``fingerprint`` differs
from :func:`fingerprint` (a hash of the builder's source code).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vizkit.errors import InputError

SAMPLE_NAMES: tuple[str, ...] = ("digits_cnn", "digits_mlp", "shapes_vgg")
ENV_VAR = "VIZKIT_SAMPLES_DIR"
FILES: tuple[str, ...] = (
    "model.keras",
    "metadata.json",
    "history.json",
    "test_images.npz",
    "test_predictions.npz",
)
# The recipe: a change to any of these files rebuilds every sample.
FINGERPRINT_FILES: tuple[str, ...] = ("data.py", "architectures.py", "build.py")
FORMAT_VERSION = 1

PACKAGE_DIR = Path(__file__).resolve().parent


def check_name(name: str) -> str:
    """Return ``name`` if it is a sample model, else raise :class:`~vizkit.errors.InputError`."""
    if name not in SAMPLE_NAMES:
        raise InputError(f"unknown sample model {name!r}: choose one of {', '.join(SAMPLE_NAMES)}")
    return name


def build_root() -> Path:
    """The directory that holds every sample's build directory."""
    override = os.environ.get(ENV_VAR, "").strip()
    return Path(override).expanduser() if override else PACKAGE_DIR / "build"


def sample_dir(name: str) -> Path:
    """The build directory of one sample (it may not exist yet)."""
    return build_root() / check_name(name)


def fingerprint() -> str:
    """SHA-256 of the builder's source files (:data:`FINGERPRINT_FILES`) and format version."""
    digest = hashlib.sha256(f"format {FORMAT_VERSION}\n".encode())
    for filename in FINGERPRINT_FILES:
        digest.update(filename.encode() + b"\0")
        digest.update((PACKAGE_DIR / filename).read_bytes().replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()


def read_metadata(name: str) -> dict[str, Any] | None:
    """The sample's ``metadata.json``, or None when it is missing or unreadable."""
    try:
        with open(sample_dir(name) / "metadata.json", encoding="utf-8") as handle:
            metadata = json.load(handle)
    except (OSError, ValueError):
        return None
    return metadata if isinstance(metadata, dict) else None


def status(name: str, *, source: str | None = None) -> tuple[str, str]:
    """Whether a sample needs building.

    Parameters
    ----------
    name : str
    source : str, optional
        The data source asked for (``"sklearn"`` or ``"mnist"`` for the digits models); a
        build from another source counts as stale. None accepts whatever was built.

    Returns
    -------
    state : {"ok", "missing", "stale"}
    reason : str
        One line for people.
    """
    directory = sample_dir(name)
    missing = [f for f in FILES if not (directory / f).is_file()]
    if len(missing) == len(FILES):
        return "missing", f"not built yet ({directory})"
    if missing:
        return "stale", f"incomplete: {', '.join(missing)} missing"
    metadata = read_metadata(name)
    if metadata is None:
        return "stale", "metadata.json is unreadable"
    if metadata.get("fingerprint") != fingerprint():
        return "stale", "built by a different version of the sample_models code"
    if source is not None and metadata.get("data_source") not in (source, "generated"):
        return "stale", f"built from {metadata.get('data_source')!r} data, {source!r} asked for"
    return "ok", f"up to date (test accuracy {metadata.get('test_accuracy', float('nan')):.3f})"


def is_stale(name: str) -> bool:
    """True when the sample is missing, incomplete or built by other builder code."""
    return status(name)[0] != "ok"
