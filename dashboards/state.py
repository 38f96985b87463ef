"""Caches, background jobs and per-session inputs of the vizkit dashboard.

This is the only dashboard module that uses ``st.cache_*``:

- **Models** are cached as resources (``st.cache_resource``), keyed by ``"sample:<name>"`` or by
  the SHA-256 of the model file's bytes, so the same file uploaded twice loads once.
- **Cheap results** (summaries, filter banks, feature maps, predictions, image conversions) are
  cached as data (``st.cache_data``), keyed by the model key, an images key and the options.
- **Long work** (attribution maps, occlusion, activation maximization, top activations, metrics)
  runs on a small process-wide thread pool (:class:`JobStore`) that keeps finished results. A page
  waits for its job with a progress bar; switching pages ends the wait, not the job, so other pages
  keep reading cached results meanwhile and coming back shows the finished result at once.

Session isolation: uploaded files live in ``st.session_state`` (one per browser session); the
shared caches are keyed by content hashes, so a session only ever reaches a model or result whose
inputs it holds itself.

Models are opaque objects here: everything goes through vizkit's public API.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

import vizkit
from vizkit.errors import InputError, ModelFileError, VizkitError

DEFAULT_SAMPLE = "shapes_vgg"
DEFAULT_MAX_UPLOAD_MB = 200
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
IMAGE_TYPES = ("png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff")
MAX_SELECTED_IMAGES = 8
MAX_IMAGE_MB = 50


# --------------------------------------------------------------------------------------------
# Start-up settings: `streamlit run dashboards/app.py -- --model sample:NAME|PATH`
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Settings:
    """What the person starting the server chose.

    ``model`` is ``"sample:<name>"`` or a path to a ``.keras`` / ``.h5`` file (loaded with the
    safe loader like any upload). ``max_upload_mb`` caps uploaded model files.
    Command-line arguments after ``--`` win over the environment variables
    ``VIZKIT_DASHBOARD_MODEL`` and ``VIZKIT_MAX_UPLOAD_MB``.
    """

    model: str
    max_upload_mb: int

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


def settings(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-upload-mb", type=int, default=None)
    args, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    model = args.model or os.environ.get("VIZKIT_DASHBOARD_MODEL") or f"sample:{DEFAULT_SAMPLE}"
    limit = args.max_upload_mb
    if limit is None:
        try:
            limit = int(os.environ.get("VIZKIT_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB))
        except ValueError:
            limit = DEFAULT_MAX_UPLOAD_MB
    return Settings(model=model.strip(), max_upload_mb=max(1, int(limit)))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model the session can pick: a sample, the start-up file, or an upload."""

    key: str  # "sample:<name>" or "sha256:<hex>"
    label: str  # what the picker shows
    kind: str  # "sample" | "file" | "upload"
    name: str  # sample name or file name
    size: int = 0  # bytes, for files
    path: str | None = None  # the start-up file (uploads live in the session only)

    @property
    def sample(self) -> str | None:
        return self.name if self.kind == "sample" else None


def sample_names() -> list[str]:
    try:
        return list(vizkit.sample_names())
    except (ImportError, AttributeError):
        return []


def sample_entry(name: str) -> ModelEntry:
    return ModelEntry(key=f"sample:{name}", label=f"Sample: {name}", kind="sample", name=name)


def check_model_file(name: str, data: bytes, max_bytes: int) -> None:
    """Refuse an uploaded model file before any loader sees it (plain function, tested directly).

    Raises :class:`~vizkit.errors.ModelFileError` with a one-line reason.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{name!r} is not a Keras model file: upload a .keras archive or a legacy .h5 file"
        )
    if not data:
        raise ModelFileError(f"{name!r} is empty: upload the saved model file again")
    if len(data) > max_bytes:
        raise ModelFileError(
            f"{name!r} is {len(data) / 2**20:.1f} MB, more than the dashboard's limit of "
            f"{max_bytes / 2**20:.0f} MB: start it with --max-upload-mb to raise the limit"
        )


def _load_bytes_uncached(data: bytes, name: str) -> Any:
    """vizkit's safe loader on in-memory bytes (``trust`` is never offered in the dashboard)."""
    return vizkit.load_model(data, filename=name)


