"""vizkit.compat.keras_vis: keras-vis tutorial code runs with its imports changed.

Three layers of checks:

- the classic keras-vis MNIST loops (activation per class, saliency and Grad-CAM with the
  vanilla / guided / relu modifiers over the ten classes), copied with only the imports changed,
  run on ``digits_cnn`` and give keras-vis's shapes, dtypes and value ranges;
- each function agrees numerically with the vizkit method it stands on (saliency,
  guided_backprop, rectified_backprop, gradcam, maximize_activation) or with a plain
  ``tf.GradientTape`` reference written here;
- the utilities (apply_modifications, find_layer_idx, stitch_images, load_img, normalize,
  overlay) behave as keras-vis's.

``digits_cnn`` is the trained sample model when it has been built (``python -m sample_models
build``); otherwise the same architecture is trained here for two short epochs on the offline
digits data (a few seconds), so the tutorial loops always run.
"""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from vizkit._tf import keras, tf
from vizkit.activation_max import Recipe
from vizkit.compat.keras_vis import utils, visualization
from vizkit.compat.keras_vis.visualization import (
    overlay,
    visualize_activation,
    visualize_cam,
    visualize_saliency,
)
from vizkit.errors import InputError, LayerError
from vizkit.methods import create

activations = keras.activations  # the tutorials' ``from keras import activations``


# --------------------------------------------------------------------------------------------
# digits_cnn and its test images, shaped as the keras-vis MNIST tutorials use them
# --------------------------------------------------------------------------------------------
def _private_copy(model: keras.Model) -> keras.Model:
    """The tutorials mutate the model: never touch a shared (cached) sample model."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _train_digits_cnn() -> tuple[keras.Model, np.ndarray, np.ndarray]:
    from sample_models.architectures import digits_cnn
    from sample_models.data import digits_dataset

    keras.utils.set_random_seed(0)
    data = digits_dataset(seed=0, copies=1)
    model = digits_cnn()
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(data.train.x, data.train.y, epochs=2, batch_size=64, verbose=0)
    return model, data.test.x, data.test.y


@pytest.fixture(scope="module")
def mnist():
    """``(model, x_test, y_test)``: x_test (N, 28, 28, 1) in [0, 1], y_test one-hot."""
    try:
        from vizkit import samples

        model = _private_copy(samples.sample_model("digits_cnn"))
        images = samples.sample_images("digits_cnn")
        x_test, labels = np.asarray(images.array, dtype=np.float32), np.asarray(images.labels)
    except (ImportError, FileNotFoundError, OSError, vizkit.VizkitError):
        model, x_test, labels = _train_digits_cnn()
    y_test = keras.utils.to_categorical(labels, 10)
    return model, x_test, y_test


@pytest.fixture(scope="module")
def linear_model(mnist):
    """The tutorials' swap: softmax -> linear, then apply_modifications."""
    model = _private_copy(mnist[0])
    layer_idx = utils.find_layer_idx(model, "predictions")
    model.layers[layer_idx].activation = activations.linear
    return utils.apply_modifications(model), layer_idx


def first_of_each_class(y_test):
    return [int(np.where(y_test[:, class_idx] == 1.0)[0][0]) for class_idx in range(10)]


