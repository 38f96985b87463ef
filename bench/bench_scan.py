"""Benchmark: ``vizkit.scan`` over a generated image folder against the model's own passes.

The folder (``python -m sample_models shapes-folder``: 64x64 PNGs in class subfolders with
masks) is written once into ``$VIZKIT_BENCH_CACHE`` (default ``/tmp/vizkit-bench``) and reused.
The model is the bench's fixed shapes VGG (seeded, untrained: timing does not depend on
training), saved to a file so that scans run in fresh subprocesses.

Measured side by side in one run, alternating so all see the same background load:

- **floor**: the model's own compiled forward+backward pass (gradient of one output with
  respect to the input) over the same images in batches of 32, from memory (decoded once,
  uint8, converted per batch);
- **scan**: ``vizkit.scan(model, folder, method, out=fresh dir)`` in a subprocess for Grad-CAM
  and for saliency (reading and decoding the PNGs, hashing, maps, predictions, statistics,
  health, float16 maps and thumbnails written to Parquet + Zarr), timed inside the subprocess
  from the call to its return; its throughput as a share of the floor's (target >= 0.8);
- the store's size; peak RSS (``ru_maxrss``) after 1,000 images and at the end (target: within
  100 MB);
- **kill**: a Grad-CAM scan SIGKILLed at a random point, then rerun: the final table must equal
  the uninterrupted run's, and no chunk may be started twice except the one in flight.

``--quick`` uses 1,000 images; ``VIZKIT_BENCH_SCAN_IMAGES`` sets the count.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

N_IMAGES = 10_000
QUICK_IMAGES = 1_000
BATCH = 32
TARGET_RATIO = 0.8
RSS_BUDGET_MB = 100.0


def cache_dir() -> Path:
    return Path(os.environ.get("VIZKIT_BENCH_CACHE", "/tmp/vizkit-bench"))


def shapes_folder(count: int) -> Path:
    """The generated folder for ``count`` images (written on first use)."""
    root = cache_dir() / f"shapes-{count}"
    marker = root / "complete"
    if not marker.exists():
        from sample_models.folders import write_shapes_folder

        shutil.rmtree(root, ignore_errors=True)
        write_shapes_folder(root, count)
        marker.write_text(str(count))
    return root


def model_file() -> Path:
    path = cache_dir() / "shapes_vgg_bench.keras"
    if not path.exists():
        from bench.bench_attribution import shapes_vgg

        path.parent.mkdir(parents=True, exist_ok=True)
        shapes_vgg().save(path)
    return path


def load_uint8(folder: Path) -> np.ndarray:
    from PIL import Image

    files = sorted((folder / "images").rglob("*.png"))
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def floor_pass(fn: Any, images: np.ndarray) -> tuple[float, float]:
    """Wall and CPU seconds of forward+backward over all ``images`` in batches of 32."""
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(images), BATCH):
        fn(images[start : start + BATCH].astype(np.float32) / 255.0)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_worker(args: list[str]) -> int:
    """Subprocess entry: ``python -m bench.bench_scan worker MODEL FOLDER OUT METHOD STATS``."""
    model, folder, out, method, stats_path = args
    import vizkit
    from vizkit._tf import tf  # noqa: F401  (imported before timing, like the floor's)

    loaded = vizkit.load_model(model)
    rss = {}

    def progress(done: int, total: int | None) -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        if done >= 1000 and "after_1000" not in rss:
            rss["after_1000"] = peak
        rss["end"] = peak

    wall, cpu = time.perf_counter(), time.process_time()
    result = vizkit.scan(
        loaded,
        Path(folder) / "images",
        method,
        out=out,
        masks=Path(folder) / "masks",
        progress=progress,
    )
    events = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    stored = [e for e in events if e["event"] == "stored"]
    chunk = result.manifest["settings"]["chunk_size"]
    stats = {
        "wall": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "images": len(result.table),
        "rss_after_1000_mb": rss.get("after_1000"),
        "rss_end_mb": rss.get("end"),
        # steady state: from the first chunk stored (tracing done) to the last
        "steady_wall": stored[-1]["time"] - stored[0]["time"] if len(stored) > 1 else None,
        "steady_images": len(result.table) - min(chunk, len(result.table)),
    }
    Path(stats_path).write_text(json.dumps(stats))
    return 0


def _command(model: Path, folder: Path, out: Path, method: str, stats: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.bench_scan",
        "worker",
        str(model),
        str(folder),
        str(out),
        method,
        str(stats),
    ]


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2"}


def scan_subprocess(model: Path, folder: Path, out: Path, method: str) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    stats = out.with_suffix(".json")
    subprocess.run(
        _command(model, folder, out, method, stats),
        check=True,
        env=_env(),
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(stats.read_text())


def store_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def kill_and_resume(model: Path, folder: Path, out: Path, reference: Path, seconds: float) -> dict:
    """SIGKILL a Grad-CAM scan at a random point, rerun it, compare with ``reference``."""
    import pandas as pd

    shutil.rmtree(out, ignore_errors=True)
    stats = out.with_suffix(".json")
    delay = random.Random(0).uniform(0.3, 0.7) * seconds + 8.0  # + start-up (imports, tracing)
    process = subprocess.Popen(
        _command(model, folder, out, "gradcam", stats),
        env=_env(),
        cwd=Path(__file__).resolve().parents[1],
    )
    time.sleep(delay)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait()
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    stored_before = sum(e["event"] == "stored" for e in events)
    subprocess.run(
        _command(model, folder, out, "gradcam", stats),
        check=True,
        env=_env(),
        cwd=Path(__file__).resolve().parents[1],
    )
    events = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    starts: dict[str, int] = {}
    for e in events:
        if e["event"] == "started":
            starts[e["fingerprint"]] = starts.get(e["fingerprint"], 0) + 1
    twice = sum(1 for v in starts.values() if v > 1)
    a = pd.read_parquet(out / "scan.parquet")
    b = pd.read_parquet(reference / "scan.parquet")
    try:
        pd.testing.assert_frame_equal(a, b)
        equal = True
    except AssertionError:
        equal = False
    return {
        "killed": killed,
        "delay_s": delay,
        "chunks_stored_before_kill": stored_before,
        "chunks_started_twice": twice,
        "table_equal": equal,
        "chunks": len(starts),
    }


def run(report: Any) -> Any:
    """Entry point for ``python -m bench``."""
    quick = bool(getattr(report, "quick", False))
    count = int(os.environ.get("VIZKIT_BENCH_SCAN_IMAGES", QUICK_IMAGES if quick else N_IMAGES))
    started = time.perf_counter()
    folder = shapes_folder(count)
    generated = time.perf_counter() - started
    model_path = model_file()
    from bench.bench_attribution import floor_fn
    from vizkit import load_model

    images = load_uint8(folder)
    floor = floor_fn(load_model(model_path))
    floor(images[:BATCH].astype(np.float32) / 255.0)  # trace
    work = cache_dir() / "runs"
    work.mkdir(parents=True, exist_ok=True)
    floors, scans = [], {}
    floors.append(floor_pass(floor, images))
    for method in ("gradcam", "saliency"):
        scans[method] = scan_subprocess(model_path, folder, work / method, method)
        scans[method]["store_mb"] = store_mb(work / method)
        floors.append(floor_pass(floor, images))
    floor_wall = float(np.median([f[0] for f in floors]))
    floor_cpu = float(np.median([f[1] for f in floors]))
    kill = kill_and_resume(
        model_path, folder, work / "killed", work / "gradcam", scans["gradcam"]["wall"]
    )
    results = {
        "images": count,
        "generate_s": generated,
        "floor_wall_s": floor_wall,
        "floor_cpu_s": floor_cpu,
        "floors": floors,
        "scans": scans,
        "kill": kill,
    }
    lines = [
        f"{count} images 64x64 (folder generated in {generated:.0f} s); floor = forward+backward "
        f"over them in batches of {BATCH}: {floor_wall:.1f} s wall, {floor_cpu:.1f} s CPU "
        f"({count / floor_wall:.0f} img/s)",
        "| scan | wall s | img/s | x floor throughput (wall) | x floor (CPU) | steady state "
        "x floor (wall) | store MB | peak RSS @1000 / end MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, s in scans.items():
        wall_ratio = floor_wall / s["wall"]
        cpu_ratio = floor_cpu / s["cpu"]
        s["throughput_ratio_wall"], s["throughput_ratio_cpu"] = wall_ratio, cpu_ratio
        rss = f"{s['rss_after_1000_mb'] or float('nan'):.0f} / {s['rss_end_mb']:.0f}"
        steady = float("nan")
        if s["steady_wall"]:
            steady = (s["steady_images"] / s["steady_wall"]) / (count / floor_wall)
        s["steady_ratio_wall"] = steady
        lines.append(
            f"| {method} | {s['wall']:.1f} | {count / s['wall']:.0f} | {wall_ratio:.2f} | "
            f"{cpu_ratio:.2f} | {steady:.2f} | {s['store_mb']:.1f} | {rss} |"
        )
    lines.append(
        f"kill at {kill['delay_s']:.0f} s (killed: {kill['killed']}, "
        f"{kill['chunks_stored_before_kill']} of {kill['chunks']} chunks stored): rerun table "
        f"equal to the uninterrupted run: {kill['table_equal']}; chunks started twice: "
        f"{kill['chunks_started_twice']} (allowed: 1, the one in flight)"
    )
    return report.add("scan", results, lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(run_worker(sys.argv[2:]))
    print("run through: python -m bench --only scan", file=sys.stderr)
    sys.exit(2)
