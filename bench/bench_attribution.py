"""Benchmark: every attribution method as a multiple of its model's forward+backward floor.

For each fixed model (built here with fixed seeds: the digits CNN, the shapes VGG,
MobileNetV2 with ``weights=None`` at 224x224, and the ``imagenet_lite0`` sample's
EfficientNet-Lite0 architecture) and a fixed batch, the floor is one compiled
forward+backward pass (gradient of one output with respect to the input) on the same batch,
warm, median of several runs. Each method is timed the same way (warm median), plus its first
(cold) call on a fresh model object, which includes rebuilding and tracing.

Batch-size rows: saliency, SmoothGrad and integrated gradients again on 1 and 4 images (the
dashboard's and a notebook's pattern) besides the fixed batch, each against the floor on that
same smaller batch, so the table shows how the ratio depends on the batch; plus SmoothGrad on the
digits CNN's fixed batch at ``batch_size`` 16, 32, 64 and 128 (noisy copies per forward+backward
pass), interleaved.

Extra rows: occlusion against one batched forward pass over all its occluded images and
against a ``model.predict`` loop per occluded image (estimated from a few calls); Score-CAM
against the forward passes over its masked images; tf-keras-vis for context (its engines on
vizkit's prepared model, and naive use with a new visualizer per call); and 500 repeated calls
(the dashboard's pattern) checking traces and memory stay flat.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


# --------------------------------------------------------------------------------------------
# Methods, from the registry (never a list of names: a new method is benched as it registers)
# --------------------------------------------------------------------------------------------
def cost(method: str) -> str:
    """How a method's work grows: ``"cheap"`` (about one forward+backward pass),
    ``"averaging"`` (one per sample or path step), ``"capped"`` (a bounded number of forward
    passes, as Faster Score-CAM's ``max_n`` channels), ``"per-channel"`` (one forward pass per
    channel of the layer) or ``"per-patch"`` (one per patch position)."""
    import vizkit

    info = vizkit.get_method(method)
    params = {p.name for p in info.params}
    if info.family == "perturbation":
        return "per-patch"
    if info.family == "score-cam":
        return "capped" if "max_n" in params else "per-channel"
    if params & {"samples", "steps"}:
        return "averaging"
    return "cheap"


def target(method: str) -> float | None:
    """Issue 3's budget as a ratio to the forward+backward floor: 1.5 for one pass (twice that
    for a CAM that also backpropagates to the input, like Guided Grad-CAM), 0.75 per SmoothGrad
    sample and 0.7 per integrated-gradients step, 10 for a capped Score-CAM."""
    import vizkit

    info = vizkit.get_method(method)
    kind = cost(method)
    if kind == "cheap":
        names = {p.name for p in info.params}
        return 3.0 if info.family == "cam" and "channels" in names else 1.5
    if kind == "averaging":
        defaults = info.defaults()
        if "samples" in defaults:
            return 0.75 * defaults["samples"]
        return 0.7 * defaults["steps"]
    return 10.0 if kind == "capped" else None


def rule_method() -> str:
    """The first method that backpropagates under a modified ReLU rule (guided backprop)."""
    import vizkit

    return next(
        m for m in methods_where("cheap") if getattr(vizkit.get_method(m).cls, "rule", None)
    )


def methods_where(*costs: str) -> list[str]:
    import vizkit

    return [m for m in vizkit.available_methods() if cost(m) in costs]


def first_of(family: str, kind: str = "cheap") -> str:
    """The first registered method of a family with that cost (saliency, Grad-CAM, ...)."""
    import vizkit

    return next(
        m
        for m in vizkit.available_methods()
        if vizkit.get_method(m).family == family and cost(m) == kind
    )


# --------------------------------------------------------------------------------------------
# Fixed models
# --------------------------------------------------------------------------------------------
def digits_cnn() -> Any:
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            L.Conv2D(32, 5, activation="relu"),
            L.Conv2D(64, 5, activation="relu"),
            L.MaxPooling2D(2),
            L.Flatten(),
            L.Dense(128, activation="relu"),
            L.Dense(10, activation="softmax"),
        ],
        name="digits_cnn",
    )


def shapes_vgg() -> Any:
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    L = keras.layers

    def conv(filters: int) -> list:
        return [L.Conv2D(filters, 3, padding="same"), L.BatchNormalization(), L.ReLU()]

    return keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            *conv(32),
            L.MaxPooling2D(),
            *conv(64),
            *conv(64),
            L.MaxPooling2D(),
            *conv(128),
            *conv(128),
            *conv(128),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(512, activation="relu"),
            L.Dropout(0.5),
            L.Dense(3, activation="softmax"),
        ],
        name="shapes_vgg",
    )


def mobilenet_v2() -> Any:
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)


def imagenet_lite0() -> Any:
    """The ``imagenet_lite0`` sample's architecture (EfficientNet-Lite0, 1000 classes), seeded:
    speed does not depend on the converted weights, so no build is needed."""
    from sample_models.efficientnet_lite import efficientnet_lite0
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    return efficientnet_lite0(name="imagenet_lite0")


# --------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------
def median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floor_fn(model: Any) -> Callable[[np.ndarray], Any]:
    from vizkit._tf import tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)

    @tf.function(input_signature=[spec])
    def forward_backward(x: Any) -> Any:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            score = tf.reduce_sum(model(x, training=False)[:, 0])
        return tape.gradient(score, x)

    return lambda x: forward_backward(tf.constant(x)).numpy()


def forward_fn(model: Any) -> Callable[[np.ndarray], Any]:
    from vizkit._tf import tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)

    @tf.function(input_signature=[spec])
    def forward(x: Any) -> Any:
        return model(x, training=False)

    return lambda x: forward(tf.constant(x)).numpy()


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------
def paired(floors: dict[str, Callable[[], Any]], fn: Callable[[], Any], repeats: int) -> dict:
    """Time ``fn`` and the floors alternately, so all see the same background load.

    Wall-clock and process CPU time are both recorded: on a shared machine the CPU time of this
    process (all of TensorFlow's threads) is far steadier than wall time. Ratios are medians
    over medians.
    """
    wall: dict[str, list[float]] = {"method": [], **{k: [] for k in floors}}
    cpu: dict[str, list[float]] = {"method": [], **{k: [] for k in floors}}

    def clock(name: str, f: Callable[[], Any]) -> None:
        w, c = time.perf_counter(), time.process_time()
        f()
        wall[name].append(time.perf_counter() - w)
        cpu[name].append(time.process_time() - c)

    for _ in range(repeats):
        for name, floor in floors.items():
            clock(name, floor)
        clock("method", fn)
    med = statistics.median
    out = {"warm_s": med(wall["method"]), "cpu_s": med(cpu["method"])}
    for name in floors:
        out[f"ratio_{name}"] = med(wall["method"]) / med(wall[name])
        out[f"cpu_ratio_{name}"] = med(cpu["method"]) / med(cpu[name])
    return out


def train_floor_fn(model: Any) -> Callable[[np.ndarray], Any]:
    """The model's training-style forward+backward: gradients for every weight and the input."""
    from vizkit._tf import tf

    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32)
    weights = model.trainable_variables

    @tf.function(input_signature=[spec])
    def forward_backward(x: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.reduce_sum(model(x, training=False)[:, 0])
        return tape.gradient(score, [x, *weights])

    return lambda x: [g.numpy() for g in forward_backward(tf.constant(x))]


def bench_model(
    name: str, build: Callable[[], Any], n: int, methods: list[str], repeats: int, quick: bool
) -> dict[str, Any]:
    import vizkit

    model = build()
    rng = np.random.default_rng(0)
    x = rng.random((n, *model.inputs[0].shape[1:]), dtype=np.float32)
    floor, train = floor_fn(model), train_floor_fn(model)
    floor(x)
    train(x)
    floors = {"floor": lambda: floor(x), "train": lambda: train(x)}
    base = paired(floors, lambda: floor(x), max(repeats, 5))
    floor_s = base["warm_s"]
    rows: dict[str, Any] = {
        "floor_s": floor_s,
        "train_floor_s": floor_s / base["ratio_train"],
        "images": n,
        "methods": {},
    }
    for method in methods:
        cold = float("nan")
        if not quick:
            cold_model = build()  # a fresh model object: nothing cached
            start = time.perf_counter()
            vizkit.explain(cold_model, x, method)
            cold = time.perf_counter() - start
            del cold_model
        vizkit.explain(model, x[:1], method)  # trace on the shared model
        heavy = cost(method) in ("averaging", "per-channel", "per-patch")
        reps = 3 if heavy else repeats
        timing = paired(floors, lambda m=method: vizkit.explain(model, x, m), reps)
        rows["methods"][method] = {**timing, "cold_s": cold, "target": target(method)}
        gc.collect()
    return {"model": name, "model_obj": model, "x": x, **rows}


def sweep_methods() -> list[str]:
    """The batch-size rows: the vanilla gradient, and every averaging method."""
    return [first_of("gradient"), *methods_where("averaging")]


def bench_batches(model: Any, sizes: tuple[int, ...], repeats: int) -> dict[int, dict[str, Any]]:
    """Saliency and the averaging methods (SmoothGrad, IG) on small batches, each against the
    floors on that batch.

    Runs on the model of :func:`bench_model` (functions already traced). Saliency gets one
    untimed call per batch size first (new shapes' kernels); for the averaging methods, whose
    calls are long, that first call is one of the timed runs and the median leaves it out.
    """
    import vizkit

    rng = np.random.default_rng(1)
    images = rng.random((max(sizes), *model.inputs[0].shape[1:]), dtype=np.float32)
    floor, train = floor_fn(model), train_floor_fn(model)
    out: dict[int, dict[str, Any]] = {}
    for n in sizes:
        x = images[:n]
        floor(x)
        train(x)
        floors = {"floor": lambda x=x: floor(x), "train": lambda x=x: train(x)}
        rows = {}
        for method in sweep_methods():
            averaging = cost(method) == "averaging"
            if not averaging:
                vizkit.explain(model, x, method)
            reps = repeats if averaging else max(repeats, 7)
            timing = paired(floors, lambda m=method, x=x: vizkit.explain(model, x, m), reps)
            rows[method] = {**timing, "target": target(method)}
        out[n] = rows
        gc.collect()
    return out


def bench_chunks(model: Any, x: np.ndarray, sizes: tuple[int, ...], repeats: int) -> dict[int, Any]:
    """SmoothGrad (its default samples) on one batch at several ``batch_size`` values,
    interleaved (the first averaging method with a ``samples`` parameter)."""
    import vizkit

    method = next(
        m for m in methods_where("averaging") if "samples" in vizkit.get_method(m).defaults()
    )
    floor = floor_fn(model)
    floor(x)
    calls = {"floor": lambda: floor(x)}
    for size in sizes:
        calls[size] = lambda size=size: vizkit.explain(model, x, method, batch_size=size)
    cpu: dict[Any, list[float]] = {k: [] for k in calls}
    for f in calls.values():
        f()
    for _ in range(repeats):
        for key, f in calls.items():
            start = time.process_time()
            f()
            cpu[key].append(time.process_time() - start)
    med = statistics.median
    return {size: med(cpu[size]) / med(cpu["floor"]) for size in sizes}


def bench_occlusion(model: Any, x: np.ndarray, quick: bool) -> dict[str, Any]:
    """Occlusion against the forward passes it needs, and against a predict-per-image loop."""
    from vizkit.methods.occlusion import Occlusion, patch_starts

    method = Occlusion(model)
    patch, stride = method.params["patch_size"], method.params["stride"]
    height, width = x.shape[1:3]
    positions = len(patch_starts(height, patch, stride)) * len(patch_starts(width, patch, stride))
    occluded = np.repeat(x, positions, axis=0)  # same count and size as the occluded images
    forward = forward_fn(model)
    batch = method.forward_batch_size  # the same passes occlusion makes

    def all_forward() -> None:
        for s in range(0, len(occluded), batch):
            forward(occluded[s : s + batch])

    all_forward()
    method.explain(x)
    timing = paired({"forward": all_forward}, lambda: method.explain(x), 3)
    occ_s = timing["warm_s"]
    forward_s = occ_s / timing["ratio_forward"]
    model.predict(x[:1], verbose=0)
    sample = 10 if quick else 40
    per_call = []
    for image in occluded[:sample]:  # the naive loop, on a sample of the occluded images
        start = time.perf_counter()
        model.predict(image[None], verbose=0)
        per_call.append(time.perf_counter() - start)
    loop_s = statistics.median(per_call) * len(occluded)
    return {
        "occluded_images": int(len(occluded)),
        "forward_all_s": forward_s,
        "occlusion_s": occ_s,
        "ratio_to_forward_all": timing["ratio_forward"],
        "cpu_ratio_to_forward_all": timing["cpu_ratio_forward"],
        "predict_loop_estimate_s": loop_s,
        "speedup_vs_predict_loop": loop_s / occ_s,
    }


def bench_scorecam(model: Any, x: np.ndarray) -> dict[str, Any]:
    import vizkit
    from vizkit.layers import default_layer
    from vizkit.models import get_layer, layer_output_shape

    channels = int(layer_output_shape(get_layer(model, default_layer(model))[1])[-1])
    masked = np.repeat(x, channels, axis=0)
    forward = forward_fn(model)

    def all_forward() -> None:
        for s in range(0, len(masked), 64):
            forward(masked[s : s + 64])

    all_forward()
    (method,) = methods_where("per-channel")
    vizkit.explain(model, x, method)
    timing = paired({"forward": all_forward}, lambda: vizkit.explain(model, x, method), 2)
    return {
        "masked_images": int(len(masked)),
        "scorecam_s": timing["warm_s"],
        "ratio_to_forward_all": timing["ratio_forward"],
        "cpu_ratio_to_forward_all": timing["cpu_ratio_forward"],
    }


def bench_tfkv(model: Any, x: np.ndarray) -> dict[str, Any]:
    """tf-keras-vis for context, through vizkit's adapter (on vizkit's prepared model)."""
    import vizkit

    floor = floor_fn(model)
    floor(x)
    out: dict[str, Any] = {}
    for method in (first_of("gradient"), first_of("cam")):
        vizkit.explain(model, x, method, engine="tf-keras-vis")
        timing = paired(
            {"floor": lambda: floor(x)},
            lambda m=method: vizkit.explain(model, x, m, engine="tf-keras-vis"),
            3,
        )
        out[f"{method} (tf-keras-vis engine)"] = {
            "ratio": timing["ratio_floor"],
            "cpu_ratio": timing["cpu_ratio_floor"],
        }
    return out


def bench_repeated(model: Any, x: np.ndarray, calls: int) -> dict[str, Any]:
    """The dashboard's pattern: many calls on one model; traces and memory must stay flat."""
    import vizkit
    from vizkit.models import model_cache

    gradient, cam = first_of("gradient"), first_of("cam")
    for method in (gradient, cam):
        vizkit.explain(model, x[:2], method)
    cache = model_cache(model)
    functions = [v for v in cache.values() if hasattr(v, "experimental_get_tracing_count")]
    traces = sum(f.experimental_get_tracing_count() for f in functions)
    entries = len(cache)
    for _ in range(20):
        vizkit.explain(model, x[:2], gradient)
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    for i in range(calls):
        vizkit.explain(model, x[: 1 + i % 2], gradient if i % 2 else cam)
    seconds = time.perf_counter() - start
    gc.collect()
    after = rss_mb()
    return {
        "calls": calls,
        "seconds": seconds,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "rss_growth_mb": after - before,
        "new_traces": sum(f.experimental_get_tracing_count() for f in functions) - traces,
        "new_cache_entries": len(cache) - entries,
    }


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def plan(quick: bool) -> list[tuple[str, Callable[[], Any], int, list[str], int, tuple[int, ...]]]:
    """(name, builder, images, methods, repeats, extra batch sizes for the batch-size rows)."""
    main = methods_where("cheap", "averaging", "capped", "per-patch")  # Score-CAM: own row
    if quick:
        quick_vgg = [first_of("gradient"), rule_method(), first_of("cam")]
        return [
            ("digits_cnn", digits_cnn, 8, main, 3, (1, 4)),
            ("shapes_vgg", shapes_vgg, 4, quick_vgg, 3, ()),
        ]
    return [
        ("digits_cnn", digits_cnn, 16, main, 7, (1, 4)),
        ("shapes_vgg", shapes_vgg, 8, main, 5, (1, 4)),
        ("mobilenet_v2", mobilenet_v2, 2, methods_where("cheap", "averaging", "capped"), 3, (1, 4)),
        (
            "imagenet_lite0",
            imagenet_lite0,
            2,
            methods_where("cheap", "averaging", "capped"),
            3,
            (1, 4),
        ),
    ]


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['model']}: {result['images']} images; forward+backward floor (input gradient) "
        f"{result['floor_s'] * 1000:.1f} ms; training-style floor (input + weight gradients) "
        f"{result['train_floor_s'] * 1000:.1f} ms",
        f"  {'method':<22}{'warm ms':>9}{'x floor':>9}{'cpu x':>8}{'cpu x trn':>10}"
        f"{'target':>8}{'cold ms':>9}",
    ]
    for method, row in result["methods"].items():
        target = f"<={row['target']:g}" if row["target"] else "-"
        flag = ""
        if row["target"] and row["cpu_ratio_floor"] > row["target"]:
            flag = "  over (strict floor)"
            if row["cpu_ratio_train"] > row["target"]:
                flag = "  OVER"
        lines.append(
            f"  {method:<22}{row['warm_s'] * 1000:>9.1f}{row['ratio_floor']:>9.2f}"
            f"{row['cpu_ratio_floor']:>8.2f}{row['cpu_ratio_train']:>10.2f}{target:>8}"
            f"{row['cold_s'] * 1000:>9.0f}{flag}"
        )
    return lines


