"""vizkit.sources (the one model resolver and its hashes) and the one first-convolution rule."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import vizkit
from vizkit.sources import (
    IN_MEMORY,
    check_model_spec,
    file_sha256,
    resolve_model,
    sample_name,
    weights_sha256,
)


def _nested_model():
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    base_in = keras.Input((16, 16, 3))
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(base_in)
    y = keras.layers.SeparableConv2D(4, 3, padding="same", name="sep")(y)
    base = keras.Model(base_in, y, name="base")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = base(x)
    x = keras.layers.Conv2D(5, 3, name="top_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="outer")


def test_sample_names_are_parsed_and_checked_in_one_place(tmp_path):
    assert sample_name("sample:digits_cnn") == "digits_cnn"
    assert sample_name(tmp_path / "model.keras") is None
    with pytest.raises(vizkit.InputError, match="unknown sample model 'nope': choose one of"):
        check_model_spec("sample:nope")
    with pytest.raises(vizkit.InputError, match="model file .*missing.keras' does not exist"):
        check_model_spec(tmp_path / "missing.keras")
    (tmp_path / "m.keras").write_bytes(b"only its existence is checked")
    assert check_model_spec(tmp_path / "m.keras") is None


def test_resolve_model_describes_where_the_model_came_from(tmp_path):
    model = _nested_model()
    memory = resolve_model(model)
    assert memory.model is model and memory.spec == IN_MEMORY and memory.file_sha256 is None
    assert resolve_model(memory) is memory
    path = tmp_path / "outer.keras"
    model.save(path)
    from_file = resolve_model(str(path))
    assert from_file.path == str(path) and from_file.sample is None
    assert (
        from_file.file_sha256 == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    # the weights hash identifies trained state: equal after a round trip, not after a change
    assert weights_sha256(from_file.model) == weights_sha256(model)
    changed = resolve_model(str(path)).model
    kernel = changed.get_layer("head").kernel
    kernel.assign(kernel.numpy() + 1e-3)
    assert weights_sha256(changed) != weights_sha256(model)
    with pytest.raises(vizkit.InputError, match="model must be a keras.Model"):
        resolve_model(3)


def test_conv_layers_and_the_first_convolution():
    from vizkit._tf import keras

    model = _nested_model()
    assert vizkit.conv_layers(model) == ["base/dw", "base/sep", "top_conv"]
    assert vizkit.first_conv_layer(model) == "base/dw"
    assert vizkit.conv_filters(model).layer == "base/dw"  # the same rule
    mlp = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="mlp")
    assert vizkit.conv_layers(mlp) == []
    with pytest.raises(vizkit.LayerError, match="model 'mlp' has no Conv2D"):
        vizkit.first_conv_layer(mlp)
    assert np.isfinite(vizkit.conv_filters(model, "top_conv").kernels).all()
