"""Sanity checks: similarity measures against references, the cascade, data randomization."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import vizkit
from tests.metrics.helpers import edge_detector, input_gradient, tiny_cnn
from vizkit._tf import keras
from vizkit.errors import InputError
from vizkit.metrics import (
    cascading_randomization,
    clone_model,
    data_randomization,
    randomization_sanity,
    spearman,
    ssim,
)
from vizkit.metrics.sanity import _accuracy, weighted_layers
from vizkit.models import head_info


# -- similarity ------------------------------------------------------------------------------
def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, (3, 5, 5)).astype(float)  # many ties
    b = a + rng.normal(0, 1, a.shape)
    expected = [stats.spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(spearman(a, b), expected, rtol=1e-12)


def test_spearman_constant_maps():
    a = np.random.default_rng(0).random((2, 4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConstantInputWarning from scipy
        out = spearman(np.stack([a[0], np.zeros((4, 4))]), np.stack([np.ones((4, 4)), a[1]]))
    assert out[0] == 0.0  # randomized map constant: no ordering survived
    assert np.isnan(out[1])  # reference constant: undefined


def reference_ssim(a, b, win=7, data_range=1.0):
    """Mean SSIM over every window that fits inside the image, with sample covariances."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(a.shape[0] - win + 1):
        for j in range(a.shape[1] - win + 1):
            x = a[i : i + win, j : j + win].ravel()
            y = b[i : i + win, j : j + win].ravel()
            cov = np.cov(x, y, ddof=1)
            mx, my = x.mean(), y.mean()
            values.append(
                ((2 * mx * my + c1) * (2 * cov[0, 1] + c2))
                / ((mx**2 + my**2 + c1) * (cov[0, 0] + cov[1, 1] + c2))
            )
    return float(np.mean(values))


def test_ssim_equals_window_reference():
    rng = np.random.default_rng(0)
    a = rng.random((12, 10))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b), rel=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_ssim_constant_images_closed_form():
    # two constant images u, v: variances vanish, SSIM = (2uv + C1) / (u^2 + v^2 + C1)
    c1 = 0.01**2
    value = ssim(np.full((8, 8), 0.2), np.full((8, 8), 0.6))
    assert value == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.04 + 0.36 + c1))


def test_ssim_small_images_shrink_the_window():
    a = np.random.default_rng(0).random((4, 4))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, 1 - a) == pytest.approx(reference_ssim(a, 1 - a, win=3), rel=1e-9)


# -- cloning and the cascade -----------------------------------------------------------------
def test_clone_shares_nothing_and_keeps_weights(cnn):
    clone = clone_model(cnn)
    assert {id(v) for v in clone.weights}.isdisjoint({id(v) for v in cnn.weights})
    for a, b in zip(cnn.get_weights(), clone.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weighted_layers_top_down(cnn):
    assert [p for p, _ in weighted_layers(cnn)] == ["head", "conv2", "conv1"]
    assert [p for p, _ in weighted_layers(cnn, ["conv1", "head"])] == ["head", "conv1"]
    with pytest.raises(InputError, match="no weights"):
        weighted_layers(cnn, ["gap"])


def test_batch_norm_is_randomized_with_the_layer_feeding_it():
    from vizkit._tf import keras

    inp = keras.Input((8, 8, 1))
    h = keras.layers.BatchNormalization(name="bn0")(inp)
    h = keras.layers.Conv2D(2, 3, use_bias=False, name="conv")(h)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(h))
    steps = [(label, [p for p, _ in group]) for label, group in weighted_layers(model)]
    assert steps == [("head", ["head"]), ("conv", ["bn1", "conv"]), ("bn0", ["bn0"])]


