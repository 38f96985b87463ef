"""Receptive fields against hand computations and a gradient-support reference."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vizkit._tf import keras, tf  # noqa: E402
from vizkit.errors import InputError  # noqa: E402
from vizkit.receptive import ReceptiveField, receptive_fields  # noqa: E402

L = keras.layers


def rf_tuple(rf: ReceptiveField) -> tuple:
    return (rf.size, rf.jump, rf.start)


def test_stack_matches_hand_computation():
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            L.Conv2D(2, 3, name="c1"),  # valid: 32 -> 30
            L.Conv2D(2, 3, padding="same", name="c2"),  # 30
            L.MaxPooling2D(2, name="pool"),  # 15
            L.Conv2D(2, 3, dilation_rate=2, padding="same", name="dil"),  # 15, k_eff 5
            L.Conv2D(2, 3, strides=2, padding="same", name="s2"),  # 8; TF pads 1 before, 1 after
            L.Flatten(name="flat"),
            L.Dense(2, name="head"),
        ]
    )
    fields = receptive_fields(model)
    assert list(fields) == ["c1", "c2", "pool", "dil", "s2"]  # nothing after Flatten
    # r_out = r_in + (k_eff - 1) * j_in ; j_out = j_in * s ; start += ((k_eff-1)/2 - pad) * j_in
    assert rf_tuple(fields["c1"]) == ((3, 3), (1, 1), (1, 1))
    assert rf_tuple(fields["c2"]) == ((5, 5), (1, 1), (1, 1))
    assert rf_tuple(fields["pool"]) == ((6, 6), (2, 2), (1.5, 1.5))
    assert rf_tuple(fields["dil"]) == ((14, 14), (2, 2), (1.5, 1.5))
    assert rf_tuple(fields["s2"]) == ((18, 18), (4, 4), (1.5, 1.5))
    assert all(rf.exact for rf in fields.values())


def test_residual_block_walks_the_graph():
    x = keras.Input((16, 16, 3))
    h = L.Conv2D(2, 3, strides=2, padding="same", name="a")(x)  # 16 -> 8, TF pads 0 before
    h = L.BatchNormalization(name="bn")(h)
    h = L.Conv2D(2, 3, padding="same", name="b")(h)
    shortcut = L.Conv2D(2, 1, strides=2, name="shortcut")(x)
    y = L.Add(name="add")([h, shortcut])
    y = L.ReLU(name="relu")(y)
    fields = receptive_fields(keras.Model(x, y))
    assert rf_tuple(fields["a"]) == ((3, 3), (2, 2), (1, 1))
    assert rf_tuple(fields["bn"]) == rf_tuple(fields["a"])
    assert rf_tuple(fields["b"]) == ((7, 7), (2, 2), (1, 1))
    assert rf_tuple(fields["shortcut"]) == ((1, 1), (2, 2), (0, 0))
    # union of the windows [-2.5, 4.5] and [-0.5, 0.5]: the larger branch
    assert rf_tuple(fields["add"]) == ((7, 7), (2, 2), (1, 1))
    assert rf_tuple(fields["relu"]) == rf_tuple(fields["add"])


def test_concatenate_takes_the_largest_branch():
    x = keras.Input((8, 8, 3))
    a = L.Conv2D(2, 1, name="one")(x)
    b = L.Conv2D(2, 5, padding="same", name="five")(x)
    y = L.Concatenate(name="cat")([a, b])
    fields = receptive_fields(keras.Model(x, y))
    assert rf_tuple(fields["cat"]) == ((5, 5), (1, 1), (0, 0))


def test_nested_model_paths_and_values():
    inner_in = keras.Input((None, None, 2))
    h = L.Conv2D(2, 3, strides=2, name="bc")(inner_in)
    h = L.MaxPooling2D(2, name="bp")(h)
    base = keras.Model(inner_in, h, name="base")
    x = keras.Input((16, 16, 3))
    h = L.Conv2D(2, 3, name="pre")(x)  # 14
    h = base(h)  # 6 -> 3
    y = L.Conv2D(2, 3, padding="same", name="post")(h)
    fields = receptive_fields(keras.Model(x, y))
    assert list(fields) == ["pre", "base", "base/bc", "base/bp", "post"]
    assert rf_tuple(fields["pre"]) == ((3, 3), (1, 1), (1, 1))
    assert rf_tuple(fields["base/bc"]) == ((5, 5), (2, 2), (2, 2))
    assert rf_tuple(fields["base/bp"]) == ((7, 7), (4, 4), (3, 3))
    assert fields["base"] == fields["base/bp"]
    assert rf_tuple(fields["post"]) == ((15, 15), (4, 4), (3, 3))


def test_matches_gradient_support():
    """Independent reference: the input pixels a unit depends on (all-positive weights)."""
    model = keras.Sequential(
        [
            keras.Input((24, 24, 1)),
            L.ZeroPadding2D(((1, 0), (2, 1)), name="pad"),
            L.Conv2D(1, 3, strides=2, padding="same", name="c1"),
            L.Conv2D(1, (3, 2), dilation_rate=2, padding="same", name="c2"),
            L.AveragePooling2D(2, name="pool"),
            L.SeparableConv2D(1, 3, name="sep"),
        ]
    )
    for weight in model.weights:
        weight.assign(np.ones(weight.shape, "float32"))
    fields = receptive_fields(model)
    x = tf.ones((1, 24, 24, 1))
    out_h, out_w = model.outputs[0].shape[1:3]
    for name in ["c1", "c2", "pool", "sep"]:
        sub = keras.Model(model.inputs, model.get_layer(name).output)
        for row, col in [(0, 0), (1, 2), (out_h // 2, out_w // 2)]:
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = sub(x)[0, row, col, 0]
            grad = tape.gradient(value, x).numpy()[0, :, :, 0]
            top, left, bottom, right = fields[name].bounds(row, col, clip_to=(24, 24))
            if top > bottom or left > right:  # the unit sees only padding
                assert not grad.any(), (name, row, col)
                continue
            rows, cols = np.nonzero(grad)
            found = (rows.min(), cols.min(), rows.max(), cols.max())
            assert found == pytest.approx((top, left, bottom, right)), (name, row, col)


def test_preprocessing_and_padding_layers():
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Rescaling(1 / 255, name="scale"),
            L.Resizing(8, 8, name="resize"),  # bilinear, factor 2: samples 2 pixels
            L.ZeroPadding2D(1, name="pad"),
            L.Cropping2D(((2, 0), (0, 0)), name="crop"),
            L.Dropout(0.5, name="drop"),
        ]
    )
    fields = receptive_fields(model)
    assert rf_tuple(fields["scale"]) == ((1, 1), (1, 1), (0, 0))
    assert rf_tuple(fields["resize"]) == ((2, 2), (2, 2), (0.5, 0.5))
    assert rf_tuple(fields["pad"]) == ((2, 2), (2, 2), (-1.5, -1.5))
    assert rf_tuple(fields["crop"]) == ((2, 2), (2, 2), (2.5, -1.5))
    assert fields["drop"] == fields["crop"]


class Shift(L.Layer):
    """An unknown shape-preserving layer."""

    def call(self, x):
        return x + 1.0


def test_assumptions_are_flagged():
    x = keras.Input((8, 8, 2))
    h = L.Conv2D(2, 3, padding="same", name="conv")(x)
    gate = L.GlobalAveragePooling2D(name="gap")(h)
    gate = L.Reshape((1, 1, 2), name="reshape")(gate)
    y = L.Multiply(name="excite")([h, gate])  # squeeze-and-excitation
    z = Shift(name="custom")(h)
    fields = receptive_fields(keras.Model(x, [y, z]))
    assert "gap" not in fields and "reshape" not in fields
    assert fields["conv"].exact
    assert fields["excite"].size == (3, 3) and not fields["excite"].exact
    assert fields["custom"].size == (3, 3) and not fields["custom"].exact


def test_non_image_models_have_no_fields():
    model = keras.Sequential([keras.Input((4,)), L.Dense(3), L.Dense(2)])
    assert receptive_fields(model) == {}


def test_subclassed_model_is_refused():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    model = Sub()
    model(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(InputError, match="functional graph"):
        receptive_fields(model)
