"""The methods x metrics table: every method's maps computed once, every metric run on them."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.inputs import ImageBatch, as_batch, prepare_inputs
from vizkit.metrics._common import as_maps, is_explanation, masks_of
from vizkit.metrics.faithfulness import deletion, insertion
from vizkit.metrics.health import map_health
from vizkit.metrics.localization import boxes_to_masks, pointing_game, relevance_mass
from vizkit.metrics.sanity import cascading_randomization, data_randomization, predicted_targets
from vizkit.progress import Progress, ProgressArg
from vizkit.results.metrics import EvaluationResult

#: Metric names :func:`evaluate` accepts, in table order.
METRICS = (
    "deletion",
    "insertion",
    "pointing_game",
    "relevance_mass",
    "map_health",
    "cascading_randomization",
    "data_randomization",
)
#: Run when ``metrics=None``: the cheap ones; localization only where masks or boxes exist.
DEFAULT_METRICS = ("deletion", "insertion", "pointing_game", "relevance_mass", "map_health")
_LOCALIZATION = ("pointing_game", "relevance_mass")
_ALIASES = {"health": "map_health", "randomization_sanity": "cascading_randomization"}


def _metric_list(metrics: Sequence[str] | str | None, has_masks: bool, has_train: bool) -> list:
    if metrics is None:
        return [m for m in DEFAULT_METRICS if has_masks or m not in _LOCALIZATION]
    if isinstance(metrics, str):
        metrics = [metrics]
    chosen = []
    for metric in metrics:
        metric = _ALIASES.get(metric, metric)
        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}: choose from {', '.join(METRICS)}")
        if metric in _LOCALIZATION and not has_masks:
            raise InputError(
                f"metric {metric!r} needs ground truth: pass masks= or boxes=, or images that "
                "carry masks"
            )
        if metric == "data_randomization" and not has_train:
            raise InputError("metric 'data_randomization' needs train=(images, labels)")
        if metric not in chosen:
            chosen.append(metric)
    return chosen


def _method_specs(
    methods: Any, params: Mapping[str, Mapping[str, Any]] | None
) -> list[tuple[str, Any, dict[str, Any]]]:
    """``(name, how, params)``: ``how`` is a registered name, a function, or precomputed maps."""
    params = dict(params or {})
    if isinstance(methods, str):
        methods = [methods]
    if isinstance(methods, Mapping):
        items = list(methods.items())
    else:
        items = [
            (m, m) if isinstance(m, str) else (getattr(m, "__name__", "custom"), m) for m in methods
        ]
    if not items:
        raise InputError("no methods given: pass method names such as ['gradcam', 'occlusion']")
    specs = []
    for name, how in items:
        if isinstance(how, Mapping):  # {"gradcam": {"layer": "conv2"}}
            specs.append((str(name), str(name), {**params.get(name, {}), **dict(how)}))
        else:
            specs.append((str(name), how, dict(params.get(name, {}))))
    unknown = set(params) - {name for name, _, _ in specs}
    if unknown:
        raise InputError(f"params given for methods not evaluated: {', '.join(sorted(unknown))}")
    return specs


def _maps_for(
    model: Any, inputs: Any, x: np.ndarray, how: Any, targets: Any, params: dict[str, Any]
) -> Any:
    if isinstance(how, str):
        from vizkit.methods import explain

        return explain(model, inputs, method=how, targets=targets, **params)
    if callable(how):
        return how(model, x, targets)
    if is_explanation(how) or isinstance(how, np.ndarray):
        return how
    raise InputError(f"cannot get maps from a {type(how).__name__}: pass a method name")


def _rerunnable(name: str, how: Any, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """What the randomization checks re-explain with: a method name or function, and params.

    A precomputed Explanation is re-run through its own method name, parameters and layer.
    """
    if isinstance(how, str) or callable(how):
        return how, params
    method = getattr(how, "method", None) if is_explanation(how) else None
    if isinstance(method, str):
        from vizkit.registry import available_methods

        if method in available_methods():
            rerun_params = dict(getattr(how, "params", None) or {})
            layer = getattr(how, "layer", None)
            if layer is not None:
                rerun_params["layer"] = layer
            return method, {**rerun_params, **params}
    raise InputError(
        f"the randomization checks re-explain on randomized models: give method {name!r} as a "
        "registered name or a function, not precomputed maps"
    )


def run_evaluation(
    model: Any,
    inputs: Any,
    methods: Any = ("gradcam", "occlusion"),
    metrics: Sequence[str] | str | None = None,
    targets: Any = None,
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    masks: Any = None,
    boxes: Any = None,
    steps: int = 20,
    deletion_fill: Any = "mean",
    insertion_fill: Any = "blur",
    score: str = "probability",
    train: tuple[Any, Any] | None = None,
    epochs: int = 5,
    batch_size: int | None = None,
    seed: int = 0,
    progress: ProgressArg = None,
    value_range: tuple[float, float] | str | None = None,
    preprocess: str | Any = None,
) -> EvaluationResult:
    """Run every metric on every method's maps; see :func:`evaluate` for the parameters.

    Returns
    -------
    EvaluationResult
        ``.to_frame()`` the table, ``results[method][metric]`` each metric's result (curves to
        plot), ``.warnings`` per method, ``input_spec`` the input scale used. Sanity findings
        (:func:`vizkit.check_inputs`, flat curves included) are emitted as
        :class:`vizkit.VizkitWarning`.
    """
    from vizkit.checks import quiet

    inputs = prepare_inputs(inputs, model, value_range=value_range, preprocess=preprocess)
    with quiet():
        result, predictions = _evaluate(
            model, inputs, methods, metrics, targets, params=params, masks=masks, boxes=boxes,
            steps=steps, deletion_fill=deletion_fill, insertion_fill=insertion_fill, score=score,
            train=train, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress,
        )  # fmt: skip
    from vizkit.checks import check_inputs, warn_findings

    warn_findings(check_inputs(model, inputs, predictions, result))
    return result


def _evaluate(
    model: Any,
    inputs: Any,
    methods: Any,
    metrics: Sequence[str] | str | None,
    targets: Any,
    *,
    params: Mapping[str, Mapping[str, Any]] | None,
    masks: Any,
    boxes: Any,
    steps: int,
    deletion_fill: Any,
    insertion_fill: Any,
    score: str,
    train: tuple[Any, Any] | None,
    epochs: int,
    batch_size: int | None,
    seed: int,
    progress: ProgressArg,
) -> tuple[EvaluationResult, Any]:
    """The body of :func:`run_evaluation`, and the predictions of the first method's explanation
    (None when no method gave any)."""
    x = as_batch(inputs, model)
    data = inputs if isinstance(inputs, ImageBatch) else x  # keeps image names on results
    n, height, width = x.shape[:3]
    if masks is None and boxes is not None:
        masks = boxes_to_masks(boxes, n, (height, width))
    if masks is None:
        masks = masks_of(inputs)
    chosen = _metric_list(metrics, masks is not None, train is not None)
    specs = _method_specs(methods, params)
    targets = predicted_targets(model, x, targets)  # every method explains the same classes
    results: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    predictions = None
    bar = Progress(progress, len(specs) * (1 + len(chosen)), desc="evaluate", unit="step")
    for name, how, method_params in specs:
        bar.set_description(name)
        start = time.perf_counter()
        explanation = _maps_for(model, inputs, x, how, targets, method_params)
        seconds[name] = time.perf_counter() - start
        bar.advance()
        if predictions is None and is_explanation(explanation):
            predictions = explanation.predictions
        maps = as_maps(explanation, n=n, size=(height, width))
        found = getattr(explanation, "targets", None) if is_explanation(explanation) else None
        method_targets = targets if found is None else np.asarray(found)
        row: dict[str, Any] = {}
        for metric in chosen:
            row[metric] = _one_metric(
                metric, model, data, maps, method_targets, masks, explanation,
                name=name, how=how, method_params=method_params, steps=steps,
                deletion_fill=deletion_fill, insertion_fill=insertion_fill, score=score,
                batch_size=batch_size, seed=seed, train=train, epochs=epochs,
            )  # fmt: skip
            bar.advance()
        results[name] = row
    bar.close()  # an exception leaves it to tqdm's own clean-up
    return EvaluationResult(
        methods=tuple(name for name, _, _ in specs),
        metrics=tuple(chosen),
        results=results,
        seconds=seconds,
        input_spec=getattr(inputs, "input_spec", None),
    ), predictions


def _one_metric(
    metric: str,
    model: Any,
    data: Any,
    maps: np.ndarray,
    targets: np.ndarray,
    masks: Any,
    explanation: Any,
    *,
    name: str,
    how: Any,
    method_params: dict[str, Any],
    steps: int,
    deletion_fill: Any,
    insertion_fill: Any,
    score: str,
    batch_size: int | None,
    seed: int,
    train: tuple[Any, Any] | None,
    epochs: int,
) -> Any:
    """One metric's result for one method's maps (``name`` labels the result)."""
    if metric in ("deletion", "insertion"):
        curve, fill = (
            (deletion, deletion_fill) if metric == "deletion" else (insertion, insertion_fill)
        )
        return curve(
            model,
            data,
            maps,
            targets,
            steps=steps,
            fill=fill,
            score=score,
            batch_size=batch_size,
            seed=seed,
        ).replace(method=name)
    if metric == "pointing_game":
        return pointing_game(maps, masks, inputs=data).replace(method=name)
    if metric == "relevance_mass":
        return relevance_mass(maps, masks, inputs=data).replace(method=name)
    if metric == "map_health":
        return map_health(explanation, method=name)
    if metric in ("cascading_randomization", "data_randomization"):
        rerun, rerun_params = _rerunnable(name, how, method_params)
        if metric == "cascading_randomization":
            result = cascading_randomization(model, data, rerun, targets, seed=seed, **rerun_params)
        else:
            result = data_randomization(
                model,
                data,
                rerun,
                targets,
                train=train,
                epochs=epochs,
                seed=seed,
                **rerun_params,
            )
        return result.replace(method=name)
    raise ValueError(f"unknown metric {metric!r}")  # _metric_list lets none through


def evaluate(
    model: Any,
    inputs: Any,
    methods: Any = ("gradcam", "occlusion"),
    metrics: Sequence[str] | str | None = None,
    targets: Any = None,
    **options: Any,
) -> Any:
    """Methods x metrics table: how far to trust each method's maps on these images.

    Parameters
    ----------
    model : keras.Model
    inputs : ImageBatch, ndarray (N, H, W, C), paths or PIL images
        An ImageBatch with ``masks`` (the shapes sample data) enables the localization metrics.
    methods : sequence of str, or mapping
        Registered method names; a mapping ``{label: name-or-function-or-maps}`` or
        ``{name: {params}}`` also works. A function is called as ``fn(model, x, targets)``
        with ``x`` an array; precomputed maps (array or Explanation) are used as they are.
    metrics : sequence of str, optional
        From ``deletion, insertion, pointing_game, relevance_mass, map_health,
        cascading_randomization, data_randomization``. Default: deletion, insertion, map health,
        and the localization metrics when masks are known. The randomization checks re-explain
        once per layer (cascading) or retrain the model (data, needs ``train=``): ask for them.
    targets : int, sequence of int, or None
        None: each image's predicted class.
    params : mapping, optional
        Per-method hyperparameters, ``{"gradcam": {"layer": "conv2"}}``.
    masks : ndarray of bool (N, H, W), optional
    boxes : (N, 4) or per-image box lists, optional
        ``(x_min, y_min, x_max, y_max)``, max exclusive.
    steps : int
        Deletion/insertion steps.
    deletion_fill, insertion_fill
        Fills for deletion (default each image's mean colour) and the insertion canvas
        (default a blur of the image).
    score : {"probability", "logit"}
    train : (images, labels), optional
        For ``data_randomization``; ``epochs`` sets its training length.
    batch_size, seed
    progress : None, bool or callable
        Progress over methods and metrics (see :mod:`vizkit.progress`): None shows a bar in
        notebooks; a callable gets ``(done, total)``.
    value_range, preprocess : optional
        The input scale of images loaded here (paths, PIL images, uint8 arrays); see
        :func:`vizkit.load_images`. Default: what :func:`vizkit.input_spec` decides.

    Returns
    -------
    pandas.DataFrame
        Rows: methods; columns: ``deletion_auc`` (lower is better), ``deletion_random_auc``,
        ``insertion_auc`` (higher is better), ``insertion_random_auc``, ``pointing_game``,
        ``pointing_game_chance``, ``relevance_mass``, ``relevance_mass_chance``,
        ``unhealthy_maps``, ``randomization_spearman``, ``randomization_ssim``,
        ``randomization_flagged``, ... (see :data:`vizkit.results.metrics.COLUMNS`). For the
        result objects behind the table (curves to plot), use :func:`run_evaluation`.
    """
    return run_evaluation(model, inputs, methods, metrics, targets, **options).to_frame()
