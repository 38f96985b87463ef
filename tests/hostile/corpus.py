"""Generate the hostile-file corpus: model files and images that attack the machine loading them.

Every payload that can run code writes a marker file under ``root/markers`` when it runs; the
gadget payloads (Keras functions that download files) would create ``$KERAS_HOME/models`` and
open a network connection, which the runner's audit hook records and blocks. Nothing here
touches the network. ``runner.py`` loads each case in a fresh process; ``test_corpus.py``
asserts the outcome.

Cases with ``live=True`` are controls: loaded with ``trust=True`` (or opened by Pillow
directly) their payload really runs, so the refusals mean something.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import stat
import zipfile
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from tests.hostile.files import (
    L,
    Payload,
    keras,
    layer_config,
    rewrite_archive,
    rewrite_h5_config,
    tiny_mlp,
)

UNSAFE, FILE, INPUT = "UnsafeModelError", "ModelFileError", "InputError"


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile file and what loading it must do."""

    name: str
    kind: str  # "model" (vizkit.load_model) or "image" (vizkit.load_images)
    path: str
    error: str | None  # expected exception class name; None: must load (bounded memory)
    match: str = ""  # substring of the one-line message
    kwargs: dict = dataclasses.field(default_factory=dict)
    live: bool = False  # control: the payload runs when trusted / opened by Pillow directly


def build(root: Path) -> list[Case]:
    """Write every file of the corpus under ``root``; return the cases."""
    markers = root / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    base = root / "base"
    base.mkdir(exist_ok=True)
    mlp = tiny_mlp()
    mlp.save(base / "mlp.keras")
    mlp.save(base / "mlp.h5")
    cases = _code_cases(root, base, markers)
    cases += _gadget_cases(root, base)
    cases += _memory_cases(root, base)
    cases += _h5_cases(root, base)
    cases += _image_cases(root, markers)
    return cases


def _both(root: Path, base: Path, name: str, edit, error: str, match: str, **kwargs) -> list[Case]:
    """The same config edit in a .keras archive and a legacy .h5 file."""
    keras_file = rewrite_archive(base / "mlp.keras", root / f"{name}.keras", edit)
    h5_file = rewrite_h5_config(base / "mlp.h5", root / f"{name}.h5", edit)
    return [
        Case(f"{name}.keras", "model", str(keras_file), error, match, kwargs),
        Case(f"{name}.h5", "model", str(h5_file), error, match, kwargs),
    ]


def _set_activation(value):
    def edit(config):
        layer_config(config, "dense")["config"]["activation"] = value

    return edit


def _function(module: str, name: str, registered=None) -> dict:
    return {
        "module": module,
        "class_name": "function",
        "config": name,
        "registered_name": registered,
    }


# --------------------------------------------------------------------------------------------
# Code: the classic cases
# --------------------------------------------------------------------------------------------
def _code_cases(root: Path, base: Path, markers: Path) -> list[Case]:
    cases = []
    marker = markers / "lambda"
    hostile = tiny_mlp(eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]"))
    for ext in ("keras", "h5"):
        hostile.save(root / f"lambda.{ext}")
        cases.append(Case(f"lambda.{ext}", "model", str(root / f"lambda.{ext}"), UNSAFE, "Lambda"))
    marker.unlink()  # building the model ran the payload once, here
    cases.append(
        Case(
            "lambda.keras (trusted)",
            "model",
            str(root / "lambda.keras"),
            None,
            "",
            {"trust": True},
            live=True,
        )
    )
    (root / "pickle.keras").write_bytes(pickle.dumps(Payload(str(markers / "pickle"))))
    cases.append(Case("pickle.keras", "model", str(root / "pickle.keras"), FILE, "Python pickle"))
    edits = [
        ("os_system", _set_activation(_function("os", "system", "system")), "refers to os.system"),
        (
            "builtins_eval",
            _set_activation(_function("builtins", "eval", "function")),
            "refers to builtins.eval",
        ),
        ("get_file", _set_activation(_function("keras.utils", "get_file")), "keras.utils.get_file"),
        (
            "nested_lambda",
            _set_activation({"class_name": "__lambda__", "config": {}}),
            "Python code in layer",
        ),
    ]
    for name, edit, match in edits:
        cases += _both(root, base, name, edit, UNSAFE, match)

    def popen(config):
        layer_config(config, "dense").update(module="subprocess", class_name="Popen")

    def torch(config):
        layer = layer_config(config, "dense")
        layer.update(class_name="TorchModuleWrapper")
        layer["config"]["module"] = "gASVAAAAAAAAAAA="

    secret = root / "SECRET.txt"
    secret.write_text("secret\n")

    def vocabulary(config):
        layer_config(config, "dense")["config"]["vocabulary"] = str(secret)

    def main_class(config):
        layer_config(config, "dense").update(module="__main__", class_name="Evil")

    cases += _both(root, base, "subprocess_popen", popen, UNSAFE, "subprocess.Popen")
    cases += _both(root, base, "torch_pickle", torch, UNSAFE, "TorchModuleWrapper")
    cases += _both(root, base, "vocabulary_file", vocabulary, UNSAFE, "would read the file")
    cases += _both(root, base, "main_class", main_class, UNSAFE, "needs custom objects Evil")
    bomb = rewrite_archive(
        base / "mlp.keras",
        root / "zip_bomb.keras",
        extra=[("assets/big.bin", bytes(2_000_000), zipfile.ZIP_DEFLATED)],
    )
    cases.append(
        Case("zip_bomb.keras", "model", str(bomb), FILE, "unpacks to", {"max_bytes": 100_000})
    )
    slip = rewrite_archive(
        base / "mlp.keras", root / "traversal.keras", extra=[("../evil", b"x", zipfile.ZIP_STORED)]
    )
    cases.append(Case("traversal.keras", "model", str(slip), FILE, "unsafe name"))
    return cases


