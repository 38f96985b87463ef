"""Where a model comes from: the one ``sample:NAME`` / file / in-memory resolver, and hashes.

The command line, the report, the dashboard's workers and :func:`vizkit.scan` all name models
the same way: a ``keras.Model``, a model file (``.keras`` or ``.h5``, loaded with vizkit's safe
loader) or ``"sample:NAME"`` for a bundled sample model. :func:`resolve_model` turns any of them
into a :class:`ResolvedModel` that also says where the model came from (for reproducibility
records and cache keys); :func:`check_model_spec` checks a spec without loading anything.

Importing this module is cheap (no TensorFlow, numpy or matplotlib): the CLI checks its
arguments with it before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import TYPE_CHECKING, Any

from vizkit.errors import InputError

if TYPE_CHECKING:
    import keras

__all__ = [
    "SAMPLE_PREFIX",
    "ResolvedModel",
    "check_model_spec",
    "file_sha256",
    "resolve_model",
    "sample_name",
    "weights_sha256",
]

#: How a bundled sample model is named wherever a model path is accepted.
SAMPLE_PREFIX = "sample:"
IN_MEMORY = "<in-memory model>"


@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """A loaded model and where it came from (for the reproducibility record).

    Attributes
    ----------
    model : keras.Model
    spec : str
        What was asked for: a path, ``"sample:NAME"``, or ``"<in-memory model>"``.
    path : str or None
        The model file, when there is one.
    sample : str or None
        The sample name for ``sample:NAME``.
    file_sha256 : str or None
        SHA-256 of the model file.
    """

    model: keras.Model
    spec: str
    path: str | None = None
    sample: str | None = None
    file_sha256: str | None = None


def sample_name(spec: str | os.PathLike[str]) -> str | None:
    """The sample name of ``"sample:NAME"``; None for anything else (a file path)."""
    text = os.fspath(spec)
    return text[len(SAMPLE_PREFIX) :] if text.startswith(SAMPLE_PREFIX) else None


def _known_sample(name: str) -> str:
    from vizkit.samples import sample_names

    names = list(sample_names())
    if name not in names:
        raise InputError(f"unknown sample model {name!r}: choose one of {', '.join(names)}")
    return name


def check_model_spec(spec: str | os.PathLike[str]) -> str | None:
    """Check a model spec without loading it: the sample name is known, or the file exists.

    Returns
    -------
    str or None
        The sample name, or None for a file.

    Raises
    ------
    InputError
        Unknown sample name, or no such file.
    """
    name = sample_name(spec)
    if name is not None:
        return _known_sample(name)
    if not os.path.exists(spec):
        raise InputError(f"model file {os.fspath(spec)!r} does not exist")
    return None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model(
    model: keras.Model | ResolvedModel | str | os.PathLike[str], *, trust: bool = False
) -> ResolvedModel:
    """Load ``model`` if it is a path or ``"sample:NAME"``; describe where it came from.

    Parameters
    ----------
    model : keras.Model, ResolvedModel, path or "sample:NAME"
        A model file is loaded with :func:`vizkit.load_model` (safe mode on unless ``trust``);
        a ``ResolvedModel`` is returned as it is.
    trust : bool
        Allow model files that run code when loaded. Only for files you trust.

    Raises
    ------
    InputError
        Unknown sample name, or ``model`` is neither a model nor a path.
    ModelFileError, UnsafeModelError
        From :func:`vizkit.loading.load_model`: missing, malformed or unsafe files.
    """
    if isinstance(model, ResolvedModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        spec = os.fspath(model)
        name = sample_name(spec)
        if name is not None:
            from vizkit import samples

            loaded = samples.sample_model(_known_sample(name))
            path = str(samples.sample_path(name))
            return ResolvedModel(loaded, spec, path, name, file_sha256(path))
        from vizkit.loading import load_model

        loaded = load_model(spec, trust=trust)
        return ResolvedModel(loaded, spec, spec, None, file_sha256(spec))
    if not hasattr(model, "layers") or not callable(model):
        raise InputError(
            f"model must be a keras.Model, a model file path or 'sample:NAME', "
            f"not a {type(model).__name__}"
        )
    return ResolvedModel(model, IN_MEMORY)


def weights_sha256(model: keras.Model) -> str:
    """SHA-256 over the model's weights (order, paths, shapes and values): its trained state."""
    import numpy as np

    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.asarray(weight.numpy())
        digest.update(str((weight.path, value.shape)).encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def describe(resolved: ResolvedModel) -> dict[str, Any]:
    """The model part of a reproducibility record: spec, name, file, hashes, input shape."""
    model = resolved.model
    return {
        "spec": resolved.spec,
        "name": model.name,
        "file": resolved.path,
        "file_sha256": resolved.file_sha256,
        "weights_sha256": weights_sha256(model),
        "input_shape": [None if d is None else int(d) for d in model.inputs[0].shape]
        if model.inputs
        else None,
    }
