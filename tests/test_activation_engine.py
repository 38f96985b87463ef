"""The compiled activation-maximization engine: parameterization, augmentation, ImageNet recipe.

Values against independent references: the Fourier parameterization is inverted with numpy's FFT,
a crop view is compared with the closed-form magnification of a ramp, the fixed contrast with its
definition; the ImageNet-size recipe (several views, crops, coarse-to-fine spectrum, logit minus
mean) runs on a tiny RGB model whose input is only nominally large.
"""

from __future__ import annotations

import numpy as np
import pytest

from vizkit._tf import keras, tf
from vizkit.activation_engine import COLOR_MATRIX, HYPER, Engine, hyper
from vizkit.activation_max import Recipe, maximize_activation, target_groups

L = keras.layers


def plain_hyper(**changes: float) -> tf.Tensor:
    """A hyper-parameter vector that leaves everything untouched (no augmentation)."""
    values = dict.fromkeys(HYPER, 0.0)
    values.update(decay=1.0, decay_start=1.0, zoom_lo=1.0, zoom_hi=1.0, lo=0.0, hi=1.0)
    values.update(crop_lo=1.0, crop_hi=1.0, views=1.0, lr=0.05)
    values.update(changes)
    return tf.constant(hyper(**values))


def engine(shape=(9, 11, 3), parameterization="fourier", decorrelate=True) -> Engine:
    inputs = keras.Input(shape)
    features = keras.Model(inputs, L.GlobalAveragePooling2D()(inputs))
    return Engine(features, "mean", shape, parameterization, decorrelate)


def fourier_params(eng: Engine, image: np.ndarray, decay: float, lo: float, hi: float):
    """The parameters that give ``image``: the engine's parameterization inverted with numpy."""
    raw = np.log((image - lo) / (hi - lo)) - np.log1p(-(image - lo) / (hi - lo))  # logit
    if eng.decorrelate:
        raw = raw @ np.linalg.inv(COLOR_MATRIX).T
    planes = 4.0 * np.transpose(raw, (0, 3, 1, 2))
    spectrum = np.fft.rfft2(planes)
    floor = 1.0 / max(eng.height, eng.width)
    scale = np.maximum(eng.freqs, floor) ** -decay * np.sqrt(eng.height * eng.width)
    spectrum = spectrum / scale
    return np.stack([spectrum.real, spectrum.imag]).astype(np.float32)


@pytest.mark.parametrize("decorrelate", [True, False])
def test_fourier_parameterization_round_trips_a_known_image(decorrelate):
    eng = engine((8, 10, 3), decorrelate=decorrelate)  # even sides: rfft2 inverts exactly
    rng = np.random.default_rng(0)
    image = rng.uniform(10.0, 245.0, (2, 8, 10, 3))
    params = fourier_params(eng, image, decay=1.5, lo=0.0, hi=255.0)
    assert params.shape == eng.param_shape(2)
    got = eng._image(tf.constant(params), plain_hyper(decay=1.5, decay_start=1.5, hi=255.0), 0)
    np.testing.assert_allclose(got.numpy(), image, rtol=1e-4, atol=1e-2)


def test_pixel_parameterization_is_a_sigmoid_per_pixel():
    eng = engine((5, 5, 1), parameterization="pixel", decorrelate=False)
    params = np.linspace(-3, 3, 25, dtype=np.float32).reshape(1, 5, 5, 1)
    got = eng._image(tf.constant(params), plain_hyper(lo=-1.0, hi=1.0), 0).numpy()
    np.testing.assert_allclose(got, -1.0 + 2.0 / (1.0 + np.exp(-params)), rtol=1e-5, atol=1e-6)


def test_spectrum_decay_anneals_from_decay_start():
    """Step 0 uses decay_start, steps after the anneal use decay_power, halfway the mean."""
    eng = engine((8, 8, 3))
    params = tf.constant(np.random.default_rng(1).normal(0, 0.01, eng.param_shape(1)), tf.float32)
    annealed = plain_hyper(decay=1.0, decay_start=3.0, anneal_steps=10.0)

    def fixed(decay):
        return eng._image(params, plain_hyper(decay=decay, decay_start=decay), 0).numpy()

    for step, decay in [(0, 3.0), (5, 2.0), (10, 1.0), (50, 1.0)]:
        np.testing.assert_allclose(eng._image(params, annealed, step).numpy(), fixed(decay), 1e-5)


def test_fixed_contrast_centres_and_scales_each_image():
    eng = engine((8, 8, 3), decorrelate=False)
    params = tf.constant(np.random.default_rng(2).normal(0, 0.05, eng.param_shape(2)), tf.float32)
    image = eng._image(params, plain_hyper(contrast=1.5), 0).numpy()
    raw = np.log(image) - np.log1p(-image)
    np.testing.assert_allclose(raw.mean(axis=(1, 2)), 0.0, atol=1e-3)
    np.testing.assert_allclose(raw.reshape(2, -1).std(axis=1), 1.5, rtol=1e-3)


