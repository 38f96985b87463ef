"""The dashboard's model work, run inside :mod:`dashboards.worker` child processes.

Every function here takes picklable arguments (a :class:`ModelRef`, image batches, plain
options) and a ``progress(fraction, text)`` callback, and returns a picklable vizkit result. The
functions hold loaded models in a small per-process cache keyed like the dashboard's entries, so
the Streamlit server process never builds a model. Importing this module is cheap: vizkit is
imported inside the functions.

Everything goes through vizkit's public API, except :func:`describe` and :func:`predictions`,
which read model facts and class probabilities that the public API does not offer yet (see their
docstrings); they are the only places to change when it does.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dashboards.sweeps import LayerMaps

Progress = Callable[[float, str | None], None]
KEEP_MODELS = 3  # loaded models a worker keeps (least recently used first out)


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """Which model to use: the dashboard's key and what to load when the worker lacks it.

    ``spec`` is what :func:`vizkit.sources.resolve_model` takes: ``"sample:NAME"`` or a path.
    """

    key: str
    spec: str


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A layer the CAM methods can explain at (from ``vizkit.candidate_layers``), as the
    server keeps it: ``vizkit.layers.CandidateLayer`` lives in a module that imports
    TensorFlow, which the server process never loads."""

    path: str
    label: str


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What the pages need to know about a model, computed once when it is opened."""

    key: str
    name: str
    sample: str | None
    image_model: bool
    input_shape: tuple[int | None, ...] | None
    num_classes: int
    head_error: str | None
    spatial_layers: tuple[str, ...]
    conv_layers: tuple[str, ...]
    candidates: tuple[Candidate, ...]  # best first
    summary: Any  # vizkit.ModelSummary
    value_range: tuple[float, float] = (0.0, 1.0)
    class_names: tuple[str, ...] | None = None
    input_spec: Any = None  # vizkit.InputSpec: what vizkit.input_spec decided for the model


_MODELS: collections.OrderedDict[str, Any] = collections.OrderedDict()
_LAYER_MAPS = LayerMaps()
_LOCK = threading.Lock()
_LOADING: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)


def _no_progress(fraction: float, text: str | None = None) -> None:
    del fraction, text


# --------------------------------------------------------------------------------------------
# Process set-up
# --------------------------------------------------------------------------------------------
def warm(progress: Progress = _no_progress) -> None:
    """Import vizkit and TensorFlow (and load the method registry) before taking calls."""
    import vizkit

    vizkit.available_methods()


def method_facts(progress: Progress = _no_progress) -> tuple[Any, ...]:
    """The registry's :class:`vizkit.registry.MethodInfo` of every method, without the class.

    The server reads method facts from here: filling the registry imports the method modules
    and so TensorFlow, which the Streamlit server process never loads.
    """
    import vizkit

    return tuple(
        dataclasses.replace(vizkit.get_method(name), cls=None)
        for name in vizkit.available_methods()
    )


def recipe_defaults(
    input_shape: tuple[int | None, ...] | None, progress: Progress = _no_progress
) -> dict[str, Any]:
    """The activation-maximization recipe vizkit picks for an input shape."""
    import vizkit

    return vizkit.Recipe.for_input(input_shape).as_dict()


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
def _store(key: str, model: Any) -> None:
    with _LOCK:
        _MODELS[key] = model
        _MODELS.move_to_end(key)
        while len(_MODELS) > KEEP_MODELS:
            _LAYER_MAPS.forget(_MODELS.popitem(last=False)[1])


def _resolve(spec: str) -> Any:
    """vizkit's own ``sample:NAME`` / path resolver and safe loader (``trust`` never offered)."""
    from vizkit.sources import resolve_model

    return resolve_model(spec, trust=False)


def model(ref: ModelRef) -> Any:
    """The loaded model of ``ref`` (loaded now when this worker does not hold it)."""
    with _LOCK:
        found = _MODELS.get(ref.key)
        if found is not None:
            _MODELS.move_to_end(ref.key)
            return found
    with _LOADING[ref.key]:
        with _LOCK:
            found = _MODELS.get(ref.key)
        if found is None:
            found = _resolve(ref.spec).model
            _store(ref.key, found)
        return found


