"""Helpers to build and edit model files for the hostile tests (Keras needed)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py

from vizkit._tf import keras

L = keras.layers


def tiny_cnn() -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, L.Dense(3, activation="softmax", name="probs")(x), name="cnn")


class Payload:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def tiny_mlp(lambda_fn=None, dense=L.Dense, units: int = 3) -> keras.Model:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((4,))
    x = dense(units, activation="relu", name="dense")(inputs)
    if lambda_fn is not None:
        x = L.Lambda(lambda_fn, name="lam")(x)
    return keras.Model(inputs, L.Dense(2, name="out")(x), name="mlp")


def rewrite_archive(src: Path, dst: Path, edit=None, extra=(), drop=(), weights=None) -> Path:
    """Copy a .keras archive, editing config.json with ``edit(config)`` and adding members.

    ``weights`` replaces model.weights.h5 with these bytes (stored deflated).
    """
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = zin.read(info.filename)
            if info.filename == "config.json" and edit is not None:
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            if info.filename == "model.weights.h5" and weights is not None:
                zout.writestr(info.filename, weights, compress_type=zipfile.ZIP_DEFLATED)
                continue
            zout.writestr(info.filename, data)
        for name, data, method in extra:
            zout.writestr(name, data, compress_type=method)
    return dst


def rewrite_h5_config(src: Path, dst: Path, edit) -> Path:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return dst


def layer_config(config: dict, name: str) -> dict:
    """The entry of layer ``name`` in a Functional or Sequential config."""
    return next(
        layer
        for layer in config["config"]["layers"]
        if layer.get("name", layer["config"].get("name")) == name
    )
