"""Every supported real-world model shape saves, loads through vizkit and works with vizkit.models.

``MODEL_BUILDERS`` maps a name to a function ``build(seed=0) -> keras.Model`` returning a tiny,
deterministic model; ``sample_inputs(model)`` makes a matching input batch. Other test files
import both (``from tests.test_model_shapes import MODEL_BUILDERS, sample_inputs``).
"""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from vizkit import models
from vizkit._tf import keras

L = keras.layers


def _cnn_trunk(x, filters=(4, 8)):
    x = L.Conv2D(filters[0], 3, activation="relu", padding="same", name="conv1")(x)
    x = L.MaxPooling2D(name="pool1")(x)
    return L.Conv2D(filters[1], 3, activation="relu", padding="same", name="conv2")(x)


def _set_random_weights(model: keras.Model, seed: int) -> keras.Model:
    """Non-default BatchNorm statistics etc., so a round trip that drops weights shows."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 1.5, var.shape).astype("float32"),
                ]
            )
    return model


def build_sequential(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            L.Conv2D(4, 3, activation="relu", padding="same", name="conv1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(8, 3, activation="relu", padding="same", name="conv2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="sequential_cnn",
    )


def build_functional(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = L.GlobalAveragePooling2D(name="gap")(_cnn_trunk(inputs))
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="func_cnn")


def build_transfer(seed: int = 0) -> keras.Model:
    """A whole functional base CNN called as one layer inside an outer model."""
    keras.utils.set_random_seed(seed)
    base_in = keras.Input((16, 16, 3))
    base = keras.Model(base_in, _cnn_trunk(base_in), name="base")
    inputs = keras.Input((16, 16, 3))
    x = L.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = base(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.2, name="drop")(x)
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="transfer")


def build_preprocessing(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((20, 20, 3))
    x = L.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    x = L.Resizing(16, 16, name="resize")(x)
    x = L.GlobalAveragePooling2D(name="gap")(_cnn_trunk(x))
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="preproc")


def build_sigmoid(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = L.GlobalAveragePooling2D(name="gap")(_cnn_trunk(inputs))
    return keras.Model(inputs, L.Dense(1, activation="sigmoid", name="prob")(x), name="binary")


def build_logits(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = L.GlobalAveragePooling2D(name="gap")(_cnn_trunk(inputs))
    return keras.Model(inputs, L.Dense(3, name="logits")(x), name="logits_cnn")


def build_multi_output(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = L.GlobalAveragePooling2D(name="gap")(_cnn_trunk(inputs))
    cls = L.Dense(3, activation="softmax", name="cls")(x)
    aux = L.Dense(1, activation="sigmoid", name="aux")(x)
    return keras.Model(inputs, [cls, aux], name="two_heads")


def build_batchnorm_dropout(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = L.BatchNormalization(name="bn1")(x)
    x = L.ReLU(name="relu1")(x)
    x = L.Dropout(0.3, name="drop1")(x)
    x = L.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = L.BatchNormalization(name="bn2")(x)
    x = L.Activation("relu", name="relu2")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.5, name="drop2")(x)
    model = keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="bn")
    return _set_random_weights(model, seed)


def build_separable(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    x = L.SeparableConv2D(4, 3, activation="relu", padding="same", name="sep1")(inputs)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw1")(x)
    x = L.Conv2D(8, 1, activation="relu", name="pw1")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="sep")


def build_residual(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3))
    stem = L.Conv2D(4, 3, activation="relu", padding="same", name="stem")(inputs)
    x = L.Conv2D(4, 3, activation="relu", padding="same", name="res_a")(stem)
    x = L.Conv2D(4, 3, padding="same", name="res_b")(x)
    x = L.Add(name="add")([stem, x])
    x = L.Activation("relu", name="res_out")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="resnet")


def build_non_square(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((24, 32, 3))
    x = L.GlobalAveragePooling2D(name="gap")(_cnn_trunk(inputs))
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="wide")


def build_grayscale(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 1))
    x = L.Flatten(name="flat")(_cnn_trunk(inputs))
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="gray")


def build_dense(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((10,)),
            L.Dense(8, activation="relu", name="hidden"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="mlp",
    )


def build_lstm_text(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((12,), dtype="int32")
    x = L.Embedding(50, 8, name="embed")(inputs)
    x = L.LSTM(8, name="lstm")(x)
    return keras.Model(inputs, L.Dense(2, activation="softmax", name="probs")(x), name="text")


MODEL_BUILDERS = {
    "sequential": build_sequential,
    "functional": build_functional,
    "transfer": build_transfer,
    "preprocessing": build_preprocessing,
    "sigmoid": build_sigmoid,
    "logits": build_logits,
    "multi_output": build_multi_output,
    "batchnorm_dropout": build_batchnorm_dropout,
    "separable": build_separable,
    "residual": build_residual,
    "non_square": build_non_square,
    "grayscale": build_grayscale,
    "dense": build_dense,
    "lstm_text": build_lstm_text,
}
IMAGE_MODELS = [name for name in MODEL_BUILDERS if name not in ("dense", "lstm_text")]


def sample_inputs(model: keras.Model, n: int = 2, seed: int = 0) -> np.ndarray:
    """A batch that fits ``model``: token ids for integer inputs, 0..255 pixels otherwise."""
    rng = np.random.default_rng(seed)
    shape = (n, *model.inputs[0].shape[1:])
    if "int" in str(model.inputs[0].dtype):
        return rng.integers(0, 50, shape).astype("int32")
    return rng.uniform(0, 255, shape).astype("float32")


# --------------------------------------------------------------------------------------------
def _outputs(model: keras.Model, x: np.ndarray) -> list[np.ndarray]:
    out = model(x, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o) for o in out]


def _reference(model: keras.Model, path: str, x: np.ndarray) -> np.ndarray:
    """Output of the layer at ``path`` computed with plain sub-models (no vizkit code)."""
    parts = path.split("/")
    owner, value = model, x
    for part in parts[:-1]:  # walk into nested models through their (single) call site
        nested = owner.get_layer(part)
        outer_input = nested._inbound_nodes[0].input_tensors[0]
        value = keras.Model(owner.inputs, outer_input)(value, training=False)
        owner = nested
    return np.asarray(keras.Model(owner.inputs, owner.get_layer(parts[-1]).output)(value))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each model built once, saved as .keras and loaded back with vizkit.load_model."""
    cache = {}

    def get(name):
        if name not in cache:
            model = MODEL_BUILDERS[name]()
            path = tmp_path_factory.mktemp("shapes") / f"{name}.keras"
            model.save(path)
            cache[name] = (model, vizkit.load_model(path))
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(MODEL_BUILDERS))
def test_round_trip_gives_identical_predictions(saved, name):
    model, loaded = saved(name)
    x = sample_inputs(model)
    assert loaded is not model
    assert loaded.count_params() == model.count_params()
    for before, after in zip(_outputs(model, x), _outputs(loaded, x), strict=True):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("name", list(MODEL_BUILDERS))
