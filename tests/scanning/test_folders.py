"""python -m sample_models shapes-folder: the shapes split as PNG files with masks."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sample_models.__main__ import main
from sample_models.data import SHAPE_CLASSES, shapes_split


def test_shapes_folder_holds_the_split_images_and_masks(tmp_path):
    assert main(["shapes-folder", str(tmp_path), "--count", "7", "--seed", "3"]) == 0
    split = shapes_split(7, seed=3, split="test")
    for i in range(7):
        name = SHAPE_CLASSES[split.y[i]]
        image = np.asarray(Image.open(tmp_path / "images" / name / f"{i:05d}.png"))
        mask = np.asarray(Image.open(tmp_path / "masks" / name / f"{i:05d}.png")) > 127
        np.testing.assert_array_equal(image, np.round(split.x[i] * 255).astype(np.uint8))
        np.testing.assert_array_equal(mask, split.masks[i])
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(SHAPE_CLASSES)
