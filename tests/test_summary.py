"""Model summaries: parameter totals, MAC counts, tables, diagrams and training curves."""

import matplotlib

matplotlib.use("Agg")

import json  # noqa: E402
import math  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import vizkit  # noqa: E402
from vizkit._tf import keras  # noqa: E402
from vizkit.errors import InputError  # noqa: E402
from vizkit.summary import load_history, plot_history, save_history, summarize  # noqa: E402

L = keras.layers


# ---- tiny models ----------------------------------------------------------------------------
def sequential_cnn():
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(2, 3, activation="relu", name="conv"),  # 6x6x2
            L.Flatten(name="flat"),
            L.Dense(3, activation="softmax", name="head"),
        ],
        name="tiny",
    )


def functional_cnn():
    x = keras.Input((8, 8, 3))
    h = L.Conv2D(4, 3, padding="same")(x)
    h = L.BatchNormalization()(h)
    h = L.MaxPooling2D()(h)
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(x, L.Dense(2)(h))


def nested_model(frozen=True):
    inner = keras.Input((None, None, 3))
    h = L.Conv2D(4, 3, padding="same", name="bconv")(inner)
    h = L.BatchNormalization(name="bbn")(h)
    base = keras.Model(inner, h, name="base")
    base.trainable = not frozen
    x = keras.Input((8, 8, 3))
    h = base(x)
    h = L.GlobalAveragePooling2D(name="gap")(h)
    return keras.Model(x, L.Dense(2, name="head")(h), name="outer")


def residual_model():
    x = keras.Input((8, 8, 2))
    stem = L.Conv2D(2, 3, padding="same")(x)
    h = L.Conv2D(2, 3, padding="same")(stem)
    h = L.Conv2D(2, 3, padding="same")(h)
    y = L.Add()([stem, h])
    return keras.Model(x, L.Flatten()(y))


def separable_model():
    return keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            L.SeparableConv2D(3, 3, depth_multiplier=2, name="sep"),  # 4x4x3
            L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),  # 2x2x6
        ]
    )


def dense_model():
    return keras.Sequential([keras.Input((5,)), L.Dense(4), L.Dropout(0.1), L.Dense(2)])


def lstm_model():
    return keras.Sequential([keras.Input((5, 3)), L.LSTM(4, name="lstm"), L.Dense(2, name="d")])


BUILDERS = [
    sequential_cnn,
    functional_cnn,
    nested_model,
    residual_model,
    separable_model,
    dense_model,
    lstm_model,
]


@pytest.fixture(scope="module")
def tiny_summary():
    return summarize(sequential_cnn())


@pytest.fixture(scope="module")
def nested_summary():
    return summarize(nested_model())


# ---- parameters -----------------------------------------------------------------------------
@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_param_totals_match_keras(build):
    model = build()
    summary = summarize(model)
    assert summary.total_params == model.count_params()
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert summary.trainable_params == trainable
    assert summary.non_trainable_params == model.count_params() - trainable
    top = [info for info in summary.layers if info.depth == 0]
    assert sum(info.params for info in top) == model.count_params()  # no double counting


def test_nested_rows_and_totals(nested_summary):
    s = nested_summary
    assert [info.path for info in s.layers] == ["base", "base/bconv", "base/bbn", "gap", "head"]
    assert [info.depth for info in s.layers] == [0, 1, 1, 0, 0]
    base = s["base"]
    assert base.container and base.params == 4 * 27 + 4 + 4 * 4
    assert base.trainable_params == 0  # frozen base
    assert s.trainable_params == 4 * 2 + 2
    # a base built for (None, None, 3) reports the shapes of this call
    assert s["base/bconv"].output_shape == (None, 8, 8, 4)
    assert base.macs == s["base/bconv"].macs == 8 * 8 * 9 * 3 * 4
    assert s.total_macs == 8 * 8 * 9 * 3 * 4 + 4 * 2
    assert s["gap"].receptive_field is None
    assert s["base/bconv"].receptive_field.size == (3, 3)
    assert s.input_shape == (None, 8, 8, 3) and s.output_shapes == ((None, 2),)


# ---- MACs -----------------------------------------------------------------------------------
def test_macs_match_hand_count(tiny_summary):
    s = tiny_summary
    conv = 6 * 6 * (3 * 3 * 1) * 2  # H_out * W_out * k_h * k_w * C_in * C_out
    dense = 72 * 3  # in * out
    assert s["conv"].macs == conv
    assert s["flat"].macs == 0
    assert s["head"].macs == dense
    assert s.total_macs == conv + dense
    assert s.flops == 2 * (conv + dense)
    assert s.totals() == {
        "total_params": 20 + 219,
        "trainable_params": 20 + 219,
        "non_trainable_params": 0,
        "macs": conv + dense,
        "flops": 2 * (conv + dense),
    }
    assert s.uncounted == ()


