"""Class names for any model: the user's, a sample's, or ImageNet's for 1000-way heads.

The rule (:func:`model_class_names`), used when the caller gives no ``class_names=``:

1. a sample model's own names (its metadata);
2. a head with exactly 1000 classes gets the ImageNet-1k names (:func:`vizkit.imagenet_class_names`),
   as every ``keras.applications`` classifier and most 1000-way heads are ImageNet's; pass
   ``class_names=`` for a 1000-class model trained on something else;
3. otherwise none: classes read as their indices.

:func:`read_class_names` reads a labels file (one name per line, a JSON list, or a JSON object
``{index: name}``, including Keras' ``imagenet_class_index.json``), for ``--labels`` and the
dashboard's labels upload. No TensorFlow at import.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from vizkit.errors import InputError

__all__ = ["MAX_LABELS_BYTES", "check_class_names", "model_class_names", "read_class_names"]

#: Largest labels file accepted (a 1000-name list is about 20 KB).
MAX_LABELS_BYTES = 4_000_000


def read_class_names(source: str | os.PathLike | bytes) -> tuple[str, ...]:
    """Class names from a labels file (a path or its bytes).

    Accepted: plain text with one name per line (blank lines at the end ignored); a JSON list
    of names; a JSON object mapping indices (``0``..``K-1``, as strings or numbers) to a name
    or to a list whose last item is the name (Keras' ``{"0": ["n01440764", "tench"]}``).

    Raises
    ------
    InputError
        Unreadable, empty, not UTF-8, or a JSON object whose keys are not ``0..K-1``.
    """
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "the labels file"
    else:
        name = f"labels file {os.fspath(source)!r}"
        try:
            with open(source, "rb") as handle:
                data = handle.read(MAX_LABELS_BYTES + 1)
        except OSError as err:
            raise InputError(f"cannot read {name}: {err.strerror or err}") from None
    if len(data) > MAX_LABELS_BYTES:
        raise InputError(f"{name} is larger than {MAX_LABELS_BYTES:,} bytes: is it a labels file?")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text: save it as UTF-8") from None
    stripped = text.strip()
    if stripped[:1] in ("[", "{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as err:
            raise InputError(f"{name} looks like JSON but is not valid ({err.msg})") from None
        names = _from_json(value, name)
    else:
        lines = [line.strip() for line in text.splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        names = tuple(lines)
    if not names:
        raise InputError(f"{name} holds no class names: give one name per line or a JSON list")
    return names


def _from_json(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(_name(v) for v in value)
    if not isinstance(value, dict):
        raise InputError(f"{name} must hold a JSON list or object, not {type(value).__name__}")
    try:
        indexed = {int(k): _name(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise InputError(
            f'{name} is a JSON object whose keys are not class indices: use {{"0": "cat", '
            '"1": "dog"}} or a list'
        ) from None
    if sorted(indexed) != list(range(len(indexed))):
        raise InputError(f"{name} must name every class from 0 to {len(indexed) - 1} once")
    return tuple(indexed[i] for i in range(len(indexed)))


def _name(value: Any) -> str:
    if isinstance(value, (list, tuple)) and value:
        value = value[-1]
    return str(value).strip()


def check_class_names(
    names: Sequence[str] | None, num_classes: int | None
) -> tuple[str, ...] | None:
    """``names`` as a tuple of str, checked against the model's number of classes."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)):
        raise InputError(
            "class_names must be a list of names, one per class (read a labels file with "
            "vizkit.read_class_names)"
        )
    names = tuple(str(n) for n in names)
    if num_classes is not None and len(names) != num_classes:
        raise InputError(
            f"{len(names)} class names given for a model with {num_classes} classes: give one "
            "name per output class"
        )
    return names


def model_class_names(model: Any, output: int | str | None = None) -> tuple[str, ...] | None:
    """The class names vizkit uses for ``model`` when none are given (see the module's rule)."""
    from vizkit import samples
    from vizkit.detection import sample_of

    sample = sample_of(model)
    if sample is not None:
        return tuple(str(c) for c in samples.sample_metadata(sample)["class_names"])
    from vizkit.errors import VizkitError
    from vizkit.imagenet import IMAGENET_CLASSES, imagenet_class_names
    from vizkit.models import head_info

    try:
        classes = head_info(model, output).num_classes
    except (VizkitError, AttributeError, IndexError, TypeError):
        return None
    return imagenet_class_names() if classes == IMAGENET_CLASSES else None


def num_classes_of(model: Any, output: int | str | None = None) -> int | None:
    """The head's number of classes, or None when vizkit cannot read the head."""
    from vizkit.errors import VizkitError
    from vizkit.models import head_info

    try:
        return head_info(model, output).num_classes
    except (VizkitError, AttributeError, IndexError, TypeError):
        return None