def test_cascade_never_changes_the_callers_model(cnn, images):
    before = [w.copy() for w in cnn.get_weights()]
    probabilities = cnn(images).numpy()
    result = cascading_randomization(cnn, images, input_gradient)
    for a, b in zip(before, cnn.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(cnn(images).numpy(), probabilities)
    assert result.steps == ("head", "conv2", "conv1")
    assert result.spearman.shape == (3, 5) and result.ssim.shape == (3, 5)
    assert result.randomized_maps.shape == (3, 5, 8, 8)
    assert result.original_maps.shape == (5, 8, 8)
    assert randomization_sanity is cascading_randomization


def test_model_dependent_maps_decorrelate_and_pass(cnn, images):
    result = cascading_randomization(cnn, images, input_gradient, seed=1)
    assert abs(result.check_spearman) < 0.5 and abs(result.final_spearman) < 0.5
    assert not result.flagged and result.warning is None
    frame = result.to_frame()
    assert frame["randomized"].tolist() == ["head", "conv2", "conv1"]
    assert frame["checked"].tolist() == [False, True, False]


def test_model_independent_maps_are_flagged(cnn, images):
    result = cascading_randomization(cnn, images, edge_detector)
    np.testing.assert_allclose(result.spearman, 1.0)
    np.testing.assert_allclose(result.ssim, 1.0)
    assert result.flagged
    assert result.check_step == "conv2"  # step ceil(3 / 2) = 2 of head, conv2, conv1
    assert "fails the sanity check" in result.warning and "top 2 of 3" in result.warning


def test_sign_flipped_maps_are_flagged_but_shared_zero_support_is_not(cnn, images):
    flipped = cascading_randomization(
        cnn,
        images,
        lambda m, x, t: -edge_detector(m, x, t) if m is not cnn else edge_detector(m, x, t),
    )
    assert flipped.check_spearman == pytest.approx(-1.0) and flipped.flagged

    rng = np.random.default_rng(0)

    def sparse(model, x, targets):  # same zero support always, values unrelated to the model
        values = rng.normal(size=x.shape[:3])
        values[:, :, :5] = 0.0
        return values

    result = cascading_randomization(cnn, images, sparse)
    assert result.mean_spearman_abs.min() > 0.3  # the shared zeros inflate |map| correlation
    assert not result.flagged


def test_randomizing_only_the_head_changes_explain_maps(cnn, images):
    # The explain engine explains the logit through a linear copy of the softmax head: the copy
    # must carry the randomized weights, not the trained ones.
    result = cascading_randomization(cnn, images, "gradcam", layers=["head"])
    assert result.steps == ("head",)
    assert np.mean(result.spearman) < 0.9
    assert not np.allclose(result.randomized_maps[0], result.original_maps)


def test_cascade_targets_and_method_params(cnn, images):
    result = cascading_randomization(cnn, images, "gradcam", targets=2, layer="conv1")
    assert result.targets.tolist() == [2] * 5 and result.method == "gradcam"
    direct = vizkit.explain(cnn, images, "gradcam", targets=2, layer="conv1")
    np.testing.assert_allclose(result.original_maps, direct.maps, rtol=1e-5, atol=1e-7)


def test_cascade_refuses_unclonable_models(images):
    from vizkit._tf import keras

    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(keras.ops.mean(x, axis=(1, 2)))

    model = Custom()
    model(images)
    with pytest.raises(InputError, match="cannot clone model"):
        clone_model(model)


# -- data randomization ----------------------------------------------------------------------
def test_data_randomization_small(images):
    model = tiny_cnn(seed=2)
    rng = np.random.default_rng(0)
    x_train = rng.random((48, 8, 8, 1)).astype(np.float32)
    y_train = rng.integers(0, 3, 48)
    before = [w.copy() for w in model.get_weights()]
    result = data_randomization(
        model, images, input_gradient, train=(x_train, y_train), epochs=2, batch_size=16
    )
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert result.kind == "data" and result.steps == ("random labels",)
    assert result.spearman.shape == (1, 5)
    assert 0.0 <= result.train_accuracy <= 1.0
    one_hot = np.eye(3)[y_train]
    again = data_randomization(model, images, edge_detector, train=(x_train, one_hot), epochs=1)
    assert again.flagged  # the edge detector never looks at the model


@pytest.mark.parametrize("activation", ["sigmoid", None], ids=["sigmoid", "logit"])
def test_data_randomization_accuracy_of_a_binary_unit(activation):
    head = head_info(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, activation)]))
    metric = _accuracy(head)
    # class 1, class 0: right on both when read as probabilities (sigmoid) or logits (linear)
    outputs = [[0.7], [0.3]] if activation == "sigmoid" else [[0.3], [-0.2]]
    metric.update_state(np.array([[1.0], [0.0]]), np.array(outputs))
    assert float(metric.result()) == 1.0


def test_data_randomization_arguments(cnn, images):
    with pytest.raises(InputError, match="pair"):
        data_randomization(cnn, images, input_gradient, train=images)
    with pytest.raises(InputError, match="epochs"):
        data_randomization(cnn, images, input_gradient, train=(images, [0] * 5), epochs=0)
    with pytest.raises(InputError, match="labels"):
        data_randomization(cnn, images, input_gradient, train=(images, [0, 1]))