def test_macs_separable_depthwise_and_lstm():
    s = summarize(separable_model())
    depthwise = 4 * 4 * 9 * 2 * 2  # positions * kernel * C_in * depth_multiplier
    assert s["sep"].macs == depthwise + 4 * 4 * (2 * 2) * 3  # + pointwise
    assert s["dw"].macs == 2 * 2 * 9 * 3 * 2
    s = summarize(lstm_model())
    assert s["lstm"].macs == 5 * 4 * 4 * (3 + 4)  # steps * gates * units * (features + units)
    assert s["d"].macs == 4 * 2


# ---- renderings -----------------------------------------------------------------------------
def test_frame_columns_and_non_image_model(tiny_summary):
    frame = tiny_summary.to_frame()
    assert list(frame["path"]) == ["conv", "flat", "head"]
    assert frame.loc[0, "rf_h"] == 3 and frame.loc[0, "jump_w"] == 1
    assert frame.loc[0, "activation"] == "relu"
    assert math.isnan(frame.loc[1, "rf_h"])
    assert list(frame["macs"]) == [648, 0, 216]
    dense = summarize(dense_model()).to_frame()
    assert dense[["rf_h", "rf_w", "jump_h", "jump_w"]].isna().all().all()
    assert (dense["depth"] == 0).all()


def test_text_table(nested_summary):
    text = str(nested_summary)
    assert text == nested_summary.to_text()
    assert 'Model "outer"' in text
    assert "base (Functional)" in text and "bconv" not in text  # collapsed by default
    assert f"Total params: {nested_summary.total_params:,}" in text
    expanded = nested_summary.to_text(expand_nested=True)
    assert "  bconv (Conv2D)" in expanded  # nested rows indented
    assert "3x3 (jump 1x1)" in expanded
    assert str(summarize(nested_model(), expand_nested=True)) == expanded


def test_expand_nested_collapses_tables_and_keeps_every_layer(nested_summary):
    """As Keras's summary(expand_nested=False): one row per nested model, totals unchanged."""
    assert not nested_summary.expand_nested
    assert len(nested_summary.layers) == 5 and nested_summary["base/bconv"].macs  # all kept
    collapsed = nested_summary.to_frame()
    assert list(collapsed["path"]) == ["base", "gap", "head"]
    assert collapsed["params"].sum() == nested_summary.total_params
    expanded = nested_summary.to_frame(expand_nested=True)
    assert list(expanded["path"]) == ["base", "base/bconv", "base/bbn", "gap", "head"]
    flat = summarize(sequential_cnn())
    assert list(flat.to_frame()["path"]) == ["conv", "flat", "head"]  # no nesting: no change


def test_result_pickles_and_is_frozen(nested_summary):
    again = pickle.loads(pickle.dumps(nested_summary))
    assert again == nested_summary
    with pytest.raises(AttributeError):
        nested_summary.total_params = 0


def test_result_and_plotting_modules_import_no_tensorflow():
    code = (
        "import sys, vizkit.summary, vizkit.results.summary, vizkit.plotting.summary;"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api_and_unbuilt_model():
    assert vizkit.summarize is summarize
    with pytest.raises(InputError, match="not built"):
        summarize(keras.Sequential([L.Dense(2)]))


# ---- architecture diagram -------------------------------------------------------------------
def blocks(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_plot_draws_one_block_per_layer(tiny_summary):
    fig = Figure()
    ax = fig.add_subplot()
    assert tiny_summary.plot(ax=ax) is ax
    assert [p.get_label() for p in blocks(ax)] == ["conv", "flat", "head"]
    labels = [t.get_text() for t in ax.texts]
    assert labels == ["conv\nConv2D 6x6x2", "flat\nFlatten 72", "head\nDense 3"]
    assert "tiny" in ax.get_title()
    assert len(ax.patches) == 3 + 2  # blocks + arrows between them


def test_plot_nested_expanded_or_collapsed(nested_summary):
    ax = Figure().add_subplot()
    nested_summary.plot(ax=ax, expand_nested=True)
    assert [p.get_label() for p in blocks(ax)] == ["base/bconv", "base/bbn", "gap", "head"]
    assert any(t.get_text().replace("\n", " ").startswith("base (Functional") for t in ax.texts)
    for kwargs in ({}, {"expand": False}, {"expand_nested": False}):  # collapsed by default
        ax = Figure().add_subplot()
        nested_summary.plot(ax=ax, **kwargs)
        drawn = blocks(ax)
        assert [p.get_label() for p in drawn] == ["base", "gap", "head"]
        assert drawn[0].get_hatch() == "//"
    assert summarize(nested_model(), expand_nested=True).plot(ax=Figure().add_subplot())


def test_plot_residual_skip_arc_and_pyplot_path():
    import matplotlib.pyplot as plt

    summary = summarize(residual_model())
    ax = summary.plot()
    try:
        assert len(blocks(ax)) == 5  # conv x3, add, flatten
        arrows = [p for p in ax.patches if not isinstance(p, Rectangle)]
        assert len(arrows) == 5  # 4 between neighbours + the skip arc stem -> add
    finally:
        plt.close(ax.figure)


# ---- training history -----------------------------------------------------------------------
HISTORY = {
    "loss": [1.0, 0.6, 0.4],
    "accuracy": [0.5, 0.7, 0.8],
    "val_loss": [1.1, 0.8, 0.7],
    "val_accuracy": [0.45, 0.6, 0.65],
}


def check_history_figure(fig):
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["Loss", "Accuracy"]
    for ax in axes:
        assert [line.get_label() for line in ax.get_lines()] == ["train", "validation"]
        assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3]


def test_plot_history_from_dict_and_files(tmp_path):
    fig = plot_history(HISTORY, fig=Figure())
    check_history_figure(fig)
    np.testing.assert_allclose(fig.axes[0].get_lines()[1].get_ydata(), HISTORY["val_loss"])
    path = save_history(HISTORY, tmp_path / "history.json")
    assert json.loads((tmp_path / "history.json").read_text()) == HISTORY
    assert load_history(path) == HISTORY
    check_history_figure(plot_history(path, fig=Figure()))
    csv = tmp_path / "log.csv"
    csv.write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1,0.45,1.1\n1,0.7,0.6,0.6,0.8\n"
    )
    assert load_history(csv)["val_loss"] == [1.1, 0.8]