# --------------------------------------------------------------------------------------------
# Gadgets: Keras's own functions in the wrong place, registered names
# --------------------------------------------------------------------------------------------
def _gadget_cases(root: Path, base: Path) -> list[Case]:
    cases = []
    wide = tiny_mlp(units=1000)  # decode_predictions needs (batch, 1000)
    wide.save(base / "wide.keras")

    def decode(config):
        layer_config(config, "dense")["config"]["activation"] = _function(
            "keras.applications.imagenet_utils", "decode_predictions", "decode_predictions"
        )

    gadget = rewrite_archive(base / "wide.keras", root / "decode_predictions.keras", decode)
    cases.append(
        Case(
            "decode_predictions.keras",
            "model",
            str(gadget),
            UNSAFE,
            "imagenet_utils.decode_predictions as the activation",
        )
    )
    cases.append(
        Case(
            "decode_predictions.keras (trusted)",
            "model",
            str(gadget),
            None,
            "",
            {"trust": True},
            live=True,
        )
    )
    edits = [
        (
            "densenet_activation",
            _set_activation(_function("keras.applications.densenet", "DenseNet121")),
            "DenseNet121",
        ),
        (
            "mnist_activation",
            _set_activation(_function("keras.datasets.mnist", "load_data")),
            "load_data",
        ),
        (
            "set_floatx_activation",
            _set_activation(_function("keras.config", "set_floatx")),
            "set_floatx",
        ),
        (
            "deserialize_activation",
            _set_activation(_function("keras.layers", "deserialize")),
            "keras.layers.deserialize",
        ),
        ("get_file_initializer", _set_initializer("keras.utils", "get_file"), "get_file"),
        (
            "unloaded_module",
            _set_class("keras.src.backend.torch.core", "Variable"),
            "module of Keras that no model uses",
        ),
        ("registered_name", _set_registered("vizkit_hostile>Evil"), "vizkit_hostile>Evil"),
    ]
    for name, edit, match in edits:
        keras_file = rewrite_archive(base / "mlp.keras", root / f"{name}.keras", edit)
        cases.append(Case(f"{name}.keras", "model", str(keras_file), UNSAFE, match))
    cases.append(
        Case(
            "registered_name.keras (trusted)",
            "model",
            str(root / "registered_name.keras"),
            None,
            "",
            {"trust": True},
            live=True,
        )
    )
    return cases + _layer_gadget_cases(root, base)


def _layer_gadget_cases(root: Path, base: Path) -> list[Case]:
    """Functions where a layer goes, and legacy strings that Keras turns into functions."""
    cases = []

    def densenet_layer(config):  # a "layer" that is a function, called with weights="imagenet"
        layer = layer_config(config, "dense")
        layer.update(module="keras.applications.densenet", class_name="DenseNet121")
        layer["inbound_nodes"][0]["kwargs"] = {"weights": "imagenet"}

    path = rewrite_archive(base / "mlp.keras", root / "densenet_layer.keras", densenet_layer)
    cases.append(Case("densenet_layer.keras", "model", str(path), UNSAFE, "DenseNet121"))

    def legacy_string(config):  # legacy .h5 layers turn strings naming functions into them
        layer_config(config, "dense")["config"]["activation"] = "deserialize"

    path = rewrite_h5_config(base / "mlp.h5", root / "legacy_string.h5", legacy_string)
    cases.append(Case("legacy_string.h5", "model", str(path), UNSAFE, "keras.layers.deserialize"))
    return cases


