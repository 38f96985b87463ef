"""vizkit.load_model: good files load exactly; broken and hostile files are refused in one line.

The hostile files carry a payload that creates a marker file when its code runs; every refusal
test asserts the marker does not exist, and ``test_payload_is_live`` shows that it would.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import vizkit
from tests.hostile.files import (
    Payload,
    layer_config,
    rewrite_archive,
    rewrite_h5_config,
    tiny_cnn,
    tiny_mlp,
)
from vizkit import loading
from vizkit._tf import keras
from vizkit.errors import InputError, ModelFileError, UnsafeModelError, VizkitError

REPO = Path(__file__).resolve().parents[1]
L = keras.layers


class MyDense(L.Dense):
    """A custom layer the tests pass through custom_objects (never registered globally)."""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good, benign-Lambda and hostile model files, built once for the module."""
    root = tmp_path_factory.mktemp("models")
    marker = root / "PAYLOAD_RAN"
    out = {"root": root, "marker": marker}
    cnn = tiny_cnn()
    out["cnn_model"] = cnn
    for ext in ("keras", "h5"):
        cnn.save(root / f"cnn.{ext}")
    mlp = tiny_mlp()
    out["mlp_model"] = mlp
    mlp.save(root / "mlp.keras")
    mlp.save(root / "mlp.h5")
    benign = tiny_mlp(lambda t: t * 2.0)
    out["benign_model"] = benign
    # payload: creates the marker when the lambda's code runs (Keras calls it to build the model)
    # (the path is a constant in the lambda's code; Keras cannot round-trip default arguments)
    hostile = tiny_mlp(eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]"))
    for ext in ("keras", "h5"):
        benign.save(root / f"benign_lambda.{ext}")
        hostile.save(root / f"hostile_lambda.{ext}")
    marker.unlink()  # building the hostile model ran the payload once, here in the test
    custom = tiny_mlp(dense=MyDense)
    out["custom_model"] = custom
    custom.save(root / "custom.keras")
    custom.save(root / "custom.h5")

    def in_main(config):  # as saved from a notebook or script
        layer_config(config, "dense")["module"] = "__main__"

    rewrite_archive(root / "custom.keras", root / "custom_main.keras", in_main)
    (root / "pickle.keras").write_bytes(pickle.dumps(Payload(str(marker))))
    out.update({name: root / name for name in os.listdir(root)})
    return out


@pytest.fixture
def marker(files):
    files["marker"].unlink(missing_ok=True)
    yield files["marker"]
    files["marker"].unlink(missing_ok=True)


