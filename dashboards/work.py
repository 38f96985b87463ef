"""The pages' computations: vizkit calls run as jobs in the compute worker, keyed by content.

Every function names its work completely in a key (model key, images key, method, parameters)
and tags it with the context's model and image keys, so results are shared between sessions that
hold the same inputs and forgotten with the session that uploaded them. Quick calls (filters,
feature maps, predictions) and long ones (attribution maps, activation maximization, searches,
evaluation) go the same way; long ones show a progress bar while the page waits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dashboards import caches, jobs
from dashboards.context import Context
from dashboards.settings import settings
from vizkit.errors import InputError

HIDDEN_PARAMS = ("batch_size",)  # a memory knob, not a modelling choice
DEFAULT_ATTRIBUTION = ("gradcam",)  # the Attribution page's first methods (traced at start)
WARM_LAYERS = 3  # layers of the layer picker traced ahead, after the one shown
PERTURBATION = "perturbation"  # the registry family the perturbation page shows
QUICK_SECONDS = 300.0


def _run(
    ctx: Context,
    key: str,
    label: str,
    function: str,
    *args: Any,
    quick: bool = False,
    **kwargs: Any,
) -> Any:
    seconds = settings().job_seconds
    seconds = min(seconds, QUICK_SECONDS) if quick else seconds
    compute = caches.workers().compute

    def start(job: jobs.Job) -> Any:
        return compute.submit(
            function, *args, timeout=seconds, progress=job.report, label=label.rstrip("."), **kwargs
        )

    return jobs.run(caches.jobs(), key, label, start, tags=ctx.tags)


def finished(key: str) -> Any | None:
    return jobs.finished(caches.jobs(), key)


def running(key: str) -> bool:
    return jobs.running(caches.jobs(), key)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
def input_geometry(ctx: Context) -> tuple[tuple[int, int] | None, int | None]:
    """The model's ``(height, width)`` and channels (None where the model takes any)."""
    shape = ctx.facts.input_shape or (None, None, None, None)
    height, width, channels = shape[1:4]
    size = (int(height), int(width)) if height and width else None
    return size, (int(channels) if channels else None)


def converted(ctx: Context, sample: str, batch: Any) -> Any:
    """Sample ``sample``'s images converted to this model's input (in the compute worker), on
    the input scale and with the aspect-ratio handling the sidebar chose."""
    size, channels = input_geometry(ctx)
    spec = ctx.spec
    key = jobs.make_key("convert", ctx.key, sample, spec.label, spec.value_range, ctx.resize)
    return _run(
        ctx,
        key,
        "Converting the images...",
        "convert_images",
        batch,
        size,
        channels,
        spec,
        ctx.resize,
        sample == ctx.sample,
        quick=True,
    )


def decoded(ctx: Context, files: Sequence[tuple[str, str, bytes]]) -> list[Any]:
    """Uploaded image files (name, digest, bytes) decoded in the images worker: batch or refusal."""
    size, channels = input_geometry(ctx)
    return caches.workers().images.call(
        "decode_images",
        [(name, data) for name, _, data in files],
        size,
        channels,
        ctx.spec,
        ctx.resize,
        timeout=min(settings().job_seconds, QUICK_SECONDS),
        label="Reading the images",
    )


# --------------------------------------------------------------------------------------------
# Quick results
# --------------------------------------------------------------------------------------------
def predictions(ctx: Context) -> np.ndarray:
    """Class probabilities ``(N, K)`` of the selected images: the one place pages predict."""
    key = jobs.make_key("predict", ctx.key, ctx.images_key)
    return _run(ctx, key, "Predicting...", "predictions", ctx.ref, ctx.images, quick=True)


def input_findings(ctx: Context) -> list[str]:
    """vizkit's sanity findings on the selected images (wrong input scale, one class for
    everything, near-uniform probabilities), one line each."""
    key = jobs.make_key("findings", ctx.key, ctx.images_key, ctx.class_names)
    return _run(
        ctx,
        key,
        "Checking the inputs...",
        "input_findings",
        ctx.ref,
        ctx.images,
        ctx.class_names,
        quick=True,
    )


def top_classes(probs: np.ndarray, k: int = 3) -> list[list[tuple[int, float]]]:
    """Per image, the ``k`` most probable ``(class, probability)`` pairs."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(int(c), float(probs[i, c])) for c in row] for i, row in enumerate(order)]


def conv_filters(ctx: Context, layer: str, order: str, max_filters: int) -> Any:
    key = jobs.make_key("filters", ctx.key, layer, order, max_filters)
    return _run(
        ctx,
        key,
        "Reading the filters...",
        "conv_filters",
        ctx.ref,
        layer,
        order,
        max_filters,
        quick=True,
    )


def feature_maps(ctx: Context, layer: str) -> Any:
    key = jobs.make_key("maps", ctx.key, ctx.images_key, layer)
    return _run(
        ctx,
        key,
        "Computing feature maps...",
        "feature_maps",
        ctx.ref,
        ctx.images,
        layer,
        quick=True,
    )


def layer_channels(ctx: Context, layer: str) -> int:
    """Channels (or units) of a layer's output, from the model summary."""
    shape = ctx.facts.summary[layer].output_shape
    if not shape or shape[-1] is None:
        raise InputError(f"the output size of layer {layer!r} is unknown")
    return int(shape[-1])


