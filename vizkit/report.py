"""Reports: every vizkit view of a model in one self-contained HTML page plus paper-ready files.

:func:`build_report` writes, into ``out_dir``:

- ``report.html``: one file, figures embedded as PNG ``data:`` URIs, CSS inline, no script and no
  external resource, so it opens offline and can be mailed or uploaded as is;
- ``figures/NN-name.{pdf,svg,png}``: each figure as vector PDF (fonts embedded) and SVG and as
  300 dpi PNG, drawn with the same result ``plot`` methods notebooks and the dashboard use;
- ``tables/*.csv``: the layer table, predictions, metrics, ...;
- ``settings.json``: the exact settings, seeds, input and model hashes and package versions,
  plus the command that reproduces the report.

Sections: model summary and architecture, training curves (when a history exists), first-layer
filters, feature maps of selected layers, activation maximization per class (up to 10 classes),
each image's top predictions and method comparison grid, evaluation metrics, reproducibility.
A section whose computation fails does not stop the report: it shows the one-line reason
(``logging.getLogger("vizkit.report")`` has the traceback at DEBUG level).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import inspect
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vizkit.errors import InputError, VizkitError, one_line
from vizkit.plotting.figures import figure_data_uri, new_figure, save_figure
from vizkit.plotting.style import STYLE_DPI, style_names
from vizkit.plotting.style import style as use_style
from vizkit.progress import Progress, ProgressArg
from vizkit.templates import html as tpl

logger = logging.getLogger("vizkit.report")

REPORT_FORMATS = ("html", "pdf", "png", "svg")
SECTIONS = (
    ("summary", "Model summary"),
    ("training", "Training curves"),
    ("filters", "First-layer filters"),
    ("feature-maps", "Feature maps"),
    ("activation-max", "Activation maximization"),
    ("images", "Predictions and explanations"),
    ("evaluation", "Evaluation metrics"),
    ("reproducibility", "Reproducibility"),
)
HTML_DPI = 110  # resolution of the PNGs embedded in the page (files on disk use the style's dpi)
PACKAGES = (
    "vizkit",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "scipy",
    "matplotlib",
    "pandas",
    "pillow",
    "tf-keras-vis",
    "scikit-learn",
)
SAMPLE_PREFIX = "sample:"
#: Methods a report compares when none are named: one per family, quick on CPU.
DEFAULT_METHODS = (
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "gradcam",
    "gradcam_pp",
    "occlusion",
)
_SUMMARY_COLUMNS = ("path", "type", "output_shape", "params", "activation", "macs", "rf_h", "rf_w")


# --------------------------------------------------------------------------------------------
# Models given as objects, files or sample names
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ResolvedModel:
    """A loaded model and where it came from (for the reproducibility record).

    Attributes
    ----------
    model : keras.Model
    spec : str
        What was asked for: a path, ``"sample:NAME"``, or ``"<in-memory model>"``.
    path : str or None
        The model file, when there is one.
    sample : str or None
        The sample name for ``sample:NAME``.
    file_sha256 : str or None
        SHA-256 of the model file.
    """

    model: Any
    spec: str
    path: str | None = None
    sample: str | None = None
    file_sha256: str | None = None


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sample_path(name: str) -> str | None:
    """The file the sample model was loaded from, when vizkit.samples says."""
    from vizkit import samples

    finder = getattr(samples, "sample_path", None)
    if finder is None:
        return None
    path = str(finder(name))
    return path if os.path.isfile(path) else None


def resolve_model(model: Any, *, trust: bool = False) -> ResolvedModel:
    """Load ``model`` if it is a path or ``"sample:NAME"``; describe where it came from.

    Raises
    ------
    InputError
        Unknown sample name.
    ModelFileError, UnsafeModelError
        From :func:`vizkit.loading.load_model`: missing, malformed or unsafe files.
    """
    if isinstance(model, ResolvedModel):
        return model
    if isinstance(model, (str, os.PathLike)):
        spec = os.fspath(model)
        if spec.startswith(SAMPLE_PREFIX):
            from vizkit import samples

            name = spec[len(SAMPLE_PREFIX) :]
            names = list(samples.sample_names())
            if name not in names:
                raise InputError(f"unknown sample model {name!r}: choose one of {', '.join(names)}")
            loaded = samples.sample_model(name)
            path = _sample_path(name)
            return ResolvedModel(loaded, spec, path, name, file_sha256(path) if path else None)
        from vizkit.loading import load_model

        loaded = load_model(spec, trust=trust)
        return ResolvedModel(loaded, spec, spec, None, file_sha256(spec))
    if not hasattr(model, "layers") or not callable(model):
        raise InputError(
            f"model must be a keras.Model, a model file path or 'sample:NAME', "
            f"not a {type(model).__name__}"
        )
    return ResolvedModel(model, "<in-memory model>")


def weights_sha256(model: Any) -> str:
    """SHA-256 over the model's weights (order, shapes and values): identifies trained state."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
        digest.update(str((weight.path if hasattr(weight, "path") else "", value.shape)).encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "item"


def _reason(error: BaseException) -> str:
    """One line for the report: vizkit errors as they are, others with their type."""
    if isinstance(error, VizkitError):
        return one_line(str(error))
    if isinstance(error, ImportError):
        return one_line(f"a module this section needs is not available ({error})")
    text = one_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with only the keyword arguments it accepts (seed, progress, ...)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function(*args, **kwargs)
    parameters = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return function(*args, **kwargs)
    names = {p.name for p in parameters}
    return function(*args, **{k: v for k, v in kwargs.items() if k in names})


def _seeded(method: str, seed: int, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``params`` plus ``seed`` when the method has a seed parameter (and none was given)."""
    from vizkit.registry import get_method

    params = dict(params or {})
    if "seed" in {p.name for p in get_method(method).params}:
        params.setdefault("seed", seed)
    return params


def package_versions() -> dict[str, str]:
    """Installed versions of vizkit and the packages it builds on."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name != "tensorflow-cpu":
                versions[name] = "not installed"
    return versions


def _frame_html(frame: Any, *, index: bool = False, float_format: str = "{:.4g}") -> str:
    return frame.to_html(
        index=index,
        border=0,
        classes="dataframe",
        na_rep="",
        float_format=lambda v: float_format.format(v),
        escape=True,
    )


# --------------------------------------------------------------------------------------------
# The report's working state
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Report:
    out: Path
    formats: tuple[str, ...]
    style: str
    seed: int
    progress: Progress  # over the sections
    files: list[str] = dataclasses.field(default_factory=list)
    counter: int = 0
    last_tick: float = 0.0

    @property
    def figure_formats(self) -> tuple[str, ...]:
        return tuple(f for f in self.formats if f != "html")

    @property
    def html(self) -> bool:
        return "html" in self.formats

    def figure(self, fig: Any, name: str, caption: str) -> tpl.Figure:
        """Save ``fig`` in every requested format and return its HTML block."""
        self.counter += 1
        stem = self.out / "figures" / f"{self.counter:02d}-{_slug(name)}"
        written = save_figure(fig, stem, self.figure_formats, dpi=STYLE_DPI[self.style])
        rel = [p.relative_to(self.out).as_posix() for p in written.values()]
        self.files.extend(rel)
        uri = figure_data_uri(fig, dpi=HTML_DPI) if self.html else ""
        return tpl.Figure(caption=caption, uri=uri, files=tuple(rel), alt=caption)

    def table(self, frame: Any, name: str, caption: str = "", *, index: bool = False) -> tpl.Table:
        """Write ``frame`` as CSV and return its HTML block."""
        path = self.out / "tables" / f"{_slug(name)}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=index)
        rel = path.relative_to(self.out).as_posix()
        self.files.append(rel)
        return tpl.Table(caption=caption, html=_frame_html(frame, index=index), file=rel)

    def tick(self, label: str, *, force: bool = True) -> None:
        """Show ``label`` next to the bar (throttled to a few redraws a second)."""
        if self.progress.bar is None:
            return
        now = time.monotonic()
        if force or now - self.last_tick >= 0.5:
            self.progress.bar.set_postfix_str(label, refresh=True)
            self.last_tick = now

    def hook(self, label: str) -> Callable[[int, int], None] | bool:
        """A progress callback for long library calls (shows ``label done/total``)."""
        if self.progress.bar is None:
            return False

        def update(done: int, total: int) -> None:
            self.tick(f"{label} {done}/{total}", force=done >= total)

        return update


@contextlib.contextmanager
def _section(report: _Report, sections: list[tpl.Section], sid: str) -> Iterator[tpl.Section]:
    """Collect one section; an exception inside marks it failed with a one-line reason."""
    title = dict(SECTIONS)[sid]
    section = tpl.Section(id=sid, title=title)
    report.tick(title)
    try:
        with use_style(report.style):
            yield section
    except Exception as error:  # noqa: BLE001 - a failing section must not kill the report
        logger.debug("report section %r failed", sid, exc_info=True)
        section.status = "failed"
        section.reason = _reason(error)
    sections.append(section)
    report.progress.advance()


def _attempt(section: tpl.Section, label: str, work: Callable[[], Any]) -> Any:
    """Run one part of a section; on failure note it and carry on with the other parts."""
    try:
        return work()
    except Exception as error:  # noqa: BLE001
        logger.debug("report part %r of %r failed", label, section.id, exc_info=True)
        section.blocks.append(tpl.Note(f"{label}: {_reason(error)}"))
        section.status = "partial"
        return None


def _skip(section: tpl.Section, reason: str) -> None:
    section.status = "skipped"
    section.reason = reason


# --------------------------------------------------------------------------------------------
# Inputs, methods, layers, targets: validated before any work starts
# --------------------------------------------------------------------------------------------
def _resolve_inputs(resolved: ResolvedModel, inputs: Any, max_images: int) -> Any:
    from vizkit.inputs import ImageBatch, load_images

    if inputs is None or (isinstance(inputs, (list, tuple)) and not inputs):
        if resolved.sample is None:
            return None
        from vizkit import samples

        batch = samples.sample_images(resolved.sample)
    elif isinstance(inputs, ImageBatch):
        batch = inputs
    else:
        batch = load_images(inputs, resolved.model)
    if len(batch) > max_images:
        batch = batch[:max_images]
    return batch


def _class_names(resolved: ResolvedModel, batch: Any, num_classes: int) -> list[str]:
    names = getattr(batch, "class_names", None) if batch is not None else None
    if not names and resolved.sample is not None:
        with contextlib.suppress(Exception):
            from vizkit import samples

            meta = samples.sample_metadata(resolved.sample)
            names = meta.get("class_names") if isinstance(meta, dict) else meta.class_names
    names = list(names or [])
    if len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return names


def _resolve_methods(methods: Sequence[str] | str | None) -> list[str]:
    from vizkit.registry import available_methods, get_method

    available = available_methods()
    if methods is None:
        return [m for m in DEFAULT_METHODS if m in available] or available
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if list(methods) == ["all"]:
        return available
    chosen = list(dict.fromkeys(methods))
    if not chosen:
        raise InputError("no methods given: name at least one (see vizkit.available_methods())")
    for name in chosen:
        get_method(name)  # raises InputError listing the valid names
    return chosen


def _resolve_layers(model: Any, layers: Sequence[Any] | str | None) -> list[str] | None:
    from vizkit.models import get_layer

    if layers is None:
        return None
    if isinstance(layers, (str, int)):
        layers = [layers]
    return [get_layer(model, layer)[0] for layer in layers]


def _default_feature_layers(model: Any, limit: int = 3) -> list[str]:
    """First, middle and last layers with 4-D outputs (convolutions preferred)."""
    from vizkit.models import get_layer, spatial_layer_paths

    paths = spatial_layer_paths(model)
    convs = [p for p in paths if "conv" in type(get_layer(model, p)[1]).__name__.lower()]
    pool = convs or paths
    if len(pool) <= limit:
        return pool
    picks = sorted({0, len(pool) // 2, len(pool) - 1})
    return [pool[i] for i in picks][:limit]


def _first_conv_layer(model: Any) -> str | None:
    from vizkit.models import iter_layers

    for path, layer in iter_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(getattr(kernel, "shape", ())) == 4:
            return path
    return None


def _resolve_history(resolved: ResolvedModel, history: Any) -> tuple[Any, str]:
    """The history to plot and where it came from (``None`` when there is none)."""
    if history is not None:
        from vizkit.summary import _as_history_dict

        source = os.fspath(history) if isinstance(history, (str, os.PathLike)) else "given"
        return _as_history_dict(history), source  # bad files raise InputError now
    if resolved.sample is not None:
        from vizkit import samples

        try:
            data = samples.sample_history(resolved.sample)
        except Exception as error:  # noqa: BLE001
            logger.debug("no history for sample %r", resolved.sample, exc_info=True)
            return None, _reason(error)
        return data, f"sample {resolved.sample}"
    return None, "no training history given (pass history= or --history FILE)"


# --------------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------------
def _predict(model: Any, batch: Any, k: int) -> Any:
    """Top-``k`` predictions (:func:`vizkit.predict`)."""
    from vizkit.scoring import predict

    return predict(model, batch, k=k)


def _top_k_frame(preds: Any, index: int, class_names: Sequence[str], k: int) -> Any:
    names = class_names if any(n != str(i) for i, n in enumerate(class_names)) else None
    frame = preds[index].to_frame(names).head(k)
    frame = frame.drop(columns=["image", "image_name"], errors="ignore")
    return frame.rename(columns={"class_name": "name"}).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
def _summary_section(
    report: _Report, section: tpl.Section, model: Any, expand_nested: bool = False
) -> None:
    from vizkit.summary import summarize

    summary = summarize(model, expand_nested=expand_nested)
    nested = [info.path for info in summary.layers if info.container]
    section.intro = (
        "Layers, output shapes, parameters, multiply-accumulates (MACs) and receptive fields."
    )
    if nested and not expand_nested:
        section.intro += (
            f" Nested models ({', '.join(nested)}) are shown as one row and one box with their "
            "totals (expand_nested=True or --expand-nested lists their layers; the CSV always "
            "does)."
        )
    frame = summary.to_frame(expand_nested=True)  # the CSV lists every layer
    table = report.table(frame, "summary-layers", "Layers (all columns in the CSV).")
    shown_frame = summary.to_frame()
    shown = [c for c in _SUMMARY_COLUMNS if c in shown_frame.columns]
    table.html = _frame_html(
        shown_frame[shown].astype(object).where(shown_frame[shown].notna(), None)
    )
    section.blocks.append(table)
    totals = summary.totals()
    section.blocks.append(
        tpl.Text(
            f"Total parameters {totals['total_params']:,} ({totals['trainable_params']:,} "
            f"trainable, {totals['non_trainable_params']:,} non-trainable); "
            f"{totals['macs']:,} multiply-accumulates per image."
        )
    )

    def architecture() -> None:
        from vizkit.plotting.summary import architecture_size

        fig = new_figure(*architecture_size(summary))
        summary.plot(ax=fig.add_subplot())
        section.blocks.append(
            report.figure(fig, "architecture", f"Architecture of {summary.name}.")
        )

    _attempt(section, "architecture figure", architecture)


def _training_section(report: _Report, section: tpl.Section, history: Any, source: str) -> None:
    if history is None:
        _skip(section, source)
        return
    from vizkit.plotting.summary import choose_history_metrics
    from vizkit.summary import plot_history

    section.intro = f"Loss and accuracy per epoch, training and validation ({source})."
    fig = new_figure(3.6 * len(choose_history_metrics(history)), 2.8)
    plot_history(history, fig)
    section.blocks.append(report.figure(fig, "training-curves", "Training curves."))
    import pandas as pd

    lengths = {len(v) for v in history.values()}
    if len(lengths) == 1:
        frame = pd.DataFrame(history)
        frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
        report.table(frame, "training-history")  # CSV only; the figure shows it


def _filters_section(report: _Report, section: tpl.Section, model: Any) -> None:
    import vizkit

    layer = _first_conv_layer(model)
    if layer is None:
        _skip(section, "the model has no convolutional layer")
        return
    section.intro = f"Kernels of the first convolutional layer, {layer}."
    bank = vizkit.conv_filters(model, layer)
    fig = bank.plot()  # a new pyplot-free figure sized for the grid
    section.blocks.append(report.figure(fig, f"filters-{layer}", f"Filters of {layer}."))
    report.table(bank.to_frame(), f"filters-{layer}")  # CSV only: one row per filter


def _feature_maps_section(
    report: _Report, section: tpl.Section, model: Any, batch: Any, layers: list[str] | None
) -> None:
    import vizkit

    if batch is None:
        _skip(section, "no images given (pass inputs= or --images)")
        return
    chosen = layers if layers is not None else _default_feature_layers(model)
    if not chosen:
        _skip(section, "the model has no layer with a spatial (N, H, W, C) output")
        return
    name = batch.names[0] if batch.names else "image 0"
    section.intro = f"Activations of {', '.join(chosen)} for the first image ({name})."
    first = batch[0]
    for layer in chosen:

        def one(layer: str = layer) -> None:
            maps = vizkit.feature_maps(model, first, layer)
            fig = maps.plot(0)
            section.blocks.append(
                report.figure(fig, f"feature-maps-{layer}", f"Feature maps of {layer} ({name}).")
            )

        _attempt(section, f"layer {layer}", one)


def _activation_max_section(
    report: _Report,
    section: tpl.Section,
    model: Any,
    class_names: Sequence[str],
    max_classes: int,
    value_range: tuple[float, float],
) -> None:
    import vizkit

    units = list(range(min(max_classes, len(class_names))))
    section.intro = (
        f"Synthetic inputs that maximize each class logit ({len(units)} of "
        f"{len(class_names)} classes; seed {report.seed})."
    )
    images = _call(
        vizkit.maximize_activation,
        model,
        units=units,
        seed=report.seed,
        progress=report.hook("optimizing"),
        class_names=list(class_names),
        value_range=value_range,
    )
    fig = images.plot()  # rows of five: two rows for ten classes
    section.blocks.append(
        report.figure(
            fig,
            "activation-maximization",
            "Activation maximization per class: each image's title gives the class logit it "
            "reaches, how far that is above the logit on uniform noise (in standard deviations "
            "of the noise images' logits), and the class the model predicts for it.",
        )
    )
    report.table(images.to_frame(), "activation-maximization")


def _images_section(
    report: _Report,
    section: tpl.Section,
    model: Any,
    batch: Any,
    methods: list[str],
    targets: Any,
    layer: str | None,
    class_names: Sequence[str],
    top_k: int,
) -> dict[str, Any]:
    """Top-k predictions and the method comparison grid per image; returns the explanations."""
    import pandas as pd

    import vizkit

    if batch is None:
        _skip(section, "no images given (pass inputs= or --images)")
        return {}
    section.intro = (
        f"Top-{top_k} predictions and attribution maps ({', '.join(methods)}) for "
        f"{len(batch)} image(s); maps explain "
        + ("the predicted class." if targets is None else "the requested target class.")
    )
    preds = _predict(model, batch, top_k)
    frames = []
    for i in range(len(batch)):
        frame = _top_k_frame(preds, i, class_names, top_k)
        frame.insert(0, "image", batch.names[i] if batch.names else f"image {i}")
        frames.append(frame)
    report.table(pd.concat(frames, ignore_index=True), "predictions")

    explanations: dict[str, Any] = {}
    for method in methods:
        report.tick(f"explaining: {method}")

        def run(method: str = method) -> Any:
            return vizkit.explain(
                model,
                batch,
                method=method,
                targets=targets,
                layer=layer,
                **_seeded(method, report.seed),
            )

        result = _attempt(section, f"method {method}", run)
        if result is not None:
            explanations[method] = result

    comparison = vizkit.compare(list(explanations.values())) if explanations else None
    for i in range(len(batch)):
        name = batch.names[i] if batch.names else f"image {i}"
        group = tpl.Group(title=f"Image {i + 1}: {name}")
        label = ""
        if batch.labels is not None:
            true = int(batch.labels[i])
            label = f" True class: {class_names[true] if true < len(class_names) else true}."
        top = _frame_html(_top_k_frame(preds, i, class_names, top_k))
        group.blocks.append(tpl.Table(caption=f"Top-{top_k} predictions.{label}", html=top))

        def grid(i: int = i, name: str = name, group: tpl.Group = group) -> None:
            if comparison is None:
                raise InputError("no attribution method succeeded")
            fig = comparison.plot(images=[i])
            group.blocks.append(
                report.figure(fig, f"compare-{i:02d}-{name}", _comparison_caption(comparison, i))
            )

        _attempt(section, f"comparison for {name}", grid)
        section.blocks.append(group)
    return explanations


def _comparison_caption(comparison: Any, index: int) -> str:
    """Caption of one image's comparison grid: the predicted and the explained class."""
    from vizkit.plotting.attribution import explained_text, predicted_text

    first = comparison.explanations[0]
    explained = sorted({explained_text(e, index) for e in comparison.explanations})
    return (
        f"Method comparison for {first.image_name(index)}: predicted "
        f"{predicted_text(first, index)}; the maps explain {' / '.join(explained)} "
        "(class and its probability). Gradient maps are shown alone, smooth maps (CAMs, "
        "occlusion) over the image in grey; each method column has its own colour scale."
    )


def _evaluation_section(
    report: _Report,
    section: tpl.Section,
    model: Any,
    batch: Any,
    explanations: dict[str, Any],
    metrics: Sequence[str] | None,
    targets: Any,
) -> None:
    if batch is None:
        _skip(section, "no images given (pass inputs= or --images)")
        return
    if not explanations:
        _skip(section, "no attribution maps to evaluate (every method failed)")
        return
    from vizkit.metrics import run_evaluation

    section.intro = (
        "How far to trust each method's maps on these images: deletion (lower area is better) "
        "and insertion (higher is better) against a random pixel order"
        + (", localization against the object masks" if batch.masks is not None else "")
        + ", and map health."
    )
    result = run_evaluation(model, batch, dict(explanations), metrics, targets, seed=report.seed)
    frame = result.to_frame()
    section.blocks.append(report.table(frame, "evaluation", "Metrics per method.", index=True))
    for method, notes in result.warnings.items():
        for note in notes:
            section.blocks.append(tpl.Note(f"{method}: {note}"))
    kinds = [k for k in ("deletion", "insertion") if result.curves(k)]
    if kinds:
        fig = new_figure(6.4, 2.9 * len(kinds))
        for ax, kind in zip(fig.subplots(len(kinds), 1, squeeze=False)[:, 0], kinds):
            result.plot(ax=ax, kind=kind)
        section.blocks.append(
            report.figure(fig, "deletion-insertion", "Deletion and insertion curves per method.")
        )


def _reproducibility_section(
    report: _Report, section: tpl.Section, settings: dict[str, Any]
) -> None:
    import pandas as pd

    section.intro = (
        "Everything needed to rebuild this report: settings, seeds, hashes of the model and the "
        "inputs, and package versions (also in settings.json)."
    )
    if settings.get("command_line"):
        section.blocks.append(tpl.Text("Reproduce with:"))
        section.blocks.append(tpl.Code(settings["command_line"]))
    model, inputs, chosen = settings["model"], settings["inputs"], settings["settings"]
    rows = [
        ("model", model["spec"]),
        ("model name", model["name"]),
        ("model file SHA-256", model["file_sha256"] or "(no file)"),
        ("weights SHA-256", model["weights_sha256"]),
        ("input shape", model["input_shape"]),
    ]
    if inputs:
        rows += [
            ("images", ", ".join(inputs["names"])),
            ("image array SHA-256", inputs["sha256"]),
            ("image value range", inputs["value_range"]),
        ]
    rows += [(key.replace("_", " "), value) for key, value in chosen.items()]
    rows += [("created", settings["created"])]
    frame = pd.DataFrame({"setting": [r[0] for r in rows], "value": [_plain(r[1]) for r in rows]})
    section.blocks.append(report.table(frame, "settings", "Settings and seeds."))
    versions = settings["versions"]
    frame = pd.DataFrame({"package": list(versions), "version": list(versions.values())})
    section.blocks.append(report.table(frame, "versions", "Package versions."))
    platform_info = settings["platform"]
    section.blocks.append(
        tpl.Text(f"Platform: {platform_info['system']} ({platform_info['machine']}).")
    )
    section.blocks.append(tpl.Details("settings.json", json.dumps(settings, indent=1, default=str)))


def _plain(value: Any) -> str:
    if value is None:
        return "(default)"
    if isinstance(value, (list, tuple)):
        return ", ".join("None" if v is None else str(v) for v in value) or "(none)"
    return str(value)


# --------------------------------------------------------------------------------------------
# Settings record
# --------------------------------------------------------------------------------------------
def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(str(arg))


def _settings(
    resolved: ResolvedModel,
    batch: Any,
    *,
    methods: list[str],
    layers: list[str] | None,
    targets: Any,
    formats: tuple[str, ...],
    style: str,
    seed: int,
    max_images: int,
    max_classes: int,
    top_k: int,
    metrics: Sequence[str] | None,
    history_source: str,
    command: Sequence[str] | None,
    images_given: Any,
    expand_nested: bool = False,
) -> dict[str, Any]:
    model = resolved.model
    input_info: dict[str, Any] | None = None
    if batch is not None:
        array = np.ascontiguousarray(np.asarray(batch.array, dtype=np.float32))
        input_info = {
            "count": len(batch),
            "names": list(batch.names),
            "shape": list(array.shape),
            "value_range": list(batch.value_range),
            "sha256": hashlib.sha256(array.tobytes()).hexdigest(),
        }
    if command:
        command_line = " ".join(_quote(a) for a in command)
    elif resolved.spec != "<in-memory model>" and (images_given is None or _paths(images_given)):
        parts = ["vizkit", "report", "--model", resolved.spec]
        if images_given is not None:
            parts += ["--images", *_paths(images_given)]
        parts += ["--methods", ",".join(methods)]
        if layers:
            parts += ["--layers", ",".join(layers)]
        if targets is not None:
            parts += ["--targets", ",".join(str(t) for t in np.atleast_1d(targets))]
        parts += ["--formats", ",".join(formats), "--style", style, "--seed", str(seed)]
        parts += ["--max-images", str(max_images), "--max-classes", str(max_classes)]
        parts += ["--expand-nested"] if expand_nested else []
        parts += ["--out", "REPORT_DIR"]
        command_line = " ".join(_quote(a) for a in parts)
    else:
        command_line = ""
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command_line": command_line,
        "model": {
            "spec": resolved.spec,
            "name": getattr(model, "name", ""),
            "file": resolved.path,
            "file_sha256": resolved.file_sha256,
            "weights_sha256": weights_sha256(model),
            "input_shape": [None if d is None else int(d) for d in model.inputs[0].shape]
            if getattr(model, "inputs", None)
            else None,
        },
        "inputs": input_info,
        "settings": {
            "methods": methods,
            "layers": layers,
            "targets": None if targets is None else np.atleast_1d(targets).tolist(),
            "formats": list(formats),
            "style": style,
            "seed": seed,
            "max_images": max_images,
            "max_classes": max_classes,
            "top_k": top_k,
            "metrics": None if metrics is None else list(metrics),
            "history": history_source,
            "expand_nested": bool(expand_nested),
            "max_steps_env": os.environ.get("VIZKIT_MAX_STEPS"),
        },
        "versions": package_versions(),
        "platform": {
            "system": platform.platform(),
            "machine": platform.machine(),
            "python": sys.version.split()[0],
        },
    }


def _paths(images: Any) -> list[str]:
    """Image arguments as strings when they are all paths, else []."""
    items = [images] if isinstance(images, (str, os.PathLike)) else images
    try:
        items = list(items)
    except TypeError:
        return []
    if items and all(isinstance(i, (str, os.PathLike)) for i in items):
        return [os.fspath(i) for i in items]
    return []


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def build_report(
    model: Any,
    inputs: Any = None,
    methods: Sequence[str] | str | None = None,
    out_dir: str | os.PathLike = "vizkit-report",
    *,
    layers: Sequence[str | int] | str | None = None,
    targets: int | Sequence[int] | None = None,
    formats: Sequence[str] = REPORT_FORMATS,
    history: Any = None,
    style: str = "paper",
    seed: int = 0,
    max_images: int = 4,
    max_classes: int = 10,
    top_k: int = 3,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    trust: bool = False,
    progress: ProgressArg = None,
    command: Sequence[str] | None = None,
    expand_nested: bool = False,
) -> Path:
    """Write a report on ``model`` (and ``inputs``) into ``out_dir``; return the HTML path.

    Parameters
    ----------
    model : keras.Model, path or "sample:NAME"
        The model, a model file (loaded safely, see :func:`vizkit.load_model`), or a sample.
    inputs : paths, folder, arrays, ImageBatch, optional
        Images to explain (at most ``max_images``). Default: the sample's images for sample
        models; per-image sections are skipped when there are none.
    methods : sequence of str or comma-separated str, optional
        Attribution methods (default: :data:`DEFAULT_METHODS`; ``"all"`` for every registered
        method).
    out_dir : path
        Output folder (created; existing files of the same names are replaced).
    layers : sequence of str or int, optional
        Layers whose feature maps to show (default: up to three convolutional layers).
    targets : int or sequence of int, optional
        Class to explain, for every image or one per image (default: the predicted class).
    formats : sequence of {"html", "pdf", "png", "svg"}
        What to write; CSV tables and ``settings.json`` are always written.
    history : keras History, dict or path, optional
        Training history; default: the sample's history for sample models.
    style : {"paper", "screen"}
        Figure style (``"paper"``: serif, 300 dpi files, fonts embedded in PDFs).
    seed : int
        Seed for every randomized computation (noise, activation maximization, ...).
    max_images, max_classes, top_k : int
        Limits: images explained, classes for activation maximization, predictions listed.
    metrics : sequence of str, optional
        Evaluation metrics (default: the metrics module's defaults).
    title : str, optional
    trust : bool
        Allow model files that run code when loaded. Only for files you trust.
    progress : None, bool or callable
        Progress over the sections (see :mod:`vizkit.progress`): None shows a bar in
        notebooks, True also on a terminal (stderr); a callable gets ``(done, total)``.
    command : sequence of str, optional
        The command line that made this report (the CLI passes it), recorded for reproduction.
    expand_nested : bool
        List the layers inside nested models in the summary table and diagram (default: one
        row and one box per nested model, as Keras's ``summary()``; the CSV lists every layer).

    Returns
    -------
    pathlib.Path
        ``out_dir/report.html``, or ``out_dir`` when ``"html"`` is not among ``formats``.

    Raises
    ------
    InputError, LayerError
        Bad arguments (unknown method, layer, format or style, target out of range, unreadable
        images), found before any work starts.
    ModelFileError, UnsafeModelError
        The model file cannot be loaded or would run code.
    """
    chosen_formats = tuple(dict.fromkeys(str(f).lower().strip(".") for f in formats))
    bad = [f for f in chosen_formats if f not in REPORT_FORMATS]
    if bad or not chosen_formats:
        raise InputError(
            f"unknown report format {bad[0]!r}: choose from {', '.join(REPORT_FORMATS)}"
            if bad
            else f"no formats given: choose from {', '.join(REPORT_FORMATS)}"
        )
    if style not in style_names():
        raise InputError(f"unknown style {style!r}: choose one of {', '.join(style_names())}")
    for name, value in (("max_images", max_images), ("max_classes", max_classes), ("top_k", top_k)):
        if int(value) < 1:
            raise InputError(f"{name} must be at least 1, not {value}")

    resolved = resolve_model(model, trust=trust)
    model = resolved.model
    from vizkit.inputs import resolve_targets
    from vizkit.models import head_info, require_image_model

    require_image_model(model, "a report")
    method_names = _resolve_methods(methods)
    layer_paths = _resolve_layers(model, layers)
    batch = _resolve_inputs(resolved, inputs, int(max_images))
    num_classes = head_info(model).num_classes
    if targets is not None:
        given = np.atleast_1d(np.asarray(targets))
        if given.size == 1 and given.dtype.kind in "iu":
            targets = int(given[0])  # one class for every image
        n = len(batch) if batch is not None else int(np.size(targets))
        targets = resolve_targets(targets, n, num_classes)
    history_data, history_source = _resolve_history(resolved, history)
    class_names = _class_names(resolved, batch, num_classes)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(
        resolved,
        batch,
        methods=method_names,
        layers=layer_paths,
        targets=targets,
        formats=chosen_formats,
        style=style,
        seed=int(seed),
        max_images=int(max_images),
        max_classes=int(max_classes),
        top_k=int(top_k),
        metrics=metrics,
        history_source=history_source,
        command=command,
        images_given=inputs,
        expand_nested=bool(expand_nested),
    )

    bar = Progress(progress, len(SECTIONS), desc="vizkit report", unit="section")
    report = _Report(out, chosen_formats, style, int(seed), bar)
    sections: list[tpl.Section] = []
    cam_layer = None
    explanations: dict[str, Any] = {}
    try:
        with _section(report, sections, "summary") as section:
            _summary_section(report, section, model, bool(expand_nested))
        with _section(report, sections, "training") as section:
            _training_section(report, section, history_data, history_source)
        with _section(report, sections, "filters") as section:
            _filters_section(report, section, model)
        with _section(report, sections, "feature-maps") as section:
            _feature_maps_section(report, section, model, batch, layer_paths)
        with _section(report, sections, "activation-max") as section:
            _activation_max_section(
                report,
                section,
                model,
                class_names,
                int(max_classes),
                tuple(batch.value_range) if batch is not None else (0.0, 1.0),
            )
        with _section(report, sections, "images") as section:
            explanations = _images_section(
                report,
                section,
                model,
                batch,
                method_names,
                None if targets is None else targets,
                cam_layer,
                class_names,
                int(top_k),
            )
        with _section(report, sections, "evaluation") as section:
            _evaluation_section(report, section, model, batch, explanations, metrics, targets)
        with _section(report, sections, "reproducibility") as section:
            _reproducibility_section(report, section, settings)
    finally:
        bar.close()

    settings["sections"] = {s.id: {"status": s.status, "reason": s.reason} for s in sections}
    settings["files"] = sorted(report.files)
    (out / "settings.json").write_text(json.dumps(settings, indent=2, default=str) + "\n")
    if not report.html:
        return out
    page_title = title or f"vizkit report: {getattr(model, 'name', 'model')}"
    subtitle = [
        f"Model: {resolved.spec}" + (f" ({model.name})" if resolved.spec != model.name else ""),
        f"Created {settings['created']} with vizkit {settings['versions'].get('vizkit', '?')}; "
        f"style {style}, seed {seed}.",
    ]
    page = tpl.render_page(
        page_title,
        sections,
        subtitle=subtitle,
        footer="Figures are also saved as vector PDF/SVG and 300 dpi PNG next to this file; "
        "tables as CSV; settings.json records how to rebuild this report.",
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# One figure (``vizkit explain``)
# --------------------------------------------------------------------------------------------
def explain_figure(
    model: Any,
    image: Any,
    *,
    method: str = "gradcam",
    out: str | os.PathLike,
    target: int | None = None,
    layer: str | int | None = None,
    params: dict[str, Any] | None = None,
    kind: str = "auto",
    style: str = "paper",
    seed: int = 0,
    trust: bool = False,
) -> Path:
    """Explain one image with one method and save the figure to ``out`` (.png/.pdf/.svg).

    The figure shows the input and the map (``kind``: ``"auto"``, ``"overlay"``,
    ``"heatmap"`` or ``"masked"``) with its colour bar; the input is titled with the predicted
    and the explained class and their probabilities, and a legend says what the colours mean.
    """
    import vizkit
    from vizkit.inputs import load_images
    from vizkit.plotting.figures import save_format_for

    fmt = save_format_for(out)
    resolved = resolve_model(model, trust=trust)
    model = resolved.model
    from vizkit.models import get_layer

    info = vizkit.get_method(method)
    if layer is not None:
        layer = get_layer(model, layer)[0]
    batch = load_images(image, model)[:1]
    if resolved.sample is not None and not batch.class_names:  # name the classes in titles
        from vizkit.models import head_info

        names = _class_names(resolved, batch, head_info(model).num_classes)
        batch = dataclasses.replace(batch, class_names=tuple(names))
    explanation = vizkit.explain(
        model,
        batch,
        method=info.name,
        targets=target,
        layer=layer,
        **_seeded(info.name, seed, params),
    )
    out = Path(out)
    with use_style(style):
        # the same grid as the report's comparisons: the input, then the map
        fig = vizkit.compare([explanation]).plot(images=[0], kind=kind, panel_size=2.8)
        written = save_figure(fig, out.with_suffix(""), [fmt], dpi=STYLE_DPI[style])
    return written[fmt]


__all__ = [
    "REPORT_FORMATS",
    "SECTIONS",
    "ResolvedModel",
    "build_report",
    "explain_figure",
    "file_sha256",
    "package_versions",
    "resolve_model",
    "weights_sha256",
]