def test_identity_augmentation_returns_the_image_and_jitter_shifts_it():
    eng = engine((6, 7, 3))
    images = tf.constant(np.random.default_rng(3).uniform(0, 1, (2, 6, 7, 3)), tf.float32)
    seed = tf.constant([0, 0])
    np.testing.assert_allclose(eng._augment(images, plain_hyper(), seed).numpy(), images.numpy())
    three = eng._augment(images, plain_hyper(views=3.0), seed).numpy()
    np.testing.assert_allclose(three, np.repeat(images.numpy(), 3, axis=0))  # consecutive views
    shifted = eng._augment(images, plain_hyper(jitter=2.0), tf.constant([4, 9])).numpy()
    matches = 0
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            rolled = np.roll(images.numpy()[0], (-dy, -dx), axis=(0, 1))
            inner = (slice(2, -2), slice(2, -2))
            matches += np.allclose(shifted[0][inner], rolled[inner], atol=1e-6)
    assert matches == 1  # a whole-pixel shift within +-2


def test_crop_view_magnifies_a_ramp():
    """A crop of half the side, enlarged to full size, doubles a horizontal ramp's slope."""
    eng = engine((16, 16, 1), decorrelate=False)
    ramp = np.tile(np.arange(16, dtype=np.float32), (16, 1))[None, :, :, None]
    view = eng._augment(
        tf.constant(ramp), plain_hyper(crop_lo=0.5, crop_hi=0.5), tf.constant([1, 2])
    )
    slope = np.diff(view.numpy()[0, 4:12, 4:12, 0], axis=1)
    np.testing.assert_allclose(slope, 0.5, atol=1e-4)


def test_augmentation_is_differentiable():
    eng = engine((10, 10, 3))
    images = tf.constant(np.random.default_rng(4).uniform(0, 1, (1, 10, 10, 3)), tf.float32)
    augment = plain_hyper(jitter=1.0, rotation=0.2, zoom_lo=0.9, zoom_hi=1.1, crop_lo=0.6,
                          noise=0.02, views=2.0)  # fmt: skip
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = eng._augment(images, augment, tf.constant([7, 1]))
        total = tf.reduce_sum(out * tf.linspace(0.0, 1.0, 10)[None, :, None, None])
    grad = tape.gradient(total, images).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).sum() > 1.0


def tiny_rgb(size: int = 128) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = L.AveragePooling2D(8)(inputs)  # keeps the test cheap at an ImageNet-like size
    x = L.Conv2D(8, 3, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(4, activation="softmax", name="probs")(x))


def test_large_rgb_recipe_raises_the_logit_and_keeps_the_model():
    model = tiny_rgb()
    before = [w.copy() for w in model.get_weights()]
    recipe = Recipe.for_input((128, 128, 3))
    assert (recipe.views, recipe.decay_start) == (4, 2.5)
    assert recipe.class_objective == "logit_minus_mean"
    result = maximize_activation(model, units=[0, 2], steps=30, seed=1, progress=False)
    assert result.params["views"] == 4 and result.params["contrast"] == 2.0
    history = result.score_history
    assert np.all(history[-5:].mean(axis=0) > history[:5].mean(axis=0))
    # the reported value is the logit itself (not minus the mean) on the returned image
    head = model.get_layer("probs")
    penultimate = keras.Model(model.inputs, head.input)
    kernel, bias = head.get_weights()
    logits = penultimate(result.images).numpy() @ kernel + bias
    np.testing.assert_allclose(result.activation, logits[[0, 1], [0, 2]], rtol=1e-4, atol=1e-5)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    again = maximize_activation(model, units=[0, 2], steps=30, seed=1, progress=False)
    np.testing.assert_array_equal(result.images, again.images)
    other = maximize_activation(model, units=[0, 2], steps=30, seed=2, progress=False)
    assert not np.array_equal(result.images, other.images)


def test_recipe_rejects_bad_new_values():
    from vizkit.errors import InputError

    for change in [{"views": 0}, {"crop": (0.5, 1.5)}, {"anneal": 2.0}, {"noise": -1.0},
                   {"class_objective": "softmax"}, {"decay_start": -1.0}]:  # fmt: skip
        with pytest.raises(InputError):
            Recipe().replace(**change)


def test_target_groups_cover_every_target_once():
    for count, views in [(1, 4), (8, 4), (9, 4), (12, 4), (40, 1), (3, 64)]:
        groups = target_groups(count, views)
        covered = np.concatenate([np.arange(count)[g] for g in groups])
        np.testing.assert_array_equal(covered, np.arange(count))
        assert all((g.stop - g.start) * views <= max(32, views) for g in groups)
