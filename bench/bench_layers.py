"""Benchmark: a CAM at every layer (``vizkit.explain_layers``) against one layer and the floor.

On the shapes VGG (64x64) and EfficientNet-Lite0's architecture (224x224, 141 candidate layers),
each with 4 images: the forward+backward floor, Grad-CAM at the default layer, the one-pass
sweep of each one-pass method over every candidate layer (warm medians, timed alternately with
the floor so all see the same load), and the first call of each on a fresh model object
(rebuilding and tracing). The last column is what the dashboard saves: a sweep replaces one
trace per new layer.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.bench_attribution import floor_fn, imagenet_lite0, paired, shapes_vgg

REPEATS = 5


def one_pass_methods() -> list[str]:
    import vizkit

    return [m for m in vizkit.available_methods() if vizkit.get_method(m).one_pass_layers]


def time_sweep(
    model: Any, build: Any, x: np.ndarray, method: str, floor: Any, repeats: int
) -> dict[str, Any]:
    """``method``'s sweep over every candidate layer: first call on a fresh model, then warm."""
    import vizkit

    def sweep(m: Any) -> Any:
        return vizkit.explain_layers(m, x, method, targets=0)

    started = time.perf_counter()
    sweep(build())
    row: dict[str, Any] = {"cold_s": time.perf_counter() - started}
    sweep(model)
    row.update(paired({"floor": lambda: floor(x)}, lambda: sweep(model), repeats))
    return row


def bench_model(name: str, build: Any, repeats: int) -> dict[str, Any]:
    import vizkit

    model = build()
    shape = model.inputs[0].shape[1:]
    x = np.random.default_rng(0).uniform(0, 1, size=(4, *shape)).astype(np.float32)
    floor = floor_fn(model)
    floor(x)
    rows: dict[str, Any] = {"layers": len(vizkit.candidate_layers(model))}

    def first(fn: Any) -> float:
        started = time.perf_counter()
        fn(build())
        return time.perf_counter() - started

    def single(m: Any) -> Any:
        return vizkit.explain(m, x, "gradcam", targets=0)

    rows["gradcam, default layer"] = {"cold_s": first(single)}
    rows["gradcam, default layer"].update(
        paired({"floor": lambda: floor(x)}, lambda: single(model), repeats)
    )
    for method in one_pass_methods():
        rows[f"{method}, every layer"] = time_sweep(model, build, x, method, floor, repeats)
    return rows


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| model (candidate layers) | call | warm s | x floor (wall) | x floor (CPU) | first call s |",
        "|---|---|---|---|---|---|",
    ]
    for model, rows in results.items():
        for label, row in rows.items():
            if label == "layers":
                continue
            lines.append(
                f"| {model} ({rows['layers']}) | {label} | {row['warm_s']:.3f} | "
                f"{row['ratio_floor']:.1f} | {row['cpu_ratio_floor']:.1f} | {row['cold_s']:.1f} |"
            )
    return lines


def measure(repeats: int = REPEATS) -> dict[str, Any]:
    import warnings

    import vizkit

    warnings.simplefilter("ignore", vizkit.VizkitWarning)  # random images, on purpose
    return {
        "shapes_vgg": bench_model("shapes_vgg", shapes_vgg, repeats),
        "imagenet_lite0": bench_model("imagenet_lite0", imagenet_lite0, repeats),
    }


def run(report: Any) -> Any:
    results = measure(3 if getattr(report, "quick", False) else REPEATS)
    return report.add("CAMs at every layer (explain_layers)", results, table(results))


if __name__ == "__main__":
    print("\n".join(table(measure())))