def batch_table(name: str, n: int, sweep: dict[int, dict[str, Any]]) -> list[str]:
    """One line per method: CPU ratio to the floor on each batch size (fixed batch included)."""
    sizes = sorted(sweep)
    lines = [
        f"{name}: cpu x floor by batch size (each against the floor on that batch; "
        f"{n} = the table above)",
        f"  {'method':<22}" + "".join(f"{f'{k} img':>10}" for k in sizes) + f"{'target':>8}",
    ]
    for method in sweep_methods():
        rows = [sweep[k].get(method) for k in sizes]
        if any(r is None for r in rows):
            continue
        target = rows[0]["target"]
        cells = ""
        for r in rows:
            mark = "*" if target and r["cpu_ratio_floor"] > target else " "
            cells += f"{r['cpu_ratio_floor']:>9.2f}{mark}"
        lines.append(f"  {method:<22}{cells}{f'<={target:g}' if target else '-':>8}")
    lines.append("  (* = over the budget on that batch)")
    return lines


def run(report: Any) -> Any:
    quick = bool(getattr(report, "quick", False))
    results: dict[str, Any] = {}
    lines: list[str] = []
    shapes = None
    for name, build, n, methods, repeats, sizes in plan(quick):
        start = time.perf_counter()
        result = bench_model(name, build, n, methods, repeats, quick)
        lines += table(result)
        if sizes:
            sweep = bench_batches(result["model_obj"], sizes, 3)
            result["batches"] = {k: sweep[k] for k in sizes}
            here = {m: result["methods"][m] for m in sweep_methods() if m in result["methods"]}
            lines += batch_table(name, n, {**sweep, n: here})
        if not quick and name == "digits_cnn":
            chunks = bench_chunks(result["model_obj"], result["x"], (16, 32, 64, 128), 5)
            result["smoothgrad_by_batch_size"] = chunks
            lines.append(
                f"{name}: smoothgrad on {n} images, cpu x floor by batch_size (noisy copies "
                "per pass): " + ", ".join(f"{k}: {v:.2f}" for k, v in chunks.items())
            )
        result["seconds"] = time.perf_counter() - start
        lines.append(f"({name}: {result['seconds']:.0f} s)")
        if name == "shapes_vgg":
            shapes = result
        results[name] = {k: v for k, v in result.items() if k not in ("model_obj", "x")}
    if shapes is not None:
        model, x = shapes["model_obj"], shapes["x"]
        occ = bench_occlusion(model, x, quick)
        results["occlusion_shapes_vgg"] = occ
        lines.append(
            f"occlusion (shapes_vgg, {occ['occluded_images']} occluded images): "
            f"{occ['ratio_to_forward_all']:.2f}x one batched forward pass over them "
            f"(cpu {occ['cpu_ratio_to_forward_all']:.2f}x; target <=1.2); {occ['speedup_vs_predict_loop']:.0f}x faster than a "
            f"model.predict loop (target >=50)"
        )
        if not quick:
            ctx = bench_tfkv(model, x)
            results["tf_keras_vis_shapes_vgg"] = ctx
            lines += [
                f"context: {k} {v['ratio']:.2f}x floor (cpu {v['cpu_ratio']:.2f}x)"
                for k, v in ctx.items()
            ]
        if not quick:
            sc = bench_scorecam(model, x[:2])
            results["scorecam_shapes_vgg"] = sc
            lines.append(
                f"scorecam (shapes_vgg, 2 images, {sc['masked_images']} masked images): "
                f"{sc['ratio_to_forward_all']:.2f}x the batched forward passes over them "
                f"(cpu {sc['cpu_ratio_to_forward_all']:.2f}x)"
            )
        rep = bench_repeated(model, x, 100 if quick else 500)
        results["repeated_calls"] = rep
        lines.append(
            f"repeated calls: {rep['calls']} calls in {rep['seconds']:.1f} s, RSS "
            f"{rep['rss_before_mb']:.0f} -> {rep['rss_after_mb']:.0f} MB "
            f"({rep['rss_growth_mb']:+.1f} MB), new traces {rep['new_traces']}, new cache "
            f"entries {rep['new_cache_entries']}"
        )
    return report.add("attribution", results, lines)


if __name__ == "__main__":
    from bench.__main__ import Report

    run(Report())
