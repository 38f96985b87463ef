"""Hand a checked file to Keras (safe mode on unless trusted) and translate its errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizkit.errors import ModelFileError, UnsafeModelError, VizkitError
from vizkit.loading._limits import RAISE, Limits, count
from vizkit.loading._scan import activation_message, custom_message

if TYPE_CHECKING:  # pragma: no cover
    from vizkit._tf import keras


def keras_load(
    path: Path,
    shown: str,
    trust: bool,
    custom_objects: Mapping[str, Any] | None,
    compile: bool,
    limits: Limits,
) -> keras.Model:
    from vizkit._tf import keras

    try:
        model = keras.saving.load_model(
            path,
            custom_objects=dict(custom_objects) if custom_objects else None,
            compile=compile,
            safe_mode=not trust,
        )
    except VizkitError:
        raise
    except Exception as err:
        raise translate(err, shown, trust) from err
    if not isinstance(model, keras.Model):
        raise ModelFileError(
            f"{shown!r} holds a {type(model).__name__}, not a model: vizkit needs a keras.Model"
        )
    check_built(model, shown, limits)
    return model


def check_built(model: Any, shown: str, limits: Limits) -> None:
    """Sizes only the built model knows (its outputs; custom layers' parameters)."""
    for tensor in getattr(model, "outputs", None) or []:
        shape = list(getattr(tensor, "shape", ()) or ())
        values = 1
        for dim in shape[1:]:
            values *= dim if isinstance(dim, int) and dim > 0 else 1
        if values > limits.activation_values:
            raise ModelFileError(activation_message(model.name, shape, values, limits))
    params = model.count_params() if model.built else 0
    if params > limits.parameters:
        raise ModelFileError(
            f"{shown!r} has {count(params)} parameters, over the {count(limits.parameters)} "
            f"limit: {RAISE}"
        )


_MISSING_PATTERNS = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown (?:layer|object|class|function|activation)[^:]*: '?([\w>.\-]+)'?"),
    re.compile(r"Could not interpret [\w ]*identifier: '?([\w>.\-]+)'?"),
)


def translate(err: Exception, shown: str, trust: bool) -> ModelFileError:
    """Turn a Keras/h5py exception into a one-line vizkit error."""
    text = str(err)
    for pattern in _MISSING_PATTERNS:
        match = pattern.search(text)
        if match:
            return ModelFileError(custom_message([match.group(1)], offer_trust=not trust))
    lowered = text.lower()
    if "lambda" in lowered and "safe_mode" in lowered:
        return UnsafeModelError(
            f"model {shown!r} contains Python code that would run when loaded: load it with "
            "trust=True only if you trust its author"
        )
    if "could not be loaded" in lowered or ("expected" in lowered and "variables" in lowered):
        return ModelFileError(
            f"the weights in {shown!r} do not match its architecture: the file may be corrupt"
        )
    if isinstance(err, MemoryError):
        return ModelFileError(f"not enough memory to load {shown!r}")
    from vizkit._tf import keras

    return ModelFileError(
        f"Keras {keras.__version__} could not build the model in {shown!r}: it may be corrupt or "
        "saved by an incompatible Keras version"
    )
