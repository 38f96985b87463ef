"""The limits a model file is checked against, all derived from ``max_bytes``."""

from __future__ import annotations

import dataclasses

DEFAULT_MAX_BYTES = 500_000_000


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a model file may declare before vizkit hands it to Keras.

    Every limit grows with ``max_bytes`` (the largest file and unpacked archive), so a caller who
    raises ``max_bytes`` for a big model raises them all; at the default of 500 MB they are the
    values in brackets.

    Attributes
    ----------
    max_bytes : int
        Largest file, archive member and unpacked archive [500 MB].
    config_bytes : int
        Largest model config, the JSON text: ``min(max_bytes, 4 MB)`` [4 MB]; the config of
        NASNetMobile, one of the biggest, is 0.8 MB. Parsing JSON costs up to ~20 bytes of
        memory per byte of text, so this bounds parsing memory too.
    config_depth : int
        Deepest nesting of the config's lists and objects [100]; a Keras application nested in a
        model is 20 deep.
    array_bytes : int
        Serialized arrays in the config (``Rescaling`` scales, ``Normalization`` means, node
        arguments), in total when allocated: ``max_bytes // 20`` [25 MB].
    parameters : int
        Parameters the config would create, counted before building: ``max_bytes // 2`` [250 M,
        1 GB as float32]. They must also fit in the weights the file really stores.
    activation_values : int
        Values in any one tensor for one image (the model's input, any layer's input or output):
        ``max_bytes // 8`` [62.5 M, 250 MB as float32]; a 224x224 ResNet's largest is 0.8 M.
    h5_objects : int
        Groups, datasets and links in an HDF5 file [100,000].
    h5_depth : int
        Deepest group nesting in an HDF5 file [64].
    """

    max_bytes: int
    config_bytes: int
    config_depth: int
    array_bytes: int
    parameters: int
    activation_values: int
    h5_objects: int = 100_000
    h5_depth: int = 64

    @classmethod
    def for_max_bytes(cls, max_bytes: int) -> Limits:
        return cls(
            max_bytes=max_bytes,
            config_bytes=min(max_bytes, 4_000_000),
            config_depth=100,
            array_bytes=max(max_bytes // 20, 1),
            parameters=max(max_bytes // 2, 1),
            activation_values=max(max_bytes // 8, 1),
        )


RAISE = "pass max_bytes= to allow bigger models"


def size(n: int) -> str:
    """``"2.0 MB"``: decimal units, as file managers show sizes."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def over(n: int, limit: int) -> str:
    """``"2.0 MB, over the 1.0 MB limit"``, exact when rounding would hide the difference."""
    shown, cap = size(n), size(limit)
    if shown == cap:
        shown, cap = f"{n:,} bytes", f"{limit:,} bytes"
    return f"{shown}, over the {cap} limit"


def count(n: int) -> str:
    """``"250 M"``, ``"12 K"``, ``"812"``: a number of values or parameters."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n}"
