"""The input contract (issue 14): input scale detected, stated and recorded; class names for any
model; aspect ratio; sanity findings. References are independent: Keras' own
``imagenet_utils.preprocess_input``, hand-built images with known pixels, hand-set heads."""

from __future__ import annotations

import io
import json
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image

import vizkit
from vizkit.contract import InputSpec, user_spec
from vizkit.errors import InputError, VizkitWarning


@pytest.fixture(scope="module")
def keras():
    from vizkit._tf import keras

    return keras


def tiny(keras, *front, units=3, size=8, name="tiny", activation="softmax"):
    """A seeded CNN whose first layers are ``front`` (preprocessing under test)."""
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            *front,
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(units, activation=activation, name="head"),
        ],
        name=name,
    )


def pixels(seed=0, n=2, size=8):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Conventions against Keras' own preprocess_input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "mode"), [("caffe", "caffe"), ("torch", "torch"), ("-1-1", "tf")])
def test_named_conventions_equal_keras_preprocess_input(keras, name, mode):
    from keras.src.applications import imagenet_utils

    raw = pixels().astype(np.float32)
    expected = imagenet_utils.preprocess_input(raw.copy(), mode=mode)
    spec = InputSpec.named(name)
    np.testing.assert_allclose(spec.apply(raw / 255.0), expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(spec.to_unit(expected), raw / 255.0, atol=1e-5)
    low, high = spec.value_range
    assert low <= expected.min() and expected.max() <= high


def test_linear_specs_and_user_statements():
    assert user_spec() is None
    assert user_spec((0, 255)).label == "0-255"
    assert user_spec("0-255").value_range == (0.0, 255.0)
    assert user_spec(preprocess="tf").label == "-1-1"
    assert user_spec((0, 255), "0-255").source == "user"
    with pytest.raises(InputError, match="disagree"):
        user_spec((0, 1), "caffe")
    with pytest.raises(InputError, match="not known"):
        user_spec(preprocess="imagenet")
    with pytest.raises(InputError, match="not a range"):
        user_spec("caffe")
    with pytest.raises(InputError, match="high > low"):
        user_spec((1, 0))
    spec = InputSpec.linear((-1, 1))
    np.testing.assert_allclose(spec.apply(np.array([0.0, 0.5, 1.0])), [-1.0, 0.0, 1.0])
    assert "you chose it" in spec.describe()


def test_custom_function_is_applied_probed_and_pickled_without_lambdas():
    spec = user_spec(preprocess=lambda x: x / 127.5 - 1.0)
    assert spec.label == "custom" and spec.value_range == (-1.0, 1.0)
    np.testing.assert_allclose(spec.apply(np.ones((1, 2, 2, 3))), 1.0)
    copy = pickle.loads(pickle.dumps(spec))
    assert copy.function is None and copy.label == "custom"
    with pytest.raises(InputError, match="not kept"):
        copy.apply(np.ones((1, 2, 2, 3)))
    with pytest.raises(InputError, match="failed"):
        user_spec(preprocess=lambda x: x.missing)


# --------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------
def test_rescaling_behind_augmentation_is_detected_as_0_255(keras):
    augment = keras.Sequential([keras.layers.RandomFlip(), keras.layers.RandomRotation(0.1)])
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(augment(inputs))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    spec = vizkit.input_spec(keras.Model(inputs, outputs))
    assert (spec.label, spec.source) == ("0-255", "detected")
    assert "Rescaling(scale=0.007843, offset=-1) 'scale'" in spec.reason
    assert "-1..1" in spec.reason


@pytest.mark.parametrize(
    ("front", "expected", "source"),
    [
        (lambda k: [k.layers.Rescaling(1 / 255)], "0-255", "detected"),
        (  # ConvNeXt's block: ImageNet mean and std on 0-255
            lambda k: [
                k.layers.Normalization(
                    mean=[123.675, 116.28, 103.53], variance=[58.395**2, 57.12**2, 57.375**2]
                )
            ],
            "0-255",
            "detected",
        ),
        (  # the same on 0-1 (a model trained on 0-1 images)
            lambda k: [
                k.layers.Normalization(
                    mean=[0.485, 0.456, 0.406], variance=[0.229**2, 0.224**2, 0.225**2]
                )
            ],
            "0-1",
            "detected",
        ),
        (lambda k: [k.layers.Rescaling(1000.0)], "0-1", "default"),
        (lambda k: [], "0-1", "default"),
    ],
    ids=["rescale-255", "imagenet-255", "imagenet-01", "not-normalized", "none"],
)
def test_detection_rules(keras, front, expected, source):
    spec = vizkit.input_spec(tiny(keras, *front(keras)))
    assert (spec.label, spec.source) == (expected, source), spec.describe()


def test_keras_ops_arithmetic_and_outside_preprocessing_are_named_in_the_reason(keras):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(inputs / 255.0)
    spec = vizkit.input_spec(keras.Model(inputs, x))
    assert spec.source == "default" and "keras.ops" in spec.reason
    vgg_like = tiny(keras, name="vgg16")
    assert "preprocess='caffe'" in vizkit.input_spec(vgg_like).reason
    assert vizkit.input_spec(vgg_like, preprocess="caffe").source == "user"


@pytest.mark.parametrize(
    "family",
    [
        "MobileNetV3Small",
        "EfficientNetB0",
        pytest.param("EfficientNetV2B0", marks=pytest.mark.slow),
        "ConvNeXtTiny",
    ],
)
def test_keras_applications_preprocessing_blocks(keras, family):
    model = getattr(keras.applications, family)(weights=None, input_shape=(32, 32, 3))
    spec = vizkit.input_spec(model)
    assert (spec.label, spec.source) == ("0-255", "detected"), spec.describe()


def test_sample_models_keep_their_metadata():
    digits = vizkit.input_spec(vizkit.sample_model("digits_cnn"))
    assert (digits.label, digits.source) == ("0-1", "sample")
    assert vizkit.sample_images("digits_cnn").input_spec.label == "0-1"


# --------------------------------------------------------------------------------------------
# load_images: the spec is used and recorded
# --------------------------------------------------------------------------------------------
def test_load_images_uses_detected_stated_and_default_scales(keras):
    raw = pixels()
    model = tiny(keras, keras.layers.Rescaling(1 / 255))
    batch = vizkit.load_images(raw, model)
    np.testing.assert_allclose(batch.array, raw.astype(np.float32))
    assert batch.input_spec.source == "detected" and batch.value_range == (0.0, 255.0)
    np.testing.assert_allclose(batch.display, raw / 255.0, atol=1e-6)
    caffe = vizkit.load_images(raw, model, preprocess="caffe")
    np.testing.assert_allclose(caffe.display, raw / 255.0, atol=1e-5)
    assert caffe.input_spec.label == "caffe"
    plain = vizkit.load_images(raw, tiny(keras))
    np.testing.assert_allclose(plain.array, raw / 255.0, atol=1e-6)
    assert plain.input_spec.source == "default" and "default" in plain.input_spec.describe()
    with pytest.raises(InputError, match="loaded on the 0-255 scale"):
        vizkit.load_images(batch, model, value_range=(0, 1))


def test_explain_predict_evaluate_record_the_spec(keras):
    model = tiny(keras, keras.layers.Rescaling(1 / 255))
    raw = pixels(n=3)
    pred = vizkit.predict(model, raw)
    assert pred.input_spec.label == "0-255"
    np.testing.assert_allclose(
        pred.all_probabilities, np.asarray(model(raw.astype(np.float32))), rtol=1e-5
    )
    explanation = vizkit.explain(model, raw, "saliency")
    assert explanation.input_spec.label == "0-255"
    np.testing.assert_allclose(explanation.inputs, raw.astype(np.float32))
    stated = vizkit.explain(model, raw, ["saliency", "gradcam"], value_range=(0, 1))
    assert all(e.input_spec.label == "0-1" for e in stated)
    from vizkit.metrics import run_evaluation

    result = run_evaluation(model, raw, ["saliency"], ["deletion"], steps=4, preprocess="torch")
    assert result.input_spec.label == "torch"


# --------------------------------------------------------------------------------------------
# Aspect ratio
# --------------------------------------------------------------------------------------------
def stripes(height=8, width=16):
    """Left quarter red, middle half green, right quarter blue (uint8)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 4, 0] = 255
    image[:, width // 4 : 3 * width // 4, 1] = 255
    image[:, 3 * width // 4 :, 2] = 255
    return image


def png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def test_resize_stretch_crop_pad():
    data = png(stripes())
    crop = vizkit.load_images(data, size=(8, 8), resize="crop")
    np.testing.assert_allclose(crop.array[0], np.broadcast_to([0, 1, 0], (8, 8, 3)), atol=1e-6)
    assert crop.resize == "crop"
    pad = vizkit.load_images(data, size=(8, 8), resize="pad", value_range=(0, 255))
    assert np.all(pad.array[0, :2] == 0) and np.all(pad.array[0, 6:] == 0)  # black borders
    assert pad.array[0, 2:6, :, 1].max() > 200  # the image, squeezed into rows 2..5
    stretch = vizkit.load_images(data, size=(8, 8))
    assert stretch.resize == "stretch"
    assert stretch.array[0, :, 0, 0].min() > 0.9 and stretch.array[0, :, -1, 2].min() > 0.9
    tall = vizkit.load_images(np.ascontiguousarray(stripes().transpose(1, 0, 2)), size=(8, 8),
                              resize="crop")  # fmt: skip
    np.testing.assert_allclose(tall.array[0, ..., 1], 1.0, atol=1e-6)
    with pytest.raises(InputError, match="resize='squash'"):
        vizkit.load_images(data, size=(8, 8), resize="squash")


# --------------------------------------------------------------------------------------------
# Class names
# --------------------------------------------------------------------------------------------
def test_read_class_names_formats(tmp_path):
    (tmp_path / "a.txt").write_text("cat\ndog\n\n", encoding="utf-8")
    assert vizkit.read_class_names(tmp_path / "a.txt") == ("cat", "dog")
    assert vizkit.read_class_names(json.dumps(["cat", "dog"]).encode()) == ("cat", "dog")
    assert vizkit.read_class_names(b'{"1": "dog", "0": "cat"}') == ("cat", "dog")
    keras_index = {"0": ["n01440764", "tench"], "1": ["n01443537", "goldfish"]}
    assert vizkit.read_class_names(json.dumps(keras_index).encode()) == ("tench", "goldfish")
    for bad, match in [(b"", "no class names"), (b'{"0": "a", "2": "b"}', "every class"),
                       (b"[1, 2", "not valid"), (b"\xff\xfe\x00", "UTF-8")]:  # fmt: skip
        with pytest.raises(InputError, match=match):
            vizkit.read_class_names(bad)


def test_class_names_given_checked_and_imagenet_for_1000_way_heads(keras):
    raw = pixels(n=3)
    model = tiny(keras)
    batch = vizkit.load_images(raw, model, class_names=["a", "b", "c"])
    assert batch.class_names == ("a", "b", "c")
    explanation = vizkit.explain(model, batch, "gradcam")
    assert explanation.class_name(int(explanation.targets[0])) in ("a", "b", "c")
    assert (
        vizkit.predict(model, raw, class_names=["x", "y", "z"])
        .to_frame()["class_name"]
        .isin(["x", "y", "z"])
        .all()
    )
    with pytest.raises(InputError, match="2 class names given for a model with 3 classes"):
        vizkit.load_images(raw, model, class_names=["a", "b"])
    assert vizkit.load_images(raw, model).class_names is None
    wide = tiny(keras, units=1000, name="wide")
    names = vizkit.imagenet_class_names()
    assert vizkit.load_images(raw, wide).class_names == names
    from_array = vizkit.explain(wide, raw.astype(np.float32), "saliency")
    assert from_array.class_names == names and from_array.predictions.class_names == names
    assert vizkit.predict(wide, raw.astype(np.float32)).class_names == names


# --------------------------------------------------------------------------------------------
# Sanity findings
# --------------------------------------------------------------------------------------------
def predictions(top, probability, k=5):
    from vizkit.results.explanation import Predictions

    n = len(top)
    classes = np.stack([np.roll(np.arange(k), -t)[:3] for t in top])
    probs = np.column_stack([probability, *(np.full((2, n), (1 - np.asarray(probability)) / 2))])
    return Predictions(classes=classes, probabilities=probs.astype(np.float32))


def test_prediction_findings(keras):
    model = tiny(keras, units=5)
    x = np.random.default_rng(0).random((3, 8, 8, 3)).astype(np.float32)
    codes = lambda p: [f.code for f in vizkit.check_inputs(model, x, p)]  # noqa: E731
    assert codes(predictions([2, 2, 2], [0.999, 0.995, 1.0])) == ["same_class"]
    assert codes(predictions([2, 2, 1], [0.999, 0.995, 1.0])) == []
    assert codes(predictions([2, 2], [0.999, 0.995])) == []  # two images may share a class
    assert codes(predictions([0, 1, 2], [0.21, 0.2, 0.215])) == ["uniform"]
    assert codes(predictions([0, 1, 2], [0.21, 0.2, 0.5])) == []
    assert vizkit.check_inputs(tiny(keras, units=2), x, predictions([1, 1, 1], [1, 1, 1])) == []


def test_out_of_range_finding_and_warnings(keras):
    model = tiny(keras, keras.layers.Rescaling(1 / 127.5, offset=-1), units=5)
    raw = pixels(n=3)
    unit = raw.astype(np.float32) / 255.0
    found = vizkit.check_inputs(model, unit)
    assert [f.code for f in found] == ["out_of_range"]
    assert "0-1 images?" in found[0].message and "value_range=(0, 255)" in found[0].message
    assert vizkit.check_inputs(model, raw.astype(np.float32)) == []
    unit_model = tiny(keras, keras.layers.Rescaling(2.0, offset=-1.0))  # detected: 0-1
    assert vizkit.input_spec(unit_model).label == "0-1"
    assert [f.code for f in vizkit.check_inputs(unit_model, raw.astype(np.float32))] == [
        "out_of_range"
    ]
    assert vizkit.check_inputs(unit_model, unit) == []
    with pytest.warns(VizkitWarning, match="first layers expect 0-255"):
        vizkit.predict(model, unit)
    with pytest.warns(VizkitWarning, match="first layers expect 0-255"):
        vizkit.explain(model, unit, "saliency")
    with warnings.catch_warnings():
        warnings.simplefilter("error", VizkitWarning)
        vizkit.predict(model, raw)  # the detected scale: no finding


def test_flat_curves_finding(keras):
    from vizkit.results.metrics import EvaluationResult, PerturbationCurve

    def curve(kind, scores):
        return PerturbationCurve(kind=kind, fractions=np.linspace(0, 1, 4), scores=scores)

    flat = np.full((2, 4), 0.7)
    moving = np.array([[0.9, 0.5, 0.2, 0.1], [0.8, 0.8, 0.8, 0.8]])
    result = EvaluationResult(
        methods=("gradcam", "saliency"),
        metrics=("deletion", "insertion"),
        results={
            "gradcam": {"deletion": curve("deletion", flat), "insertion": curve("insertion", flat)},
            "saliency": {"deletion": curve("deletion", moving), "insertion": curve("insertion", flat)},
        },
    )  # fmt: skip
    found = vizkit.check_inputs(tiny(keras), np.zeros((2, 8, 8, 3), np.float32), None, result)
    assert [(f.code, "gradcam" in f.message) for f in found] == [("flat_curves", True)]


# --------------------------------------------------------------------------------------------
# Done when: the transfer model, loaded with no extra arguments
# --------------------------------------------------------------------------------------------
def test_transfer_model_in_the_api(transfer_model_file):
    path, folder, raw = transfer_model_file
    model = vizkit.load_model(path)
    reference = model.predict(raw.astype(np.float32), verbose=0)
    assert len(set(reference.argmax(1))) > 1  # the model's own predictions vary
    with warnings.catch_warnings():
        warnings.simplefilter("error", VizkitWarning)  # nothing to flag on the right scale
        batch = vizkit.load_images(folder, model)
        predicted = vizkit.predict(model, batch)
        explanation = vizkit.explain(model, batch, "gradcam")
    assert batch.input_spec.source == "detected" and batch.input_spec.label == "0-255"
    np.testing.assert_allclose(batch.array, raw.astype(np.float32))
    np.testing.assert_allclose(predicted.all_probabilities, reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(explanation.predictions.top, reference.argmax(1))
    maps = explanation.maps.reshape(len(raw), -1)
    spread = np.abs(maps[:, None] - maps[None]).max(axis=-1) / np.abs(maps).max()
    assert spread.max() > 0.5  # the maps differ between images
    with pytest.warns(VizkitWarning, match="predicted as class"):  # the bug of issue 14
        vizkit.predict(model, folder, value_range=(0, 1))


def _spy_explanations(monkeypatch) -> list:
    """Collect the explanations the CLI computes (it creates methods via vizkit.methods)."""
    import vizkit.methods

    seen: list = []
    original = vizkit.methods.create

    def create(*args, **kwargs):
        method = original(*args, **kwargs)
        explain = method.explain

        def spy(*a, **k):
            seen.append(explain(*a, **k))
            return seen[-1]

        monkeypatch.setattr(method, "explain", spy)
        return method

    monkeypatch.setattr(vizkit.methods, "create", create)
    return seen


def test_transfer_model_in_the_cli(transfer_model_file, capsys, monkeypatch, tmp_path):
    from vizkit.cli import main

    path, folder, raw = transfer_model_file
    model = vizkit.load_model(path)
    reference = model.predict(raw.astype(np.float32), verbose=0)
    code = main(["predict", "--model", str(path), "--images", str(folder), "--top", "1",
                 "--format", "csv"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "input scale: 0-255 (detected" in err and "warning" not in err
    rows = [line.split(",") for line in out.strip().splitlines()[1:]]
    assert [int(r[3]) for r in rows] == list(reference.argmax(1))
    np.testing.assert_allclose([float(r[-1]) for r in rows], reference.max(1), rtol=1e-4)

    seen = _spy_explanations(monkeypatch)
    image = sorted(folder.iterdir())[0]
    code = main(["explain", "--model", str(path), "--image", str(image), "--out",
                 str(tmp_path / "map.png"), "--labels", str(_labels(tmp_path))])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    explanation = seen[0]
    assert explanation.input_spec.label == "0-255"
    assert explanation.predictions.top[0] == reference[0].argmax()
    assert explanation.class_names == ("red", "green", "blue")
    assert (tmp_path / "map.png").stat().st_size > 0


def _labels(folder):
    path = folder / "labels.txt"
    path.write_text("red\ngreen\nblue\n", encoding="utf-8")
    return path


def test_cli_states_the_scale_and_rejects_bad_values(transfer_model_file, capsys):
    from vizkit.cli import main

    path, folder, _ = transfer_model_file
    code = main(["predict", "--model", str(path), "--images", str(folder), "--value-range", "0,1"])
    err = capsys.readouterr().err
    assert code == 0 and "input scale: 0-1 (you chose it)" in err
    assert "vizkit: warning: all 6 images are predicted as class" in err
    assert main(["predict", "--model", str(path), "--images", str(folder),
                 "--value-range", "zero"]) == 2  # fmt: skip
    assert main(["predict", "--model", str(path), "--images", str(folder),
                 "--value-range", "0,1", "--preprocess", "caffe"]) == 2  # fmt: skip


def test_imagenet_lite0_cli_explain_of_a_photo_is_on_0_255(tmp_path, monkeypatch, capsys):
    from vizkit.cli import main

    photo = tmp_path / "photo.jpg"
    Image.fromarray(vizkit.sample_images("imagenet_lite0").originals[0]).save(photo)
    seen = _spy_explanations(monkeypatch)
    code = main(["explain", "--model", "sample:imagenet_lite0", "--image", str(photo),
                 "--out", str(tmp_path / "map.png")])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert seen[0].input_spec.label == "0-255" and seen[0].inputs.max() > 100
    assert seen[0].class_name(int(seen[0].predictions.top[0])) != str(seen[0].predictions.top[0])


def test_scan_uses_the_detected_scale(keras, tmp_path):
    model = tiny(keras, keras.layers.Rescaling(1 / 255))
    scan = vizkit.scan(model, pixels(n=2), "gradcam", out=tmp_path / "scan", progress=False)
    assert scan.manifest["settings"]["value_range"] == [0.0, 255.0]
    with pytest.raises(InputError, match="linear input scales only"):
        vizkit.scan(model, pixels(n=2), "gradcam", out=tmp_path / "s2", preprocess="caffe")


def test_detection_under_mixed_precision(keras):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny(keras, keras.layers.Rescaling(1 / 127.5, offset=-1))
    finally:
        keras.config.set_dtype_policy(policy)
    spec = vizkit.input_spec(model)
    assert (spec.label, spec.source) == ("0-255", "detected"), spec.describe()
