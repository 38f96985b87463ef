"""Nothing legitimate is refused: Keras applications, transfer models, mixed precision, samples.

Every ``keras.applications`` family is built with ``weights=None`` at a small input size, saved
as ``.keras`` and ``.h5``, and must load through ``vizkit.load_model`` unchanged (the same
predictions as the model that was saved); so must a transfer model with such a base behind
augmentation, ``Rescaling`` and ``Normalization`` layers, also under ``mixed_float16``, and the
sample models. (RegNet is not in Keras 3's applications; Keras 3 itself cannot rebuild
MobileNetV3 and ConvNeXt from ``.h5``, whose operations take constant arguments: their ``.h5``
files pass vizkit's checks and then fail in Keras exactly as without vizkit.)
"""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from vizkit import loading
from vizkit._tf import keras
from vizkit.loading._keras import check_built
from vizkit.loading._limits import Limits

A = keras.applications
L = keras.layers
FAMILIES = {
    "MobileNetV2": (A.MobileNetV2, 32),
    "MobileNetV3Small": (A.MobileNetV3Small, 32),
    "MobileNetV3Large": (A.MobileNetV3Large, 32),
    "ResNet50V2": (A.ResNet50V2, 32),
    "EfficientNetB0": (A.EfficientNetB0, 32),
    "EfficientNetV2B0": (A.EfficientNetV2B0, 32),
    "DenseNet121": (A.DenseNet121, 32),
    "ConvNeXtTiny": (A.ConvNeXtTiny, 32),
    "Xception": (A.Xception, 71),
    "InceptionV3": (A.InceptionV3, 75),
    "NASNetMobile": (A.NASNetMobile, 32),
    "VGG16": (A.VGG16, 32),
}


def _same_predictions(loaded, model, size: int) -> None:
    x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
    expected = np.asarray(model(x, training=False), dtype="float32")
    got = np.asarray(loaded(x, training=False), dtype="float32")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _same_weights(loaded, model) -> None:
    assert [w.shape for w in loaded.weights] == [w.shape for w in model.weights]
    for got, expected in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_keras_applications_load_unchanged(family, tmp_path):
    """Both formats pass every check; the .keras file is also loaded in full and compared.

    (vizkit adds only checks to Keras's own loading: a file that passes them loads as Keras
    loads it, so a full load of the .h5 too would only time Keras twice.)
    """
    build, size = FAMILIES[family]
    keras.utils.set_random_seed(0)
    model = build(weights=None, include_top=False, pooling="avg", input_shape=(size, size, 3))
    for ext in ("keras", "h5"):
        path = tmp_path / f"{family}.{ext}"
        model.save(path)
        custom = {}
        if family == "ConvNeXtTiny" and ext == "h5":
            with pytest.raises(vizkit.UnsafeModelError, match="custom objects LayerScale"):
                loading.check_model_file(path)  # like Keras: "Unknown layer: 'LayerScale'"
            from keras.src.applications.convnext import LayerScale

            custom = {"LayerScale": LayerScale}
        info = loading.check_model_file(path, custom_objects=custom)
        if not custom:
            assert info.parameters == model.count_params()
    check_built(model, family, Limits.for_max_bytes(loading.DEFAULT_MAX_BYTES))
    _same_weights(vizkit.load_model(tmp_path / f"{family}.keras"), model)


def _transfer_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    base = A.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    x = L.RandomFlip()(inputs)
    x = L.RandomRotation(0.1)(x)
    x = L.RandomZoom(0.1)(x)
    x = L.RandomContrast(0.1)(x)
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    x = L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 2.0, 3.0])(x)
    x = base(x, training=False)
    x = L.GlobalAveragePooling2D()(x)
    outputs = L.Dense(4, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_transfer_models_load_unchanged(policy, tmp_path):
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        model = _transfer_model()
    finally:
        keras.config.set_dtype_policy(previous)
    for ext in ("keras", "h5"):
        path = tmp_path / f"transfer.{ext}"
        model.save(path)
        loaded = vizkit.load_model(path)
        base = loaded.get_layer(index=-3)  # the nested MobileNetV2
        assert base.get_layer(index=1).dtype_policy.name == policy
        _same_weights(loaded, model)
        _same_predictions(loaded, model, 32)


def test_sample_models_load_unchanged():
    for name in vizkit.sample_names():
        path = vizkit.sample_path(name)
        model = vizkit.load_model(path)
        assert loading.check_model_file(path).parameters == model.count_params()
