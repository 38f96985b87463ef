"""Layering, enforced by reading imports with ast.

- vizkit/results/ and vizkit/plotting/ import no TensorFlow, Keras or tf_keras_vis;
- only modules under vizkit/methods/_tfkv/ import tf_keras_vis;
- nothing in vizkit/ imports streamlit.
"""

from __future__ import annotations

import ast
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