# --------------------------------------------------------------------------------------------
# The classic loops, as published, with only the imports changed
# --------------------------------------------------------------------------------------------
def test_saliency_and_cam_loops_over_ten_classes(mnist):
    import matplotlib.pyplot as plt

    model, x_test, y_test = mnist
    model = _private_copy(model)
    results = {}

    # ---- keras-vis examples/mnist/attention.ipynb, imports changed ----
    layer_idx = utils.find_layer_idx(model, "predictions")

    # Swap softmax with linear
    model.layers[layer_idx].activation = activations.linear
    model = utils.apply_modifications(model)

    for fn in (visualize_saliency, visualize_cam):
        for class_idx in np.arange(10):
            indices = np.where(y_test[:, class_idx] == 1.0)[0]
            idx = indices[0]

            f, ax = plt.subplots(1, 4)
            ax[0].imshow(x_test[idx][..., 0])

            for i, modifier in enumerate([None, "guided", "relu"]):
                grads = fn(
                    model,
                    layer_idx,
                    filter_indices=class_idx,
                    seed_input=x_test[idx],
                    backprop_modifier=modifier,
                )
                if modifier is None:
                    modifier = "vanilla"
                ax[i + 1].set_title(modifier)
                ax[i + 1].imshow(grads, cmap="jet")
                results[fn.__name__, int(class_idx), modifier] = grads
            plt.close(f)
    # ---- end of tutorial code ----

    assert len(results) == 2 * 10 * 3
    for (name, class_idx, modifier), grads in results.items():
        assert grads.shape == (28, 28) and grads.dtype == np.float32, (name, class_idx, modifier)
        assert np.isfinite(grads).all()
        assert grads.min() >= 0.0 and grads.max() <= 1.0
        # min-max normalized; a Grad-CAM whose weighted sum is negative everywhere is all zero
        assert grads.max() > 0.99 or grads.max() == 0.0, (name, class_idx, modifier)
    assert sum(g.max() > 0.99 for g in results.values()) >= 50
    for name in ("visualize_saliency", "visualize_cam"):
        vanilla = results[name, 3, "vanilla"]
        assert not np.allclose(vanilla, results[name, 3, "guided"]), name
        assert not np.allclose(results[name, 3, "guided"], results[name, 3, "relu"]), name
        assert not np.allclose(vanilla, results[name, 5, "vanilla"]), "maps ignore the class"


def test_activation_per_class_loop(mnist, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("VIZKIT_MAX_STEPS", "40")
    model = _private_copy(mnist[0])
    images = []

    # ---- keras-vis examples/mnist/activation_maximization.ipynb, imports changed ----
    layer_idx = utils.find_layer_idx(model, "predictions")

    # Swap softmax with linear
    model.layers[layer_idx].activation = activations.linear
    model = utils.apply_modifications(model)

    # This is the output node we want to maximize.
    filter_idx = 0
    img = visualize_activation(model, layer_idx, filter_indices=filter_idx)
    plt.imshow(img[..., 0])
    default_range = img

    for output_idx in np.arange(10):
        # Lets turn off verbose output this time to avoid clutter and just see the output.
        img = visualize_activation(
            model, layer_idx, filter_indices=output_idx, input_range=(0.0, 1.0)
        )
        plt.figure()
        plt.title("Networks perception of {}".format(output_idx))  # noqa: UP032 (as published)
        plt.imshow(img[..., 0])
        images.append(img)
    # ---- end of tutorial code ----

    assert default_range.shape == (28, 28, 1) and default_range.dtype == np.uint8
    stacked = np.stack(images)
    assert stacked.shape == (10, 28, 28, 1) and stacked.dtype == np.float32
    assert stacked.min() >= 0.0 and stacked.max() <= 1.0
    predicted = model.predict(stacked, verbose=0).argmax(axis=1)
    assert (predicted == np.arange(10)).sum() >= 8, predicted
    grid = utils.stitch_images([(im * 255).astype(np.uint8) for im in images], cols=5)
    assert grid.shape == (2 * 28 + 5, 5 * 28 + 4 * 5, 1) and grid.dtype == np.uint8


# --------------------------------------------------------------------------------------------
# Agreement with vizkit's methods and with plain GradientTape references
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("modifier", "method"),
    [(None, "saliency"), ("guided", "guided_backprop"), ("relu", "rectified_backprop")],
)
def test_saliency_matches_vizkit_gradient_methods(mnist, linear_model, modifier, method):
    _, x_test, y_test = mnist
    model, layer_idx = linear_model
    for idx in first_of_each_class(y_test)[:3]:
        label = int(y_test[idx].argmax())
        got = visualize_saliency(model, layer_idx, label, x_test[idx], backprop_modifier=modifier)
        maps = vizkit.explain(
            model, x_test[idx : idx + 1], method, targets=label, channels="max_abs"
        ).maps
        np.testing.assert_allclose(got, utils.normalize(maps)[0], atol=1e-6)