@st.cache_resource(max_entries=8, show_spinner="Loading the model...")
def _model_from_bytes(key: str, _data: bytes, _name: str) -> Any:
    del key  # the content hash is the cache key
    return _load_bytes_uncached(_data, _name)


@st.cache_resource(max_entries=4, show_spinner="Loading the model...")
def _model_from_path(key: str, _path: str) -> Any:
    del key  # the content hash (read at start-up) is the cache key
    return vizkit.load_model(_path)


@st.cache_resource(max_entries=4, show_spinner="Loading the sample model...")
def _sample_model(name: str) -> Any:
    return vizkit.sample_model(name)


def load_model_file(name: str, data: bytes, max_bytes: int, kind: str = "upload") -> ModelEntry:
    """Check and load a model file's bytes; return its entry (the model is now cached).

    Raises a :class:`~vizkit.errors.VizkitError` (one line) when the file is refused.
    """
    check_model_file(name, data, max_bytes)
    key = "sha256:" + digest(data)
    _model_from_bytes(key, data, name)
    return ModelEntry(key=key, label=f"Upload: {name}", kind=kind, name=name, size=len(data))


def model_for(entry: ModelEntry) -> Any:
    """The (cached) model object of an entry."""
    if entry.kind == "sample":
        return _sample_model(entry.name)
    if entry.kind == "file" and entry.path:
        return _model_from_path(entry.key, entry.path)
    data = st.session_state.get("vk_model_bytes", {}).get(entry.key)
    if data is None:
        raise ModelFileError(f"the file of {entry.label} is no longer available: upload it again")
    return _model_from_bytes(entry.key, data, entry.name)


def startup_entry(conf: Settings) -> ModelEntry:
    """The model chosen on the command line, loaded with the safe loader like an upload."""
    if conf.model.startswith("sample:"):
        name = conf.model.split(":", 1)[1]
        if name not in sample_names():
            raise InputError(
                f"unknown sample model {name!r}: choose one of {', '.join(sample_names())}"
            )
        return sample_entry(name)
    path = Path(conf.model).expanduser().resolve()
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist: check the MODEL path")
    check_model_file(path.name, b"x", 1)  # the suffix check; size limits are for uploads
    key = "sha256:" + _file_digest(str(path), path.stat().st_mtime_ns, path.stat().st_size)
    _model_from_path(key, str(path))
    return ModelEntry(
        key=key, label=f"File: {path.name}", kind="file", name=path.name, path=str(path)
    )


@st.cache_data(max_entries=8, show_spinner=False)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Loading sample images...")
def sample_images(name: str) -> Any:
    return vizkit.sample_images(name)


def value_range(entry: ModelEntry) -> tuple[float, float]:
    """The input scale of a model: a sample's from its metadata, (0, 1) for other files."""
    if entry.sample:
        low, high = sample_metadata(entry.sample).get("value_range", (0.0, 1.0))
        return float(low), float(high)
    return (0.0, 1.0)


@st.cache_data(max_entries=32, show_spinner=False)
def _converted(
    model_key: str, source_key: str, scale: tuple[float, float], _model: Any, _batch: Any
) -> Any:
    """A batch converted to another model's input (size, channels, value range)."""
    del model_key, source_key
    converted = vizkit.load_images(list(_batch.originals), _model, value_range=scale)
    # another model's classes: the sample's labels do not apply
    return dataclasses.replace(converted, names=_batch.names)


def images_for_model(model_key: str, model: Any, sample: str) -> Any:
    """Sample images of ``sample``, converted to ``model``'s input when it is another model."""
    batch = sample_images(sample)
    if model_key == f"sample:{sample}":
        return batch
    scale = value_range(_entry_of(model_key))
    return _converted(model_key, f"sample:{sample}", scale, model, batch)


def _entry_of(model_key: str) -> ModelEntry:
    if model_key.startswith("sample:"):
        return sample_entry(model_key.split(":", 1)[1])
    return ModelEntry(key=model_key, label="", kind="upload", name="")


@st.cache_data(max_entries=64, show_spinner="Converting the image...")
def _one_upload(
    model_key: str, key: str, scale: tuple[float, float], _model: Any, _data: bytes, name: str
) -> Any:
    del model_key, key
    batch = vizkit.load_images(_data, _model, value_range=scale)
    return dataclasses.replace(batch, names=(name,))


