"""Deletion and insertion: hand-computed curves, a naive reference, batching, arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.metrics.helpers import fake_explanation, linear_model
from vizkit.errors import InputError
from vizkit.inputs import ImageBatch
from vizkit.metrics import deletion, fill_images, insertion
from vizkit.metrics.faithfulness import pixel_ranks, step_counts
from vizkit.results.metrics import trapezoid_auc


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


ONES = np.ones((1, 2, 2, 1), np.float32)
ZERO = {"fill": "zero"}  # removed pixels become 0 (the default, the image's mean, is 1 here)
MAP = np.array([[[4.0, 3.0], [2.0, 1.0]]])  # removes pixel weights 1, 2, 3, 4 in that order


def test_deletion_matches_hand_computed_curve():
    model = linear_model()
    curve = deletion(model, ONES, MAP, targets=0, steps=4, baseline=False, **ZERO)
    # logit_0 = x . (1, 2, 3, 4), logit_1 = 0: p0 = sigmoid(logit_0)
    expected = sigmoid([10, 9, 7, 4, 0])
    np.testing.assert_allclose(curve.scores[0], expected, rtol=1e-5)
    np.testing.assert_allclose(curve.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    auc = (expected[0] / 2 + expected[1:4].sum() + expected[4] / 2) / 4  # RISE's formula
    np.testing.assert_allclose(curve.auc, [auc], rtol=1e-5)
    assert curve.baseline is None and curve.baseline_auc is None


def test_insertion_matches_hand_computed_curve():
    model = linear_model()
    curve = insertion(model, ONES, MAP, targets=0, steps=4, fill="zero", baseline=False)
    expected = sigmoid([0, 1, 3, 6, 10])
    np.testing.assert_allclose(curve.scores[0], expected, rtol=1e-5)
    assert curve.kind == "insertion" and curve.higher_is_better


def test_other_target_and_logit_score():
    model = linear_model()
    p1 = deletion(model, ONES, MAP, targets=1, steps=4, baseline=False, **ZERO)
    np.testing.assert_allclose(p1.scores[0], 1 - sigmoid([10, 9, 7, 4, 0]), rtol=1e-5)
    logit = deletion(model, ONES, MAP, targets=0, steps=4, baseline=False, score="logit", **ZERO)
    np.testing.assert_allclose(logit.scores[0], [10, 9, 7, 4, 0], rtol=1e-5)


def test_single_sigmoid_unit_class_zero_is_one_minus_p():
    from vizkit._tf import keras

    inp = keras.Input((2, 2, 1))
    head = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inp, head(keras.layers.Flatten()(inp)))
    head.set_weights([np.array([[1.0], [2.0], [3.0], [4.0]], np.float32), np.zeros(1, np.float32)])
    one = deletion(model, ONES, MAP, targets=1, steps=4, baseline=False, **ZERO)
    zero = deletion(model, ONES, MAP, targets=0, steps=4, baseline=False, **ZERO)
    np.testing.assert_allclose(one.scores[0], sigmoid([10, 9, 7, 4, 0]), rtol=1e-5)
    np.testing.assert_allclose(zero.scores[0], 1 - one.scores[0], rtol=1e-5)


def test_targets_none_is_the_predicted_class():
    model = linear_model(weights=(-1.0, -1.0, -1.0, -1.0))  # predicts class 1 on ones
    curve = deletion(model, ONES, MAP, steps=4, baseline=False, **ZERO)
    assert curve.targets.tolist() == [1]


def naive_deletion(model, x, maps, targets, steps, fill):
    """One model call per perturbed image: the slow reference."""
    n, h, w = maps.shape
    out = np.zeros((n, steps + 1))
    for i in range(n):
        order = np.argsort(-maps[i].ravel(), kind="stable")
        for k in range(steps + 1):
            count = int(round(k * h * w / steps))
            image = x[i].copy().reshape(h * w, -1)
            image[order[:count]] = fill[i].reshape(h * w, -1)[order[:count]]
            probs = model(image.reshape(1, h, w, -1), training=False).numpy()[0]
            out[i, k] = probs[targets[i]]
    return out


def test_batched_curve_equals_a_naive_loop(cnn, images):
    maps = np.random.default_rng(2).random((5, 8, 8))  # continuous: no ties
    targets = np.array([0, 1, 2, 0, 1])
    curve = deletion(cnn, images, maps, targets, steps=7, fill="mean", batch_size=16)
    fill, _ = fill_images(images, "mean")
    expected = naive_deletion(cnn, images, maps, targets, 7, fill)
    np.testing.assert_allclose(curve.scores, expected, rtol=1e-4, atol=1e-6)


def test_forward_passes_are_batched(cnn, images):
    maps = np.random.default_rng(3).random((5, 8, 8))
    steps, n = 20, 5
    alone = deletion(cnn, images, maps, steps=steps, baseline=False)
    assert alone.images_evaluated == n * (steps + 1)
    assert alone.forward_passes == math.ceil(105 / 16)  # default batch: N, at least 16
    assert (
        deletion(cnn, images, maps, steps=steps, baseline=False, batch_size=64).forward_passes == 2
    )
    both = deletion(cnn, images, maps, steps=steps, batch_size=32)
    images_run = n * 2 + 2 * n * (steps - 1)  # endpoints shared by the map and random orders
    assert both.images_evaluated == images_run
    assert both.forward_passes == math.ceil(images_run / 32)


def test_random_baseline_shares_endpoints_and_is_seeded(cnn, images):
    maps = np.random.default_rng(4).random((5, 8, 8))
    a = deletion(cnn, images, maps, steps=5, seed=3)
    b = deletion(cnn, images, maps, steps=5, seed=3)
    np.testing.assert_array_equal(a.baseline, b.baseline)
    np.testing.assert_allclose(a.baseline[:, [0, -1]], a.scores[:, [0, -1]])
    assert a.baseline_auc.shape == (5,)


def test_good_order_beats_random_order():
    model = linear_model()
    x = np.ones((3, 2, 2, 1), np.float32)
    good = np.repeat(np.array([[[1.0, 2.0], [3.0, 4.0]]]), 3, axis=0)  # largest weight first
    curve = deletion(model, x, good, targets=0, steps=4, seed=0, **ZERO)
    assert curve.mean_auc < curve.mean_baseline_auc
    assert curve.beats_baseline is True


def test_fills():
    x = np.arange(2 * 3 * 3 * 2, dtype=np.float32).reshape(2, 3, 3, 2)
    zero, name = fill_images(x, "zero")
    assert name == "zero" and not zero.any()
    mean, _ = fill_images(x, "mean")
    np.testing.assert_allclose(mean[0, 1, 2], x[0].mean(axis=(0, 1)))
    value, name = fill_images(x, 0.5)
    assert name == "value" and np.all(value == 0.5)
    blur, _ = fill_images(x, "blur", blur_sigma=0.0)
    np.testing.assert_allclose(blur, x)
    blurred, _ = fill_images(x, "blur", blur_sigma=5.0)
    assert blurred[0, ..., 0].std() < x[0, ..., 0].std()
    array, name = fill_images(x, np.zeros((1, 1, 1, 2)))
    assert name == "array" and array.shape == x.shape
    with pytest.raises(InputError, match="fill='noise'"):
        fill_images(x, "noise")
    with pytest.raises(InputError, match="does not broadcast"):
        fill_images(x, np.zeros((4, 4)))


def test_pixel_ranks_order_ties_at_random_and_nan_last():
    rng = np.random.default_rng(0)
    ranks = pixel_ranks(np.array([[[3.0, np.nan], [1.0, 2.0]]]), rng)
    assert ranks.tolist() == [[[0, 3], [2, 1]]]
    tied = pixel_ranks(np.zeros((1, 4, 4)), np.random.default_rng(0))
    assert sorted(tied.ravel()) == list(range(16))
    assert tied.ravel().tolist() != list(range(16))  # not raster order
    assert step_counts(10, 4).tolist() == [0, 2, 5, 8, 10]


def test_explanation_and_imagebatch_inputs():
    model = linear_model()
    batch = ImageBatch(array=ONES, names=("one",))
    explanation = fake_explanation(MAP, inputs=batch, targets=np.array([1]), method="m")
    curve = deletion(model, explanation, steps=4, baseline=False, **ZERO)
    assert curve.method == "m" and curve.targets.tolist() == [1]
    assert curve.names == ("one",)
    np.testing.assert_allclose(curve.scores[0], 1 - sigmoid([10, 9, 7, 4, 0]), rtol=1e-5)


def test_frame_and_trapezoid():
    model = linear_model()
    curve = deletion(model, np.ones((2, 2, 2, 1), np.float32), np.repeat(MAP, 2, 0), steps=4)
    frame = curve.to_frame()
    assert list(frame.columns) == ["image", "target", "method", "auc", "random_auc"]
    assert len(frame) == 2
    long = curve.curves_frame()
    assert len(long) == 2 * 2 * 5 and set(long["order"]) == {"map", "random"}
    np.testing.assert_allclose(trapezoid_auc([1.0, 0.0], [0.0, 1.0]), 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"score": "odds"}, "score='odds'"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        deletion(linear_model(), ONES, MAP, **kwargs)


def test_bad_maps():
    model = linear_model()
    with pytest.raises(InputError, match="upsample the maps"):
        deletion(model, ONES, np.zeros((1, 3, 3)))
    with pytest.raises(InputError, match="2 maps given for 1 images"):
        deletion(model, ONES, np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="no maps given"):
        deletion(model, ONES)
    with pytest.raises(InputError, match="out of range"):
        deletion(model, ONES, MAP, targets=5)


def test_model_is_not_changed(cnn, images):
    before = [w.copy() for w in cnn.get_weights()]
    deletion(cnn, images, np.random.default_rng(0).random((5, 8, 8)), steps=3)
    for a, b in zip(before, cnn.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_default_fill_is_each_images_mean():
    model = linear_model()
    x = np.array([[[[0.0], [2.0]], [[0.0], [2.0]]]], np.float32)  # mean 1
    curve = deletion(model, x, MAP, targets=0, steps=4, baseline=False)
    assert curve.fill == "mean"
    # pixels (weights 1, 2, 3, 4) hold 0, 2, 0, 2; removal order 1, 2, 3, 4 sets each to 1
    logits = [0 + 4 + 0 + 8, 1 + 4 + 0 + 8, 1 + 2 + 0 + 8, 1 + 2 + 3 + 8, 1 + 2 + 3 + 4]
    np.testing.assert_allclose(curve.scores[0], sigmoid(logits), rtol=1e-5)
