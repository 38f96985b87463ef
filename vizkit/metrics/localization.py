"""Localization: does the map point at the object? Needs ground-truth masks or boxes.

- Pointing game (Zhang et al., 2018, "Top-down neural attention by excitation backprop", IJCV):
  a hit when the map's maximum lies inside the object (ties: any maximal pixel inside counts, as in
  Quantus), optionally within ``tolerance`` pixels of it (the paper uses 15 on 224-pixel images).
- Relevance mass accuracy (Arras, Osman & Samek, 2022, "CLEVR-XAI", Information Fusion): the share
  of the map's positive attribution that falls inside the object.

Masks come from the ``masks`` argument, else from ``boxes``, else from the inputs (an
``ImageBatch`` with ``masks``, such as the shapes sample data) or the Explanation's inputs.
No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from vizkit.errors import InputError
from vizkit.metrics._common import as_maps, masks_of, method_name, names_of
from vizkit.results.metrics import PointingGameResult, RelevanceMassResult


def boxes_to_masks(boxes: Any, n: int, size: tuple[int, int]) -> np.ndarray:
    """Bounding boxes to boolean masks ``(N, H, W)``.

    ``boxes`` is ``(N, 4)`` (one box per image) or a sequence of N sequences of boxes (several
    objects per image). A box is ``(x_min, y_min, x_max, y_max)`` in pixels, the max exclusive as
    in slicing: it covers ``mask[y_min:y_max, x_min:x_max]``.
    """
    height, width = size
    if isinstance(boxes, np.ndarray) and boxes.ndim == 2:
        per_image: Sequence[Any] = [[box] for box in boxes]
    else:
        per_image = [[item] if np.ndim(item) == 1 else list(item) for item in boxes]
    if len(per_image) != n:
        raise InputError(f"{len(per_image)} boxes given for {n} images: give one entry per image")
    masks = np.zeros((n, height, width), bool)
    for i, image_boxes in enumerate(per_image):
        for box in image_boxes:
            values = np.asarray(box, dtype=np.float64).reshape(-1)
            if values.size != 4:
                raise InputError(
                    f"box {list(values)} needs 4 numbers: (x_min, y_min, x_max, y_max)"
                )
            x0, y0, x1, y1 = (int(round(v)) for v in values)
            if x1 <= x0 or y1 <= y0:
                raise InputError(f"box {tuple(values)} is empty: use (x_min, y_min, x_max, y_max)")
            rows = slice(max(y0, 0), max(min(y1, height), 0))
            cols = slice(max(x0, 0), max(min(x1, width), 0))
            masks[i, rows, cols] = True
    return masks


def resolve_masks(
    maps: Any,
    masks: Any = None,
    *,
    boxes: Any = None,
    inputs: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(maps, masks)`` as float and bool ``(N, H, W)`` arrays, checked against each other."""
    array = as_maps(maps)
    n, height, width = array.shape
    if masks is None and boxes is not None:
        masks = boxes_to_masks(boxes, n, (height, width))
    if masks is None:
        masks = masks_of(inputs, maps)
    if masks is None:
        raise InputError(
            "localization needs ground truth: pass masks=(N, H, W) booleans or boxes=(N, 4), "
            "or images that carry masks (the shapes sample data does)"
        )
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.shape != array.shape:
        raise InputError(
            f"masks have shape {masks.shape} but the maps {array.shape}: give one mask per map, "
            "at the maps' size"
        )
    return array, masks.astype(bool)


def pointing_game(
    maps: Any,
    masks: Any = None,
    *,
    boxes: Any = None,
    inputs: Any = None,
    tolerance: int = 0,
) -> PointingGameResult:
    """Pointing game: share of maps whose maximum lies inside the object.

    Zhang et al. (2018), "Top-down neural attention by excitation backprop", IJCV.

    Parameters
    ----------
    maps : ndarray (N, H, W) or Explanation
    masks : ndarray of bool (N, H, W), optional
        The object's pixels. Default: ``boxes``, else the masks carried by ``inputs`` or by the
        Explanation's inputs.
    boxes : (N, 4) or sequence of sequences of boxes, optional
        ``(x_min, y_min, x_max, y_max)``, max exclusive (see :func:`boxes_to_masks`).
    inputs : ImageBatch, optional
        Images whose ``masks`` to use.
    tolerance : int
        Grow masks by this many pixels (Euclidean) before testing.

    Returns
    -------
    PointingGameResult
        ``.accuracy``, ``.chance`` (mean object area share), per-image ``.hits``.
    """
    array, masks = resolve_masks(maps, masks, boxes=boxes, inputs=inputs)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise InputError(f"tolerance must be a non-negative number of pixels, not {tolerance!r}")
    n = len(array)
    hits = np.zeros(n, bool)
    points = np.zeros((n, 2), np.int64)
    valid = np.zeros(n, bool)
    area = masks.reshape(n, -1).mean(axis=1)
    for i in range(n):
        mask = masks[i]
        if tolerance > 0 and mask.any():
            mask = ndimage.distance_transform_edt(~mask) <= tolerance
        finite = np.isfinite(array[i])
        if not mask.any() or not finite.any():
            continue
        values = np.where(finite, array[i], -np.inf)
        top = values == values.max()
        rows, cols = np.nonzero(top)
        points[i] = (rows[0], cols[0])
        hits[i] = bool(mask[top].any())
        valid[i] = True
    return PointingGameResult(
        hits=hits,
        points=points,
        area_share=area,
        valid=valid,
        tolerance=int(tolerance),
        method=method_name(maps),
        names=names_of(inputs, maps),
    )


def relevance_mass(
    maps: Any,
    masks: Any = None,
    *,
    boxes: Any = None,
    inputs: Any = None,
) -> RelevanceMassResult:
    """Relevance mass accuracy: share of positive attribution inside the object.

    Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark dataset for the ground truth evaluation
    of neural network explanations", Information Fusion. ``mass = sum(max(a, 0) * mask) /
    sum(max(a, 0))``: negative attribution (evidence against the class) is left out. A uniform map
    scores the object's area share (reported as ``.chance``). Arguments as :func:`pointing_game`.
    """
    array, masks = resolve_masks(maps, masks, boxes=boxes, inputs=inputs)
    n = len(array)
    positive = np.clip(np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)
    positive = positive.reshape(n, -1)
    flat_masks = masks.reshape(n, -1)
    total = positive.sum(axis=1)
    inside = (positive * flat_masks).sum(axis=1)
    defined = (total > 0) & flat_masks.any(axis=1)
    mass = np.full(n, np.nan)
    mass[defined] = inside[defined] / total[defined]
    return RelevanceMassResult(
        mass=mass,
        area_share=flat_masks.mean(axis=1),
        method=method_name(maps),
        names=names_of(inputs, maps),
    )