def images_from_uploads(
    model_key: str, model: Any, files: Sequence[tuple[str, bytes]]
) -> tuple[Any | None, list[str]]:
    """Convert uploaded image files to the model's input.

    Returns the batch of the files that worked (None when none did) and one refusal message per
    file that did not (``"name: reason"``).
    """
    batches, refused = [], []
    scale = value_range(_entry_of(model_key))
    for name, data in files:
        try:
            batches.append(_one_upload(model_key, digest(data), scale, model, data, name))
        except VizkitError as err:
            message = vizkit_message(err).replace("image 'image 0'", "the image")
            refused.append(f"{name}: " + message.replace("'image 0'", "the file"))
    if not batches:
        return None, refused
    first = batches[0]
    batch = vizkit.ImageBatch(
        array=np.concatenate([b.array for b in batches]),
        originals=tuple(o for b in batches for o in b.originals),
        names=tuple(n for b in batches for n in b.names),
        value_range=first.value_range,
    )
    return batch, refused


def vizkit_message(err: BaseException) -> str:
    from vizkit.errors import one_line

    return one_line(str(err))


# --------------------------------------------------------------------------------------------
# The session's current inputs
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Context:
    """What every page works on: the chosen model and the chosen images."""

    entry: ModelEntry
    model: Any
    images: Any | None = None  # ImageBatch of the selected images
    images_key: str | None = None
    pool: Any | None = None  # every image of the source (top activations, evaluation)
    pool_key: str | None = None
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def sample(self) -> str | None:
        return self.entry.sample


def set_context(ctx: Context | None) -> None:
    st.session_state["_vk_context"] = ctx


def context() -> Context | None:
    return st.session_state.get("_vk_context")


# --------------------------------------------------------------------------------------------
# Cheap results: st.cache_data
# --------------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner="Summarizing the model...")
def summary(model_key: str, _model: Any) -> Any:
    return vizkit.summarize(_model)


@st.cache_data(max_entries=16, show_spinner=False)
def sample_metadata(name: str) -> dict[str, Any]:
    return dict(vizkit.sample_metadata(name))


@st.cache_data(max_entries=16, show_spinner=False)
def sample_history(name: str) -> Any:
    from vizkit import samples

    return samples.sample_history(name)


@st.cache_data(max_entries=16, show_spinner=False)
def candidate_layers(model_key: str, _model: Any) -> list[Any]:
    return list(vizkit.candidate_layers(_model))


@st.cache_data(max_entries=16, show_spinner=False)
def model_info(model_key: str, _model: Any) -> dict[str, Any]:
    """Input shape, output head and layer lists the pickers need."""
    from vizkit import models

    info: dict[str, Any] = {"image_model": models.is_image_model(_model)}
    try:
        head = models.head_info(_model)
        info.update(num_classes=head.num_classes, head_activation=head.activation)
    except VizkitError as err:
        info.update(num_classes=0, head_activation=None, head_error=vizkit_message(err))
    info["spatial_layers"] = models.spatial_layer_paths(_model) if info["image_model"] else []
    info["input_shape"] = tuple(models.input_shape(_model)) if info["image_model"] else None
    return info


@st.cache_data(max_entries=32, show_spinner="Predicting...")
def probabilities(model_key: str, images_key: str, _model: Any, _images: Any) -> np.ndarray:
    """Class probabilities ``(N, K)`` of the chosen head (softmax of logits heads)."""
    from vizkit import models

    head = models.head_info(_model)
    outputs = _model(np.asarray(_images.array, dtype=np.float32), training=False)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[head.output]
    return models.class_probabilities(outputs, head)


CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")


@st.cache_data(max_entries=16, show_spinner=False)
def conv_layers(model_key: str, _model: Any) -> list[str]:
    """Paths of the convolutional layers whose filters can be drawn, nested ones included."""
    frame = summary(model_key, _model).to_frame()
    rows = frame[frame["type"].isin(CONV_TYPES) & ~frame["container"]]
    return [str(p) for p in rows["path"]]