def test_plot_history_from_keras_history():
    model = keras.Sequential([keras.Input((2,)), L.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    y = np.array([0, 1] * 4)
    history = model.fit(x, y, epochs=3, validation_split=0.25, batch_size=4, verbose=0)
    fig = plot_history(history, fig=Figure())
    check_history_figure(fig)


def test_plot_history_on_given_axes_and_errors(tmp_path):
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert plot_history({"loss": [1.0, 0.5]}, axes=axes, metrics=["loss"]) is fig
    assert axes[0].get_title() == "Loss"
    with pytest.raises(InputError, match="not in the history"):
        plot_history(HISTORY, fig=Figure(), metrics=["auc"])
    with pytest.raises(InputError, match="does not exist"):
        plot_history(str(tmp_path / "missing.json"))
    with pytest.raises(InputError, match="keras History"):
        plot_history(42)


def test_keras_ops_nodes_in_the_graph():
    """``keras.ops`` calls in a functional graph (MobileNetV3's hard-swish, ConvNeXt's residual
    adds) are nodes without weights and without rows: 0 MACs when elementwise, receptive fields
    and inbound edges pass through them, other ops are listed as uncounted."""
    inputs = keras.Input((9, 9, 3))
    h = keras.layers.Conv2D(4, 3, name="conv1")(inputs)
    h = h * keras.ops.relu6(h + 3.0) / 6.0  # hard-swish as MobileNetV3 writes it
    h = keras.layers.Conv2D(4, 3, name="conv2")(h) + h[:, 1:-1, 1:-1, :]
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    y = keras.layers.Dense(2, name="dense")(keras.ops.matmul(h, keras.ops.eye(4)))
    model = keras.Model(inputs, y)
    summary = summarize(model)
    rows = {row.path: row for row in summary.layers}
    assert set(rows) == {"conv1", "conv2", "gap", "dense"}
    assert rows["conv2"].inbound == ("conv1",)
    assert set(rows["gap"].inbound) == {"conv2", "conv1"}
    assert rows["conv1"].macs == 7 * 7 * 9 * 3 * 4 and rows["conv2"].macs == 5 * 5 * 9 * 4 * 4
    assert summary.total_macs == 7 * 7 * 9 * 3 * 4 + 5 * 5 * 9 * 4 * 4 + 4 * 2
    assert len(summary.uncounted) == 1 and "matmul" in summary.uncounted[0]
    field = vizkit.receptive_fields(model)["conv2"]
    assert field.size == (5.0, 5.0) and field.exact


@pytest.mark.slow
def test_transfer_model_summary_collapses_and_its_diagrams_never_collide():
    """A keras.applications base nested in a transfer model, as people bring them."""
    from tests.plotting.checks import assert_inside, overlaps

    base = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), include_top=False)
    x = keras.Input((64, 64, 3))
    h = base(L.Rescaling(1 / 127.5, offset=-1)(x))
    model = keras.Model(x, L.Dense(5)(L.GlobalAveragePooling2D()(h)), name="transfer")
    summary = summarize(model)
    types = ["Rescaling", "Functional", "GlobalAveragePooling2D", "Dense"]
    assert list(summary.to_frame()["type"]) == types  # the base is one row
    assert len(summary.to_frame(expand_nested=True)) > 100
    assert summary.total_params == model.count_params()
    for expand in (False, True):
        fig = summary.plot(expand_nested=expand).figure
        assert_inside(fig)
        assert overlaps(fig) == []
