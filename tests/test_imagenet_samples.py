"""The ImageNet samples: the PyTorch file reader, the weight port, the photographs, the 3-class
head and the built-in ImageNet class names.

The port is checked against independent references: a numpy re-computation of the first layers
from the raw PyTorch tensors (always), a PyTorch implementation of EfficientNet-Lite0 written
here (when torch is installed) and the top-5 classes of real photographs.
"""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from sample_models import catalog, efficientnet_lite, photos, pretrained
from sample_models.torch_state import TorchFileError, read_state_dict
from vizkit.errors import InputError
from vizkit.imagenet import imagenet_class_names, imagenet_wnids

CATS, DOGS, PANDA = range(281, 286), range(151, 269), 388


# --------------------------------------------------------------------------------------------
# ImageNet class names (no TensorFlow)
# --------------------------------------------------------------------------------------------
def test_imagenet_class_names_are_the_keras_table_made_readable():
    names, keras_names, wnids = (
        imagenet_class_names(),
        imagenet_class_names("keras"),
        imagenet_wnids(),
    )
    assert len(names) == len(keras_names) == len(wnids) == 1000
    assert len(set(names)) == 1000 and len(set(wnids)) == 1000
    assert list(wnids) == sorted(wnids)  # ImageNet's class order is the sorted WordNet ids
    assert (names[0], wnids[0]) == ("tench", "n01440764")
    assert names[281:286] == ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")
    assert (names[388], names[967], names[999]) == ("giant panda", "espresso", "toilet tissue")
    assert (names[134], names[517], names[639]) == ("crane (bird)", "crane", "maillot (tank suit)")
    assert keras_names[134] == keras_names[517] == "crane" and keras_names[285] == "Egyptian_cat"
    with pytest.raises(InputError, match="readable"):
        imagenet_class_names("wordnet")


def test_imagenet_class_names_are_public_api():
    import vizkit

    assert vizkit.imagenet_class_names() == imagenet_class_names()


# --------------------------------------------------------------------------------------------
# The restricted PyTorch reader (no TensorFlow, no torch)
# --------------------------------------------------------------------------------------------
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_reader_refuses_code_in_the_pickle(tmp_path, monkeypatch):
    alone, hidden = tmp_path / "evil.pth", tmp_path / "hidden.pth"
    alone.write_bytes(pickle.dumps(_Evil(), protocol=2))
    stream = io.BytesIO()  # the same after a valid header
    for value in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, _Evil()):
        pickle.dump(value, stream, protocol=2)
    hidden.write_bytes(stream.getvalue())
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    with pytest.raises(TorchFileError, match=r"asks for (posix|os)\.system.*refusing"):
        read_state_dict(alone)
    with pytest.raises(TorchFileError, match="refusing"):
        read_state_dict(hidden)
    assert calls == []