def test_saliency_grad_modifiers_and_keepdims_on_rgb(models_rgb):
    """The grad_modifier acts on the raw per-channel gradient, before the channel maximum."""
    model = models_rgb["sequential"]
    x = zoo.images(1)
    _, raw = create(model, "saliency").gradients(x, np.array([2], np.int32))
    raw = raw.astype(np.float32)
    expected = {
        "absolute": np.abs(raw),
        "relu": np.maximum(raw, 0),
        "negate": -raw,
        "invert": 1.0 / (raw + 1e-7),
        "small_values": np.abs(1.0 / (raw + 1e-7)),
        None: raw,
    }
    for name, modified in expected.items():
        got = visualize_saliency(model, -1, 2, x[0], grad_modifier=name)
        np.testing.assert_allclose(got, utils.normalize(modified.max(axis=-1))[0], atol=1e-5)
        kept = visualize_saliency(model, -1, 2, x[0], grad_modifier=name, keepdims=True)
        assert kept.shape == (16, 16, 3)
        np.testing.assert_allclose(kept, utils.normalize(modified)[0], atol=1e-5)
    custom = visualize_saliency(model, -1, 2, x, grad_modifier=lambda g: g**2)
    np.testing.assert_allclose(custom, utils.normalize((raw**2).max(axis=-1))[0], atol=1e-5)


def test_filter_index_lists_sum_and_none_averages(models_rgb):
    model = models_rgb["sequential"]
    x = zoo.images(1)
    method = create(model, "saliency")
    raw = [method.gradients(x, np.array([k], np.int32))[1] for k in range(3)]
    pair = visualize_saliency(model, -1, [0, 2], x[0], grad_modifier=None)
    np.testing.assert_allclose(pair, utils.normalize((raw[0] + raw[2]).max(axis=-1))[0], atol=1e-5)
    mean = visualize_saliency(model, -1, None, x[0], grad_modifier=None, keepdims=True)
    np.testing.assert_allclose(mean, utils.normalize(sum(raw) / 3)[0], atol=1e-5)


def test_conv_filter_saliency_and_wrt_tensor_match_tape(linear_model, mnist):
    """A convolutional channel (its spatial mean) and gradients at an inner layer, against
    references computed here layer by layer."""
    model, layer_idx = linear_model
    x = mnist[1][:1]
    conv2 = utils.find_layer_idx(model, "conv2")
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        channel = tf.reduce_mean(model.layers[conv2](model.layers[conv2 - 1](xt))[..., 5])
    reference = np.abs(tape.gradient(channel, xt).numpy()).max(axis=-1)
    got = visualize_saliency(model, conv2, 5, x[0])
    np.testing.assert_allclose(got, utils.normalize(reference)[0], atol=1e-6)

    conv1_out = tf.constant(model.layers[1](xt))  # wrt the first conv layer's output
    with tf.GradientTape() as tape:
        tape.watch(conv1_out)
        h = conv1_out
        for layer in model.layers[2:]:
            h = layer(h)
        logit = h[0, 7]
    reference = np.abs(tape.gradient(logit, conv1_out).numpy()).max(axis=-1)
    for wrt in (model.layers[1].output, "conv1", 1):
        got = visualize_saliency(model, layer_idx, 7, x[0], wrt_tensor=wrt)
        assert got.shape == (24, 24)
        np.testing.assert_allclose(got, utils.normalize(reference)[0], atol=1e-5)
    same = visualize_saliency(model, layer_idx, 7, x[0], wrt_tensor=model.inputs[0])
    np.testing.assert_allclose(same, visualize_saliency(model, layer_idx, 7, x[0]))


def test_cam_matches_vizkit_gradcam(mnist, linear_model):
    from scipy import ndimage

    _, x_test, y_test = mnist
    model, layer_idx = linear_model
    for idx in first_of_each_class(y_test)[:3]:
        label = int(y_test[idx].argmax())
        got = visualize_cam(model, layer_idx, label, x_test[idx])
        # keras-vis's default penultimate layer skips fc1 and flatten: the pooling layer
        explained = vizkit.explain(
            model, x_test[idx : idx + 1], "gradcam", targets=label, layer="pool"
        )
        coarse = explained.extras["cam"][0]
        expected = utils.normalize(ndimage.zoom(coarse, 28 / coarse.shape[0]))
        # equal up to where normalize's 1e-7 lands (keras-vis divides the gradients by their max)
        np.testing.assert_allclose(got, expected, atol=2e-4)
        at_conv1 = visualize_cam(model, layer_idx, label, x_test[idx], penultimate_layer_idx=1)
        coarse = vizkit.explain(
            model, x_test[idx : idx + 1], "gradcam", targets=label, layer="conv1"
        ).extras["cam"][0]
        np.testing.assert_allclose(
            at_conv1, utils.normalize(ndimage.zoom(coarse, 28 / 24)), atol=2e-4
        )