@st.cache_data(max_entries=32, show_spinner="Reading the filters...")
def conv_filters(model_key: str, layer: str, order: str, max_filters: int, _model: Any) -> Any:
    return vizkit.conv_filters(_model, layer, sort=order, max_filters=max_filters)


@st.cache_data(max_entries=32, show_spinner="Computing feature maps...")
def feature_maps(model_key: str, images_key: str, layer: str, _model: Any, _images: Any) -> Any:
    return vizkit.feature_maps(_model, _images, layer)


# --------------------------------------------------------------------------------------------
# Long work: a process-wide job store on a small thread pool
# --------------------------------------------------------------------------------------------
class Job:
    """One piece of long work; ``report(fraction, text)`` is its progress callback."""

    def __init__(self, key: str, label: str) -> None:
        self.key = key
        self.label = label
        self.text = label
        self.fraction = 0.0
        self.started = time.monotonic()
        self.future: concurrent.futures.Future | None = None

    def report(self, fraction: float, text: str | None = None) -> None:
        self.fraction = float(min(max(fraction, 0.0), 1.0))
        if text:
            self.text = text

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class JobStore:
    """Runs long work off the script thread and keeps the latest finished results (LRU).

    Keys name the work completely (model key, images key, method, parameters), so identical work
    from two sessions runs once and neither session sees inputs it did not provide.
    """

    def __init__(self, workers: int = 2, keep: int = 64) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="vizkit-job"
        )
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def get(self, key: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._jobs.move_to_end(key)
            return job

    def done(self, key: str) -> bool:
        job = self.get(key)
        return bool(job and job.future and job.future.done() and job.future.exception() is None)

    def submit(self, key: str, label: str, fn: Callable[[Job], Any]) -> Job:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._jobs.move_to_end(key)
                return job
            job = Job(key, label)
            job.future = self._pool.submit(fn, job)
            self._jobs[key] = job
            self._trim()
            return job

    def forget(self, key: str) -> None:
        with self._lock:
            self._jobs.pop(key, None)

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.future and j.future.done()]
        while len(self._jobs) > self._keep and finished:
            self._jobs.pop(finished.pop(0), None)


@st.cache_resource
def jobs() -> JobStore:
    return JobStore()


def run_job(key: str, label: str, fn: Callable[[Job], Any]) -> Any:
    """Run (or reuse) the job ``key`` and wait for it with a progress bar; return its result.

    The wait polls with Streamlit calls, so a page switch stops the wait (not the job). A failed
    job is forgotten after its error is raised, so the user can retry.
    """
    store = jobs()
    job = store.submit(key, label, fn)
    assert job.future is not None
    if not job.future.done():
        bar = st.progress(0.0, text=label)
        while True:
            try:
                job.future.result(timeout=0.15)
                break
            except concurrent.futures.TimeoutError:
                bar.progress(job.fraction, text=f"{job.text} ({job.elapsed:.0f} s)")
            except Exception:  # noqa: BLE001 - raised below, after the bar is gone
                break
        bar.empty()
    error = job.future.exception()
    if error is not None:
        store.forget(key)
        raise error
    return job.future.result()


def job_result(key: str) -> Any | None:
    """A finished job's result, or None (never waits, never starts work)."""
    store = jobs()
    if store.done(key):
        job = store.get(key)
        return job.future.result() if job and job.future else None
    return None


def job_running(key: str) -> bool:
    job = jobs().get(key)
    return bool(job and job.future and not job.future.done())


def make_key(*parts: Any) -> str:
    """A stable key from hashable parts (model key, images key, method, params...)."""
    return digest(repr(parts).encode())


# --------------------------------------------------------------------------------------------
# Attribution
# --------------------------------------------------------------------------------------------
def method_names() -> list[str]:
    return list(vizkit.available_methods())


def class_names(ctx: Context) -> list[str] | None:
    """Names of the model's classes when known (sample models, labelled image sets)."""
    if ctx.sample:
        try:
            names = sample_metadata(ctx.sample).get("class_names")
            if names:
                return [str(n) for n in names]
        except (VizkitError, ImportError, AttributeError, KeyError):
            pass
    for batch in (ctx.images, ctx.pool):
        if batch is not None and batch.class_names:
            return [str(n) for n in batch.class_names]
    return None


