"""vizkit.load_model, issue 18: what is legitimate loads; names, registries, trust and limits.

The hostile files themselves are in tests/hostile (loaded in a fresh process); these tests check
the legitimate side and the API around the new checks.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import vizkit
from tests.hostile.files import layer_config, rewrite_archive, rewrite_h5_config, tiny_mlp
from tests.test_loading import MyDense, predict, refused
from vizkit import loading
from vizkit._tf import keras
from vizkit.errors import ModelFileError, UnsafeModelError

L = keras.layers


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("names")
    out = {}
    for name, model in [("mlp", tiny_mlp()), ("custom", tiny_mlp(dense=MyDense))]:
        for ext in ("keras", "h5"):
            model.save(root / f"{name}.{ext}")
            out[f"{name}.{ext}"] = root / f"{name}.{ext}"
    return out


def test_keras_building_blocks_load_in_every_form(tmp_path):
    """Activation layers and function dicts, ops, preprocessing, compile state: all allowed."""
    inputs = keras.Input((6, 6, 3))
    x = L.Rescaling(np.array([0.5, 0.25, 1.0]), offset=-0.1)(inputs)
    x = L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0])(x)
    x = L.Conv2D(
        4,
        3,
        activation=L.LeakyReLU(0.2),
        kernel_regularizer="l2",
        kernel_constraint=keras.constraints.MaxNorm(2.0),
    )(x)
    with_ops = keras.ops.add(x, keras.ops.multiply(x, x))  # saved as Keras op classes
    pooled = L.GlobalAveragePooling2D()
    head = L.Dense(3, activation=keras.activations.softmax, dtype="float32")
    ops_model = keras.Model(inputs, head(pooled(with_ops)))  # Keras cannot reload ops from .h5
    model = keras.Model(inputs, head(pooled(x)))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    data = np.random.default_rng(1).uniform(0, 1, (2, 6, 6, 3)).astype("float32")
    model.fit(data, np.array([0, 2]), epochs=1, verbose=0)  # builds the optimizer's state
    for ext in ("keras", "h5"):
        path = tmp_path / f"blocks.{ext}"
        model.save(path)
        for compile in (False, True):
            loaded = vizkit.load_model(path, compile=compile)
            np.testing.assert_allclose(predict(loaded, data), predict(model, data), rtol=1e-6)
    ops_model.save(tmp_path / "ops.keras")
    loaded = vizkit.load_model(tmp_path / "ops.keras")
    np.testing.assert_allclose(predict(loaded, data), predict(ops_model, data), rtol=1e-6)
    info = loading.check_model_file(tmp_path / "blocks.keras")
    assert info.parameters == model.count_params()


def test_registered_names_need_custom_objects(files, tmp_path):
    def rename(config):
        layer_config(config, "dense")["registered_name"] = "my_package>MyDense"

    path = rewrite_archive(files["custom.keras"], tmp_path / "registered.keras", rename)
    refused(path, UnsafeModelError, "model needs custom objects my_package>MyDense")
    model = vizkit.load_model(path, custom_objects={"my_package>MyDense": MyDense})
    assert isinstance(model.get_layer("dense"), MyDense)
    # a Keras class with a foreign registered_name is refused too
    keras_dense = rewrite_archive(files["mlp.keras"], tmp_path / "dense.keras", rename)
    refused(keras_dense, UnsafeModelError, "my_package>MyDense")


def test_names_shadowed_in_the_process_registry_are_refused(files, tmp_path):
    def by_name(config):
        layer_config(config, "dense")["config"]["kernel_initializer"] = "he_normal"

    h5 = rewrite_h5_config(files["mlp.h5"], tmp_path / "init.h5", by_name)
    vizkit.load_model(h5)

    def evil_init(shape, dtype=None):
        raise AssertionError("the registered initializer ran")

    with keras.saving.custom_object_scope({"he_normal": evil_init}):
        refused(h5, UnsafeModelError, "model needs custom objects he_normal")


def test_trust_allows_code_but_not_memory_bombs(files, tmp_path):
    def huge(config):
        layer_config(config, "dense")["config"]["units"] = 60_000_000  # 300 M parameters

    path = rewrite_archive(files["mlp.keras"], tmp_path / "huge.keras", huge)
    refused(path, ModelFileError, "parameters, over the", trust=True)
    refused(path, ModelFileError, "but the file stores only", max_bytes=2_000_000_000)


def test_limits_follow_max_bytes():
    small, default = (
        loading.Limits.for_max_bytes(1_000_000),
        loading.Limits.for_max_bytes(loading.DEFAULT_MAX_BYTES),
    )
    assert small.config_bytes == 1_000_000 and default.config_bytes == 4_000_000
    assert default.parameters == 250_000_000 and default.activation_values == 62_500_000
    assert default.array_bytes == 25_000_000


def test_h5_walk_survives_hard_link_cycles(files, tmp_path):
    path = tmp_path / "cycle.h5"
    path.write_bytes(files["mlp.h5"].read_bytes())
    with h5py.File(path, "r+") as f:
        group = f.create_group("loop")
        group["back"] = group  # a hard link to itself
    assert loading.check_model_file(path).format == "h5"


def test_custom_objects_only_satisfy_the_name_keras_looks_up_first(files, tmp_path):
    """A gadget cannot hide behind a registered_name the caller happens to provide."""

    def gadget(config):
        layer_config(config, "dense")["config"]["activation"] = {
            "module": "keras.applications.imagenet_utils",
            "class_name": "function",
            "config": "decode_predictions",
            "registered_name": "MyDense",  # Keras looks functions up by their name, not this
        }

    path = rewrite_archive(files["mlp.keras"], tmp_path / "hidden.keras", gadget)
    refused(
        path,
        UnsafeModelError,
        "decode_predictions as the activation",
        custom_objects={"MyDense": MyDense},
    )