def test_cam_modifiers_nested_models_and_errors(models_rgb):
    x = zoo.images(1)[0]
    # no ReLU between the pooling layer and the head: guided == vanilla there
    seq = models_rgb["sequential"]  # conv1 relu, pool1, conv2 relu, flatten, probs
    pool_idx = utils.find_layer_idx(seq, "pool1")
    vanilla = visualize_cam(seq, -1, 1, x, penultimate_layer_idx=pool_idx)
    guided = visualize_cam(
        seq, -1, 1, x, penultimate_layer_idx=pool_idx, backprop_modifier="guided"
    )
    assert not np.allclose(vanilla, guided)  # conv2's ReLU lies between
    at_conv2 = visualize_cam(seq, -1, 1, x, penultimate_layer_idx="conv2")
    np.testing.assert_allclose(
        at_conv2,
        visualize_cam(seq, -1, 1, x, penultimate_layer_idx="conv2", backprop_modifier="guided"),
        atol=1e-6,
    )
    negated = visualize_cam(seq, -1, 1, x, penultimate_layer_idx="conv2", grad_modifier="negate")
    assert negated.shape == (16, 16) and not np.allclose(negated, at_conv2)

    nested = models_rgb["nested"]  # keras-vis could not look inside the base model
    cam = visualize_cam(nested, -1, 0, x)
    coarse = vizkit.explain(nested, x[None], "gradcam", targets=0, layer="base/inner_conv").extras[
        "cam"
    ][0]
    from scipy import ndimage

    np.testing.assert_allclose(cam, utils.normalize(ndimage.zoom(coarse, 16 / 12)), atol=2e-4)

    with pytest.raises(LayerError, match="before"):
        visualize_cam(seq, 1, 0, x, penultimate_layer_idx=3)
    with pytest.raises(LayerError, match="no Conv or Pooling"):
        visualize_cam(seq, 1, 0, x)


def test_head_is_scored_on_its_logit_with_or_without_the_swap(mnist, linear_model):
    model, x_test = mnist[0], mnist[1]
    swapped, layer_idx = linear_model
    for fn in (visualize_saliency, visualize_cam):
        np.testing.assert_allclose(
            fn(model, layer_idx, 4, x_test[0]), fn(swapped, layer_idx, 4, x_test[0]), atol=1e-6
        )


def test_single_sigmoid_unit_is_the_unit_itself(models_rgb):
    model = models_rgb["sigmoid"]
    x = zoo.images(1)
    got = visualize_saliency(model, -1, 0, x[0], grad_modifier=None)
    _, raw = create(model, "saliency").gradients(x, np.array([1], np.int32))  # class 1 = logit
    np.testing.assert_allclose(got, utils.normalize(raw.max(axis=-1))[0], atol=1e-6)


def test_in_place_changes_are_picked_up_without_apply_modifications(mnist):
    model, x_test = _private_copy(mnist[0]), mnist[1]
    before = visualize_saliency(model, -1, 3, x_test[0], grad_modifier=None)
    fc1 = utils.find_layer_idx(model, "fc1")
    model.layers[fc1].activation = activations.linear  # no apply_modifications
    after = visualize_saliency(model, -1, 3, x_test[0], grad_modifier=None)
    rebuilt = visualize_saliency(
        utils.apply_modifications(model), -1, 3, x_test[0], grad_modifier=None
    )
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, rebuilt, atol=1e-6)
    # the shared per-model cache was refreshed: vizkit's own methods see the change as well
    direct = vizkit.explain(model, x_test[:1], "saliency", targets=3, channels="max_abs").maps
    absolute = visualize_saliency(model, -1, 3, x_test[0])
    np.testing.assert_allclose(utils.normalize(direct)[0], absolute, atol=1e-6)


