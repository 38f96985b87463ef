"""Issue 16, item 7: occlusion's patch and stride scale with the image; a patch as large as
the image is refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from vizkit._tf import keras
from vizkit.methods.occlusion import default_patch


@pytest.mark.parametrize(
    ("size", "expected"),
    [((8, 8), (1, 1)), ((28, 28), (4, 2)), ((64, 64), (8, 4)), ((224, 224), (28, 14)),
     ((100, 40), (5, 2))],
)  # fmt: skip
def test_default_patch_is_an_eighth_of_the_shorter_side(size, expected):
    assert default_patch(*size) == expected


def tiny_8x8():
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)], name="tiny8"
    )


def test_small_images_get_a_map_that_varies_and_the_sizes_are_recorded():
    model = tiny_8x8()
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    e = vizkit.explain(model, x, "occlusion")
    assert e.params["patch_size"] == 1 and e.params["stride"] == 1
    assert all(np.ptp(m) > 0 for m in e.maps)  # a patch of 8 gave one constant value
    e16 = vizkit.explain(zoo.sequential(), zoo.images(1), "occlusion", stride=1)
    assert e16.params["patch_size"] == 2 and e16.params["stride"] == 1  # stride as given


def test_a_patch_as_large_as_the_image_is_refused():
    model = tiny_8x8()
    x = np.zeros((1, 8, 8, 1), np.float32)
    with pytest.raises(vizkit.InputError, match=r"patch_size=8 is as large as the 8x8 image"):
        vizkit.explain(model, x, "occlusion", patch_size=8)
    assert vizkit.explain(model, x, "occlusion", patch_size=7, stride=1).maps.shape == (1, 8, 8)
