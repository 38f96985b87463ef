"""Benchmark: activation maximization against the cost of plain forward+backward passes.

Issue 4's budget: 200 steps for one target must cost at most 1.5x the time of 200 batch-1
forward+backward passes, and N targets optimized together must cost far less than N runs.

For the sample architectures (``digits_cnn`` 28x28x1 and ``shapes_vgg`` 64x64x3, seeded random
weights: timing does not depend on training) this measures, warm, alternating with the floor so
both see the same background load:

- the **floor**: 200 calls of a compiled batch-1 forward+backward (gradient of one logit with
  respect to the input), as a user's loop would make them; and, stricter, the same 200 passes
  inside one compiled ``tf.while_loop`` (no Python between passes);
- vizkit, one target, 200 steps (default recipe: Fourier parameterization, augmentation,
  penalties, Adam), and the pixel parameterization;
- N targets in one batched optimization against N single-target runs;
- the first (cold) call on a fresh model object, which includes building and tracing the graph;
- for context, tf-keras-vis ``ActivationMaximization`` with its defaults (eager steps, scipy
  rotation) per step, and vizkit's ``backend="tf-keras-vis"``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

STEPS = 200
TARGET_RATIO = 1.5


def build(name: str) -> Any:
    from sample_models import architectures
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    return getattr(architectures, name)()


def paired(floor: Callable[[], Any], fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Time ``fn`` and ``floor`` alternately; ratios of medians and of the fastest runs."""
    fn_times, floor_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        floor()
        floor_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        fn()
        fn_times.append(time.perf_counter() - start)
    return {
        "seconds": statistics.median(fn_times),
        "floor_s": statistics.median(floor_times),
        "ratio": statistics.median(fn_times) / statistics.median(floor_times),
        "ratio_best": min(fn_times) / min(floor_times),
    }


def floors(model: Any, steps: int) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(200 Python-driven compiled passes, 200 passes in one compiled loop), batch 1."""
    from vizkit._tf import tf

    x = tf.random.uniform((1, *model.inputs[0].shape[1:]), seed=0)

    @tf.function
    def forward_backward(images: Any) -> Any:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(images)
            score = tf.reduce_sum(model(images, training=False)[:, 0])
        return tape.gradient(score, images)

    @tf.function
    def in_graph(images: Any) -> Any:
        def body(i: Any, acc: Any) -> Any:
            return i + 1, acc + forward_backward(images + acc * 0.0)

        return tf.while_loop(lambda i, _: i < steps, body, (0, tf.zeros_like(images)))[1]

    def python_loop() -> None:
        for _ in range(steps):
            out = forward_backward(x)
        out.numpy()

    forward_backward(x)
    in_graph(x)
    return python_loop, lambda: in_graph(x).numpy()


def bench_model(name: str, layer: str | None, targets: int, quick: bool) -> dict[str, Any]:
    import vizkit

    model = build(name)
    repeats = 3 if quick else 5
    python_loop, in_graph = floors(model, STEPS)

    def run(units: Any, **kwargs: Any) -> Any:
        return vizkit.maximize_activation(
            model, layer, units, steps=STEPS, progress=False, **kwargs
        )

    start = time.perf_counter()
    cold_model = build(name)
    vizkit.maximize_activation(cold_model, layer, [0], steps=STEPS, progress=False)
    cold = time.perf_counter() - start
    del cold_model

    run([0])  # warm
    run([0], parameterization="pixel")
    one = paired(python_loop, lambda: run([0]), repeats)
    strict = paired(in_graph, lambda: run([0]), repeats)
    pixel = paired(python_loop, lambda: run([0], parameterization="pixel"), repeats)
    units = list(range(targets))
    run(units)
    together = paired(lambda: run([0]), lambda: run(units), repeats)
    return {
        "model": name,
        "layer": layer or "classes (logits)",
        "steps": STEPS,
        "cold_first_call_s": cold,
        "one_target": one,
        "one_target_vs_in_graph_floor": strict,
        "one_target_pixel": pixel,
        "targets": targets,
        "together_s": together["seconds"],
        "separate_estimate_s": together["floor_s"] * targets,
        "together_vs_separate": together["seconds"] / (together["floor_s"] * targets),
    }


def bench_tfkv(name: str, quick: bool) -> dict[str, Any]:
    """tf-keras-vis per step, with its defaults, against the same floor per pass."""
    import vizkit
    from vizkit._tf import keras
    from vizkit.activation_engine import feature_model
    from vizkit.models import head_info

    model = build(name)
    python_loop, _ = floors(model, STEPS)
    steps = 10 if quick else 30
    features = feature_model(model, head_info(model).path)  # logits, never the caller's model
    features = keras.Model(list(features.inputs), features.outputs)  # tf-keras-vis passes lists

    def defaults() -> None:
        from tf_keras_vis.activation_maximization import ActivationMaximization

        visualizer = ActivationMaximization(features, clone=False)
        visualizer(lambda out: out[:, 0], steps=steps)

    def adapter() -> None:
        vizkit.maximize_activation(
            model, None, [0], steps=steps, backend="tf-keras-vis", progress=False
        )

    defaults()
    adapter()
    reps = 2 if quick else 3
    raw = paired(python_loop, defaults, reps)
    ours = paired(python_loop, adapter, reps)
    per_step = {
        "tf_keras_vis_defaults_x_floor_per_step": raw["ratio"] * STEPS / steps,
        "vizkit_tf_keras_vis_backend_x_floor_per_step": ours["ratio"] * STEPS / steps,
    }
    return per_step


def run(report: Any) -> Any:
    quick = bool(getattr(report, "quick", False))
    saved = os.environ.pop("VIZKIT_MAX_STEPS", None)  # the cap is for tests only
    try:
        plan = [("digits_cnn", None, 10), ("shapes_vgg", "block3_conv3", 8)]
        results: dict[str, Any] = {}
        lines: list[str] = [
            f"{STEPS} steps, batch 1 unless stated; floor = {STEPS} compiled batch-1 "
            f"forward+backward passes (target <= {TARGET_RATIO}x)"
        ]
        for name, layer, targets in plan:
            row = bench_model(name, layer, targets, quick)
            results[name] = row
            one, strict, pixel = (
                row["one_target"],
                row["one_target_vs_in_graph_floor"],
                row["one_target_pixel"],
            )
            flag = "" if one["ratio"] <= TARGET_RATIO else "  OVER"
            lines += [
                f"{name}: floor {one['floor_s'] * 1000:.0f} ms; one target "
                f"{one['seconds'] * 1000:.0f} ms = {one['ratio']:.2f}x floor "
                f"(best {one['ratio_best']:.2f}x){flag}",
                f"  vs the {STEPS} passes in one compiled loop: {strict['ratio']:.2f}x; "
                f"pixel parameterization {pixel['ratio']:.2f}x",
                f"  {row['targets']} targets ({row['layer']}) together "
                f"{row['together_s'] * 1000:.0f} ms vs {row['targets']} separate runs "
                f"~{row['separate_estimate_s'] * 1000:.0f} ms: "
                f"{row['together_vs_separate']:.2f}x",
                f"  first call on a fresh model (build + trace + {STEPS} steps): "
                f"{row['cold_first_call_s']:.1f} s",
            ]
        context = bench_tfkv("shapes_vgg", quick)
        results["tf_keras_vis_shapes_vgg"] = context
        lines += [f"context (shapes_vgg): {k} {v:.2f}x" for k, v in context.items()]
    finally:
        if saved is not None:
            os.environ["VIZKIT_MAX_STEPS"] = saved
    return report.add("activation_max", results, lines)