def test_activation_delegates_to_maximize_activation(linear_model, models_rgb, monkeypatch):
    monkeypatch.setenv("VIZKIT_MAX_STEPS", "15")
    model, layer_idx = linear_model
    # keras-vis's default weights (10, 10 against 1) are vizkit's defaults
    expected = vizkit.maximize_activation(model, None, [3], progress=False).images[0]
    got = visualize_activation(model, layer_idx, 3, input_range=(0.0, 1.0))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # other weights scale vizkit's proportionally; a convolutional channel is its spatial mean
    defaults = Recipe.for_input((28, 28, 1))
    plain = vizkit.maximize_activation(
        model,
        "conv2",
        [7],
        progress=False,
        seed=4,
        tv_weight=2 * defaults.tv_weight,
        l2_weight=0.0,
    ).images[0]
    got = visualize_activation(
        model,
        2,
        7,
        input_range=(0.0, 1.0),
        act_max_weight=0.5,
        tv_weight=10,
        lp_norm_weight=0,
        seed=4,
    )
    np.testing.assert_allclose(got, plain, atol=1e-6)
    as_uint8 = visualize_activation(model, layer_idx, 3, tv_weight=0, lp_norm_weight=0)
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == (28, 28, 1)
    # several units (or None) become one image for their summed objective
    both = visualize_activation(model, layer_idx, [1, 7], input_range=(0.0, 1.0))
    whole = visualize_activation(model, 2, None, input_range=(-1.0, 1.0))
    assert both.shape == whole.shape == (28, 28, 1)
    assert whole.min() >= -1.0 and whole.max() <= 1.0
    # a single sigmoid unit is maximized itself (vizkit's class 1)
    binary = models_rgb["sigmoid"]
    unit = visualize_activation(
        binary, -1, 0, input_range=(0.0, 1.0), tv_weight=0, lp_norm_weight=0
    )
    single = vizkit.maximize_activation(binary, None, [1], progress=False, tv_weight=0, l2_weight=0)
    np.testing.assert_allclose(unit, single.images[0], atol=1e-6)


def test_activation_arguments_vizkit_cannot_honour(linear_model, monkeypatch):
    monkeypatch.setenv("VIZKIT_MAX_STEPS", "2")
    model, layer_idx = linear_model
    with pytest.warns(UserWarning, match="seed_input"):
        visualize_activation(model, layer_idx, 1, seed_input=np.zeros((28, 28, 1)))
    with pytest.warns(UserWarning, match="input_modifiers"):
        visualize_activation(model, layer_idx, 1, input_modifiers=[object()])
    for bad in (
        {"backprop_modifier": "guided"},
        {"grad_modifier": "negate"},
        {"act_max_weight": 0},
        {"wrt_tensor": "conv1"},
    ):
        with pytest.raises(InputError):
            visualize_activation(model, layer_idx, 1, **bad)


# --------------------------------------------------------------------------------------------
# Argument errors
# --------------------------------------------------------------------------------------------
def test_bad_arguments_raise_clear_errors(linear_model, mnist):
    model, layer_idx = linear_model
    x = mnist[1]
    with pytest.raises(InputError, match="one image per call"):
        visualize_saliency(model, layer_idx, 0, x[:2])
    with pytest.raises(InputError, match="channels last"):
        visualize_saliency(model, layer_idx, 0, np.moveaxis(x[0], -1, 0)[None])
    with pytest.raises(InputError, match="grad_modifier"):
        visualize_saliency(model, layer_idx, 0, x[0], grad_modifier="square")
    with pytest.raises(InputError, match="backprop_modifier"):
        visualize_cam(model, layer_idx, 0, x[0], backprop_modifier="smooth")
    with pytest.raises(InputError, match="out of range"):
        visualize_saliency(model, layer_idx, 10, x[0])
    with pytest.raises(ValueError):  # keras-vis raised ValueError too
        utils.find_layer_idx(model, "preds")
    grey = visualize_saliency(model, layer_idx, 0, x[0, ..., 0])  # (H, W) for one channel
    np.testing.assert_allclose(grey, visualize_saliency(model, layer_idx, 0, x[0]))