def top_k_frame(images: Any, probs: np.ndarray, names: Sequence[str] | None, k: int = 3) -> Any:
    """One row per image: true class (when known) and the top-k classes with probabilities."""
    import pandas as pd

    def label(index: int) -> str:
        return str(names[index]) if names and index < len(names) else str(index)

    rows = []
    order = np.argsort(-probs, axis=1)[:, :k]
    for i in range(len(probs)):
        row: dict[str, Any] = {"image": images.names[i] if images.names else f"image {i}"}
        if images.labels is not None:
            row["true"] = label(int(images.labels[i]))
        for rank, c in enumerate(order[i], start=1):
            row[f"top {rank}"] = f"{label(int(c))} ({probs[i, c]:.1%})"
        rows.append(row)
    return pd.DataFrame(rows)


def resolve_target(ctx: Context, target: Any) -> Any:
    if target == "predicted":
        return None
    if target == "true":
        if ctx.images is None or ctx.images.labels is None:
            raise InputError("these images have no true labels: choose another target class")
        return [int(v) for v in ctx.images.labels]
    return int(target)


def explain(
    ctx: Context,
    method: str,
    target: Any,
    layer: str | None,
    params: dict[str, Any],
    *,
    label: str = "",
) -> Any:
    """One method's Explanation of the session's images (a cached background job)."""
    targets = resolve_target(ctx, target)
    key = make_key(
        "explain", ctx.key, ctx.images_key, method, target, layer, sorted(params.items())
    )
    model, images, names = ctx.model, ctx.images, class_names(ctx)

    def work(job: Job) -> Any:
        result = vizkit.explain(
            model, images, method=method, targets=targets, layer=layer, **params
        )
        if names and not result.class_names:
            result = dataclasses.replace(result, class_names=tuple(names))
        return result

    return run_job(key, f"Computing {label or method}...", work)


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
@st.cache_data(max_entries=16, show_spinner=False)
def layer_channels(model_key: str, layer: str, _model: Any) -> int:
    """Channels (or units) of a layer's output."""
    shape = summary(model_key, _model)[layer].output_shape
    if not shape or shape[-1] is None:
        raise InputError(f"the output size of layer {layer!r} is unknown")
    return int(shape[-1])


@st.cache_data(max_entries=16, show_spinner=False)
def recipe_defaults(model_key: str, _model: Any) -> dict[str, Any]:
    """The activation-maximization recipe vizkit picks for this model's input size."""
    from vizkit.activation_max import Recipe

    shape = model_info(model_key, _model)["input_shape"]
    return Recipe.for_input(shape).as_dict()


def maximize(
    ctx: Context,
    layer: str | None,
    units: Sequence[int],
    objective: str,
    params: dict[str, Any],
    *,
    seed: int = 0,
) -> Any:
    """Activation-maximization images (a cached background job with a progress bar)."""
    key = activation_key(ctx, layer, units, objective, params, seed)
    model, names = ctx.model, class_names(ctx)
    scale = value_range(ctx.entry)

    def work(job: Job) -> Any:
        return vizkit.maximize_activation(
            model,
            layer,
            units=list(units),
            objective=objective,
            seed=seed,
            value_range=scale,
            class_names=names if layer is None else None,
            progress=lambda done, total: job.report(done / max(total, 1), f"Step {done}/{total}"),
            **params,
        )

    what = "classes" if layer is None else f"{layer} channels"
    return run_job(key, f"Optimizing images for {what} {list(units)}...", work)


def activation_key(
    ctx: Context,
    layer: str | None,
    units: Sequence[int],
    objective: str,
    params: dict[str, Any],
    seed: int = 0,
) -> str:
    scale = value_range(ctx.entry)
    return make_key(
        "actmax", ctx.key, layer, tuple(units), objective, sorted(params.items()), seed, scale
    )