def test_is_image_model_and_head(saved, name):
    _, loaded = saved(name)
    assert models.is_image_model(loaded) == (name in IMAGE_MODELS)
    outputs = range(len(loaded.outputs)) if len(loaded.outputs) > 1 else [None]
    heads = [models.head_info(loaded, output=i) for i in outputs]
    expected = {
        "sigmoid": [("sigmoid", 1)],
        "logits": [("linear", 3)],
        "multi_output": [("softmax", 3), ("sigmoid", 1)],
        "lstm_text": [("softmax", 2)],
    }.get(name, [("softmax", 3)])
    assert [(h.activation, h.units) for h in heads] == expected


def _head_preactivation(model: keras.Model, head: models.Head, x: np.ndarray) -> np.ndarray:
    """``input @ kernel + bias`` of the head's Dense layer, from plain sub-models."""
    layer = models.get_layer(model, head.path)[1]
    assert isinstance(layer, L.Dense)
    features = np.asarray(keras.Model(model.inputs, layer.input)(x, training=False))
    kernel, bias = layer.get_weights()
    return features @ kernel + bias


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_rebuild_exposes_inner_layers_and_logits(saved, name):
    _, loaded = saved(name)
    x = sample_inputs(loaded)
    inner = models.spatial_layer_paths(loaded)
    chosen = [inner[0], inner[-1]]  # first and last feature maps, nested ones included
    if name == "transfer":
        assert chosen[-1].startswith("base/")
    outputs = range(len(loaded.outputs)) if len(loaded.outputs) > 1 else [None]
    model_outputs = _outputs(loaded, x)
    for index in outputs:
        head = models.head_info(loaded, output=index)
        rebuilt = models.rebuild(loaded, chosen, output=index)
        logits, *maps = [np.asarray(o) for o in rebuilt(x, training=False)]
        for path, got in zip(chosen, maps, strict=True):
            np.testing.assert_allclose(got, _reference(loaded, path, x), rtol=1e-5, atol=1e-5)
        expected = _head_preactivation(loaded, head, x)
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
        probs = model_outputs[index or 0]
        squash = {
            "softmax": lambda z: np.exp(z) / np.exp(z).sum(-1, keepdims=True),
            "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "linear": lambda z: z,
        }[head.activation]
        np.testing.assert_allclose(squash(logits), probs, rtol=1e-4, atol=1e-6)
    assert len(loaded.layers) == len(saved(name)[1].layers)  # the model itself is unchanged


@pytest.mark.parametrize("name", ["dense", "lstm_text"])
def test_non_image_models_rebuild_head(saved, name):
    _, loaded = saved(name)
    x = sample_inputs(loaded)
    head = models.head_info(loaded)
    out = models.rebuild(loaded)(x)
    # Keras 3 unwraps a one-element output list when the model is called
    logits = np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
    np.testing.assert_allclose(logits, _head_preactivation(loaded, head, x), rtol=1e-4, atol=1e-5)
