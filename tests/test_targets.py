"""Target objects (vizkit.targets): a regression output, one unit of a multi-label sigmoid head,
a region of a segmentation output, and a callable, each against a plain tf.GradientTape
reference on a small seeded model."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from vizkit._tf import keras, tf
from vizkit.targets import RegionTarget, UnitTarget

L = keras.layers
SIZE = (12, 12, 3)


def images(n=3, seed=0):
    return np.random.default_rng(seed).random((n, *SIZE), dtype=np.float32)


def close(a, b, rtol=1e-4):
    scale = max(float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def tape(fn, x):
    """Input gradient of ``fn(x) -> (N,)`` summed over channels, and the scores."""
    x = tf.constant(x)
    with tf.GradientTape() as t:
        t.watch(x)
        score = fn(x)
    return t.gradient(score, x).numpy().sum(axis=-1), score.numpy()


def pooled_net(units, activation, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(SIZE)
    h = L.Conv2D(4, 3, activation="relu", bias_initializer="random_normal", name="conv")(inputs)
    features = L.GlobalAveragePooling2D()(h)
    head = L.Dense(units, activation=activation, bias_initializer="random_normal", name="head")
    model = keras.Model(inputs, head(features))
    trunk = keras.Model(inputs, features)
    return model, lambda x: tf.matmul(trunk(x), head.kernel) + head.bias  # by hand: logits


@pytest.fixture(scope="module")
def multilabel():
    return pooled_net(3, "sigmoid", 1)


@pytest.fixture(scope="module")
def segmentation():
    keras.utils.set_random_seed(3)
    inputs = keras.Input(SIZE)
    h = L.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    out = L.Conv2D(2, 1, activation="softmax", bias_initializer="random_normal", name="seg")(h)
    model = keras.Model(inputs, out)
    seg = model.get_layer("seg")

    def logits(x):
        return tf.nn.conv2d(model.get_layer("conv")(x), seg.kernel, 1, "VALID") + seg.bias

    return model, logits


def test_unit_of_a_multilabel_sigmoid_head(multilabel):
    model, logits = multilabel
    x = images()
    grads, scores = tape(lambda v: logits(v)[:, 2], x)
    e = vizkit.explain(model, x, "saliency", targets=UnitTarget(2))
    close(e.maps, grads)
    close(e.scores, scores)
    assert e.targets.tolist() == [2, 2, 2] and e.target_description == "unit 2"
    # with score="probability": the unit's own sigmoid, never a softmax over units
    grads, scores = tape(lambda v: tf.sigmoid(logits(v))[:, 2], x)
    e = vizkit.explain(model, x, "saliency", targets=UnitTarget(2), score="probability")
    close(e.maps, grads)
    close(e.scores, scores)
    with pytest.raises(vizkit.InputError, match=r"UnitTarget\(3\) is out of range"):
        vizkit.explain(model, x, "saliency", targets=UnitTarget(3))


def test_regression_output_with_integrated_gradients():
    model, value = pooled_net(1, None, 2)
    x = images()
    grads, scores = tape(lambda v: value(v)[:, 0], x)
    e = vizkit.explain(model, x, "saliency", targets=UnitTarget(0))
    close(e.maps, grads)
    close(e.scores, scores)
    ig = vizkit.explain(model, x, "integrated_gradients", targets=UnitTarget(), steps=64)
    baseline = value(np.zeros_like(x)).numpy()[:, 0]
    np.testing.assert_allclose(ig.maps.sum(axis=(1, 2)), scores - baseline, rtol=0.02)


def test_region_of_a_segmentation_output(segmentation):
    model, logits = segmentation
    x = images()
    mask = np.zeros((12, 12), bool)
    mask[2:7, 3:9] = True
    target = RegionTarget(1, mask)
    grads, scores = tape(lambda v: tf.reduce_sum(logits(v)[..., 1] * mask, axis=(1, 2)), x)
    e = vizkit.explain(model, x, "saliency", targets=target)
    close(e.maps, grads)
    close(e.scores, scores)
    assert e.target_description == "channel 1 over 30 px"
    # Grad-CAM at the first convolution against the tape
    conv = model.get_layer("conv")
    seg = model.get_layer("seg")
    acts = tf.constant(conv(tf.constant(x)))
    with tf.GradientTape() as t:
        t.watch(acts)
        out = tf.nn.conv2d(acts, seg.kernel, 1, "VALID") + seg.bias
        score = tf.reduce_sum(out[..., 1] * mask, axis=(1, 2))
    weights = t.gradient(score, acts).numpy().mean(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwc,nc->nhw", acts.numpy(), weights), 0)
    e = vizkit.explain(model, x, "gradcam", targets=target, layer="conv")
    close(e.extras["weights"], weights)
    close(e.extras["cam"], cam)
    # predictions pool the per-pixel probabilities' logits over positions
    assert e.predictions.classes.shape == (3, 2)


@pytest.mark.slow
def test_every_method_explains_a_region_target(segmentation):
    """Each registered method scores the region (its score kind) and gives finite maps."""
    model, logits = segmentation
    x = images(1)
    target = RegionTarget(0)  # the whole output
    expected = {
        "logit": tf.reduce_sum(logits(x)[..., 0], axis=(1, 2)).numpy(),
        "probability": tf.reduce_sum(model(x)[..., 0], axis=(1, 2)).numpy(),
    }
    fast = {"smoothgrad": {"samples": 3}, "integrated_gradients": {"steps": 4}}
    for method in vizkit.available_methods():
        params = {**fast.get(method, {}), **({"patch_size": 4} if method == "occlusion" else {})}
        e = vizkit.explain(model, x, method, targets=target, **params)
        assert np.isfinite(e.maps).all() and e.maps.shape == (1, 12, 12), method
        close(e.scores, expected[e.score_kind])
        assert e.targets.tolist() == [0]


def test_a_callable_target_and_clear_errors(multilabel):
    model, logits = multilabel
    x = images()

    def margin(out):
        return out[:, 0] - out[:, 1]

    grads, scores = tape(lambda v: margin(logits(v)), x)
    e = vizkit.explain(model, x, "saliency", targets=margin)
    close(e.maps, grads)
    close(e.scores, scores)
    assert e.targets.tolist() == [-1, -1, -1] and e.target_description == "margin"
    # class targets afterwards are unaffected (the target's compiled functions are separate)
    plain = vizkit.explain(model, x, "saliency", targets=0)
    close(plain.maps, tape(lambda v: logits(v)[:, 0], x)[0])
    with pytest.raises(vizkit.InputError, match="needs a per-pixel output"):
        vizkit.explain(model, x, "saliency", targets=RegionTarget(0))
    with pytest.raises(vizkit.InputError, match="2-D"):
        RegionTarget(0, np.zeros((2, 3, 4)))
