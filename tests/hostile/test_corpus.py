"""Every file of the hostile corpus is refused early, in one line, cheaply and without effects.

The corpus (corpus.py) is generated once per session and loaded case by case in a fresh process
(runner.py) that blocks the network, records processes started and files touched, and measures
each case's peak memory. Refused means: the expected vizkit error with a one-line message,
raised before Keras built anything (models) or before Pillow decoded any pixel (images), with
the process growing by less than 100 MB, no marker file written, no process started and no
network access. The controls (``live``) show that the payloads are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import corpus

REPO = Path(__file__).resolve().parents[2]
MAX_GROWTH = 100_000_000
TIMEOUT = 600  # a guard against hangs only; cases take well under a second each


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    cases = corpus.build(root)
    manifest = root / "manifest.json"
    manifest.write_text(corpus.manifest(cases))
    fake_bin = root / "bin"
    fake_bin.mkdir()
    gs = fake_bin / "gs"  # Pillow's EPS plugin runs `gs`: this one only leaves a marker
    gs.write_text('#!/bin/sh\n: > "$VIZKIT_HOSTILE_MARKERS/postscript"\nexit 1\n')
    gs.chmod(0o755)
    env = dict(
        os.environ,
        KERAS_HOME=str(root / "keras_home"),
        VIZKIT_HOSTILE_MARKERS=str(root / "markers"),
        PATH=f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.hostile.runner", str(manifest)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        output = done.stdout
    except subprocess.TimeoutExpired as err:
        output = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else err.stdout or ""
        pytest.fail(f"the runner hung after {output.count(chr(10))} cases:\n{output[-2000:]}")
    results = {}
    for line in output.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            results[item["name"]] = item
    return {
        "cases": {c.name: c for c in cases},
        "results": results,
        "root": root,
        "stderr": done.stderr,
    }


def _problems(case: corpus.Case, result: dict | None) -> list[str]:
    if result is None:
        return ["no result (the runner stopped before it)"]
    found = []
    message = result["message"] or ""
    if result["error"] != case.error:
        found.append(f"raised {result['error']} ({message[:300]}), expected {case.error}")
    elif case.match not in message:
        found.append(f"message {message!r} does not mention {case.match!r}")
    if case.error is not None:
        if "\n" in message or message != message.strip() or len(message) > 400:
            found.append(f"message is not one short line: {message!r}")
        if result["built"]:
            found.append("Keras built the model before the refusal")
        if result["decoded"]:
            found.append("Pillow decoded the image before the refusal")
    if result["growth"] > MAX_GROWTH:
        found.append(f"the process grew by {result['growth'] / 1e6:.0f} MB")
    if result["events"]:
        found.append(f"payload effects: {result['events'][:3]}")
    if result["markers"]:
        found.append(f"marker files written: {result['markers']}")
    return found


def test_every_hostile_file_is_refused_early_cheaply_and_without_effects(run):
    report = []
    for name, case in run["cases"].items():
        if case.live:
            continue
        problems = _problems(case, run["results"].get(name))
        report += [f"{name}: {problem}" for problem in problems]
    assert not report, "\n".join(report) + "\n" + run["stderr"][-1500:]


def test_corpus_covers_every_class_of_attack(run):
    names = set(run["cases"])
    for needle in (
        "lambda",
        "pickle",
        "decode_predictions",
        "densenet",
        "registered_name",
        "numpy_dtype_bomb",
        "string_dtype_bomb",
        "declared_weights",
        "big_input",
        "h5_nested_groups",
        "h5_many_objects",
        "postscript",
        "fits",
        "scans_bomb",
        "fifo",
        "flat_6300",
        "deep_config",
        "unwritten_weights",
        "chained_dense",
    ):
        assert any(needle in name for name in names), needle
    assert len([c for c in run["cases"].values() if not c.live]) >= 50


def test_controls_show_the_payloads_are_live(run):
    """Trusted (or opened by Pillow alone), the same files run their payloads."""
    results = run["results"]
    markers = run["root"] / "markers"
    keras_home = run["root"] / "keras_home"
    for name in (
        "lambda.keras (trusted)",
        "registered_name.keras (trusted)",
        "decode_predictions.keras (trusted)",
        "postscript.png (Pillow)",
    ):
        assert name in results, f"{name}: no result\n{run['stderr'][-1500:]}"
    assert (markers / "lambda").exists()
    assert (markers / "registered").exists()
    assert (markers / "postscript").exists(), results["postscript.png (Pillow)"]
    gadget = results["decode_predictions.keras (trusted)"]
    assert (keras_home / "models").is_dir(), gadget  # get_file made its download folder
    assert any(e.startswith(("socket", "urllib")) for e in gadget["events"]), gadget


def test_timings_are_reported(run, record_property):
    """No timing assertion: the slowest case is recorded for the report."""
    slowest = max(
        (r for r in run["results"].values() if not run["cases"][r["name"]].live),
        key=lambda r: r["seconds"],
    )
    record_property("slowest_case", f"{slowest['name']} {slowest['seconds']} s")