def _set_initializer(module: str, name: str):
    def edit(config):
        layer_config(config, "dense")["config"]["kernel_initializer"] = {
            "module": module,
            "class_name": name,
            "config": {},
            "registered_name": None,
        }

    return edit


def _set_class(module: str, name: str):
    def edit(config):
        layer_config(config, "dense").update(module=module, class_name=name)

    return edit


def _set_registered(registered: str):
    def edit(config):
        layer_config(config, "dense")["registered_name"] = registered

    return edit


# --------------------------------------------------------------------------------------------
# Memory: bombs in the config, declared weights, tensor sizes
# --------------------------------------------------------------------------------------------
def _memory_cases(root: Path, base: Path) -> list[Case]:
    """Bombs in the config itself: arrays, parameters, depth, size."""
    cases = []

    def scale_bomb(config):
        layer = layer_config(config, "dense")
        layer.update(class_name="Rescaling", module="keras.layers")
        layer["config"] = {
            "name": "dense",
            "scale": {
                "class_name": "__numpy__",
                "config": {"value": 1.0, "dtype": "(300000000,)f4"},
            },
            "offset": 0.0,
        }

    def kwargs_bomb(config):
        layer_config(config, "dense")["inbound_nodes"][0]["kwargs"] = {
            "mask": {
                "class_name": "__numpy__",
                "config": {"value": ["", ""], "dtype": "S1200000000"},
            }
        }

    def wide_dense(config):
        layer_config(config, "dense")["config"]["units"] = 60_000_000  # 300 M parameters

    def embedding(config):
        layer = layer_config(config, "dense")
        layer.update(class_name="Embedding", module="keras.layers")
        layer["config"] = {"name": "dense", "input_dim": 1_000_000_000, "output_dim": 8}

    def deep(config):
        nested: list = [1]
        for _ in range(500):
            nested = [nested]
        layer_config(config, "dense")["config"]["junk"] = nested

    def huge(config):
        layer_config(config, "dense")["config"]["junk"] = "x" * 5_000_000

    for name, edit, error, match in [
        ("numpy_dtype_bomb", scale_bomb, FILE, "dtype '(300000000,)f4'"),
        ("string_dtype_bomb", kwargs_bomb, FILE, "serialized array of 2.4 GB"),
        ("declared_weights", wide_dense, FILE, "parameters"),
        ("embedding_bomb", embedding, FILE, "parameters"),
        ("deep_config", deep, FILE, "deep"),
        ("huge_config", huge, FILE, "for a model config"),
    ]:
        path = rewrite_archive(base / "mlp.keras", root / f"{name}.keras", edit)
        cases.append(Case(f"{name}.keras", "model", str(path), error, match))
    return cases + _size_cases(root, base)


def _size_cases(root: Path, base: Path) -> list[Case]:
    """Parameters, tensor sizes and declared weights that only counting reveals."""
    cases = []

    def resize_output(config):  # the output's size is recorded nowhere: computed
        layer = layer_config(config, "out")
        layer.update(class_name="Reshape", module="keras.layers")
        layer["config"] = {"name": "out", "target_shape": [20_000, 20_000, 1]}

    # an output tensor of 400 M values per image, known only from the layer's config
    cnn = keras.Sequential([keras.Input((8,)), L.Dense(4, name="dense"), L.Dense(2, name="out")])
    cnn.save(base / "seq.keras")
    cnn.save(base / "seq.h5")
    path = rewrite_archive(base / "seq.keras", root / "big_output.keras", resize_output)
    cases.append(Case("big_output.keras", "model", str(path), FILE, "values per image"))

    def chained(config):  # legacy Sequential: no shapes recorded, 50,000 x 50,000 kernel
        layer_config(config, "dense")["config"]["units"] = 50_000
        layer_config(config, "out")["config"]["units"] = 50_000

    path = rewrite_h5_config(base / "seq.h5", root / "chained_dense.h5", chained)
    cases.append(Case("chained_dense.h5", "model", str(path), FILE, "parameters"))
    inputs = keras.Input((6400, 6400, 3))
    big = keras.Model(inputs, L.Conv2D(16, 3, name="conv")(inputs))
    big.save(root / "big_input.keras")
    cases.append(
        Case("big_input.keras", "model", str(root / "big_input.keras"), FILE, "values per image")
    )
    # model.weights.h5 declares 1 GB in a dataset that stores nothing
    buffer = io.BytesIO()
    with zipfile.ZipFile(base / "mlp.keras") as archive:
        buffer.write(archive.read("model.weights.h5"))
    with h5py.File(buffer, "r+") as f:
        f.create_dataset("filler", shape=(250_000_000,), dtype="float32", chunks=(1_000_000,))
    path = rewrite_archive(
        base / "mlp.keras", root / "unwritten_weights.keras", weights=buffer.getvalue()
    )
    cases.append(
        Case(
            "unwritten_weights.keras",
            "model",
            str(path),
            FILE,
            "holds only",
            {"max_bytes": 2_000_000_000},
        )
    )
    return cases