def forget(key: str, progress: Progress = _no_progress) -> None:
    """Drop a model from this worker (its session ended)."""
    with _LOCK:
        gone = _MODELS.pop(key, None)
    if gone is not None:
        _LAYER_MAPS.forget(gone)


def open_model(spec: str, progress: Progress = _no_progress) -> ModelFacts:
    """Load ``spec`` and describe it; the model is kept under its canonical key.

    The key is ``"sample:NAME"`` for sample models and ``"sha256:<hex>"`` (the file's content
    hash) for files, so the same file opened twice is loaded once.
    """
    resolved = _resolve(spec)
    key = f"sample:{resolved.sample}" if resolved.sample else f"sha256:{resolved.file_sha256}"
    _store(key, resolved.model)
    return describe(resolved.model, key, resolved.sample)


def describe(loaded: Any, key: str, sample: str | None) -> ModelFacts:
    """Facts about a model for the pickers (the rules are the library's own)."""
    import vizkit

    info = vizkit.model_info(loaded)
    spec = vizkit.input_spec(loaded) if info.image_model else None
    class_names = vizkit.model_class_names(loaded) if not info.head_error else None
    return ModelFacts(
        key=key,
        name=info.name,
        sample=sample,
        image_model=info.image_model,
        input_shape=info.input_shape,
        num_classes=info.num_classes,
        head_error=info.head_error,
        spatial_layers=info.spatial_layers,
        conv_layers=tuple(vizkit.conv_layers(loaded)),
        candidates=tuple(Candidate(c.path, c.label) for c in vizkit.candidate_layers(loaded))
        if info.image_model
        else (),
        summary=vizkit.summarize(loaded),
        value_range=spec.value_range if spec is not None else (0.0, 1.0),
        class_names=class_names,
        input_spec=spec,
    )


# --------------------------------------------------------------------------------------------
# Untrusted files (the sandbox and images workers)
# --------------------------------------------------------------------------------------------
def check_model(path: str, progress: Progress = _no_progress) -> tuple[int | None, ...] | None:
    """Check and load an uploaded model file, then run one blank image through it.

    Raises vizkit's one-line ``ModelFileError`` / ``UnsafeModelError`` for refused files; a file
    whose loading or first forward pass needs more memory than the worker may use ends the
    worker, which the caller reports. Returns the input shape of an image model.
    """
    import vizkit

    vizkit.check_model_file(path)
    progress(0.3, "Loading the model...")
    loaded = vizkit.load_model(path)
    facts = describe(loaded, "check", None)
    if facts.image_model and None not in facts.input_shape[1:]:
        progress(0.7, "Running one image through the model...")
        predictions(None, np.zeros((1, *facts.input_shape[1:]), np.float32), loaded=loaded)
    return facts.input_shape


def decode_images(
    files: Sequence[tuple[str, bytes]],
    size: tuple[int, int] | None,
    channels: int | None,
    spec: Any,
    resize: str = "stretch",
    progress: Progress = _no_progress,
) -> list[Any]:
    """Each uploaded file as a one-image ``ImageBatch``, or the one-line reason it was refused.

    ``spec`` is the input scale the sidebar chose (a ``vizkit.InputSpec``: detected or stated),
    ``resize`` how another aspect ratio is fitted; both are recorded on the batch.
    """
    import vizkit
    from vizkit.errors import VizkitError, one_line

    found: list[Any] = []
    for i, (name, data) in enumerate(files):
        progress(i / max(len(files), 1), f"Reading {name}...")
        try:
            batch = vizkit.load_images(
                data, size=size, channels=channels, preprocess=spec, resize=resize
            )
            found.append(dataclasses.replace(batch, names=(name,)))
        except VizkitError as err:
            message = one_line(str(err)).replace("image 'image 0'", "the image")
            found.append(message.replace("'image 0'", "the file"))
    return found


