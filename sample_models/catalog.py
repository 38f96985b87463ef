"""Where the sample models live and whether they are up to date (no TensorFlow here).

Each sample is a directory ``<root>/<name>/`` holding :func:`sample_files`. ``<root>`` is
``$VIZKIT_SAMPLES_DIR`` when set, else ``sample_models/build/`` (git-ignored). A sample is
*stale* when a file is missing, its metadata cannot be read, or its ``fingerprint`` differs
from :func:`fingerprint` of its name: a hash of the source code of *its own* builder, so a
change to the trained samples' code does not rebuild the converted ones, and the other way round.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from vizkit.errors import InputError

#: Trained here, from data (:mod:`sample_models.build`).
TRAINED_NAMES: tuple[str, ...] = ("digits_cnn", "digits_mlp", "shapes_vgg")
#: Converted from published weights, nothing trained (:mod:`sample_models.pretrained`).
CONVERTED_NAMES: tuple[str, ...] = ("imagenet_lite0", "cats_dogs_pandas")
SAMPLE_NAMES: tuple[str, ...] = TRAINED_NAMES + CONVERTED_NAMES
ENV_VAR = "VIZKIT_SAMPLES_DIR"
FILES: tuple[str, ...] = (
    "model.keras",
    "metadata.json",
    "history.json",
    "test_images.npz",
    "test_predictions.npz",
)
# The converted samples were not trained here: no history.json.
CONVERTED_FILES: tuple[str, ...] = tuple(f for f in FILES if f != "history.json")
# The recipe of the trained samples: a change to any of these files rebuilds all three.
FINGERPRINT_FILES: tuple[str, ...] = ("data.py", "architectures.py", "build.py")
# ... and of the converted ones (paths relative to this package).
CONVERTED_FINGERPRINT_FILES: tuple[str, ...] = (
    "torch_state.py",
    "efficientnet_lite.py",
    "photos.py",
    "pretrained.py",
    "../vizkit/imagenet.py",
    "../vizkit/data/imagenet_classes.json",
)
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


def sample_files(name: str) -> tuple[str, ...]:
    """The files a built sample has (the converted samples have no ``history.json``)."""
    return CONVERTED_FILES if check_name(name) in CONVERTED_NAMES else FILES


def fingerprint(name: str | None = None) -> str:
    """SHA-256 of the builder's source files and the format version.

    ``name=None`` or a trained sample: :data:`FINGERPRINT_FILES`; a converted sample:
    :data:`CONVERTED_FINGERPRINT_FILES`.
    """
    files = CONVERTED_FINGERPRINT_FILES if name in CONVERTED_NAMES else FINGERPRINT_FILES
    digest = hashlib.sha256(f"format {FORMAT_VERSION}\n".encode())
    for filename in files:
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
    files = sample_files(name)
    missing = [f for f in files if not (directory / f).is_file()]
    if len(missing) == len(files):
        return "missing", f"not built yet ({directory})"
    if missing:
        return "stale", f"incomplete: {', '.join(missing)} missing"
    metadata = read_metadata(name)
    if metadata is None:
        return "stale", "metadata.json is unreadable"
    if metadata.get("fingerprint") != fingerprint(name):
        return "stale", "built by a different version of the sample_models code"
    if source is not None and metadata.get("data_source") not in (source, "generated"):
        return "stale", f"built from {metadata.get('data_source')!r} data, {source!r} asked for"
    if "summary" in metadata:
        return "ok", f"up to date ({metadata['summary']})"
    return "ok", f"up to date (test accuracy {metadata.get('test_accuracy', float('nan')):.3f})"


def is_stale(name: str) -> bool:
    """True when the sample is missing, incomplete or built by other builder code."""
    return status(name)[0] != "ok"