# --------------------------------------------------------------------------------------------
# HDF5: hangs in the checks themselves
# --------------------------------------------------------------------------------------------
def _h5_cases(root: Path, base: Path) -> list[Case]:
    cases = []
    with zipfile.ZipFile(base / "mlp.keras") as archive:
        weights = archive.read("model.weights.h5")

    def edited(build) -> bytes:
        buffer = io.BytesIO(weights)
        with h5py.File(buffer, "r+") as f:
            build(f)
        return buffer.getvalue()

    def nested(f):
        group = f.create_group("deep")
        for i in range(4000):
            group = group.create_group(f"g{i}")

    def many(f):  # thousands of small objects, then a link: every object read seeks backwards
        junk = f.create_group("junk")
        for i in range(6000):
            junk.create_group(f"g{i:05d}").attrs["pad"] = np.arange(8)
        f["zzz_link"] = h5py.SoftLink("/junk")  # visited last, after all the junk

    def external(f):
        f["stolen"] = h5py.ExternalLink("/etc/passwd", "/")

    for name, build, match in [
        ("h5_nested_groups", nested, "nests HDF5 groups"),
        ("h5_many_objects", many, "links to other data"),
        ("h5_external_link", external, "links to other data"),
    ]:
        path = rewrite_archive(base / "mlp.keras", root / f"{name}.keras", weights=edited(build))
        cases.append(Case(f"{name}.keras", "model", str(path), FILE, match))
    gzip_bomb = root / "h5_gzip_bomb.h5"
    gzip_bomb.write_bytes((base / "mlp.h5").read_bytes())
    with h5py.File(gzip_bomb, "r+") as f:
        f.create_dataset("zeros", shape=(2_000_000,), dtype="float32", compression="gzip")
    cases.append(
        Case("h5_gzip_bomb.h5", "model", str(gzip_bomb), FILE, "limit", {"max_bytes": 100_000})
    )
    return cases


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
def _image_cases(root: Path, markers: Path) -> list[Case]:
    cases = []
    eps = root / "postscript.png"
    eps.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"
        + f"({markers / 'postscript'}) (w) file closefile\n".encode()
        + b"showpage\n%%EOF\n"
    )
    cases.append(Case("postscript.png", "image", str(eps), INPUT, "not an image vizkit can read"))
    cases.append(Case("postscript.png (Pillow)", "image", str(eps), None, live=True))
    fits = root / "fits.png"
    header = "".join(
        card.ljust(80)
        for card in [
            "SIMPLE  =                    T",
            "BITPIX  =                    8",
            "NAXIS   =                    2",
            "NAXIS1  =                    8",
            "NAXIS2  =                    8",
            "END",
        ]
    )
    fits.write_bytes(header.ljust(2880).encode() + bytes(2880))
    cases.append(Case("fits.png", "image", str(fits), INPUT, "not an image vizkit can read"))
    ppm = root / "ppm.png"
    ppm.write_bytes(b"P5 8 8 255\n" + bytes(64))
    cases.append(Case("ppm.png", "image", str(ppm), INPUT, "not an image vizkit can read"))
    cases.append(_scans_bomb(root))
    fifo = root / "fifo.png"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    cases.append(Case("fifo.png", "image", str(fifo), INPUT, "not a regular file"))
    cases.append(Case("dev_zero", "image", "/dev/zero", INPUT, "not a regular file"))
    pixels = root / "pixel_bomb.png"
    Image.new("1", (8000, 8000)).save(pixels)
    cases.append(Case("pixel_bomb.png", "image", str(pixels), INPUT, "pixels"))
    flat = root / "flat_6300.png"
    Image.new("L", (6300, 6300), 128).save(flat)
    cases.append(Case("flat_6300.png", "image", str(flat), None, "", {"size": [32, 32]}))
    return cases


def _scans_bomb(root: Path) -> Case:
    """A progressive JPEG whose last scan repeats 20,000 times (each scan re-reads the image)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 200)).save(buffer, "JPEG", progressive=True)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    path = root / "scans_bomb.jpg"
    path.write_bytes(data[:last_scan] + data[last_scan:end] * 20_000 + data[end:])
    return Case("scans_bomb.jpg", "image", str(path), INPUT, "progressive scans")


def manifest(cases: list[Case]) -> str:
    return json.dumps([dataclasses.asdict(case) for case in cases])