def recipe_defaults(ctx: Context) -> dict[str, Any]:
    """The activation-maximization recipe vizkit picks for this model's input size."""
    shape = ctx.facts.input_shape
    key = jobs.make_key("recipe", shape)
    return _run(ctx, key, "Reading the recipe...", "recipe_defaults", shape, quick=True)


# --------------------------------------------------------------------------------------------
# Attribution
# --------------------------------------------------------------------------------------------
def method_info(method: str) -> Any:
    """The registry's :class:`vizkit.registry.MethodInfo` of ``method`` (read in the worker)."""
    found = caches.method_facts().get(method)
    if found is None:
        raise InputError(f"unknown method {method!r}: choose one of {', '.join(method_names())}")
    return found


def method_names() -> list[str]:
    """Every registered method, in the registry's order."""
    return list(caches.method_facts())


def default_params(method: str) -> dict[str, Any]:
    """A method's defaults as the parameter widgets pass them (so cached maps are shared)."""
    info = method_info(method)
    return {p.name: p.default for p in info.params if p.name not in HIDDEN_PARAMS}


def size_limits(ctx: Context, info: Any) -> dict[str, int]:
    """Integer parameters whose registry help says they are in pixels (patch sizes, strides),
    capped below the images' shorter side (a patch as large as the image hides everything)."""
    side = int(min(ctx.images.shape[1:3])) if ctx.images is not None else None
    if not side:
        return {}
    return {
        p.name: max(1, side - 1) for p in info.params if p.type is int and "pixel" in p.help.lower()
    }


def resolve_target(ctx: Context, target: Any) -> Any:
    if target == "predicted":
        return None
    if target == "true":
        if ctx.images is None or ctx.images.labels is None:
            raise InputError("these images have no true labels: choose another target class")
        return [int(v) for v in ctx.images.labels]
    return int(target)


def explain(
    ctx: Context, method: str, target: Any, layer: str | None, params: dict[str, Any]
) -> Any:
    """One method's Explanation of the selected images (a cached job)."""
    info = method_info(method)
    layer = layer if info.needs_layer else None
    key = jobs.make_key(
        "explain", ctx.key, ctx.images_key, method, target, layer, sorted(params.items())
    )
    return _run(
        ctx,
        key,
        f"Computing {info.label}...",
        "explain",
        ctx.ref,
        ctx.images,
        method,
        resolve_target(ctx, target),
        layer,
        params,
        ctx.class_names,
    )


def one_pass(method: str, params: dict[str, Any]) -> bool:
    """``method`` with ``params`` computes every layer in one pass (:mod:`dashboards.sweeps`)."""
    from dashboards.sweeps import one_pass as rule

    return rule(method_info(method), params)


def explain_layers(ctx: Context, method: str, target: Any, params: dict[str, Any]) -> Any:
    """``method`` at every candidate layer of the selected images (a cached job)."""
    info = method_info(method)
    key = jobs.make_key(
        "explain_layers", ctx.key, ctx.images_key, method, target, sorted(params.items())
    )
    return _run(
        ctx,
        key,
        f"Computing {info.label} at every layer...",
        "explain_layers",
        ctx.ref,
        ctx.images,
        method,
        resolve_target(ctx, target),
        params,
        ctx.class_names,
    )


def compare(explanations: Sequence[Any]) -> Any:
    """``vizkit.compare``: the explanations side by side (the result type itself, as
    ``vizkit.compare`` lives with the methods, which import TensorFlow)."""
    from vizkit.results.explanation import Comparison

    return Comparison(tuple(explanations))


def warm(
    warmer: Any,
    facts: Any,
    spec: str,
    methods: Sequence[str],
    layer: str | None,
    count: int = WARM_LAYERS,
    one_pass: Sequence[str] = (),
) -> None:
    """Trace ``methods`` ahead of time.

    With ``layer`` None (the model just opened): each method on the model's first candidate
    layer, then its every-layer graph (:func:`vizkit.explain_layers`; the worker skips methods
    that have none). With a ``layer``: the every-layer graph of the ``one_pass`` methods, and
    the other methods on the next ``count`` candidate layers after ``layer`` (the ones a user
    tries next).
    """
    from dashboards.compute import ModelRef

    shape = facts.input_shape
    if not facts.candidates or not shape or None in shape[1:]:
        return
    paths = [c.path for c in facts.candidates]
    ref = ModelRef(facts.key, spec)
    if layer is None:
        for method in methods:
            warmer.want(("warm", facts.key, method, paths[0]), "warm_method", ref, method, paths[0])
        for method in methods:
            warmer.want(("sweep", facts.key, method), "warm_sweep", ref, method)
        return
    at = paths.index(layer) + 1 if layer in paths else 0
    wanted = [p for p in paths[at:] + paths[:at] if p != layer][:count]
    for method in methods:
        if method in one_pass:
            warmer.want(("sweep", facts.key, method), "warm_sweep", ref, method)
            continue
        for path in wanted:
            warmer.want(("warm", facts.key, method, path), "warm_method", ref, method, path)


