"""Pointing game and relevance mass against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from tests.metrics.helpers import fake_explanation
from vizkit.errors import InputError
from vizkit.inputs import ImageBatch
from vizkit.metrics import boxes_to_masks, pointing_game, relevance_mass


def square_mask(n=1, size=6, lo=1, hi=3):
    masks = np.zeros((n, size, size), bool)
    masks[:, lo:hi, lo:hi] = True
    return masks


def test_pointing_game_hit_and_miss():
    maps = np.zeros((2, 6, 6))
    maps[0, 2, 2] = 5.0  # inside the 1:3 square
    maps[1, 5, 5] = 5.0  # outside
    result = pointing_game(maps, square_mask(2))
    assert result.hits.tolist() == [True, False]
    assert result.points.tolist() == [[2, 2], [5, 5]]
    assert result.accuracy == 0.5
    np.testing.assert_allclose(result.chance, 4 / 36)


def test_pointing_game_ties_count_if_any_maximum_is_inside():
    maps = np.zeros((1, 6, 6))
    maps[0, 5, 5] = maps[0, 1, 1] = 1.0
    assert pointing_game(maps, square_mask()).hits.tolist() == [True]


def test_pointing_game_tolerance_grows_the_mask():
    maps = np.zeros((1, 6, 6))
    maps[0, 4, 2] = 1.0  # two rows below the square (rows 1-2)
    assert not pointing_game(maps, square_mask()).hits[0]
    assert not pointing_game(maps, square_mask(), tolerance=1).hits[0]
    assert pointing_game(maps, square_mask(), tolerance=2).hits[0]


def test_pointing_game_invalid_images_are_excluded():
    maps = np.ones((2, 6, 6))
    maps[0, 1, 1] = 2
    masks = square_mask(2)
    masks[1] = False  # empty mask
    result = pointing_game(maps, masks)
    assert result.valid.tolist() == [True, False]
    assert result.accuracy == 1.0
    nan_maps = np.full((1, 6, 6), np.nan)
    assert not pointing_game(nan_maps, square_mask()).valid[0]


def test_relevance_mass_hand_computed():
    maps = np.zeros((1, 6, 6))
    maps[0, 1, 1] = 3.0  # inside
    maps[0, 5, 5] = 1.0  # outside
    maps[0, 2, 2] = -10.0  # negative evidence is left out
    result = relevance_mass(maps, square_mask())
    np.testing.assert_allclose(result.mass, [0.75])
    np.testing.assert_allclose(result.area_share, [4 / 36])
    assert result.mean == pytest.approx(0.75)


def test_relevance_mass_uniform_map_scores_the_area_share():
    result = relevance_mass(np.ones((1, 6, 6)), square_mask())
    np.testing.assert_allclose(result.mass, result.area_share)
    assert result.chance == pytest.approx(4 / 36)


def test_relevance_mass_without_positive_attribution_is_nan():
    result = relevance_mass(-np.ones((2, 6, 6)), square_mask(2))
    assert np.isnan(result.mass).all() and np.isnan(result.mean)


def test_boxes_are_x_y_min_max_exclusive():
    masks = boxes_to_masks(np.array([[1, 2, 3, 5]]), 1, (6, 6))
    expected = np.zeros((1, 6, 6), bool)
    expected[0, 2:5, 1:3] = True
    np.testing.assert_array_equal(masks, expected)
    several = boxes_to_masks([[(0, 0, 1, 1), (5, 5, 9, 9)]], 1, (6, 6))
    assert several.sum() == 2 and several[0, 5, 5]
    maps = np.zeros((1, 6, 6))
    maps[0, 3, 2] = 1
    assert pointing_game(maps, boxes=np.array([[1, 2, 3, 5]])).hits[0]
    with pytest.raises(InputError, match="is empty"):
        boxes_to_masks([[3, 3, 1, 1]], 1, (6, 6))
    with pytest.raises(InputError, match="2 boxes given for 1 images"):
        boxes_to_masks(np.zeros((2, 4)), 1, (6, 6))


def test_masks_from_imagebatch_or_explanation():
    batch = ImageBatch(array=np.zeros((1, 6, 6, 1), np.float32), masks=square_mask())
    maps = np.zeros((1, 6, 6))
    maps[0, 1, 2] = 1
    assert pointing_game(maps, inputs=batch).hits[0]
    explanation = fake_explanation(maps, inputs=batch, method="gradcam")
    result = relevance_mass(explanation)
    assert result.method == "gradcam" and result.mass[0] == 1.0


def test_missing_or_mismatched_ground_truth():
    with pytest.raises(InputError, match="needs ground truth"):
        pointing_game(np.zeros((1, 6, 6)))
    with pytest.raises(InputError, match="one mask per map"):
        relevance_mass(np.zeros((1, 6, 6)), np.zeros((1, 5, 5), bool))
    with pytest.raises(InputError, match="tolerance"):
        pointing_game(np.zeros((1, 6, 6)), square_mask(), tolerance=-1)


def test_frames():
    maps = np.random.default_rng(0).random((3, 6, 6))
    pg = pointing_game(maps, square_mask(3)).to_frame()
    assert list(pg.columns) == ["image", "method", "hit", "row", "col", "area_share", "valid"]
    rm = relevance_mass(maps, square_mask(3)).to_frame()
    assert len(rm) == 3 and "relevance_mass" in rm