def test_reader_refuses_other_formats_and_truncation(tmp_path):
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(TorchFileError, match="zip format"):
        read_state_dict(zipped)
    source = pretrained.weights_path().read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(source[: len(source) // 2])
    with pytest.raises(TorchFileError, match="truncated"):
        read_state_dict(cut)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(TorchFileError, match="magic number"):
        read_state_dict(junk)


def test_reader_reads_the_weights_file():
    state = read_state_dict(pretrained.weights_path())
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert all(np.isfinite(v).all() for v in state.values())


def test_a_different_weights_file_is_refused(tmp_path):
    other = tmp_path / "efficientnet-lite0-57934424.pth"
    other.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match=r"SHA-256 .*refusing it; reinstall") as info:
        pretrained.converted_weights(other)
    assert "\n" not in str(info.value)
    assert pretrained.sha256(pretrained.weights_path()) == pretrained.WEIGHTS_SHA256


def test_converted_weights_reject_foreign_tensors():
    state = read_state_dict(pretrained.weights_path())
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 file"):
        efficientnet_lite.keras_weights({**state, "_blocks.0._se_reduce.weight": np.zeros(1)})


def test_reader_matches_torch_load_on_views_and_dtypes(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "view": base.t()[1:],  # non-contiguous, with an offset
        "counter": torch.tensor(7, dtype=torch.int64),
        "half": torch.linspace(0, 1, 5, dtype=torch.float16),
    }
    path = tmp_path / "small.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    read = read_state_dict(path)
    for key, tensor in state.items():
        np.testing.assert_array_equal(read[key], tensor.numpy())
        assert read[key].dtype == tensor.numpy().dtype
    reference = torch.load(pretrained.weights_path(), map_location="cpu", weights_only=True)
    ours = read_state_dict(pretrained.weights_path())
    assert list(ours) == list(reference)
    for key, tensor in reference.items():
        np.testing.assert_array_equal(ours[key], tensor.numpy())


# --------------------------------------------------------------------------------------------
# Photographs and masks (no TensorFlow)
# --------------------------------------------------------------------------------------------
def test_photos_are_framed_labelled_and_outlined():
    shots = photos.load_photos()
    again = photos.load_photos()
    np.testing.assert_array_equal(shots.images, again.images)
    np.testing.assert_array_equal(shots.masks, again.masks)
    n = len(photos.PHOTOS)
    assert shots.images.shape == (n, 224, 224, 3) and shots.images.dtype == np.float32
    assert shots.images.min() >= 0 and shots.images.max() <= 255 and shots.images.max() > 200
    assert shots.masks.shape == (n, 224, 224) and shots.masks.dtype == bool
    names = imagenet_class_names()
    for photo, mask in zip(photos.PHOTOS, shots.masks):
        assert 0.03 < mask.mean() < 0.9, photo.name  # an object, not the whole frame
        assert photo.label not in photo.accepted and all(0 <= c < 1000 for c in photo.labels)
    assert names[shots.labels[0]] == "tabby" and shots.names[0] == "chelsea"
    assert photos.outline_mask((4, 4), (("polygon", [(0, 0), (3, 0), (3, 3), (0, 3)]),)).all()


# --------------------------------------------------------------------------------------------
# Catalog: each kind of sample has its own fingerprint
# --------------------------------------------------------------------------------------------
def test_converted_samples_have_their_own_fingerprint_and_files():
    assert catalog.SAMPLE_NAMES == catalog.TRAINED_NAMES + catalog.CONVERTED_NAMES
    assert catalog.fingerprint() == catalog.fingerprint("digits_cnn")
    assert catalog.fingerprint("imagenet_lite0") == catalog.fingerprint("cats_dogs_pandas")
    assert catalog.fingerprint("imagenet_lite0") != catalog.fingerprint("shapes_vgg")
    assert not set(catalog.CONVERTED_FINGERPRINT_FILES) & set(catalog.FINGERPRINT_FILES)
    assert "history.json" not in catalog.sample_files("imagenet_lite0")
    assert "history.json" in catalog.sample_files("digits_mlp")


# --------------------------------------------------------------------------------------------
# The built samples (one load each for the whole module)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lite0():
    import vizkit

    return vizkit.sample_model("imagenet_lite0"), vizkit.sample_images("imagenet_lite0")


@pytest.fixture(scope="module")
def probabilities(lite0):
    model, batch = lite0
    return np.asarray(model.predict_on_batch(batch.array))


def test_metadata_records_the_input_contract_and_the_weights(lite0):
    import vizkit

    model, batch = lite0
    metadata = vizkit.sample_metadata("imagenet_lite0")
    assert metadata["value_range"] == [0.0, 255.0] and batch.value_range == (0.0, 255.0)
    assert metadata["input_shape"] == [224, 224, 3]
    assert metadata["class_names"] == list(imagenet_class_names())
    assert metadata["weights"]["sha256"] == pretrained.WEIGHTS_SHA256
    assert metadata["fingerprint"] == catalog.fingerprint("imagenet_lite0")
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 4_652_008  # EfficientNet-Lite0's published 4.65 M parameters
    assert metadata["num_params"] == model.count_params()
    normalize = model.get_layer("normalize")  # the contract lives inside the model
    assert normalize.scale == pytest.approx(1 / 128) and normalize.offset == pytest.approx(
        -127 / 128
    )
    assert len(batch) == len(photos.PHOTOS) and batch.masks is not None
    assert batch.names[1] == "coffee (espresso)"
    with pytest.raises(InputError, match="no training history"):
        vizkit.sample_history("imagenet_lite0")


def test_top5_on_the_photographs(lite0, probabilities):
    """The weights are real and correctly mapped: every photograph's class is in the top 5 and
    the top-1 class is one a person would accept (a cat class for the cat, ...)."""
    names = imagenet_class_names()
    model, batch = lite0
    for photo, row in zip(photos.PHOTOS, probabilities):
        top5 = list(np.argsort(-row)[:5])
        assert photo.label in top5, (photo.name, [names[c] for c in top5])
        assert top5[0] in photo.labels, (photo.name, [names[c] for c in top5])
    chelsea, coffee, rocket = probabilities[0], probabilities[1], probabilities[2]
    assert int(chelsea.argmax()) in CATS and chelsea[list(CATS)].sum() > 0.9
    assert int(coffee.argmax()) in (967, 968, 504)  # espresso, cup, coffee mug
    assert int(rocket.argmax()) in (657, 744, 812)  # missile, projectile, space shuttle
    saved = np.load(catalog.sample_dir("imagenet_lite0") / "test_predictions.npz")
    np.testing.assert_allclose(saved["probabilities"], probabilities, atol=1e-5)


def test_first_layers_match_a_numpy_port_of_the_pytorch_tensors(lite0):
    """Stem (3x3 stride 2, TensorFlow-style SAME padding: the extra row and column at the
    bottom/right), batch norm with eps 1e-3, ReLU6, then block 0's depthwise 3x3 from the raw
    ``(out, in, kh, kw)`` PyTorch tensors, in plain numpy."""
    from vizkit._tf import keras

    model, batch = lite0
    state = read_state_dict(pretrained.weights_path())
    x = (batch.array[:1] - 127.0) / 128.0
    padded = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))  # 224 -> 112 at stride 2, k 3
    kernel = state["_conv_stem.weight"]  # (32, 3, 3, 3)
    stem = sum(
        np.einsum("nhwc,oc->nhwo", padded[:, i : i + 223 : 2, j : j + 223 : 2], kernel[:, :, i, j])
        for i in range(3)
        for j in range(3)
    )

    def bn(v, key):
        mean, var = state[f"{key}.running_mean"], state[f"{key}.running_var"]
        return (v - mean) / np.sqrt(var + 1e-3) * state[f"{key}.weight"] + state[f"{key}.bias"]

    stem = np.clip(bn(stem, "_bn0"), 0, 6)
    dw = state["_blocks.0._depthwise_conv.weight"][:, 0]  # (32, 3, 3)
    padded = np.pad(stem, ((0, 0), (1, 1), (1, 1), (0, 0)))
    depthwise = sum(
        padded[:, i : i + 112, j : j + 112] * dw[:, i, j] for i in range(3) for j in range(3)
    )
    depthwise = np.clip(bn(depthwise, "_blocks.0._bn1"), 0, 6)
    probe = keras.Model(
        model.inputs,
        [model.get_layer("stem_relu").output, model.get_layer("block0_dw_relu").output],
    )
    got_stem, got_dw = (np.asarray(v) for v in probe.predict_on_batch(batch.array[:1]))
    np.testing.assert_allclose(got_stem, stem, atol=1e-4)
    np.testing.assert_allclose(got_dw, depthwise, atol=1e-4)


