"""A scan killed with SIGKILL resumes to the same table; the CLI; the Ray engine agrees."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vizkit
from vizkit.cli import main

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import sys, time
import vizkit
def slow(done, total):
    time.sleep(0.4)  # leaves time to kill between chunks and inside one
vizkit.scan(sys.argv[1], sys.argv[2], "gradcam", out=sys.argv[3], chunk_size=8, progress=slow)
"""


def _events(root):
    path = root / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_uninterrupted_table(tmp_path, model_path, shapes):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(model_path), str(shapes / "images"), str(out)],
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if sum(e["event"] == "stored" for e in _events(out)) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # somewhere inside the next chunk or between chunks
    assert process.poll() is None, "the scan finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = sum(e["event"] == "stored" for e in _events(out))
    assert 2 <= stored < 7
    resumed = vizkit.scan(
        str(model_path), shapes / "images", "gradcam", out=out, chunk_size=8, progress=False
    )
    reference = vizkit.scan(
        str(model_path),
        shapes / "images",
        "gradcam",
        out=tmp_path / "ref",
        chunk_size=8,
        progress=False,
    )
    pd.testing.assert_frame_equal(resumed.table, reference.table)
    starts: dict[str, int] = {}
    for event in _events(out):
        if event["event"] == "started":
            starts[event["fingerprint"]] = starts.get(event["fingerprint"], 0) + 1
    assert len(starts) == 7  # 51 files in chunks of 8
    assert sum(count > 1 for count in starts.values()) <= 1  # only the one in flight


def test_cli_scan(tmp_path, model_path, shapes, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "scan",
            "--model",
            str(model_path),
            "--images",
            str(shapes / "images"),
            "--masks",
            str(shapes / "masks"),
            "--methods",
            "gradcam,saliency",
            "--metrics",
            "pointing_game",
            "--map-size",
            "32",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    scan = vizkit.open_scan(out)
    assert len(scan.table) == 48 and len(scan.skipped) == 3
    assert scan.maps("gradcam", [0]).shape == (1, 32, 32)
    assert "gradcam.pointing_hit" in scan.table.columns
    code = main(
        [
            "scan",
            "--model",
            str(model_path),
            "--images",
            str(shapes / "images"),
            "--metrics",
            "relevance_mass",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 2
    assert "need object masks" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_engine_writes_the_same_store(tmp_path, model_path, shapes):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        ignore_reinit_error=True,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}},
    )
    try:
        common = dict(
            masks=shapes / "masks", metrics="pointing_game", chunk_size=16, progress=False
        )
        local = vizkit.scan(
            str(model_path), shapes / "images", "gradcam,saliency", out=tmp_path / "local", **common
        )
        remote = vizkit.scan(
            str(model_path),
            shapes / "images",
            "gradcam,saliency",
            out=tmp_path / "ray",
            engine="ray",
            **common,
        )
        pd.testing.assert_frame_equal(local.table, remote.table, check_exact=False, rtol=1e-5)
        for method in ("gradcam", "saliency"):
            np.testing.assert_allclose(
                remote.maps(method, local.table["id"]),
                local.maps(method, local.table["id"]),
                rtol=1e-4,
                atol=1e-6,
            )
        pd.testing.assert_frame_equal(local.skipped, remote.skipped)
        # the stores are interchangeable: a local rerun over the Ray store computes nothing
        before = len(_events(tmp_path / "ray"))
        vizkit.scan(
            str(model_path), shapes / "images", "gradcam,saliency", out=tmp_path / "ray", **common
        )
        assert not [e for e in _events(tmp_path / "ray")[before:] if e["event"] == "started"]
    finally:
        ray.shutdown()
