"""Filters, feature maps and top activations against independent references on tiny models."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from matplotlib.figure import Figure

import vizkit
from vizkit._tf import keras, tf
from vizkit.errors import InputError, LayerError
from vizkit.inputs import ImageBatch
from vizkit.inspection import conv_filters, feature_maps, top_activations
from vizkit.results.inspection import FeatureMaps, FilterBank, UnitExamples

L = keras.layers


# --------------------------------------------------------------------------------------------
# Tiny models
# --------------------------------------------------------------------------------------------
def rgb_cnn(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10, 10, 3), name="image")
    x = L.Conv2D(6, 3, activation="relu", name="conv1")(inputs)
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.ReLU(name="relu2")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(5, activation="relu", name="fc")(x)
    outputs = L.Dense(3, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="rgb_cnn")


def nested_model(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inner_in = keras.Input((8, 8, 1))
    x = L.Conv2D(3, 3, activation="relu", name="inner_conv")(inner_in)
    base = keras.Model(inner_in, L.Conv2D(2, 3, name="inner_conv2")(x), name="base")
    inputs = keras.Input((8, 8, 1))
    y = L.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, L.Dense(2, activation="softmax", name="out")(y), name="outer")


def snapshot(model: keras.Model) -> tuple:
    return ([w.copy() for w in model.get_weights()], [id(lyr) for lyr in model.layers])


def assert_unchanged(model: keras.Model, before: tuple) -> None:
    weights, ids = snapshot(model)
    for a, b in zip(before[0], weights):
        np.testing.assert_array_equal(a, b)
    assert ids == before[1]


@pytest.fixture(scope="module")
def cnn() -> keras.Model:
    return rgb_cnn()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).random((23, 10, 10, 3), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# conv_filters
# --------------------------------------------------------------------------------------------
def test_filters_equal_the_layer_weights_sorted_by_norm(cnn):
    before = snapshot(cnn)
    kernel, bias = cnn.get_layer("conv1").get_weights()
    bank = conv_filters(cnn)
    assert isinstance(bank, FilterBank) and bank.layer == "conv1"
    per_filter = np.transpose(kernel, (3, 0, 1, 2))
    norms = np.linalg.norm(per_filter.reshape(6, -1), axis=1)
    np.testing.assert_array_equal(bank.indices, np.argsort(-norms, kind="stable"))
    np.testing.assert_array_equal(bank.kernels, per_filter[bank.indices])
    np.testing.assert_array_equal(bank.bias, bias[bank.indices])
    assert np.all(np.diff(bank.norms) <= 0) and bank.rgb and bank.total_filters == 6
    stored = conv_filters(cnn, "conv1", sort="index", max_filters=4)
    np.testing.assert_array_equal(stored.indices, [0, 1, 2, 3])
    np.testing.assert_array_equal(stored.kernels, per_filter[:4])
    assert_unchanged(cnn, before)


def test_filters_of_a_deeper_layer_and_frame(cnn):
    bank = conv_filters(cnn, "conv2", max_filters=3)
    (kernel,) = cnn.get_layer("conv2").get_weights()
    assert bank.kernels.shape == (3, 3, 3, 6) and bank.bias is None and not bank.rgb
    frame = bank.to_frame()
    assert list(frame["filter"]) == bank.indices.tolist() and list(frame["rank"]) == [0, 1, 2]
    for row in frame.itertuples():
        weights = kernel[..., row.filter]
        np.testing.assert_allclose(row.norm, np.linalg.norm(weights), rtol=1e-5)
        np.testing.assert_allclose([row.mean, row.min, row.max],
                                   [weights.mean(), weights.min(), weights.max()], rtol=1e-5)  # fmt: skip


def test_filters_in_a_nested_model_default_to_the_first_conv():
    model = nested_model()
    bank = conv_filters(model)
    assert bank.layer == "base/inner_conv"
    kernel = model.get_layer("base").get_layer("inner_conv").get_weights()[0]
    np.testing.assert_array_equal(bank.kernels, np.transpose(kernel, (3, 0, 1, 2))[bank.indices])
    assert conv_filters(model, "base/inner_conv2").layer == "base/inner_conv2"


def test_depthwise_filters_map_to_their_input_channel():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 6, 2))
    layer = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")
    model = keras.Model(inputs, layer(inputs))
    kernel = layer.get_weights()[0]  # (3, 3, 2, 2): output channel c * 2 + m
    bank = conv_filters(model, sort="index")
    assert bank.kernels.shape == (4, 3, 3, 1) and bank.layer_type == "DepthwiseConv2D"
    for f in range(4):
        np.testing.assert_array_equal(bank.kernels[f, ..., 0], kernel[:, :, f // 2, f % 2])
    np.testing.assert_array_equal(bank.input_channels, [0, 0, 1, 1])


def test_separable_filters_are_the_equivalent_conv_kernels():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((7, 7, 3))
    sep = L.SeparableConv2D(4, 3, depth_multiplier=2, use_bias=False, name="sep")
    model = keras.Model(inputs, sep(inputs))
    bank = conv_filters(model, sort="index")
    conv = L.Conv2D(4, 3, use_bias=False)
    conv.build((None, 7, 7, 3))
    conv.set_weights([np.transpose(bank.kernels, (1, 2, 3, 0))])
    x = np.random.default_rng(1).random((2, 7, 7, 3), dtype=np.float32)
    np.testing.assert_allclose(conv(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_filters_errors(cnn):
    with pytest.raises(LayerError, match="not a convolution"):
        conv_filters(cnn, "fc")
    with pytest.raises(InputError):
        conv_filters(cnn, sort="size")
    with pytest.raises(InputError):
        conv_filters(cnn, max_filters=0)
    inputs = keras.Input((4, 4, 1))
    with pytest.raises(LayerError, match="no Conv2D"):
        conv_filters(keras.Model(inputs, L.Dense(2)(L.Flatten()(inputs))))


def test_filter_plots(cnn):
    bank = conv_filters(cnn)
    fig = bank.plot()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6  # colour tiles: no colour bar
    assert [ax.get_title() for ax in fig.axes] == [f"#{i}" for i in bank.indices]
    deep = conv_filters(cnn, "conv2")
    fig = deep.plot()  # 6 input channels: filter x channels strips, shared scale, colour bar
    assert len(fig.axes) == 4 + 1
    image = fig.axes[0].images[0]
    low, high = image.get_clim()
    assert low == -high  # diverging scale centred on zero
    assert fig.axes[0].images[0].get_array().shape[1] == 6 * 3 + 5
    fig = deep.plot(mode="mean", scale="filter")
    assert len(fig.axes) == 5 and fig.axes[0].images[0].get_clim() == (-1.0, 1.0)
    assert fig.axes[-1].get_ylabel().startswith("weight /")
    given = Figure()
    assert deep.plot(fig=given, colorbar=False) is given and len(given.axes) == 4
    with pytest.raises(InputError):
        deep.plot(mode="rgb")
    with pytest.raises(InputError):
        deep.plot(scale="global")


def test_filter_bank_pickles(cnn):
    bank = conv_filters(cnn)
    back = pickle.loads(pickle.dumps(bank))
    np.testing.assert_array_equal(back.kernels, bank.kernels)
    assert back.layer == bank.layer and not back.kernels.flags.writeable


# --------------------------------------------------------------------------------------------
# feature_maps
# --------------------------------------------------------------------------------------------
def test_feature_maps_equal_a_plain_model(cnn, images):
    before = snapshot(cnn)
    maps = feature_maps(cnn, images, ["conv1", "relu2", "fc", "probs"], batch_size=5)
    assert list(maps) == ["conv1", "relu2", "fc", "probs"]
    for name, fm in maps.items():
        reference = keras.Model(cnn.inputs, cnn.get_layer(name).output)(images).numpy()
        assert isinstance(fm, FeatureMaps) and fm.layer == name
        np.testing.assert_allclose(fm.activations, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["probs"].activations.sum(axis=1), 1.0, rtol=1e-5)
    single = feature_maps(cnn, images, "conv1")
    np.testing.assert_allclose(single.activations, maps["conv1"].activations, rtol=1e-6)
    assert_unchanged(cnn, before)


def test_feature_maps_on_hand_set_weights():
    inputs = keras.Input((5, 5, 1))
    conv = L.Conv2D(2, 2, activation="relu", name="box")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.stack([np.ones((2, 2, 1)), -np.ones((2, 2, 1))], axis=-1).astype(np.float32)
    conv.set_weights([kernel, np.array([0.0, 1.0], np.float32)])
    x = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1) / 25.0
    fm = feature_maps(model, x, "box")
    plane = x[0, ..., 0]
    box = plane[:-1, :-1] + plane[1:, :-1] + plane[:-1, 1:] + plane[1:, 1:]
    np.testing.assert_allclose(fm.activations[0, ..., 0], box, rtol=1e-6)
    np.testing.assert_allclose(fm.activations[0, ..., 1], np.maximum(1.0 - box, 0.0), atol=1e-6)
    stats = fm.channel_stats(0)
    np.testing.assert_allclose(stats["mean"], [box.mean(), np.maximum(1 - box, 0).mean()], 1e-5)
    np.testing.assert_allclose(stats["active"], [(box > 0).mean(), (1 - box > 0).mean()])
    frame = fm.to_frame()
    assert list(frame.columns) == ["image", "name", "channel", "mean", "max", "active"]
    np.testing.assert_allclose(frame["max"], [box.max(), np.maximum(1 - box, 0).max()], 1e-6)


def test_feature_maps_of_nested_layers_and_sources():
    model = nested_model()
    x = np.random.default_rng(2).random((3, 8, 8, 1), dtype=np.float32)
    fm = feature_maps(model, ImageBatch(array=x, names=("a", "b", "c")), "base/inner_conv")
    inner = model.get_layer("base")
    reference = keras.Model(inner.inputs, inner.get_layer("inner_conv").output)(x).numpy()
    np.testing.assert_allclose(fm.activations, reference, rtol=1e-5, atol=1e-6)
    assert fm.names == ("a", "b", "c")
    from_tensor = feature_maps(model, tf.constant(x), "inner_conv")
    np.testing.assert_allclose(from_tensor.activations, fm.activations, rtol=1e-6)


def test_upsampling_puts_units_on_their_receptive_field_centres():
    inputs = keras.Input((8, 8, 1))
    conv = L.Conv2D(1, 3, use_bias=False, name="conv")  # RF 3, jump 1, start 1
    pooled = L.MaxPooling2D(2, name="pool")(conv(inputs))  # RF 4, jump 2, start 1.5
    model = keras.Model(inputs, pooled)
    conv.set_weights([np.full((3, 3, 1, 1), 1 / 9, np.float32)])
    x = np.random.default_rng(3).random((2, 8, 8, 1), dtype=np.float32)
    raw = feature_maps(model, x, ["conv", "pool"])
    up = feature_maps(model, x, ["conv", "pool"], upsample=True)
    assert raw["conv"].origin == (1.0, 1.0) and raw["pool"].stride == (2.0, 2.0)
    conv_up = up["conv"].activations
    assert conv_up.shape == (2, 8, 8, 1) and up["conv"].upsampled
    np.testing.assert_allclose(conv_up[:, 1:7, 1:7], raw["conv"].activations, rtol=1e-6)
    np.testing.assert_allclose(conv_up[:, 0, 1:7], raw["conv"].activations[:, 0], rtol=1e-6)
    pool_raw, pool_up = raw["pool"].activations, up["pool"].activations
    # unit (0, 0) sits at 1.5, unit (1, 0) at 3.5: pixel 2 is a quarter of the way
    np.testing.assert_allclose(pool_up[:, 2, 0], 0.75 * pool_raw[:, 0, 0] + 0.25 * pool_raw[:, 1, 0], rtol=1e-5)  # fmt: skip


def test_feature_map_plots(cnn, images):
    fm = feature_maps(cnn, images[:2], "conv1")
    fig = fm.plot(top_k=4)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(panels) == 1 + 4 and len(bars) == 1  # the input, 4 channels, one colour bar
    assert panels[0].get_title().startswith("input")
    means = fm.activations[0].mean(axis=(0, 1))
    expected = np.argsort(-means, kind="stable")[:4]
    assert [ax.get_title() for ax in panels[1:]] == [f"ch {c}" for c in expected]
    fig = fm.plot(index=1, channels=[5, 0], order="index")
    assert [ax.get_title() for ax in fig.axes[1:3]] == ["ch 5", "ch 0"]
    fig = fm.plot(order="index", top_k=None, overlay=True)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][1:]
    assert len(panels) == 6 and all(len(ax.images) == 2 for ax in panels)
    assert [ax.get_title() for ax in panels] == [f"ch {c}" for c in range(6)]
    dense = feature_maps(cnn, images[:2], "fc")
    fig = dense.plot(top_k=3)
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 3
    with pytest.raises(InputError):
        fm.plot(channels=[6])
    with pytest.raises(InputError):
        fm.plot(order="median")
    bare = feature_maps(cnn, images[:1], "conv1", keep_images=False)
    with pytest.raises(InputError, match="keep_images"):
        bare.plot(overlay=True)


def test_feature_maps_errors_and_pickle(cnn, images):
    with pytest.raises(LayerError):
        feature_maps(cnn, images, "nope")
    with pytest.raises(InputError):
        feature_maps(cnn, images, [])
    fm = feature_maps(cnn, images[:3], "relu2")
    back = pickle.loads(pickle.dumps(fm))
    np.testing.assert_array_equal(back.activations, fm.activations)
    assert back.origin == fm.origin


def test_feature_maps_of_a_mixed_precision_model(images):
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = rgb_cnn(seed=7)
    finally:
        keras.config.set_dtype_policy("float32")
    fm = feature_maps(model, images[:4], "conv1")
    assert fm.activations.dtype == np.float32
    reference = keras.Model(model.inputs, model.get_layer("conv1").output)(images[:4]).numpy()
    np.testing.assert_allclose(fm.activations, reference.astype(np.float32), rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------------------------
# top_activations
# --------------------------------------------------------------------------------------------
def brute_force(model, images, layer, units, k, reduce="max"):
    acts = keras.Model(model.inputs, model.get_layer(layer).output)(images).numpy()
    acts = acts[..., units]
    if acts.ndim == 4:
        flat = acts.reshape(len(images), -1, len(units))
        scores = flat.max(axis=1) if reduce == "max" else flat.mean(axis=1)
        where = flat.argmax(axis=1)
    else:
        scores, where = acts, np.zeros_like(acts, dtype=np.int64)
    order = np.argsort(-scores.T, axis=1, kind="stable")[:, :k]
    return (
        np.take_along_axis(scores.T, order, axis=1),
        order,
        np.take_along_axis(where.T, order, axis=1),
    )


@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_top_activations_match_brute_force(cnn, images, reduce):
    before = snapshot(cnn)
    result = top_activations(
        cnn, "relu2", [0, 2, 3], images, k=5, batch_size=7, reduce=reduce, progress=False
    )
    scores, order, where = brute_force(cnn, images, "relu2", [0, 2, 3], 5, reduce)
    assert isinstance(result, UnitExamples) and result.kind == "channel"
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.sample_indices, order)
    width = cnn.get_layer("relu2").output.shape[2]
    np.testing.assert_array_equal(
        result.positions[..., 0] * width + result.positions[..., 1], where
    )
    for u in range(3):
        for r in range(5):
            shown = result.images[result.image_ids[u, r]]
            expected = np.round(np.clip(images[order[u, r]], 0, 1) * 255).astype(np.uint8)
            np.testing.assert_array_equal(shown, expected)
    assert result.searched == len(images) and result.images.shape[0] <= 15
    assert_unchanged(cnn, before)


def test_top_activations_compile_once_per_layer(cnn, images):
    """The scorer is cached per model, layer and reduction: other units, batch sizes and
    image counts reuse one trace."""
    from vizkit.inspection import unit_scorer
    from vizkit.models import model_cache

    top_activations(cnn, "relu2", [0, 1], images, k=2, batch_size=5, progress=False)
    scorer = unit_scorer(cnn, "relu2", "max")
    count = scorer.experimental_get_tracing_count()
    assert count >= 1
    top_activations(cnn, "relu2", [2], images[:7], k=3, batch_size=4, progress=False)
    top_activations(cnn, "relu2", [0, 1, 3], images, k=1, batch_size=16, progress=False)
    assert scorer.experimental_get_tracing_count() == count
    assert unit_scorer(cnn, "relu2", "max") is scorer
    keys = [key for key in model_cache(cnn) if key[0] == "vizkit.inspection.unit_scorer"]
    assert keys.count(("vizkit.inspection.unit_scorer", "relu2", "max")) == 1


def test_streaming_top_k_keeps_only_needed_images():
    from vizkit.inspection import StreamingTopK

    top = StreamingTopK(units=2, k=2)
    rng = np.random.default_rng(0)
    scores = rng.random((10, 2)).astype(np.float32)
    scores[3] = scores[7] = 5.0  # a tie: the earlier image ranks first
    images = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 2, 2, 1))
    for start in range(0, 10, 3):
        part = slice(start, start + 3)
        top.update(images[part], scores[part], np.zeros_like(scores[part], dtype=np.int64))
    order = np.argsort(-scores.T, axis=1, kind="stable")[:, :2]
    np.testing.assert_array_equal(top.indices, order)
    np.testing.assert_array_equal(top.scores, np.take_along_axis(scores.T, order, axis=1))
    assert sorted(top.kept) == sorted(set(order.ravel().tolist())) and top.seen == 10
    for i, image in top.kept.items():
        assert image[0, 0, 0] == i


def test_top_activations_of_dense_units(cnn, images):
    result = top_activations(cnn, "fc", [1, 4], images, k=3, progress=False)
    scores, order, _ = brute_force(cnn, images, "fc", [1, 4], 3)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.sample_indices, order)
    assert result.kind == "unit" and result.patches is None and result.positions is None


def test_image_sources_give_the_same_answer(cnn, images, tmp_path):
    from PIL import Image

    base = top_activations(cnn, "conv1", [0, 1], images, k=4, progress=False)
    pairs = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images)))).batch(6)
    singles = tf.data.Dataset.from_tensor_slices(images)
    generator = (images[i : i + 4] for i in range(0, len(images), 4))
    batch = ImageBatch(array=images)
    for source in (pairs, singles, generator, batch, tf.constant(images)):
        other = top_activations(cnn, "conv1", [0, 1], source, k=4, progress=False)
        np.testing.assert_array_equal(other.sample_indices, base.sample_indices)
        np.testing.assert_allclose(other.scores, base.scores, rtol=1e-5)
    uint8 = (images[:6] * 255).round().astype(np.uint8)
    for i, image in enumerate(uint8):
        Image.fromarray(image).save(tmp_path / f"img{i}.png")
    folder = top_activations(cnn, "conv1", [0, 1], str(tmp_path), k=2, progress=False)
    paths = top_activations(cnn, "conv1", [0, 1], sorted(tmp_path.iterdir()), k=2, progress=False)
    np.testing.assert_array_equal(paths.sample_indices, folder.sample_indices)
    in_memory = top_activations(cnn, "conv1", [0, 1], uint8.astype(np.float32) / 255, k=2,
                                progress=False)  # fmt: skip
    np.testing.assert_array_equal(folder.sample_indices, in_memory.sample_indices)
    assert folder.names[0].startswith("img")


def test_receptive_field_crops_on_a_hand_built_model():
    """conv 3x3 (valid) then 2x2 max pooling: unit (r, c) sees input rows 2r..2r+3."""
    inputs = keras.Input((8, 8, 1))
    conv = L.Conv2D(1, 3, use_bias=False, name="conv")
    pool = L.MaxPooling2D(2, name="pool")
    model = keras.Model(inputs, pool(conv(inputs)))
    kernel = np.zeros((3, 3, 1, 1), np.float32)
    kernel[1, 1] = 1.0  # the conv copies the centre pixel: conv[i, j] = x[i + 1, j + 1]
    conv.set_weights([kernel])
    x = np.zeros((3, 8, 8, 1), np.float32)
    x[0, 5, 2] = 1.0  # conv (4, 1) -> pool unit (2, 0): window rows 4..7, cols 0..3
    x[1, 1, 6] = 0.8  # conv (0, 5) -> pool unit (0, 2): rows 0..3, cols 4..7
    x[2, 3, 3] = 0.6  # conv (2, 2) -> pool unit (1, 1): rows 2..5, cols 2..5
    result = top_activations(model, "pool", [0], x, k=3, progress=False)
    np.testing.assert_array_equal(result.sample_indices[0], [0, 1, 2])
    np.testing.assert_array_equal(result.positions[0], [[2, 0], [0, 2], [1, 1]])
    np.testing.assert_array_equal(result.boxes[0], [[4, 0, 7, 3], [0, 4, 3, 7], [2, 2, 5, 5]])
    assert result.patches.shape == (1, 3, 4, 4, 1)
    display = np.round(x * 255).astype(np.uint8)
    np.testing.assert_array_equal(result.patches[0, 0], display[0, 4:8, 0:4])
    np.testing.assert_array_equal(result.patches[0, 1], display[1, 0:4, 4:8])
    np.testing.assert_array_equal(result.patches[0, 2], display[2, 2:6, 2:6])


def test_crops_hanging_over_the_border_are_padded_grey():
    inputs = keras.Input((6, 6, 1))
    conv = L.Conv2D(1, 5, padding="same", use_bias=False, name="conv")  # RF 5, start 0
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((5, 5, 1, 1), np.float32)
    kernel[2, 2] = 1.0
    conv.set_weights([kernel])
    x = np.zeros((1, 6, 6, 1), np.float32)
    x[0, 0, 0] = 1.0
    result = top_activations(model, "conv", [0], x, k=1, progress=False)
    np.testing.assert_array_equal(result.positions[0, 0], [0, 0])
    np.testing.assert_array_equal(result.boxes[0, 0], [0, 0, 2, 2])  # clipped to the image
    patch = result.patches[0, 0, ..., 0]
    assert patch.shape == (5, 5)
    assert np.all(patch[:2] == 128) and np.all(patch[:, :2] == 128)  # outside: mid-grey
    assert patch[2, 2] == 255 and patch[3, 3] == 0


def test_fewer_images_than_k_and_filters_attached(cnn, images):
    result = top_activations(cnn, "relu2", [1], images[:3], k=5, progress=False)
    assert result.sample_indices[0, 3:].tolist() == [-1, -1]
    assert np.all(np.isneginf(result.scores[0, 3:]))
    assert result.filters is not None and result.filters.layer == "conv2"  # through bn, relu
    np.testing.assert_array_equal(result.filters.indices, [1])
    frame = result.to_frame()
    assert len(frame) == 3 and list(frame["rank"]) == [0, 1, 2]
    assert {"row", "col", "top", "left", "bottom", "right"} <= set(frame.columns)


def test_unit_page_plot_with_maximization(cnn, images):
    calls = []
    result = top_activations(
        cnn, "conv1", [0, 3], images, k=4, maximize={"steps": 3},
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert result.maximization is not None and result.maximization.units.tolist() == [0, 3]
    assert calls[0] == (len(images), len(images)) or calls[-1][0] == len(images)
    fig = result.plot()
    assert len(fig.axes) == 2 * (1 + 1 + 4)
    assert fig.axes[0].get_title().startswith("maximization")
    assert fig.axes[1].get_title() == "filter"  # RGB first layer: one colour tile
    assert fig.axes[0].get_ylabel() == "channel 0" and fig.axes[6].get_ylabel() == "channel 3"
    fig = result.plot(max_examples=2, patches=False)
    assert len(fig.axes) == 2 * (1 + 1 + 2)
    assert len(fig.axes[2].patches) == 1  # the receptive-field box drawn on the whole image
    back = pickle.loads(pickle.dumps(result))
    np.testing.assert_array_equal(back.patches, result.patches)
    assert back.maximization.labels == result.maximization.labels


def test_top_activations_errors(cnn, images):
    with pytest.raises(InputError):
        top_activations(cnn, "conv1", [0], None)
    with pytest.raises(InputError):
        top_activations(cnn, "conv1", [6], images)
    with pytest.raises(InputError):
        top_activations(cnn, "conv1", [0], images, reduce="median")
    with pytest.raises(InputError):
        top_activations(cnn, "conv1", [0], images, k=0)
    with pytest.raises(InputError):
        top_activations(cnn, "conv1", [0], iter([]), progress=False)


def test_public_api_is_lazy():
    assert vizkit.conv_filters is conv_filters
    assert vizkit.feature_maps is feature_maps
    assert vizkit.top_activations is top_activations
    from vizkit.activation_max import maximize_activation

    assert vizkit.maximize_activation is maximize_activation