# --------------------------------------------------------------------------------------------
# Work on a model
# --------------------------------------------------------------------------------------------
def convert_images(
    batch: Any,
    size: tuple[int, int] | None,
    channels: int | None,
    spec: Any,
    resize: str = "stretch",
    keep_labels: bool = False,
    progress: Progress = _no_progress,
) -> Any:
    """Images converted to this input (size, channels, the chosen input scale ``spec``).

    ``keep_labels``: the model's own sample images on another scale keep their labels, masks
    and class names; another model's images lose them (their classes are not this model's).
    """
    import vizkit

    converted = vizkit.load_images(
        list(batch.originals), size=size, channels=channels, preprocess=spec, resize=resize
    )
    converted = dataclasses.replace(converted, names=batch.names)
    if keep_labels and converted.shape == batch.shape:
        converted = dataclasses.replace(
            converted, labels=batch.labels, masks=batch.masks, class_names=batch.class_names
        )
    return converted


def predictions(
    ref: ModelRef | None, images: Any, progress: Progress = _no_progress, *, loaded: Any = None
) -> np.ndarray:
    """Class probabilities ``(N, K)`` of the model's head (softmax of a logits head): the one
    place the dashboard predicts, through :func:`vizkit.predict` (its sanity warnings are shown
    by :func:`input_findings` instead)."""
    import warnings

    import vizkit

    loaded = loaded if loaded is not None else model(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vizkit.VizkitWarning)
        found = vizkit.predict(loaded, np.asarray(images, dtype=np.float32), k=1)
    return np.asarray(found.all_probabilities, dtype=np.float32)


