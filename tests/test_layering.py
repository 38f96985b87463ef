"""Layering, enforced by reading imports with ast.

- vizkit/results/ and vizkit/plotting/ import no TensorFlow, Keras or tf_keras_vis;
- only modules under vizkit/methods/_tfkv/ import tf_keras_vis;
- nothing in vizkit/ imports streamlit;
- only vizkit/_keras.py reads private attributes of Keras objects (``_keras_history``,
  ``_run_through_graph``, ...);
- modules in dashboards/ use only vizkit's public API (see :data:`PUBLIC`) and import no
  TensorFlow, Keras or tf_keras_vis.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vizkit"
HEAVY = ("tensorflow", "keras", "tf_keras_vis", "vizkit._tf")


def imports(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def matches(name: str, roots: tuple[str, ...]) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


FILES = sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize(
    "path",
    [
        p
        for p in FILES
        if p.parent.name in ("results", "plotting") or "results" in p.parts or "plotting" in p.parts
    ],
    ids=_rel,
)
def test_results_and_plotting_import_no_tensorflow(path):
    bad = sorted(name for name in imports(path) if matches(name, HEAVY))
    assert not bad, f"{_rel(path)} imports {bad}"


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_only_the_adapter_imports_tf_keras_vis(path):
    if "_tfkv" in path.parts:
        return
    bad = sorted(name for name in imports(path) if matches(name, ("tf_keras_vis",)))
    assert not bad, f"{_rel(path)} imports {bad}: only vizkit/methods/_tfkv/ may"


@pytest.mark.parametrize("path", FILES, ids=_rel)
def test_nothing_imports_streamlit(path):
    bad = sorted(name for name in imports(path) if matches(name, ("streamlit",)))
    assert not bad, f"{_rel(path)} imports {bad}"


def test_the_checker_sees_imports(tmp_path):
    sample = PACKAGE / "plotting" / "comparison.py"
    assert "matplotlib.figure" in imports(sample) or "matplotlib.figure.Figure" in imports(sample)


# --------------------------------------------------------------------------------------------
# Keras private attributes: only in the adapter
# --------------------------------------------------------------------------------------------
ADAPTER = PACKAGE / "_keras.py"


def private_attributes(path: Path) -> list[tuple[int, str]]:
    """``(line, name)`` of every single-underscore attribute read on something other than
    ``self``/``cls``/``super()``, and of every ``getattr``/``hasattr``/``setattr`` with such a
    name as a string."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "super":
                continue
            found.append((node.lineno, node.attr))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append((node.lineno, node.args[1].value))
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@functools.cache
def vizkit_defined() -> frozenset[str]:
    """Private names vizkit defines itself (methods, ``self._x`` attributes, module names)."""
    names: set[str] = set()
    for path in FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("self", "cls"):
                    names.add(node.attr)
    names.update(p.stem for p in FILES)
    names.update(("_replace", "_asdict", "_fields", "_make"))  # the public namedtuple API
    return frozenset(n for n in names if _private(n))


@functools.cache
def keras_private_names() -> frozenset[str]:
    """Private attribute names found on live Keras objects: models, layers, graph nodes,
    symbolic tensors (instance attributes included)."""
    from vizkit._tf import keras

    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Conv2D(2, 3)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(hidden + 1.0))
    model = keras.Model(inputs, outputs)
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    layer = model.layers[1]
    objects = [model, sequential, layer, inputs, hidden, layer._inbound_nodes[0]]
    objects.append(hidden._keras_history)
    names = set()
    for obj in objects:
        names.update(dir(obj))
        names.update(getattr(obj, "__dict__", {}))
    return frozenset(n for n in names if _private(n))


def test_the_private_attribute_checker_sees_keras_internals():
    names = keras_private_names()
    for expected in ("_keras_history", "_inbound_nodes", "_run_through_graph", "_nodes_by_depth"):
        assert expected in names
    found = {name for _, name in private_attributes(ADAPTER)}
    assert {"_keras_history", "_inbound_nodes", "_nodes_by_depth"} <= found


@pytest.mark.parametrize("path", [p for p in FILES if p != ADAPTER], ids=_rel)
def test_only_the_keras_adapter_reads_keras_private_attributes(path):
    keras_names = keras_private_names() - vizkit_defined()
    bad = sorted({f"{name} (line {line})" for line, name in private_attributes(path)
                  if name in keras_names})  # fmt: skip
    assert not bad, (
        f"{_rel(path)} reads Keras private attributes {bad}: add a function to vizkit/_keras.py"
    )


# --------------------------------------------------------------------------------------------
# Dashboards: vizkit's public API only
# --------------------------------------------------------------------------------------------
DASHBOARDS = sorted((ROOT / "dashboards").rglob("*.py"))
#: vizkit's public API: the ``vizkit`` namespace (``vizkit.__all__``) and these documented
#: subpackages, for notebooks and the dashboard; every other module is internal
PUBLIC = (
    "vizkit",
    "vizkit.errors",
    "vizkit.metrics",
    "vizkit.plotting",
    "vizkit.results",
    "vizkit.sources",
)


def vizkit_uses(path: Path) -> list[str]:
    """Every vizkit module or name a file imports, and ``vizkit.<name>`` attribute reads."""
    used = [name for name in imports(path) if matches(name, ("vizkit",))]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "vizkit"
        ):
            used.append(f"vizkit.{node.attr}")
    return used


def public(name: str) -> bool:
    import vizkit

    if matches(name, PUBLIC[1:]):
        return not any(part.startswith("_") for part in name.split("."))
    parts = name.split(".")
    return name == "vizkit" or (len(parts) == 2 and parts[1] in vizkit.__all__ + ["__version__"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=_rel)
def test_dashboards_import_no_tensorflow(path):
    bad = sorted(name for name in imports(path) if matches(name, HEAVY))
    assert not bad, f"{_rel(path)} imports {bad}: the dashboard goes through vizkit"


def test_dashboards_use_only_the_public_api():
    bad = {
        f"{_rel(path)}: {name}"
        for path in DASHBOARDS
        for name in vizkit_uses(path)
        if not public(name)
    }
    assert not bad, "dashboards use vizkit internals: " + ", ".join(sorted(bad))


def test_the_public_api_rule():
    assert public("vizkit") and public("vizkit.explain") and public("vizkit.metrics.deletion")
    assert public("vizkit.errors.one_line") and public("vizkit.plotting.figures.new_figure")
    assert not public("vizkit.models") and not public("vizkit.samples.sample_model")
    assert not public("vizkit._tf") and not public("vizkit.metrics._common")