def warm_layers(ctx: Context, methods: Sequence[str], layer: str | None) -> None:
    """Trace what the layer picker's other layers need for ``methods`` while the worker is
    idle: the every-layer graph of one-pass CAMs, the next layers of the others."""
    wanted = [m for m in methods if method_info(m).needs_layer]
    one_pass_methods = [m for m in wanted if method_info(m).one_pass_layers]
    if wanted and layer is not None:
        warm(caches.warmer(), ctx.facts, ctx.ref.spec, wanted, layer, one_pass=one_pass_methods)


def maps_arrays(explanations: Sequence[Any]) -> dict[str, np.ndarray]:
    """What the NPZ download holds: inputs, targets and each method's raw maps."""
    first = explanations[0]
    arrays = {"inputs": first.inputs, "targets": first.targets}
    for e in explanations:
        arrays[e.method] = e.maps
    return arrays


# --------------------------------------------------------------------------------------------
# Units and activation maximization
# --------------------------------------------------------------------------------------------
def activation_key(
    ctx: Context,
    layer: str | None,
    units: Sequence[int],
    objective: str,
    params: dict[str, Any],
    seed: int = 0,
) -> str:
    return jobs.make_key(
        "actmax",
        ctx.key,
        layer,
        tuple(units),
        objective,
        sorted(params.items()),
        seed,
        ctx.spec.value_range,
    )


def maximize(
    ctx: Context,
    layer: str | None,
    units: Sequence[int],
    objective: str,
    params: dict[str, Any],
    *,
    seed: int = 0,
) -> Any:
    """Activation-maximization images (a cached job with a progress bar)."""
    what = "classes" if layer is None else f"{layer} channels"
    return _run(
        ctx,
        activation_key(ctx, layer, units, objective, params, seed),
        f"Optimizing images for {what} {list(units)}...",
        "maximize",
        ctx.ref,
        layer,
        list(units),
        objective,
        params,
        seed,
        ctx.spec.value_range,
        ctx.class_names,
    )


def top_activations(
    ctx: Context, layer: str, units: Sequence[int], k: int, reduce: str = "max"
) -> Any:
    """The image-set examples that excite ``units`` most (a cached job)."""
    if ctx.pool is None:
        raise InputError("choose sample images or upload images in the sidebar to search")
    key = jobs.make_key("top", ctx.key, ctx.pool_key, layer, tuple(units), k, reduce)
    return _run(
        ctx,
        key,
        f"Searching {len(ctx.pool)} images...",
        "top_activations",
        ctx.ref,
        layer,
        list(units),
        ctx.pool,
        k,
        reduce,
    )


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def metric_names(has_masks: bool) -> tuple[list[str], list[str]]:
    """(offered, default) metric names; localization needs masks, data randomization a train set."""
    from vizkit import metrics

    offered = [m for m in metrics.METRICS if m != "data_randomization"]
    if not has_masks:
        offered = [m for m in offered if m not in ("pointing_game", "relevance_mass")]
    return offered, [m for m in metrics.DEFAULT_METRICS if m in offered]


def evaluation(
    ctx: Context,
    explanations: Sequence[Any],
    metrics: Sequence[str],
    target: Any,
    options: dict[str, Any],
) -> Any:
    """The methods x metrics evaluation of already-computed maps (a cached job)."""
    signature = [
        (e.method, e.layer, sorted((k, repr(v)) for k, v in e.params.items())) for e in explanations
    ]
    key = jobs.make_key(
        "eval", ctx.key, ctx.images_key, signature, tuple(metrics), target, sorted(options.items())
    )
    methods = {e.method: e for e in explanations}
    return _run(
        ctx,
        key,
        f"Evaluating {len(methods)} method(s) on {len(metrics)} metric(s)...",
        "evaluation",
        ctx.ref,
        ctx.images,
        methods,
        list(metrics),
        resolve_target(ctx, target),
        options,
    )


def registry_methods(keep: Callable[[Any], bool] = lambda info: True) -> list[str]:
    """Registered method names whose :class:`vizkit.registry.MethodInfo` passes ``keep``."""
    return [m for m, info in caches.method_facts().items() if keep(info)]


def perturbation_title() -> str:
    """The perturbation page's title: the labels of the registry's perturbation methods."""
    labels = [method_info(m).label for m in registry_methods(lambda i: i.family == PERTURBATION)]
    return " / ".join(labels) or "Perturbation"