def input_findings(
    ref: ModelRef, images: Any, class_names: Sequence[str] | None, progress: Progress = _no_progress
) -> list[str]:
    """vizkit's sanity findings on the selected images (``vizkit.check_inputs``), one line each:
    the same checks the API warns about."""
    import warnings

    import vizkit

    loaded = model(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", vizkit.VizkitWarning)  # returned, not warned
        predictions = vizkit.predict(loaded, images, class_names=class_names)
    return [f.message for f in vizkit.check_inputs(loaded, images, predictions)]


def conv_filters(
    ref: ModelRef, layer: str, order: str, max_filters: int, progress: Progress = _no_progress
) -> Any:
    import vizkit

    return vizkit.conv_filters(model(ref), layer, sort=order, max_filters=max_filters)


def feature_maps(ref: ModelRef, images: Any, layer: str, progress: Progress = _no_progress) -> Any:
    import vizkit

    return vizkit.feature_maps(model(ref), images, layer)


def explain(
    ref: ModelRef,
    images: Any,
    method: str,
    targets: Any,
    layer: str | None,
    params: dict[str, Any],
    class_names: Sequence[str] | None,
    progress: Progress = _no_progress,
) -> Any:
    """One method's Explanation, named with the model's classes when the result lacks them.

    CAMs come from a kept every-layer sweep when that is cheaper (:mod:`dashboards.sweeps`)."""
    import vizkit

    loaded = model(ref)
    result = None
    if layer is not None:
        result = _LAYER_MAPS.explanation(loaded, images, method, targets, layer, params)
    if result is None:
        result = vizkit.explain(
            loaded, images, method=method, targets=targets, layer=layer, **params
        )
        _LAYER_MAPS.traced(loaded, method, params, result.layer)
    if class_names and not result.class_names:
        result = dataclasses.replace(result, class_names=tuple(class_names))
    return result


def explain_layers(
    ref: ModelRef,
    images: Any,
    method: str,
    targets: Any,
    params: dict[str, Any],
    class_names: Sequence[str] | None,
    progress: Progress = _no_progress,
) -> Any:
    """``method``'s LayerSweep over every candidate layer (kept: a layer change reuses it)."""
    sweep = _LAYER_MAPS.sweep(model(ref), images, method, targets, params)
    if class_names and not sweep.template.class_names:
        template = dataclasses.replace(sweep.template, class_names=tuple(class_names))
        sweep = dataclasses.replace(sweep, template=template)
    return sweep


def warm_method(
    ref: ModelRef, method: str, layer: str | None, progress: Progress = _no_progress
) -> None:
    """Compile ``method``'s graph for ``layer`` (one blank image) so that the user's own request
    for it finds it traced: tracing a graph of a 224x224 network takes seconds, running it a
    fraction of one."""
    import vizkit

    loaded = model(ref)
    shape = vizkit.model_info(loaded).input_shape or ()
    blank = np.zeros((1, *shape[1:]), np.float32)
    result = vizkit.explain(loaded, blank, method=method, targets=0, layer=layer)
    _LAYER_MAPS.traced(loaded, method, dict(result.params), result.layer)


def warm_sweep(ref: ModelRef, method: str, progress: Progress = _no_progress) -> bool:
    """Compile ``method``'s every-layer graph (:func:`vizkit.explain_layers`), after which a
    new layer costs no trace; False when the method explains layer by layer."""
    import vizkit

    return _LAYER_MAPS.warm(model(ref), method, vizkit.get_method(method).defaults())


def maximize(
    ref: ModelRef,
    layer: str | None,
    units: Sequence[int],
    objective: str,
    params: dict[str, Any],
    seed: int,
    value_range: tuple[float, float],
    class_names: Sequence[str] | None,
    progress: Progress = _no_progress,
) -> Any:
    import vizkit

    return vizkit.maximize_activation(
        model(ref),
        layer,
        units=list(units),
        objective=objective,
        seed=seed,
        value_range=value_range,
        class_names=class_names if layer is None else None,
        progress=lambda done, total: progress(done / max(total, 1), f"Step {done}/{total}"),
        **params,
    )


def top_activations(
    ref: ModelRef,
    layer: str,
    units: Sequence[int],
    pool: Any,
    k: int,
    reduce: str,
    progress: Progress = _no_progress,
) -> Any:
    import vizkit

    def report(done: int, total: int | None) -> None:
        progress(done / total if total else 0.0, f"Searched {done} images")

    return vizkit.top_activations(
        model(ref), layer, list(units), pool, k=k, reduce=reduce, progress=report
    )


def evaluation(
    ref: ModelRef,
    images: Any,
    explanations: dict[str, Any],
    metrics: Sequence[str],
    targets: Any,
    options: dict[str, Any],
    progress: Progress = _no_progress,
) -> Any:
    from vizkit.metrics import run_evaluation

    return run_evaluation(model(ref), images, explanations, list(metrics), targets, **options)


# --------------------------------------------------------------------------------------------
# Whole datasets (the datasets worker)
# --------------------------------------------------------------------------------------------
def scan_folder(
    spec: str,
    folder: str,
    out: str,
    methods: Sequence[str],
    metrics: Sequence[str],
    masks: str | None,
    value_range: tuple[float, float],
    progress: Progress = _no_progress,
) -> dict[str, Any]:
    """``vizkit.scan`` of an image folder into ``out`` (resumable: a rerun continues); returns
    what was done. The model is loaded from ``spec`` by vizkit's safe loader, so the manifest
    records how to resume it."""
    import vizkit

    def report(done: int, total: int | None) -> None:
        text = f"Scanned {done} of {total} images" if total else f"Scanned {done} images"
        progress(done / total if total else 0.0, text)

    scan = vizkit.scan(
        spec,
        folder,
        methods=list(methods),
        out=out,
        masks=masks,
        metrics=list(metrics) or None,
        value_range=value_range,
        progress=report,
    )
    return {"root": str(scan.root), "images": len(scan.table), "skipped": len(scan.skipped)}


def scan_view(
    root: str, view: str, method: str, options: dict[str, Any], progress: Progress = _no_progress
) -> Any:
    """One dataset-level view of a scan: ``vizkit.open_scan(root).<view>(method, **options)``
    (``class_means``, ``confusion``, ``errors``, ``ranked`` or ``spatial_bias``)."""
    import vizkit

    if view not in ("class_means", "confusion", "errors", "ranked", "spatial_bias"):
        raise ValueError(f"unknown scan view {view!r}")
    return getattr(vizkit.open_scan(root), view)(method, **options)