def refused(path, error=ModelFileError, match=None, **kwargs) -> VizkitError:
    """Assert loading ``path`` fails with ``error``; the message is one plain sentence."""
    with pytest.raises(error) as info:
        vizkit.load_model(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message == message.strip()
    assert "keras.src" not in message and "Traceback" not in message and len(message) < 400
    if match is not None:
        assert match in message, message
    return info.value


def predict(model, x):
    return np.asarray(model(x, training=False))


# --------------------------------------------------------------------------------------------
# Good files
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_round_trip_gives_identical_predictions(files, ext):
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    loaded = vizkit.load_model(files[f"cnn.{ext}"])
    assert isinstance(loaded, keras.Model)
    np.testing.assert_array_equal(predict(loaded, x), predict(files["cnn_model"], x))


def test_sources_path_str_bytes_file_object_and_model(files, tmp_path):
    path = files["mlp.keras"]
    x = np.ones((1, 4), "float32")
    expected = predict(files["mlp_model"], x)
    data = path.read_bytes()
    upload = io.BytesIO(data)
    upload.name = "upload.keras"
    upload.read()  # an already-read upload is read again from the start
    upper = tmp_path / "MODEL.KERAS"
    upper.write_bytes(data)
    for source, kwargs in [
        (path, {}),
        (str(path), {}),
        (data, {"filename": "mlp.keras"}),
        (bytearray(data), {}),
        (upload, {}),
        (upper, {}),
    ]:
        np.testing.assert_array_equal(predict(vizkit.load_model(source, **kwargs), x), expected)
    model = files["mlp_model"]
    assert vizkit.load_model(model) is model


def test_h5_bytes_and_check_model_file(files):
    model = vizkit.load_model(files["mlp.h5"].read_bytes(), filename="mlp.h5")
    x = np.ones((1, 4), "float32")
    np.testing.assert_array_equal(predict(model, x), predict(files["mlp_model"], x))
    info = loading.check_model_file(files["cnn.keras"])
    assert (info.format, info.keras_version) == ("keras", keras.__version__)
    assert info.size == files["cnn.keras"].stat().st_size
    assert loading.check_model_file(files["cnn.h5"]).format == "h5"


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_trust_loads_a_benign_lambda(files, ext):
    model = vizkit.load_model(files[f"benign_lambda.{ext}"], trust=True)
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(predict(model, x), predict(files["benign_model"], x), rtol=1e-6)


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_payload_is_live(files, marker, ext):
    """Control: the hostile files really run code once trusted, so the refusals mean something."""
    vizkit.load_model(files[f"hostile_lambda.{ext}"], trust=True)
    assert marker.exists()


@pytest.mark.parametrize("name", ["custom.keras", "custom.h5", "custom_main.keras"])
def test_custom_objects_are_used_for_this_call_only(files, name):
    refused(
        files[name], UnsafeModelError, "model needs custom objects MyDense: pass custom_objects="
    )
    before = dict(keras.saving.get_custom_objects())
    model = vizkit.load_model(files[name], custom_objects={"MyDense": MyDense})
    assert isinstance(model.get_layer("dense"), MyDense)
    x = np.ones((1, 4), "float32")
    np.testing.assert_array_equal(predict(model, x), predict(files["custom_model"], x))
    assert keras.saving.get_custom_objects() == before
    assert keras.saving.get_registered_object("MyDense") is None


def test_registered_custom_objects_need_trust(files):
    with keras.saving.custom_object_scope({"MyDense": MyDense}):  # like a registration
        refused(files["custom.keras"], UnsafeModelError, "or trust=True to use ones registered")
        model = vizkit.load_model(files["custom.keras"], trust=True)
    assert isinstance(model.get_layer("dense"), MyDense)


def test_no_global_state_changes(files):
    from keras.src.saving import serialization_lib

    assert serialization_lib.in_safe_mode() is None
    vizkit.load_model(files["benign_lambda.keras"], trust=True)
    refused(files["benign_lambda.h5"], UnsafeModelError)
    assert serialization_lib.in_safe_mode() is None


# --------------------------------------------------------------------------------------------
# Code in the file
# --------------------------------------------------------------------------------------------
LAMBDA_MESSAGE = (
    "model contains a Lambda layer 'lam' that would run Python code when loaded: load it with "
    "trust=True only if you trust its author"
)


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_lambda_is_refused_and_does_not_run(files, marker, ext):
    for custom in (None, {"lam": MyDense}):  # custom objects do not unlock a Lambda
        error = refused(files[f"hostile_lambda.{ext}"], UnsafeModelError, custom_objects=custom)
        assert str(error) == LAMBDA_MESSAGE
    assert not marker.exists()


def test_refusals_in_a_fresh_process_never_import_tensorflow(files, marker):
    script = textwrap.dedent(
        """
        import sys
        from vizkit.loading import load_model
        from vizkit.errors import ModelFileError, UnsafeModelError
        for name, error in [("hostile_lambda.keras", UnsafeModelError),
                            ("hostile_lambda.h5", UnsafeModelError),
                            ("pickle.keras", ModelFileError)]:
            try:
                load_model(sys.argv[1] + "/" + name)
            except error as err:
                print(type(err).__name__, err)
            else:
                raise SystemExit(name + " loaded")
        assert "tensorflow" not in sys.modules and "keras" not in sys.modules
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(files["root"])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("UnsafeModelError") == 2
    assert not marker.exists()


def _os_system(config):
    layer_config(config, "dense")["config"]["activation"] = {
        "module": "os",
        "class_name": "function",
        "config": "system",
        "registered_name": "system",
    }


def _subprocess_class(config):
    layer_config(config, "dense").update(module="subprocess", class_name="Popen")


def _builtins_eval(config):
    layer_config(config, "dense")["config"]["activation"] = {
        "module": "builtins",
        "class_name": "function",
        "config": "eval",
        "registered_name": "function",
    }


def _keras_get_file(config):
    layer_config(config, "dense")["config"]["activation"] = {
        "module": "keras.utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": None,
    }


def _torch_pickle(config):
    layer = layer_config(config, "dense")
    layer.update(class_name="TorchModuleWrapper")
    layer["config"]["module"] = "gASVAAAAAAAAAAA="


def _vocabulary_file(config):
    layer_config(config, "dense")["config"]["vocabulary"] = "/etc/passwd"


def _nested_lambda_in_custom_layer(config):
    layer_config(config, "dense")["config"]["kernel_initializer"] = {
        "class_name": "__lambda__",
        "config": {"value": ["AAAA", None, None]},
    }


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (_os_system, UnsafeModelError, "model config refers to os.system, Python code outside"),
        (_subprocess_class, UnsafeModelError, "refers to subprocess.Popen"),
        (_builtins_eval, UnsafeModelError, "refers to builtins.eval"),
        (_keras_get_file, UnsafeModelError, "uses keras.utils.get_file as the activation of"),
        (_nested_lambda_in_custom_layer, UnsafeModelError, "Python code in layer 'dense'"),
        (_torch_pickle, UnsafeModelError, "a TorchModuleWrapper layer 'dense' that would unpickle"),
        (_vocabulary_file, UnsafeModelError, "would read the file '/etc/passwd' from this machine"),
    ],
)
def test_configs_naming_code_outside_keras_are_refused(files, tmp_path, edit, error, match):
    keras_file = rewrite_archive(files["mlp.keras"], tmp_path / "evil.keras", edit)
    refused(keras_file, error, match)
    h5_file = rewrite_h5_config(files["mlp.h5"], tmp_path / "evil.h5", edit)
    refused(h5_file, error, match)


def test_trusted_os_reference_still_fails_cleanly(files, tmp_path):
    path = rewrite_archive(files["mlp.keras"], tmp_path / "evil.keras", _os_system)
    error = refused(path, ModelFileError, "model needs custom objects system", trust=True)
    assert error.__cause__ is not None  # the Keras error is chained, not shown


# --------------------------------------------------------------------------------------------
# Broken files
# --------------------------------------------------------------------------------------------
def test_pickle_renamed_to_keras_is_not_unpickled(files, marker):
    refused(
        files["pickle.keras"], ModelFileError, "is not a Keras model file: it is a Python pickle"
    )
    assert not marker.exists()


def test_random_bytes_empty_missing_and_directory(tmp_path):
    noise = tmp_path / "noise.keras"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(noise, ModelFileError, "is not a Keras model file")
    empty = tmp_path / "empty.keras"
    empty.touch()
    refused(empty, ModelFileError, "is empty")
    refused(b"", ModelFileError, "uploaded model is empty")
    refused(tmp_path / "missing.keras", ModelFileError, "no model file at")
    refused(tmp_path, ModelFileError, "is a directory")


def test_size_limits(files, tmp_path):
    size = files["mlp.keras"].stat().st_size
    refused(files["mlp.keras"], ModelFileError, "over the", max_bytes=size - 1)
    refused(files["mlp.h5"], ModelFileError, "over the", max_bytes=1000)
    refused(files["mlp.keras"].read_bytes(), ModelFileError, "limit", max_bytes=1000)
    # a small file whose member unpacks to far more than the limit (zip bomb)
    bomb = rewrite_archive(
        files["mlp.keras"],
        tmp_path / "bomb.keras",
        extra=[("assets/big.bin", bytes(2_000_000), zipfile.ZIP_DEFLATED)],
    )
    assert bomb.stat().st_size < 100_000
    refused(bomb, ModelFileError, "archive member 'assets/big.bin'", max_bytes=100_000)
    # the same inside HDF5: a small compressed dataset that declares megabytes
    h5_bomb = tmp_path / "bomb.h5"
    h5_bomb.write_bytes(files["mlp.h5"].read_bytes())
    with h5py.File(h5_bomb, "r+") as f:
        f.create_dataset("zeros", shape=(2_000_000,), dtype="float32", compression="gzip")
    assert h5_bomb.stat().st_size < 100_000
    refused(h5_bomb, ModelFileError, "unpacks to more than the 100.0 KB limit", max_bytes=100_000)


def test_h5_links_to_other_files(files, tmp_path):
    path = tmp_path / "linked.h5"
    path.write_bytes(files["mlp.h5"].read_bytes())
    with h5py.File(path, "r+") as f:
        f["model_weights/stolen"] = h5py.ExternalLink("/etc/passwd", "/")
    refused(path, ModelFileError, "links to other data")


@pytest.mark.parametrize("ext", ["keras", "h5"])
def test_truncated_files(files, tmp_path, ext):
    data = files[f"cnn.{ext}"].read_bytes()
    path = tmp_path / f"cut.{ext}"
    path.write_bytes(data[: len(data) // 2])
    error = refused(path, ModelFileError, "is truncated")
    assert error.__cause__ is not None


def test_corrupt_member_fails_checksum(files, tmp_path):
    data = bytearray(files["mlp.keras"].read_bytes())
    at = data.index(b'"class_name"')
    data[at + 1 : at + 6] = b"CLASS"
    path = tmp_path / "flipped.keras"
    path.write_bytes(bytes(data))
    refused(path, ModelFileError, "is corrupt: its checksum does not match")


def test_extension_must_match_content(files, tmp_path):
    keras_as_h5 = tmp_path / "model.h5"
    keras_as_h5.write_bytes(files["mlp.keras"].read_bytes())
    refused(keras_as_h5, ModelFileError, "is a .keras archive but is named .h5")
    h5_as_keras = tmp_path / "model.keras"
    h5_as_keras.write_bytes(files["mlp.h5"].read_bytes())
    refused(h5_as_keras, ModelFileError, "is a legacy .h5 model but is named .keras")
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(files["mlp.keras"].read_bytes())
    refused(unknown, ModelFileError, "unknown extension '.bin'")
    refused(files["mlp.keras"].read_bytes(), ModelFileError, "named .h5", filename="x.h5")


@pytest.mark.parametrize(
    "name", ["../evil", "/etc/evil", "assets/../../evil", "a\\..\\b", "C:/evil", "x\ny"]
)
def test_unsafe_member_names(files, tmp_path, name):
    path = tmp_path / "slip.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile may warn about odd names
        member = "_" + name[1:] if name.startswith("/") else name
        rewrite_archive(files["mlp.keras"], path, extra=[(member, b"x", zipfile.ZIP_STORED)])
    if name.startswith("/"):  # zipfile strips a leading slash when writing: patch it back in
        path.write_bytes(path.read_bytes().replace(b"_etc/evil", b"/etc/evil"))
    refused(path, ModelFileError, "unsafe name")


def test_duplicate_members_and_missing_members(files, tmp_path):
    dup = tmp_path / "dup.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        rewrite_archive(files["mlp.keras"], dup, extra=[("config.json", b"{}", 0)])
    refused(dup, ModelFileError, "two archive members named 'config.json'")
    no_weights = rewrite_archive(
        files["mlp.keras"], tmp_path / "nw.keras", drop=("model.weights.h5",)
    )
    refused(no_weights, ModelFileError, "incomplete Keras model file: it has no model.weights.h5")
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("word/document.xml", "<doc/>")
    refused(other_zip, ModelFileError, "not a Keras model file: it has no config.json")


def test_weights_only_h5_and_layer_instead_of_model(files, tmp_path):
    weights = tmp_path / "only.weights.h5"
    files["mlp_model"].save_weights(weights)
    refused(weights, ModelFileError, "holds only weights, not a model")

    def to_layer(config):
        dense = layer_config(config, "dense")
        config.clear()
        config.update(dense)

    layer = rewrite_archive(files["mlp.keras"], tmp_path / "layer.keras", to_layer)
    refused(layer, ModelFileError)


def test_bad_arguments():
    for kwargs in [{"max_bytes": 0}, {"trust": "yes"}, {"custom_objects": [MyDense]}]:
        refused("x.keras", InputError, **kwargs)
    refused(42, InputError, "not int")
    refused(io.StringIO("text"), InputError, "open it with 'rb'")
    refused("x.keras", InputError, "filename= is only for bytes", filename="y.keras")
