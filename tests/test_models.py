"""Layer lookup, heads, scores, per-model caches, and the package's import behaviour."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import numpy as np
import pytest

import vizkit
from vizkit._tf import keras, tf
from vizkit.errors import InputError, LayerError
from vizkit.models import (
    get_layer,
    layer_paths,
    model_cache,
    rebuild,
    require_image_model,
    spatial_layer_paths,
)


def _nested_model():
    keras.utils.set_random_seed(0)
    base = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="conv")],
        name="base",
    )
    inputs = keras.Input((8, 8, 3))
    x = base(inputs)
    x = keras.layers.Conv2D(2, 3, name="top_conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="outer")


def test_layer_lookup_by_path_inner_name_index_and_object():
    model = _nested_model()
    assert layer_paths(model) == ["base", "base/conv", "top_conv", "gap", "head"]
    assert get_layer(model, "base/conv")[0] == "base/conv"
    assert get_layer(model, "conv")[0] == "base/conv"
    assert get_layer(model, -1)[0] == "head"
    assert get_layer(model, model.get_layer("gap"))[0] == "gap"
    assert spatial_layer_paths(model) == ["base/conv", "top_conv"]


@pytest.mark.parametrize(
    ("ref", "words"),
    [("nope", "no layer named 'nope'.*valid names are base"), (99, "out of range"), (0, "input")],
)
def test_bad_layer_references_name_the_fix(ref, words):
    with pytest.raises(LayerError, match=words):
        get_layer(_nested_model(), ref)


def test_rebuild_exposes_nested_layers_and_logits_without_mutation():
    model = _nested_model()
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype=np.float32)
    logits, conv = rebuild(model, ["base/conv"])(x)
    np.testing.assert_allclose(tf.nn.softmax(logits), model(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conv, model.get_layer("base")(x), rtol=1e-5, atol=1e-6)
    assert model.get_layer("head").activation.__name__ == "softmax"


def test_model_cache_notices_an_activation_swapped_in_place():
    model = _nested_model()
    x = np.random.default_rng(1).random((1, 8, 8, 3), dtype=np.float32)
    before = vizkit.explain(model, x, method="saliency", targets=0)
    model_cache(model)["marker"] = True
    model.get_layer("top_conv").activation = keras.activations.relu  # the tutorial pattern
    assert "marker" not in model_cache(model)
    after = vizkit.explain(model, x, method="saliency", targets=0)
    with tf.GradientTape() as tape:
        xt = tf.constant(x)
        tape.watch(xt)
        logits = rebuild(model)(xt)
        score = logits[:, 0]
    expected = tape.gradient(score, xt).numpy().sum(-1)
    np.testing.assert_allclose(after.maps, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(before.maps, after.maps)


def test_non_image_models_are_refused_by_image_functions():
    dense = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    with pytest.raises(InputError, match="needs an image model"):
        require_image_model(dense, "Grad-CAM")


def test_model_info_describes_input_head_and_feature_map_layers():
    info = vizkit.model_info(_nested_model())
    assert info == vizkit.ModelInfo(
        name="outer",
        image_model=True,
        input_shape=(None, 8, 8, 3),
        num_classes=3,
        head_error=None,
        spatial_layers=("base/conv", "top_conv"),
    )
    dense = vizkit.model_info(keras.Sequential([keras.Input((5,)), keras.layers.Dense(1)]))
    assert (dense.image_model, dense.input_shape, dense.spatial_layers) == (False, None, ())
    assert dense.num_classes == 2  # one unit: a binary classifier


def test_import_vizkit_is_quiet_and_fast():
    code = "import time; t = time.perf_counter(); import vizkit; print(time.perf_counter() - t)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stderr == ""
    assert float(run.stdout) < 5.0
    start = time.perf_counter()
    quiet = subprocess.run(
        [sys.executable, "-c", "import vizkit; vizkit.summarize"],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert quiet.stderr == "", quiet.stderr  # TensorFlow's start-up notices are silenced
    assert time.perf_counter() - start < 60


def test_loading_a_model_file_is_quiet(tmp_path):
    """The file checks run before TensorFlow's own set-up: they must not start it noisily."""
    path = tmp_path / "tiny.keras"
    _nested_model().save(path)
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = f"import vizkit; vizkit.load_model({str(path)!r})"
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert run.stderr == "", run.stderr


def test_public_api_names_resolve():
    missing = [name for name in vizkit.__all__ if not hasattr(vizkit, name)]
    assert missing == []


def test_keras_adapter_names_the_supported_range():
    from vizkit import _keras

    with pytest.raises(
        _keras.UnsupportedKerasError,
        match=r"Functional\._run_through_graph.*keras" + re.escape(_keras.SUPPORTED),
    ):
        _keras.run_through_graph(object(), None, lambda op: op)
    assert _keras.inbound_nodes(object()) == []
    assert _keras.producer(np.zeros(2)) is None
