"""Sample models: seeded data generators, build directories, staleness and the vizkit API."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sample_models import catalog, data
from vizkit.errors import InputError

TARGETS = {"digits_cnn": 0.95, "digits_mlp": 0.90, "shapes_vgg": 0.95}


# --------------------------------------------------------------------------------------------
# Data generators (no TensorFlow)
# --------------------------------------------------------------------------------------------
def test_shapes_generator_is_deterministic_and_prefix_stable():
    a = data.shapes_split(12, seed=5, split="test")
    b = data.shapes_split(12, seed=5, split="test")
    longer = data.shapes_split(18, seed=5, split="test")
    other = data.shapes_split(12, seed=6, split="test")
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.x, longer.x[:12])
    assert not np.array_equal(a.x, other.x)
    assert not np.array_equal(a.x, data.shapes_split(12, seed=5, split="train").x)
    assert a.x.dtype == np.float32 and a.x.shape == (12, 64, 64, 3)
    assert a.x.min() >= 0.0 and a.x.max() <= 1.0


def test_shapes_classes_are_balanced():
    split = data.shapes_split(30, seed=1, split="train")
    assert np.bincount(split.y, minlength=3).tolist() == [10, 10, 10]


def test_shape_masks_are_exact_non_empty_and_inside_the_image():
    split = data.shapes_split(24, seed=2, split="val")
    assert split.masks.dtype == bool and split.masks.shape == (24, 64, 64)
    for image, mask in zip(split.x, split.masks):
        area = int(mask.sum())
        assert 13**2 * 0.8 <= area <= 26**2 * 1.2  # equal-area range for every class
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert not border.any()
        # one flat colour under the mask (plus pixel noise), different from its surroundings
        inside = image[mask]
        assert inside.std(axis=0).max() < 0.08
        ring = np.zeros_like(mask)
        rows, cols = np.nonzero(mask)
        ring[max(rows.min() - 2, 0) : rows.max() + 3, max(cols.min() - 2, 0) : cols.max() + 3] = 1
        ring &= ~mask
        assert np.abs(inside.mean(axis=0) - image[ring].mean(axis=0)).max() > 0.1


def test_shape_mask_geometry():
    circle = data.shape_mask(0, 32.0, 32.0, 20.0, 0.0)
    square = data.shape_mask(1, 32.0, 32.0, 20.0, 0.0)
    triangle = data.shape_mask(2, 32.0, 32.0, 20.0, 0.3)
    for mask in (circle, square, triangle):
        assert abs(int(mask.sum()) - 400) < 30  # area = area_root ** 2
    # an axis-aligned square of side 20 centred at 32 covers rows/cols 22..41 exactly
    np.testing.assert_array_equal(np.nonzero(square.any(axis=1))[0], np.arange(22, 42))


def test_digits_dataset_is_deterministic_stratified_and_framed():
    a = data.digits_dataset(seed=0)
    b = data.digits_dataset(seed=0)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert a.train.x.shape[1:] == (28, 28, 1) and a.train.x.dtype == np.float32
    assert 0.0 <= a.test.x.min() and a.test.x.max() <= 1.0
    # MNIST framing: the unshifted test digits leave a 4-pixel black border
    assert a.test.x[:, :4].max() == 0.0 and a.test.x[:, -4:].max() == 0.0
    counts = np.bincount(a.test.y, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 46  # 25 % of each class (174..183 images)
    other = data.digits_dataset(seed=1)
    assert not np.array_equal(a.test.x, other.test.x)


def test_shift_images_fills_with_zero():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) + 1
    shifted = data.shift_images(x, np.array([1]), np.array([-2]))
    np.testing.assert_array_equal(shifted[0, 1:, :2, 0], x[0, :3, 2:, 0])
    assert shifted[0, 0].max() == 0 and shifted[0, :, 2:].max() == 0


# --------------------------------------------------------------------------------------------
# Names and staleness
# --------------------------------------------------------------------------------------------
def test_unknown_sample_names_list_the_valid_ones():
    from vizkit import samples

    for call in (samples.sample_model, samples.sample_images, samples.sample_metadata):
        with pytest.raises(InputError, match="digits_cnn, digits_mlp, shapes_vgg"):
            call("mnist_resnet")
    assert samples.sample_names() == [
        "digits_cnn", "digits_mlp", "shapes_vgg", "imagenet_lite0", "cats_dogs_pandas",
    ]  # fmt: skip


def test_build_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(catalog.ENV_VAR, str(tmp_path))
    assert catalog.sample_dir("digits_mlp") == tmp_path / "digits_mlp"
    assert catalog.status("digits_mlp")[0] == "missing"


def test_staleness_detection(built, tmp_path, monkeypatch):
    source = catalog.sample_dir("digits_mlp")
    monkeypatch.setenv(catalog.ENV_VAR, str(tmp_path))
    target = catalog.sample_dir("digits_mlp")
    shutil.copytree(source, target)
    assert catalog.status("digits_mlp")[0] == "ok"
    assert not catalog.is_stale("digits_mlp")
    assert catalog.status("digits_mlp", source="mnist")[0] == "stale"

    metadata = json.loads((target / "metadata.json").read_text())
    metadata["fingerprint"] = "0" * 64
    (target / "metadata.json").write_text(json.dumps(metadata))
    state, reason = catalog.status("digits_mlp")
    assert state == "stale" and "different version" in reason

    (target / "metadata.json").write_text("{not json")
    assert catalog.status("digits_mlp")[0] == "stale"
    (target / "history.json").unlink()
    assert "history.json" in catalog.status("digits_mlp")[1]


def test_fingerprint_covers_the_builder_source():
    fp = catalog.fingerprint()
    assert len(fp) == 64 and fp == catalog.fingerprint()
    assert set(catalog.FINGERPRINT_FILES) >= {"data.py", "architectures.py", "build.py"}


def test_cli_list_and_up_to_date_build_are_fast(built, capsys):
    from sample_models.__main__ import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in catalog.SAMPLE_NAMES:
        assert name in out
    assert main(["build"]) == 0
    assert "up to date" in capsys.readouterr().err
    assert main(["build", "nope"]) == 2


# --------------------------------------------------------------------------------------------
# Built samples (``make test`` runs ``make samples`` first; otherwise this builds them once)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def built():
    from vizkit import samples

    for name in samples.sample_names():
        samples.ensure_built(name)
    return samples


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_metadata_fields_and_accuracy(built, name):
    metadata = built.sample_metadata(name)
    for key in (
        "class_names", "input_shape", "value_range", "preprocessing", "data_origin",
        "test_accuracy", "seed", "fingerprint", "vizkit_version", "build_seconds",
    ):  # fmt: skip
        assert key in metadata, key
    assert metadata["value_range"] == [0.0, 1.0]
    assert metadata["fingerprint"] == catalog.fingerprint()
    assert metadata["test_accuracy"] >= TARGETS[name]
    history = built.sample_history(name)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(values) == metadata["epochs"] for values in history.values())
    predictions = built.sample_test_predictions(name)
    assert len(predictions.labels) == metadata["num_test"]
    assert predictions.accuracy == pytest.approx(metadata["test_accuracy"])
    assert predictions.confusion_matrix.sum() == metadata["num_test"]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_shipped_images_and_model_agree_with_the_build(built, name):
    model = built.sample_model(name)
    assert built.sample_model(name) is model  # cached per process
    batch = built.sample_images(name)
    metadata = built.sample_metadata(name)
    assert 12 <= len(batch) <= 16
    assert batch.array.shape[1:] == tuple(metadata["input_shape"])
    assert batch.class_names == tuple(metadata["class_names"])
    assert (
        batch.names[0].startswith("test ") and batch.class_names[batch.labels[0]] in batch.names[0]
    )
    assert (batch.masks is not None) == (name == "shapes_vgg")
    probabilities = np.asarray(model.predict_on_batch(batch.array))
    assert np.mean(probabilities.argmax(1) == batch.labels) >= 10 / 12
    # the loaded model reproduces the build-time predictions on the same test rows
    saved = built.sample_test_predictions(name)
    rows = [int(n.split()[1]) for n in batch.names]
    np.testing.assert_array_equal(saved.labels[rows], batch.labels)
    np.testing.assert_allclose(probabilities, saved.probabilities[rows], atol=1e-4)


def test_regenerated_shapes_test_set_matches_and_is_classified(built):
    metadata = built.sample_metadata("shapes_vgg")
    n = 120
    regenerated = data.shapes_split(n, seed=metadata["seed"], split="test")
    batch = built.sample_images("shapes_vgg")
    rows = [int(name.split()[1]) for name in batch.names]
    inside = [i for i, r in enumerate(rows) if r < n]
    np.testing.assert_array_equal(batch.array[inside], regenerated.x[[rows[i] for i in inside]])
    np.testing.assert_array_equal(batch.masks[inside], regenerated.masks[[rows[i] for i in inside]])
    model = built.sample_model("shapes_vgg")
    accuracy = np.mean(np.asarray(model.predict_on_batch(regenerated.x)).argmax(1) == regenerated.y)
    assert accuracy >= 0.93


def test_regenerated_digits_test_set_is_classified(built):
    metadata = built.sample_metadata("digits_cnn")
    if metadata["data_source"] != "sklearn":
        pytest.skip("digits_cnn was built from MNIST")
    test = data.digits_dataset(seed=metadata["seed"], copies=0).test
    model = built.sample_model("digits_cnn")
    accuracy = np.mean(np.asarray(model.predict_on_batch(test.x)).argmax(1) == test.y)
    assert accuracy >= TARGETS["digits_cnn"]


@pytest.mark.slow
def test_a_fresh_build_is_bit_identical(built, tmp_path):
    """Seeds and op determinism: rebuilding (alone, in a new process) gives the same model."""
    import os
    import subprocess
    import sys

    if built.sample_metadata("digits_mlp")["data_source"] != "sklearn":
        pytest.skip("digits_mlp was built from MNIST")
    env = {**os.environ, catalog.ENV_VAR: str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", "sample_models", "build", "digits_mlp"],
        cwd=catalog.PACKAGE_DIR.parent,
        env=env,
        check=True,
        capture_output=True,
    )
    with (
        np.load(tmp_path / "digits_mlp" / "test_predictions.npz") as fresh,
        np.load(catalog.sample_dir("digits_mlp") / "test_predictions.npz") as shipped,
    ):
        np.testing.assert_array_equal(fresh["probabilities"], shipped["probabilities"])
    history = json.loads((tmp_path / "digits_mlp" / "history.json").read_text())
    assert history == built.sample_history("digits_mlp")
