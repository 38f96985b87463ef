"""Write the shapes data as an image folder: ``python -m sample_models shapes-folder OUT``.

The layout is Keras's ``image_dataset_from_directory`` one, with masks mirrored beside it::

    OUT/images/circle/00000.png   ...   OUT/images/triangle/09998.png
    OUT/masks/circle/00000.png    ...   (8-bit, 255 on the object)

Image ``i`` is :func:`sample_models.data.render_shape` of class ``i % 3`` with the random
stream of :func:`sample_models.data.shapes_split` (same seed and split, same images), written
one at a time, so any count fits in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sample_models.data import _SPLIT_CODES, SHAPE_CLASSES, SHAPES_SIZE, render_shape


def write_shapes_folder(
    out: str | Path, count: int, *, seed: int = 0, split: str = "test", size: int = SHAPES_SIZE
) -> Path:
    """Write ``count`` shape images and their masks under ``out``; return ``out``.

    Parameters
    ----------
    out : path
        Created if missing; existing files with the same names are overwritten.
    count : int
    seed : int
    split : {"train", "val", "test"}
        Which random stream (``"test"``: the first 600 are the shapes_vgg sample's test images).
    size : int
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {', '.join(_SPLIT_CODES)}, not {split!r}")
    root = Path(out)
    for kind in ("images", "masks"):
        for name in SHAPE_CLASSES:
            (root / kind / name).mkdir(parents=True, exist_ok=True)
    width = max(5, len(str(count - 1)))
    code = _SPLIT_CODES[split]
    for i in range(count):
        label = i % len(SHAPE_CLASSES)
        image, mask = render_shape(label, np.random.default_rng([seed, code, i]), size)
        name = f"{i:0{width}d}.png"
        pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, "RGB").save(root / "images" / SHAPE_CLASSES[label] / name)
        Image.fromarray(mask.astype(np.uint8) * 255, "L").save(
            root / "masks" / SHAPE_CLASSES[label] / name
        )
    return root
