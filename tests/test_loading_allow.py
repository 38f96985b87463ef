"""vizkit.loading._allow: per-position allow-lists, derived from Keras, audited.

Every class and function a model config may name is (1) taken from Keras's public registries,
(2) called on dummy input in a fresh process under an audit hook that fails on network,
process and file-system access, and (3) read statically (its source and its Keras base
classes') for I/O and code-loading names, with the few hits explained in ``AUDITED``.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vizkit._tf import keras
from vizkit.loading import _allow

REPO = Path(__file__).resolve().parents[1]
# bare names that read files, run code or reach other processes and machines
_NAMES = frozenset(
    """open eval exec compile __import__ input breakpoint os subprocess socket urllib requests
    http importlib pickle marshal ctypes shutil tempfile h5py zipfile tarfile pathlib glob io
    file_utils gfile""".split()
)
# attributes that do the same whatever they hang off
_ATTRIBUTES = frozenset(
    """get_file gfile urlopen urlretrieve system popen Popen load_img save_img save_model
    load_model save_weights load_weights""".split()
)
AUDITED = {
    # class -> (names its source uses, why that is safe from a model config)
    "keras.src.saving.keras_saveable.KerasSaveable": (
        {"io"},
        "io.BytesIO in __reduce__, for pickling a live object; never from a config",
    ),
    "keras.src.models.model.Model": (
        {"save_model", "save_weights", "load_weights"},
        "Model.save/save_weights/load_weights, called by the user, never by from_config or a "
        "forward pass",
    ),
    "keras.src.layers.preprocessing.index_lookup.IndexLookup": (
        {"gfile", "open"},
        "reads a vocabulary file when the config's `vocabulary` is a path (vizkit refuses "
        "those) and the vocabulary asset Keras itself wrote into the .keras archive",
    ),
}


def _sources(obj) -> list:
    """The object, or a class with its Keras base classes (their methods are reachable too)."""
    if inspect.isclass(obj):
        return [c for c in obj.__mro__ if c.__module__.startswith("keras")]
    return [obj]


@functools.cache
def _definitions(module_name: str) -> dict[str, ast.AST]:
    """Qualified name -> class or function definition, for one module (parsed once)."""
    tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    found: dict[str, ast.AST] = {}
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                found.setdefault(name, child)
                stack.append((child, name + "."))
    return found


def _risky_names(obj) -> set[str]:
    tree = _definitions(obj.__module__).get(obj.__qualname__)
    if tree is None:  # defined dynamically: read its own source
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _NAMES:
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in _ATTRIBUTES:
            found.add(node.attr)
    return found


def test_lists_come_from_keras_registries_and_leave_out_code_and_gadgets():
    positions = _allow.allowed().positions
    layers = positions["layer"]
    for name in dir(keras.layers):
        obj = getattr(keras.layers, name)
        if not (inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)):
            continue
        if name in _allow.CODE_LAYERS or name in ("Layer", "Wrapper"):
            assert obj not in layers, name
        else:
            assert obj in layers, name
    for name in ("relu", "gelu", "softmax", "silu", "hard_silu"):
        assert getattr(keras.activations, name) in positions["activation"]
    assert keras.initializers.GlorotUniform in positions["initializer"]
    assert keras.dtype_policies.DTypePolicy in positions["dtype_policy"]
    everything = set().union(*positions.values())
    for gadget in (
        keras.utils.get_file,
        keras.applications.imagenet_utils.decode_predictions,
        keras.applications.DenseNet121,
        keras.datasets.mnist.load_data,
        keras.config.set_floatx,
        keras.layers.deserialize,
        keras.saving.load_model,
        keras.models.load_model,
    ):
        assert gadget not in everything, gadget
    # Keras's own name tables never name something vizkit refuses (legit files stay loadable)
    from keras.src import constraints, dtype_policies, initializers, regularizers

    for position, table in [
        ("initializer", initializers.ALL_OBJECTS_DICT),
        ("regularizer", regularizers.ALL_OBJECTS_DICT),
        ("constraint", constraints.ALL_OBJECTS_DICT),
        ("dtype_policy", dtype_policies.ALL_OBJECTS_DICT),
    ]:
        bases = {
            "Initializer",
            "initializer",
            "Regularizer",
            "regularizer",
            "Constraint",
            "constraint",
        }
        missing = [n for n, o in table.items() if n not in bases and o not in positions[position]]
        assert not missing, (position, missing)


def test_source_of_every_allowed_object_uses_no_io_or_code_loading():
    everything = set().union(*_allow.allowed().positions.values())
    seen, flagged = set(), {}
    for obj in everything:
        for source in _sources(obj):
            if source in seen:
                continue
            seen.add(source)
            names = _risky_names(source)
            if names:
                flagged[f"{source.__module__}.{source.__qualname__}"] = names
    assert len(seen) > 500  # layers, operations, activations, initializers, ... and bases
    unexplained = {k: v for k, v in flagged.items() if AUDITED.get(k, (set(),))[0] != v}
    assert not unexplained, unexplained


@pytest.mark.slow
def test_every_allowed_object_runs_without_network_files_or_processes():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "tests.hostile.audit"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) > 300, done.stderr[-2000:]
    effects = {r["name"]: r["events"] for r in results if r["events"]}
    assert not effects, effects
    # every layer, activation, initializer, regularizer and constraint really ran
    required = ("layer ", "activation ", "initializer ", "regularizer")
    failed = {
        r["name"]: r["error"] for r in results if r["error"] and r["name"].startswith(required)
    }
    assert not failed, failed
