"""The 1000 ImageNet (ILSVRC-2012) class names, built in: no download at run time.

``keras.applications``' ``decode_predictions`` downloads ``imagenet_class_index.json`` on first
use; vizkit ships the same table (``vizkit/data/imagenet_classes.json``: WordNet id and Keras'
short name per class, in the training-index order every ImageNet-1k classifier uses), so a
1000-way head can be labelled offline.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["IMAGENET_CLASSES", "imagenet_class_names", "imagenet_wnids"]

#: Number of ImageNet-1k classes.
IMAGENET_CLASSES = 1000

# Keras' short names repeat for two pairs of WordNet synsets; the second of each pair gets the
# synset's own qualifier so every readable name is unique.
_QUALIFIED = {134: "crane (bird)", 639: "maillot (tank suit)"}


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, str], ...]:
    text = resources.files("vizkit").joinpath("data", "imagenet_classes.json").read_text("utf-8")
    rows = tuple((str(wnid), str(name)) for wnid, name in json.loads(text)["classes"])
    if len(rows) != IMAGENET_CLASSES:  # pragma: no cover - a damaged installation
        raise RuntimeError(f"vizkit's ImageNet class table has {len(rows)} rows, not 1000")
    return rows


def imagenet_class_names(style: str = "readable") -> tuple[str, ...]:
    """The 1000 ImageNet class names, index ``i`` naming output unit ``i`` of a 1000-way head.

    Parameters
    ----------
    style : {"readable", "keras"}
        ``"readable"`` (default): Keras' short names with spaces (``"Egyptian cat"``,
        ``"coffee mug"``), all distinct (class 134 is ``"crane (bird)"``, 517 ``"crane"``; 638
        ``"maillot"``, 639 ``"maillot (tank suit)"``). ``"keras"``: exactly the names of
        ``keras.applications.imagenet_utils.decode_predictions`` (``"Egyptian_cat"``; two
        duplicates).

    Returns
    -------
    tuple of str
        1000 names.
    """
    if style == "keras":
        return tuple(name for _, name in _table())
    if style != "readable":
        from vizkit.errors import InputError

        raise InputError(f"style must be 'readable' or 'keras', not {style!r}")
    return tuple(_QUALIFIED.get(i, name.replace("_", " ")) for i, (_, name) in enumerate(_table()))


def imagenet_wnids() -> tuple[str, ...]:
    """The 1000 WordNet ids (``"n01440764"``, ...) in class-index order (sorted)."""
    return tuple(wnid for wnid, _ in _table())