def top_activations(
    ctx: Context, layer: str, units: Sequence[int], k: int, reduce: str = "max"
) -> Any:
    """The image-set examples that excite ``units`` most (a cached background job)."""
    if ctx.pool is None:
        raise InputError("choose sample images or upload images in the sidebar to search")
    key = make_key("top", ctx.key, ctx.pool_key, layer, tuple(units), k, reduce)
    model, pool = ctx.model, ctx.pool

    def work(job: Job) -> Any:
        def report(done: int, total: int | None) -> None:
            job.report(done / total if total else 0.0, f"Searched {done} images")

        return vizkit.top_activations(
            model, layer, list(units), pool, k=k, reduce=reduce, progress=report
        )

    return run_job(key, f"Searching {len(pool)} images...", work)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def metrics_available() -> bool:
    try:
        return callable(vizkit.evaluate)
    except (ImportError, AttributeError):
        return False


def metric_names(has_masks: bool) -> tuple[list[str], list[str]]:
    """(offered, default) metric names; localization needs masks, data randomization a train set."""
    from vizkit import metrics

    offered = [m for m in metrics.METRICS if m != "data_randomization"]
    if not has_masks:
        offered = [m for m in offered if m not in ("pointing_game", "relevance_mass")]
    return offered, [m for m in metrics.DEFAULT_METRICS if m in offered]


def default_params(method: str, hidden: Sequence[str] = ("batch_size",)) -> dict[str, Any]:
    """A method's defaults as the parameter widgets pass them (so cached maps are shared)."""
    info = vizkit.get_method(method)
    return {p.name: p.default for p in info.params if p.name not in hidden}


def evaluation(
    ctx: Context,
    explanations: Sequence[Any],
    metrics: Sequence[str],
    target: Any,
    options: dict[str, Any],
) -> Any:
    """The methods x metrics evaluation of already-computed maps (a cached background job)."""
    from vizkit.metrics import run_evaluation

    targets = resolve_target(ctx, target)
    signature = [
        (e.method, e.layer, sorted((k, repr(v)) for k, v in e.params.items())) for e in explanations
    ]
    key = make_key(
        "eval", ctx.key, ctx.images_key, signature, tuple(metrics), target, sorted(options.items())
    )
    model, images = ctx.model, ctx.images
    methods = {e.method: e for e in explanations}

    def work(job: Job) -> Any:
        return run_evaluation(model, images, methods, list(metrics), targets, **options)

    return run_job(key, f"Evaluating {len(methods)} method(s) on {len(metrics)} metric(s)...", work)


# --------------------------------------------------------------------------------------------
# Sample models' test results
# --------------------------------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner="Reading the test-set predictions...")
def sample_evaluation(name: str) -> dict[str, Any] | None:
    """Test accuracy, confusion matrix and per-class report of a sample model."""
    from vizkit import samples

    found = samples.sample_test_predictions(name)
    return evaluation_summary(found.labels, found.predictions, list(found.class_names))


def evaluation_summary(
    y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]
) -> dict[str, Any]:
    import pandas as pd
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = max(len(names), int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1)
    labels = list(range(k))
    names = [str(n) for n in names] if len(names) == k else [str(i) for i in labels]
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    report = pd.DataFrame(
        {"class": names, "precision": precision, "recall": recall, "f1": f1, "support": support}
    )
    return {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        "matrix": confusion_matrix(y_true, y_pred, labels=labels),
        "class_names": names,
        "report": report.round(3),
    }


# --------------------------------------------------------------------------------------------
# Rendered figures
# --------------------------------------------------------------------------------------------
class FigureCache:
    """The latest rendered figures (Figure plus display PNG), keyed like the results they show.

    Re-running a page whose results did not change reuses the picture instead of drawing and
    encoding it again (the slowest part of a rerun on small models).
    """

    def __init__(self, keep: int = 48) -> None:
        self._items: collections.OrderedDict[str, tuple[Any, bytes]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._keep = keep

    def get(self, key: str) -> tuple[Any, bytes] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, item: tuple[Any, bytes]) -> None:
        with self._lock:
            self._items[key] = item
            while len(self._items) > self._keep:
                self._items.popitem(last=False)


@st.cache_resource
def figures() -> FigureCache:
    return FigureCache()


def figure(key: str, build: Callable[[], Any], render: Callable[[Any], bytes]) -> tuple[Any, bytes]:
    """``(figure, png)`` for ``key``: from the cache, or built and rendered now."""
    cache = figures()
    item = cache.get(key)
    if item is None:
        fig = build()
        item = (fig, render(fig))
        cache.put(key, item)
    return item
