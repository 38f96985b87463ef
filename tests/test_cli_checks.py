"""Issue 16, item 12: the CLI checks its arguments before importing TensorFlow, and
``vizkit methods`` never imports it (its method facts come from vizkit.manifest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import _sample_available

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import contextlib, io, json, sys
from vizkit.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(argv)
    results.append([code, err.getvalue(), out.getvalue(), "tensorflow" in sys.modules])
print(json.dumps(results))
"""


def run_without_tensorflow(cases):
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps([argv for argv, _ in cases])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_bad_arguments_fail_before_tensorflow_loads(tmp_path):
    from PIL import Image

    image = tmp_path / "cat.png"
    Image.new("RGB", (8, 8)).save(image)
    model = tmp_path / "model.keras"
    model.write_bytes(b"not checked before TensorFlow")  # only its existence is
    missing = str(tmp_path / "missing.keras")
    explain = ["explain", "--model", str(model), "--image", str(image), "--out", "x.png"]
    cases = [
        (["methods"], "gradcam"),
        (["methods", "integrated_gradients", "deletion"], "https://arxiv.org/abs/1806.07421"),
        (["methods", "--brief"], "hirescam"),
        (["summary", "--model", missing], "does not exist"),
        (["explain", "--model", missing, "--image", str(image), "--out", "x.png"], "does not"),
        ([*explain[:4], str(tmp_path / "no.png"), "--out", "x.png"], "image"),
        ([*explain, "--method", "gradcamm"], "unknown method 'gradcamm': choose one of gradcam"),
        ([*explain, "--target", "-1"], "target -1 is negative"),
        ([*explain[:-1], "x.gif"], "end the name in .png, .pdf or .svg"),
        (["explain", "--model", "sample:nope", *explain[3:]], "unknown sample model 'nope'"),
        (["report", "--model", str(model), "--methods", "saliency,foo", "--out", "r"], "'foo'"),
        (["report", "--model", str(model), "--formats", "html,docx", "--out", "r"], "docx"),
        (
            ["report", "--model", str(model), "--scan", str(tmp_path), "--out", "r"],
            "not a vizkit scan",
        ),
        (["methods", "gradcm"], "unknown method or metric 'gradcm'"),
    ]
    if _sample_available("digits_cnn") is None:
        cases.append(
            (
                ["explain", "--model", "sample:digits_cnn", *explain[3:], "--target", "12"],
                "target 12 is out of range: sample 'digits_cnn' has 10 classes",
            )
        )
    results = run_without_tensorflow(cases)
    for (argv, expected), (code, err, out, tensorflow) in zip(cases, results):
        assert not tensorflow, f"{argv} imported TensorFlow"
        if argv[0] == "methods" and argv != ["methods", "gradcm"]:
            assert code == 0 and expected in out
        else:
            assert code == 2, (argv, err)
            assert expected in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_manifest_matches_the_registry():
    """The CLI's static copy of method and metric facts equals the registry's."""
    from vizkit import manifest
    from vizkit.metrics import METRIC_INFO

    problems = manifest.stale()
    assert not problems, (
        "vizkit/manifest.py is stale (" + "; ".join(problems) + "): regenerate it with "
        "`python -m vizkit.manifest` and commit it"
    )
    assert (manifest.METHODS, manifest.METRICS) == manifest.from_registry()
    assert manifest.method_names() == __import__("vizkit").available_methods()
    assert manifest.metric_names() == list(METRIC_INFO)
    with pytest.raises(Exception, match="unknown method 'nope'"):
        manifest.method_entry("nope")
