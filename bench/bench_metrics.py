"""Benchmark: deletion with 20 steps costs about 20 batched forward passes, not 20 x N calls.

The issue's contract: ``deletion(steps=20)`` on N images should take at most 1.3x the time of 20
forward passes of the N-image batch. We time, on the same compiled forward function:

- ``forward``: one batched call on the N images (median of several);
- ``deletion``: :func:`vizkit.metrics.deletion` with 20 steps, no random baseline;
- ``deletion+baseline``: the same with the random-order baseline (about twice the images);
- ``naive``: one call per perturbed image, measured on a few images and scaled to N.

Runs on the sample architectures (``digits_cnn``, ``shapes_vgg``) with fixed seeds: speed does
not depend on training, so no build is needed. ``--quick`` uses 16 images instead of 32.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

N_IMAGES = 32
STEPS = 20
CONTRACT = 1.3


def _models() -> list[tuple[str, Any]]:
    """The sample architectures with fixed seeds (speed does not depend on training)."""
    from vizkit._tf import keras

    try:
        from sample_models import architectures
    except ImportError:  # run outside the repository: one small stand-in CNN
        architectures = None
    models = []
    for name in ("digits_cnn", "shapes_vgg"):
        keras.utils.set_random_seed(0)
        if architectures is not None:
            models.append((name, getattr(architectures, name)()))
    if not models:
        inputs = keras.Input((64, 64, 3))
        x = inputs
        for filters in (16, 32, 64):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Flatten()(x)
        outputs = keras.layers.Dense(3, activation="softmax")(x)
        models.append(("small_cnn", keras.Model(inputs, outputs, name="small_cnn")))
    return models


def _median_seconds(fn: Any, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model: Any, name: str, images: int = N_IMAGES, steps: int = STEPS) -> dict[str, Any]:
    """Time deletion against batched forward passes on one model; plain numbers."""
    from vizkit.metrics import deletion
    from vizkit.metrics._common import scorer

    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(0).random((images, *shape)).astype(np.float32)
    maps = np.random.default_rng(1).random(x.shape[:3])
    run = scorer(model)
    run.outputs(x)  # compile
    forward = _median_seconds(lambda: run.outputs(x))
    deletion(model, x, maps, steps=2, baseline=False)  # compile the perturbation path
    curves = []

    def once() -> None:
        curves.append(deletion(model, x, maps, steps=steps, baseline=False))

    delete = _median_seconds(once, repeats=3)
    with_baseline = _median_seconds(
        lambda: deletion(model, x, maps, steps=steps, baseline=True), repeats=3
    )
    one = x[:1]
    run.outputs(one)
    single = _median_seconds(lambda: run.outputs(one), repeats=10)
    naive = single * images * (steps + 1)
    return {
        "model": name,
        "images": images,
        "steps": steps,
        "forward_s": forward,
        "deletion_s": delete,
        "deletion_with_baseline_s": with_baseline,
        "per_image_calls_estimate_s": naive,
        "model_calls": curves[-1].forward_passes,
        "ratio_to_steps_forward": delete / (steps * forward),
        "speedup_vs_per_image_calls": naive / delete,
        "within_contract": bool(delete <= CONTRACT * steps * forward),
    }


def run(report: Any) -> Any:
    """Entry point for ``python -m bench``; ``report.add(name, results, lines)`` gets them."""
    quick = bool(getattr(report, "quick", False))
    images = 16 if quick else N_IMAGES
    results, lines = {}, []
    for name, model in _models():
        r = measure(model, name, images=images)
        results[name] = r
        lines += [
            f"{name}: {r['images']} images, {r['steps']} steps",
            f"  one batched forward pass: {r['forward_s'] * 1000:.1f} ms",
            f"  deletion: {r['deletion_s'] * 1000:.1f} ms = {r['ratio_to_steps_forward']:.2f}x "
            f"{r['steps']} forward passes (contract <= {CONTRACT}x: "
            f"{'ok' if r['within_contract'] else 'MISSED'}; {r['model_calls']} model calls)",
            f"  deletion + random baseline: {r['deletion_with_baseline_s'] * 1000:.1f} ms",
            f"  one call per perturbed image (estimated): "
            f"{r['per_image_calls_estimate_s'] * 1000:.0f} ms "
            f"({r['speedup_vs_per_image_calls']:.1f}x the batched time)",
        ]
    return _emit(report, "metrics", results, lines)


def _emit(report: Any, name: str, results: dict[str, Any], lines: list[str]) -> Any:
    for method in ("add", "record", "section"):
        fn = getattr(report, method, None)
        if callable(fn):
            return fn(name, results, lines)
    if callable(report):
        return report(name, results, lines)
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    run(None)
