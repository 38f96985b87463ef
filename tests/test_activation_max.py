"""Activation maximization: values against independent references, recipe, safety, plots.

Tiny seeded models are the specification; the quality bar on the sample ``digits_cnn`` runs when
the sample models are built (skipped otherwise). ``VIZKIT_MAX_STEPS=40`` (conftest) caps steps.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from vizkit._tf import keras
from vizkit.activation_max import ENV_MAX_STEPS, Recipe, max_steps, maximize_activation
from vizkit.errors import InputError, LayerError
from vizkit.results.inspection import ActivationImages

L = keras.layers
CAP = int(os.environ.get(ENV_MAX_STEPS, "40"))


# --------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------
def tiny_cnn(seed: int = 0, channels: int = 1, classes: int = 3) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12, 12, channels), name="image")
    x = L.Conv2D(4, 3, activation="relu", name="conv1")(inputs)
    x = L.Conv2D(6, 3, name="conv2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(5, activation="relu", name="fc")(x)
    outputs = L.Dense(classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def half_plane_model() -> keras.Model:
    """Linear classifier whose class-0 logit is (sum of left half) - (sum of right half)."""
    inputs = keras.Input((6, 6, 1))
    flat = L.Flatten()(inputs)
    outputs = L.Dense(2, activation="softmax", name="head")(flat)
    model = keras.Model(inputs, outputs)
    sign = np.where(np.arange(6)[None, :] < 3, 1.0, -1.0) * np.ones((6, 1))
    kernel = np.stack([sign.reshape(-1), -sign.reshape(-1)], axis=1).astype(np.float32)
    model.get_layer("head").set_weights([kernel, np.zeros(2, np.float32)])
    return model


def snapshot(model: keras.Model) -> tuple:
    return (
        [w.copy() for w in model.get_weights()],
        [id(layer) for layer in model.layers],
        [layer.dtype_policy.name for layer in model.layers],
        [getattr(getattr(layer, "activation", None), "__name__", None) for layer in model.layers],
        len(model.outputs),
    )


def assert_unchanged(model: keras.Model, before: tuple) -> None:
    after = snapshot(model)
    for a, b in zip(before[0], after[0]):
        np.testing.assert_array_equal(a, b)
    assert before[1:] == after[1:]


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    return tiny_cnn()


# --------------------------------------------------------------------------------------------
# Recipe and step cap
# --------------------------------------------------------------------------------------------
def test_recipe_defaults_adapt_to_input_size():
    digits = Recipe.for_input((28, 28, 1))
    shapes = Recipe.for_input((None, 64, 64, 3))
    large = Recipe.for_input((224, 224, 3))
    assert (digits.jitter, digits.decorrelate, digits.learning_rate) == (2, False, 0.1)
    assert (shapes.jitter, shapes.decorrelate, shapes.learning_rate) == (4, True, 0.05)
    # ImageNet-size RGB inputs: Recipe.for_large_rgb (several crops per step, 5% jitter,
    # a steeper spectrum annealed from steeper still, fixed contrast)
    assert large == Recipe.for_large_rgb(224)
    assert (large.jitter, large.views, large.decay_start) == (11, 4, 2.5)
    assert (digits.decay_power, shapes.decay_power, large.decay_power) == (1.0, 1.0, 1.5)
    assert (digits.views, shapes.views, digits.contrast) == (1, 1, 0.0)
    assert Recipe.for_input((224, 224, 1)).views == 1  # large grey inputs keep the plain recipe
    assert Recipe.for_input((28, 28, 1), jitter=0).jitter == 0


@pytest.mark.parametrize(
    "change",
    [{"bogus": 1}, {"parameterization": "wavelet"}, {"steps": 0}, {"scale": (1.2, 1.0)},
     {"tv_weight": -1.0}, {"learning_rate": 0.0}, {"polish": 1.5}, {"polish_l2": -0.5}],
)  # fmt: skip
def test_recipe_rejects_bad_values(change):
    with pytest.raises(InputError):
        Recipe.for_input((28, 28, 1), **change)


def test_max_steps_reads_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_MAX_STEPS, "7")
    assert max_steps(200) == 7 and max_steps(3) == 3
    monkeypatch.delenv(ENV_MAX_STEPS)
    assert max_steps(200) == 200
    monkeypatch.setenv(ENV_MAX_STEPS, "many")
    with pytest.raises(InputError, match=ENV_MAX_STEPS):
        max_steps(10)


# --------------------------------------------------------------------------------------------
# Values against independent references
# --------------------------------------------------------------------------------------------
def test_linear_class_optimum_is_found():
    """The class-0 logit of ``half_plane_model`` is maximal for a white left, black right."""
    model = half_plane_model()
    result = maximize_activation(
        model, units=0, parameterization="pixel", learning_rate=0.3, jitter=0, rotation=0.0,
        scale=(1.0, 1.0), tv_weight=0.0, l2_weight=0.0, progress=False,
    )  # fmt: skip
    image = result.images[0, ..., 0]
    assert image[:, :3].min() > 0.9 and image[:, 3:].max() < 0.1
    logit = image[:, :3].sum() - image[:, 3:].sum()  # closed form, no softmax
    np.testing.assert_allclose(result.activation[0], logit, rtol=1e-4)
    assert result.predicted.tolist() == [0]


def test_polish_phase_is_the_unaugmented_recipe_with_scaled_l2(cnn):
    """polish=1 runs every step as the polish phase: no jitter, zoom or rotation, L2 x polish_l2."""
    common = dict(units=[0, 1], steps=12, seed=3, progress=False, tv_weight=0.2)
    polished = maximize_activation(
        cnn, polish=1.0, polish_l2=0.25, l2_weight=4.0, jitter=2, rotation=10.0, **common
    )
    plain = maximize_activation(
        cnn, polish=0.0, l2_weight=1.0, jitter=0, rotation=0.0, scale=(1.0, 1.0), **common
    )
    np.testing.assert_allclose(polished.images, plain.images, rtol=1e-5, atol=1e-6)
    default = maximize_activation(cnn, **common)  # polish 0.1: the last step differs
    unpolished = maximize_activation(cnn, polish=0.0, **common)
    np.testing.assert_allclose(
        default.score_history[:10], unpolished.score_history[:10], rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(default.images, unpolished.images)


def test_class_activation_is_the_logit_on_the_returned_image(cnn):
    result = maximize_activation(cnn, units=[0, 2], seed=1, progress=False)
    penultimate = keras.Model(cnn.inputs, cnn.get_layer("fc").output)
    kernel, bias = cnn.get_layer("probs").get_weights()
    logits = penultimate(result.images).numpy() @ kernel + bias
    np.testing.assert_allclose(result.activation, logits[[0, 1], [0, 2]], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.predicted, logits.argmax(axis=1))
    # the noise baseline: 64 uniform-noise images from a fixed seed, shared by the targets
    noise = np.random.default_rng(20170707).uniform(0, 1, (64, 12, 12, 1)).astype(np.float32)
    noise_logits = penultimate(noise).numpy() @ kernel + bias
    expected = noise_logits[:, [0, 2]].mean(axis=0)
    np.testing.assert_allclose(result.noise_activation, expected, rtol=1e-4, atol=1e-6)
    assert np.all(result.activation > result.noise_activation)
    assert np.all(result.activation > result.mean_activation)


@pytest.mark.parametrize("objective", ["mean", "center"])
def test_channel_objectives_match_a_plain_model(cnn, objective):
    result = maximize_activation(cnn, "conv1", [1, 3], objective=objective, progress=False)
    maps = keras.Model(cnn.inputs, cnn.get_layer("conv1").output)(result.images).numpy()
    if objective == "mean":
        expected = maps.mean(axis=(1, 2))[[0, 1], [1, 3]]
    else:
        h, w = maps.shape[1:3]
        expected = maps[[0, 1], h // 2, w // 2, [1, 3]]
    np.testing.assert_allclose(result.activation, expected, rtol=1e-4, atol=1e-6)
    assert result.kind == "channel" and result.objective == objective
    assert result.labels == ("channel 1", "channel 3")


def test_dense_unit_and_relu_layer_targets(cnn):
    result = maximize_activation(cnn, "fc", [0, 4], progress=False)
    fc = keras.Model(cnn.inputs, cnn.get_layer("fc").output)(result.images).numpy()
    np.testing.assert_allclose(result.activation, fc[[0, 1], [0, 4]], rtol=1e-4, atol=1e-6)
    assert result.kind == "unit" and result.predicted is None
    relu = maximize_activation(cnn, "relu2", 5, progress=False)
    maps = keras.Model(cnn.inputs, cnn.get_layer("relu2").output)(relu.images).numpy()
    np.testing.assert_allclose(relu.activation[0], maps[0, ..., 5].mean(), rtol=1e-4, atol=1e-6)


def test_unit_dead_on_the_start_image_is_still_reached():
    """A ReLU channel that is zero on grey must still be optimized (redirected gradient)."""
    inputs = keras.Input((9, 9, 1))
    conv = L.Conv2D(1, 3, activation="relu", name="conv")
    model = keras.Model(inputs, L.Dense(2)(L.Flatten()(conv(inputs))))
    conv.set_weights([np.ones((3, 3, 1, 1), np.float32), np.array([-5.0], np.float32)])
    result = maximize_activation(
        model, "conv", 0, parameterization="pixel", learning_rate=0.3, progress=False
    )
    assert result.activation[0] > 1.0  # grey gives relu(4.5 - 5) = 0; white gives 4
    assert result.mean_activation[0] == 0.0


@pytest.mark.parametrize("activation", ["sigmoid", None], ids=["sigmoid", "logit"])
def test_single_unit_head_has_two_classes(activation):
    model = half_plane_model()
    inputs = keras.Input((6, 6, 1))
    dense = L.Dense(1, activation=activation, name="out")
    binary = keras.Model(inputs, dense(L.Flatten()(inputs)))
    dense.set_weights([model.get_layer("head").get_weights()[0][:, :1], np.zeros(1, np.float32)])
    result = maximize_activation(binary, units=[0, 1], parameterization="pixel", progress=False)
    logit = (
        keras.Model(binary.inputs, binary.layers[-2].output)(result.images).numpy().reshape(2, -1)
        @ dense.get_weights()[0]
    )
    np.testing.assert_allclose(result.activation, [-logit[0, 0], logit[1, 0]], rtol=1e-4)
    assert result.predicted.tolist() == [0, 1]
    assert result.units.tolist() == [0, 1]


def test_nested_layer_by_path():
    keras.utils.set_random_seed(3)
    inner_in = keras.Input((10, 10, 3))
    base = keras.Model(inner_in, L.Conv2D(4, 3, name="inner_conv")(inner_in), name="base")
    inputs = keras.Input((10, 10, 3))
    x = L.GlobalAveragePooling2D()(base(inputs))
    model = keras.Model(inputs, L.Dense(2, activation="softmax")(x))
    result = maximize_activation(model, "base/inner_conv", [2], progress=False)
    maps = base(result.images).numpy()
    np.testing.assert_allclose(result.activation[0], maps[0, ..., 2].mean(), rtol=1e-4, atol=1e-6)
    assert result.layer == "base/inner_conv"
    assert result.images.shape == (1, 10, 10, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_fourier_images_of_odd_sizes(channels):
    keras.utils.set_random_seed(6)
    inputs = keras.Input((7, 9, channels))
    x = L.Conv2D(2, 3, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, L.Dense(2)(L.GlobalAveragePooling2D()(x)))
    result = maximize_activation(model, "conv", [0, 1], steps=15, progress=False)
    assert result.images.shape == (2, 7, 9, channels)
    assert result.params["decorrelate"] is (channels == 3)
    assert np.all(result.activation >= result.mean_activation)


# --------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------
def test_result_contract(cnn):
    before = snapshot(cnn)
    result = maximize_activation(cnn, units=[0, 1, 2], value_range=(-1.0, 1.0), progress=False)
    assert isinstance(result, ActivationImages)
    assert type(result.images) is np.ndarray and result.images.dtype == np.float32
    assert result.images.shape == (3, 12, 12, 1)
    assert result.images.min() >= -1.0 and result.images.max() <= 1.0
    assert result.display.min() >= 0.0 and result.display.max() <= 1.0
    assert result.steps == min(CAP, 200)
    assert result.loss_history.shape == result.score_history.shape == (result.steps, 3)
    assert np.all(np.isfinite(result.loss_history))
    assert result.units.tolist() == [0, 1, 2] and result.kind == "class"
    assert result.params["parameterization"] == "fourier"
    assert_unchanged(cnn, before)
    probs = cnn(result.images).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)  # the softmax is still there


def test_deterministic_with_a_seed(cnn):
    a = maximize_activation(cnn, "conv1", [0, 1], seed=5, steps=10, progress=False)
    b = maximize_activation(cnn, "conv1", [0, 1], seed=5, steps=10, progress=False)
    c = maximize_activation(cnn, "conv1", [0, 1], seed=6, steps=10, progress=False)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert a.steps == 10


def test_pickle_round_trip(cnn):
    result = maximize_activation(cnn, units=1, steps=5, progress=False)
    back = pickle.loads(pickle.dumps(result))
    np.testing.assert_array_equal(back.images, result.images)
    assert back.labels == result.labels and back.params == result.params
    assert not back.images.flags.writeable


def test_progress_callback_and_tqdm(cnn, capsys):
    calls = []
    maximize_activation(cnn, units=0, steps=12, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[0] == (0, 12) and calls[-1] == (12, 12)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    maximize_activation(cnn, units=0, steps=3, progress=True)  # tqdm, disabled off a terminal


def test_default_units_and_class_names(cnn):
    result = maximize_activation(cnn, class_names=["a", "b", "c"], steps=2, progress=False)
    assert result.units.tolist() == [0, 1, 2]
    assert result.labels == ("class 0 (a)", "class 1 (b)", "class 2 (c)")
    channels = maximize_activation(cnn, "conv2", steps=2, progress=False)
    assert channels.units.tolist() == list(range(6))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"units": 3}, InputError),
        ({"units": [-4]}, InputError),
        ({"units": [0.5]}, InputError),
        ({"layer": "nope"}, LayerError),
        ({"objective": "max"}, InputError),
        ({"backend": "lucid"}, InputError),
        ({"value_range": (1.0, 0.0)}, InputError),
        ({"class_names": ["x"]}, InputError),
        ({"jitter_px": 3}, InputError),
    ],
)
def test_bad_arguments_raise_clearly(cnn, kwargs, error):
    with pytest.raises(error):
        maximize_activation(cnn, progress=False, steps=1, **kwargs)


def test_vector_input_model_is_refused():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, L.Dense(2)(inputs))
    with pytest.raises(InputError, match="image model"):
        maximize_activation(model, progress=False)


def test_mixed_precision_model_is_optimized_in_float32():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_cnn(seed=4)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.get_layer("conv1").compute_dtype == "float16"
    before = snapshot(model)
    result = maximize_activation(model, units=[0, 1], progress=False)
    assert result.images.dtype == np.float32 and np.all(np.isfinite(result.images))
    assert np.all(result.activation > result.noise_activation)
    # the float32 copies compute what the mixed model computes, up to float16 rounding
    penultimate = keras.Model(model.inputs, model.get_layer("fc").output)
    kernel, bias = model.get_layer("probs").get_weights()
    logits = penultimate(result.images).numpy().astype(np.float32) @ kernel + bias
    np.testing.assert_allclose(result.activation, logits[[0, 1], [0, 1]], rtol=2e-2, atol=2e-2)
    channel = maximize_activation(model, "conv2", [0], progress=False)
    assert channel.activation[0] > channel.mean_activation[0]
    assert_unchanged(model, before)
    assert model.get_layer("conv1").compute_dtype == "float16"


def test_sequential_model_works():
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), L.Conv2D(3, 3, activation="relu"), L.Flatten(),
         L.Dense(2, activation="softmax")]
    )  # fmt: skip
    before = snapshot(model)
    result = maximize_activation(model, units=[0, 1], progress=False)
    assert result.images.shape == (2, 8, 8, 3)
    assert np.all(result.activation > result.noise_activation)
    assert_unchanged(model, before)


# --------------------------------------------------------------------------------------------
# Plots and frames
# --------------------------------------------------------------------------------------------
def test_plot_draws_a_titled_grid(cnn):
    from matplotlib.figure import Figure

    result = maximize_activation(cnn, "conv2", [0, 1, 2, 3], steps=3, progress=False)
    fig = result.plot()
    assert isinstance(fig, Figure)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 4 and len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert all(t.startswith(f"channel {u}\n") for t, u in zip(titles, [0, 1, 2, 3]))
    assert "conv2" in fig._suptitle.get_text()
    given = Figure()
    assert result.plot(fig=given) is given and len(given.axes) == 4


def test_plot_history_and_frame(cnn):
    result = maximize_activation(cnn, units=[0, 1], steps=4, progress=False)
    ax = result.plot_history()
    assert len(ax.lines) == 2
    frame = result.to_frame()
    assert list(frame["unit"]) == [0, 1]
    assert {"activation", "noise", "noise_spread", "mean_input", "predicted"} <= set(frame)
    np.testing.assert_allclose(frame["activation"], result.activation)
    # gain over noise: activation minus the noise mean, in noise standard deviations
    above = result.activation - result.noise_activation
    np.testing.assert_allclose(frame["above_noise"], above, rtol=1e-5)
    np.testing.assert_allclose(frame["gain_over_noise"], above / result.noise_spread, rtol=1e-5)
    assert np.all(result.noise_spread > 0)


# --------------------------------------------------------------------------------------------
# tf-keras-vis backend
# --------------------------------------------------------------------------------------------
def test_tf_keras_vis_backend_returns_numpy_and_keeps_the_model(cnn):
    before = snapshot(cnn)
    calls = []
    result = maximize_activation(
        cnn, units=[0, 1], backend="tf-keras-vis", steps=5, seed=2,
        progress=lambda d, t: calls.append(d),
    )  # fmt: skip
    assert type(result.images) is np.ndarray and result.images.shape == (2, 12, 12, 1)
    assert result.backend == "tf-keras-vis" and result.loss_history.shape == (5, 2)
    assert calls[-1] == 5
    again = maximize_activation(
        cnn, units=[0, 1], backend="tf-keras-vis", steps=5, seed=2, progress=False
    )
    np.testing.assert_array_equal(result.images, again.images)
    assert_unchanged(cnn, before)


def test_tf_keras_vis_backend_on_mixed_precision():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_cnn(seed=5)
    finally:
        keras.config.set_dtype_policy("float32")
    result = maximize_activation(
        model, units=0, backend="tf-keras-vis", steps=10, seed=3, progress=False
    )
    assert result.images.dtype == np.float32 and np.all(np.isfinite(result.images))
    start = np.random.default_rng(3).uniform(0.0, 1.0, (1, 12, 12, 1))  # the adapter's seed
    assert np.abs(result.images - start).max() > 0.05  # it did optimize (tf-keras-vis alone
    # returns its seed unchanged on mixed_float16 models)


# --------------------------------------------------------------------------------------------
# Quality bar on the sample models (run when they are built)
# --------------------------------------------------------------------------------------------
def _sample(name: str):
    """The sample model and its test images, or a skip when it is not built (never builds)."""
    samples = pytest.importorskip("vizkit.samples")
    catalog = pytest.importorskip("sample_models.catalog")
    state, reason = catalog.status(name)
    if state != "ok":
        pytest.skip(f"sample model {name!r} is {state} ({reason}): run `make samples`")
    return samples.sample_model(name), samples.sample_images(name)


def test_digits_cnn_classes_are_recognized(monkeypatch):
    """The issue's bar, at the recipe's full step count (not the suite's 40-step cap)."""
    monkeypatch.delenv("VIZKIT_MAX_STEPS", raising=False)
    model, _ = _sample("digits_cnn")
    result = maximize_activation(model, units=list(range(10)), progress=False)
    assert result.predicted.tolist() == list(range(10))
    ratio = result.activation / np.maximum(result.noise_activation, 1e-6)
    # the weakest digit is 8 (uniform noise is "ink-heavy" and already scores 2.65 for an 8):
    # 10.8-10.9x over seeds 0-4 with the polish phase, 9.7-9.8x without it
    assert np.all(ratio >= 10), ratio
    assert np.all(result.activation > result.mean_activation)


def test_digits_cnn_channels_beat_the_test_images():
    import vizkit

    model, images = _sample("digits_cnn")
    for layer in ("conv1", "conv2"):
        maps = vizkit.feature_maps(model, images, layer, keep_images=False).activations
        channels = list(range(min(16, maps.shape[-1])))
        best = maps.mean(axis=(1, 2))[:, channels].max(axis=0)
        result = maximize_activation(model, layer, channels, progress=False)
        assert (result.activation > best).mean() >= 0.75, layer
