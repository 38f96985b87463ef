"""Size limits (issue 13), measured with ast: no module in vizkit/ or dashboards/ over 500 lines
and no function whose body (docstring excluded) is over 80 lines, unless its docstring says why
("(Over 500 lines: ...)" in the module docstring, "over 80 lines" in the function's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*(ROOT / "vizkit").rglob("*.py"), *(ROOT / "dashboards").rglob("*.py")])
MAX_FILE_LINES = 500
MAX_BODY_LINES = 80
#: owned by other branches in flight (activation-maximization rewrite; batch-norm folding and
#: models.py, over 500 lines on main since 45ca98c): drop each once it is split or says why
PENDING: set[str] = set()


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines from the first statement after the docstring to the end of the function."""
    body = node.body
    if ast.get_docstring(node, clean=False) is not None:
        body = body[1:]
    if not body:
        return 0
    return (body[-1].end_lineno or body[-1].lineno) - body[0].lineno + 1


def offenders(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    found = []
    lines = source.count("\n")
    if lines > MAX_FILE_LINES and "over 500 lines" not in (ast.get_docstring(tree) or "").lower():
        found.append(f"{lines} lines and no '(Over 500 lines: why)' in the module docstring")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = body_lines(node)
            doc = (ast.get_docstring(node) or "").lower()
            if n > MAX_BODY_LINES and "over 80 lines" not in doc:
                found.append(f"{node.name} (line {node.lineno}) has a {n}-line body")
    return found


@pytest.mark.parametrize("path", [p for p in FILES if _rel(p) not in PENDING], ids=_rel)
def test_size_limits(path):
    found = offenders(path)
    assert not found, f"{_rel(path)}: " + "; ".join(found) + ": split it, or say why"


def test_the_measure(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('def f():\n    """Doc\n    string."""\n    a = 1\n\n    return a\n')
    node = ast.parse(sample.read_text()).body[0]
    assert isinstance(node, ast.FunctionDef) and body_lines(node) == 3
    assert offenders(sample) == []
