"""Benchmark: what a command-line user waits for, from typing the command to its output.

Each command runs in a fresh process (as a user runs it), timed side by side with the floor every
computing command pays: starting Python and importing TensorFlow (``python -c "import
tensorflow"``). Wall seconds and the CPU seconds of the child process are reported, so a busy
machine shows as wall > CPU:

- ``vizkit --help`` and ``vizkit methods``: must not import TensorFlow (well under the floor);
- ``vizkit predict`` / ``vizkit explain`` (Grad-CAM) of one photo on ``imagenet_lite0``;
- ``vizkit report`` on ``shapes_vgg`` and on ``imagenet_lite0`` (every default section), the
  time to a finished report (``--quick`` skips the ``imagenet_lite0`` report).

Needs the built samples (``python -m sample_models build``).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _timed(args: list[str], repeats: int = 1) -> tuple[float, float]:
    """Median wall seconds and CPU seconds (user + system) of ``python args``."""
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return statistics.median(walls), statistics.median(cpus)


def run(report: Any) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    import vizkit

    quick = getattr(report, "quick", False)
    repeats = 1 if quick else 3
    out = Path(tempfile.mkdtemp(prefix="vizkit-bench-cli-"))
    photo = out / "chelsea.png"
    batch = vizkit.sample_images("imagenet_lite0")
    index = next((i for i, n in enumerate(batch.names) if "chelsea" in n), 0)
    Image.fromarray(np.asarray(batch.originals[index])).save(photo)
    env_model = ["--model", "sample:imagenet_lite0"]
    commands = {
        "floor: python -c 'import tensorflow'": (["-c", "import tensorflow"], repeats),
        "vizkit --help": (["-m", "vizkit", "--help"], repeats),
        "vizkit methods": (["-m", "vizkit", "methods"], repeats),
        "vizkit predict (imagenet_lite0, 1 photo)": (
            ["-m", "vizkit", "predict", *env_model, "--images", str(photo)],
            repeats,
        ),
        "vizkit explain gradcam (imagenet_lite0, 1 photo)": (
            [
                "-m",
                "vizkit",
                "explain",
                *env_model,
                "--image",
                str(photo),
                "--method",
                "gradcam",
                "--out",
                str(out / "map.png"),
            ],  # fmt: skip
            repeats,
        ),
        "vizkit report (shapes_vgg)": (
            ["-m", "vizkit", "report", "--model", "sample:shapes_vgg", "--out", str(out / "r1")],
            1,
        ),
    }
    if not quick:
        commands["vizkit report (imagenet_lite0)"] = (
            ["-m", "vizkit", "report", *env_model, "--out", str(out / "r2")],
            1,
        )
    results: dict[str, Any] = {}
    lines = [f"load average before: {os.getloadavg()[0]:.1f}"]
    lines.append(f"{'command':52s} {'wall s':>8s} {'CPU s':>8s} {'x floor':>8s}")
    floor = None
    for name, (args, n) in commands.items():
        wall, cpu = _timed(args, n)
        floor = wall if floor is None else floor
        results[name] = {"wall": wall, "cpu": cpu, "ratio_to_floor": wall / floor}
        lines.append(f"{name:52s} {wall:8.2f} {cpu:8.2f} {wall / floor:8.2f}")
    lines.append(f"load average after: {os.getloadavg()[0]:.1f}")
    return report.add("cli", results, lines)


if __name__ == "__main__":
    from bench.__main__ import Report

    run(Report(quick="--quick" in sys.argv))