# --------------------------------------------------------------------------------------------
# Utilities
# --------------------------------------------------------------------------------------------
def test_apply_modifications_returns_a_rebuilt_copy(models_rgb):
    x = zoo.images(2)
    for name in ("sequential", "nested", "relu_layers"):
        model = models_rgb[name]
        before = model(x).numpy()
        copy = utils.apply_modifications(model)
        assert copy is not model and type(copy) is type(model)
        assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
        np.testing.assert_allclose(copy(x).numpy(), before, atol=1e-6)
        assert all(a is not b for a, b in zip(copy.weights, model.weights))
    seq = zoo.sequential()
    seq.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    seq.layers[-1].activation = activations.linear
    linear = utils.apply_modifications(seq)
    assert linear.layers[-1].activation is activations.linear
    assert linear.compiled
    np.testing.assert_allclose(linear(x).numpy(), seq(x).numpy(), atol=1e-6)


def test_apply_modifications_with_custom_objects():
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(Scale(3.0)(inputs)))
    copy = utils.apply_modifications(model, custom_objects={"Scale": Scale})
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(copy(x).numpy(), model(x).numpy(), atol=1e-6)


def test_small_utilities_match_keras_vis():
    a = np.array([[1.0, 3.0], [5.0, 9.0]], np.float32)
    np.testing.assert_allclose(utils.normalize(a), (a - 1) / (8 + 1e-7), rtol=1e-6)
    np.testing.assert_allclose(utils.normalize(a, -1, 1), (a - 1) / (8 + 1e-7) * 2 - 1, rtol=1e-6)
    assert utils.normalize(a).dtype == np.float32
    np.testing.assert_array_equal(utils.normalize(np.full((2, 2), 4.0)), 0.0)

    tiles = [np.full((3, 2, 3), i + 1, np.uint8) for i in range(7)]
    grid = utils.stitch_images(tiles, margin=1, cols=3)
    assert grid.shape == (3 * 3 + 2, 3 * 2 + 2, 3) and grid.dtype == np.uint8
    assert grid[0, 0, 0] == 1 and grid[4, 3, 0] == 5 and grid[8, 0, 0] == 7
    assert grid[3, 0, 0] == 0 and grid[8, 3, 0] == 0  # margins and the empty slots stay black
    assert utils.stitch_images([]) is None
    assert utils.stitch_images([np.ones((2, 2))] * 2, margin=1).shape == (2, 5)

    heat = np.full((2, 2, 3), 200, np.uint8)
    image = np.full((2, 2, 3), 100, np.uint8)
    blended = overlay(heat, image, alpha=0.25)
    assert blended.dtype == np.uint8 and (blended == 125).all()
    with pytest.raises(ValueError):
        overlay(heat, image[..., 0])
    with pytest.raises(ValueError):
        overlay(heat, image, alpha=1.5)

    picture = utils.deprocess_input(np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    assert picture.min() >= 0 and picture.max() <= 255
    assert abs(picture.mean() - 127.5) < 1e-3
    np.testing.assert_array_equal(utils.bgr2rgb(np.arange(3)[None, None]), [[[2, 1, 0]]])
    conv = keras.layers.Conv2D(6, 3)
    conv(keras.Input((8, 8, 1)))
    assert visualization.get_num_filters(conv) == 6


def test_load_img_gives_rgb_uint8(tmp_path):
    from PIL import Image

    pixels = np.zeros((6, 8, 3), np.uint8)
    pixels[..., 0] = 200  # pure red: RGB order, not cv2's BGR
    path = tmp_path / "red.png"
    Image.fromarray(pixels).save(path)
    img = utils.load_img(str(path))
    assert img.shape == (6, 8, 3) and img.dtype == np.uint8
    assert (img[..., 0] == 200).all() and (img[..., 1:] == 0).all()
    small = utils.load_img(path, target_size=(3, 4))
    assert small.shape == (3, 4, 3) and small.dtype == np.uint8
    grey = utils.load_img(path, grayscale=True)
    assert grey.shape == (6, 8) and grey.dtype == np.uint8
    assert abs(int(grey[0, 0]) - round(0.299 * 200)) <= 1
    with pytest.raises(InputError):
        utils.load_img(tmp_path / "missing.png")


@pytest.fixture(scope="module")
def models_rgb():
    return {
        name: zoo.BUILDERS[name]() for name in ("sequential", "nested", "relu_layers", "sigmoid")
    }