def _torch_efficientnet_lite0(torch, state, x):
    """EfficientNet-Lite0 in PyTorch, written from the reference implementation's description
    (lukemelas/EfficientNet-PyTorch with the Lite changes): TF-SAME padding, BN eps 1e-3."""
    import math

    F = torch.nn.functional

    def conv(v, w, stride=1, groups=1):
        k, (h, wd) = w.shape[-1], v.shape[-2:]
        ph = max((math.ceil(h / stride) - 1) * stride + k - h, 0)
        pw = max((math.ceil(wd / stride) - 1) * stride + k - wd, 0)
        v = F.pad(v, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(v, w, None, stride, 0, 1, groups)

    def bn(v, key):
        return F.batch_norm(
            v, state[f"{key}.running_mean"], state[f"{key}.running_var"],
            state[f"{key}.weight"], state[f"{key}.bias"], False, 0.0, 1e-3,
        )  # fmt: skip

    v = (x - 127.0) / 128.0
    v = F.relu6(bn(conv(v, state["_conv_stem.weight"], 2), "_bn0"))
    for block in efficientnet_lite.blocks():
        p = f"_blocks.{block.index}."
        shortcut = v
        if block.expand != 1:
            v = F.relu6(bn(conv(v, state[p + "_expand_conv.weight"]), p + "_bn0"))
        w = state[p + "_depthwise_conv.weight"]
        v = F.relu6(bn(conv(v, w, block.stride, groups=w.shape[0]), p + "_bn1"))
        v = bn(conv(v, state[p + "_project_conv.weight"]), p + "_bn2")
        if block.stride == 1 and block.filters_in == block.filters_out:
            v = v + shortcut
    v = F.relu6(bn(conv(v, state["_conv_head.weight"]), "_bn1")).mean((2, 3))
    return F.linear(v, state["_fc.weight"], state["_fc.bias"])


def test_logits_match_a_pytorch_reference(lite0):
    torch = pytest.importorskip("torch")
    from vizkit.models import rebuild

    model, batch = lite0
    noise = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    x = np.concatenate([batch.array[[0, 1, 2]], noise])
    logits = np.asarray(rebuild(model, logits=True)(x))  # vizkit's view of the softmax head
    state = torch.load(pretrained.weights_path(), map_location="cpu", weights_only=True)
    with torch.no_grad():
        reference = _torch_efficientnet_lite0(torch, state, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert np.abs(logits - reference.numpy()).max() < 1e-4


def test_gradcam_lands_on_the_objects(lite0):
    import vizkit
    from vizkit import metrics

    model, batch = lite0
    cam = vizkit.explain(model, batch, "gradcam", targets=list(batch.labels))
    hits = metrics.pointing_game(cam, batch.masks)
    mass = metrics.relevance_mass(cam, batch.masks).to_frame()
    assert bool(hits.to_frame()["hit"][0])  # the cat photo: Grad-CAM's maximum is on the cat
    assert hits.accuracy >= 5 / 7
    assert (mass["relevance_mass"] > mass["area_share"]).all()  # above chance on every photo


def test_cats_dogs_pandas_pools_imagenet_probabilities(lite0, probabilities):
    import vizkit
    from vizkit.models import head_info, rebuild

    _, batch = lite0
    metadata = vizkit.sample_metadata("cats_dogs_pandas")
    assert metadata["class_names"] == ["cat", "dog", "panda"]
    assert metadata["groups"] == {"cat": list(CATS), "dog": list(DOGS), "panda": [PANDA]}
    model = vizkit.sample_model("cats_dogs_pandas")  # through the safe loader: no Lambda
    head = head_info(model)
    assert (head.activation, head.units) == ("softmax", 3)
    got = np.asarray(model.predict_on_batch(batch.array))
    sums = np.stack([probabilities[:, list(CATS)].sum(1), probabilities[:, list(DOGS)].sum(1),
                     probabilities[:, PANDA]], axis=1)  # fmt: skip
    np.testing.assert_allclose(got, sums / sums.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    # vizkit explains each group's logit: the log of its summed probability (+ a constant)
    logits = np.asarray(rebuild(model, logits=True)(batch.array))
    np.testing.assert_allclose(
        logits - logits[:, :1], np.log(sums) - np.log(sums[:, :1]), atol=2e-3
    )
    cats = vizkit.sample_images("cats_dogs_pandas")
    assert cats.names == ("chelsea (cat)",) and cats.labels.tolist() == [0]
    assert np.asarray(model.predict_on_batch(cats.array)).argmax() == 0


def test_activation_maximization_reaches_an_imagenet_class(lite0):
    """The 224x224 recipe on the real network, 20 steps: the goldfish image is classified as a
    goldfish, with a logit far above noise's."""
    import vizkit

    model, batch = lite0
    result = vizkit.maximize_activation(
        model, units=[1], steps=20, value_range=batch.value_range, progress=False, seed=0
    )
    assert result.params["decay_power"] == 1.5
    assert result.predicted.tolist() == [1]
    assert result.activation[0] > result.noise_activation[0] + 10.0
    assert result.images.min() >= 0.0 and result.images.max() <= 255.0
