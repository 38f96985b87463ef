"""Everything a report needs, checked and resolved before any section runs.

:func:`make_plan` validates the arguments of :func:`vizkit.build_report` (formats, style,
limits, methods, layers, targets, images, history, scan) and loads what they name, so a typo
fails in one line before any figure is drawn. The sections read the resulting :class:`Plan`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError
from vizkit.plotting.style import style_names
from vizkit.report.writer import REPORT_FORMATS, reason
from vizkit.sources import ResolvedModel, resolve_model

if TYPE_CHECKING:
    import keras

    from vizkit.inputs import ImageBatch
    from vizkit.scanning.reader import Scan

logger = logging.getLogger("vizkit.report")

#: Methods a report compares when none are named: one per family, quick on CPU.
DEFAULT_METHODS = (
    "saliency",
    "smoothgrad",
    "integrated_gradients",
    "gradcam",
    "gradcam_pp",
    "occlusion",
)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The checked settings of one report and what they resolved to.

    ``image_options`` are passed to :func:`vizkit.load_images` for images given as files or
    arrays (empty today; the input contract's options go there).
    """

    resolved: ResolvedModel
    batch: ImageBatch | None
    inputs_given: Any
    methods: list[str]
    layers: list[str] | None
    targets: int | np.ndarray | None
    class_names: list[str]
    history: dict[str, list[float]] | None
    history_source: str
    formats: tuple[str, ...]
    style: str
    seed: int
    max_images: int
    max_classes: int
    top_k: int
    metrics: Sequence[str] | None
    expand_nested: bool
    title: str | None
    command: Sequence[str] | None
    scan: Scan | None = None
    image_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def model(self) -> keras.Model:
        return self.resolved.model


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The requested formats, normalized (``".PDF"`` is ``"pdf"``); one-line errors."""
    chosen = tuple(dict.fromkeys(str(f).lower().strip(".") for f in formats))
    bad = [f for f in chosen if f not in REPORT_FORMATS]
    if bad:
        raise InputError(
            f"unknown report format {bad[0]!r}: choose from {', '.join(REPORT_FORMATS)}"
        )
    if not chosen:
        raise InputError(f"no formats given: choose from {', '.join(REPORT_FORMATS)}")
    return chosen


def _check_options(style: str, limits: Mapping[str, int]) -> None:
    if style not in style_names():
        raise InputError(f"unknown style {style!r}: choose one of {', '.join(style_names())}")
    for name, value in limits.items():
        if int(value) < 1:
            raise InputError(f"{name} must be at least 1, not {value}")


def resolve_methods(methods: Sequence[str] | str | None) -> list[str]:
    """Registered method names from a list, a comma-separated string, ``"all"`` or None."""
    from vizkit.registry import available_methods, get_method

    available = available_methods()
    if methods is None:
        return [m for m in DEFAULT_METHODS if m in available]
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


def _resolve_layers(model: keras.Model, layers: Sequence[str | int] | str | None) -> list[str]:
    from vizkit.models import get_layer

    if isinstance(layers, (str, int)):
        layers = [layers]
    return [get_layer(model, layer)[0] for layer in layers or ()]


def _resolve_inputs(
    resolved: ResolvedModel, inputs: Any, max_images: int, options: Mapping[str, Any]
) -> ImageBatch | None:
    from vizkit.inputs import ImageBatch, load_images

    if inputs is None or (isinstance(inputs, (list, tuple)) and not inputs):
        if resolved.sample is None:
            return None
        from vizkit import samples

        batch = samples.sample_images(resolved.sample)
    elif isinstance(inputs, ImageBatch):
        batch = inputs
    else:
        batch = load_images(inputs, resolved.model, **options)
    return batch[:max_images] if len(batch) > max_images else batch


def class_names_for(
    resolved: ResolvedModel, batch: ImageBatch | None, num_classes: int
) -> list[str]:
    """The images' class names, else the sample's, else ``"0"``, ``"1"``, ..."""
    names: Sequence[str] | None = batch.class_names if batch is not None else None
    if not names and resolved.sample is not None:
        from vizkit import samples

        names = samples.sample_metadata(resolved.sample).get("class_names")
    names = [str(n) for n in names or ()]
    return names if len(names) == num_classes else [str(i) for i in range(num_classes)]


def _resolve_targets(targets: Any, batch: ImageBatch | None, num_classes: int) -> Any:
    from vizkit.inputs import resolve_targets

    if targets is None:
        return None
    given = np.atleast_1d(np.asarray(targets))
    if given.size == 1 and given.dtype.kind in "iu":
        targets = int(given[0])  # one class for every image
    n = len(batch) if batch is not None else int(np.size(targets))
    return resolve_targets(targets, n, num_classes)


def _resolve_history(resolved: ResolvedModel, history: Any) -> tuple[Any, str]:
    """The history to plot and where it came from (``None`` and why, when there is none)."""
    if history is not None:
        from vizkit.summary import _as_history_dict

        source = os.fspath(history) if isinstance(history, (str, os.PathLike)) else "given"
        return _as_history_dict(history), source  # bad files raise InputError now
    if resolved.sample is not None:
        from vizkit import samples

        try:
            data = samples.sample_history(resolved.sample)
        except InputError as error:  # converted samples were not trained by vizkit
            logger.debug("no history for sample %r", resolved.sample, exc_info=True)
            return None, reason(error)
        return data, f"sample {resolved.sample}"
    return None, "no training history given (pass history= or --history FILE)"


def open_scan_dir(scan: Any) -> Scan | None:
    """Open ``scan`` (a scan folder or an opened :class:`~vizkit.scanning.reader.Scan`)."""
    from vizkit.scanning.reader import Scan, open_scan

    if scan is None or isinstance(scan, Scan):
        return scan
    return open_scan(scan)  # a folder that is not a scan: a one-line InputError


def make_plan(
    model: Any,
    inputs: Any,
    methods: Sequence[str] | str | None,
    *,
    layers: Sequence[str | int] | str | None,
    targets: Any,
    formats: Sequence[str],
    history: Any,
    style: str,
    seed: int,
    max_images: int,
    max_classes: int,
    top_k: int,
    metrics: Sequence[str] | None,
    title: str | None,
    trust: bool,
    command: Sequence[str] | None,
    expand_nested: bool,
    scan: Any = None,
    image_options: Mapping[str, Any] | None = None,
) -> Plan:
    """Check every argument of :func:`vizkit.build_report` and resolve it (see there)."""
    chosen_formats = check_formats(formats)
    limits = {"max_images": max_images, "max_classes": max_classes, "top_k": top_k}
    _check_options(style, limits)
    opened = open_scan_dir(scan)
    resolved = resolve_model(model, trust=trust)
    from vizkit.models import head_info, require_image_model

    require_image_model(resolved.model, "a report")
    method_names = resolve_methods(methods)
    layer_paths = _resolve_layers(resolved.model, layers) if layers is not None else None
    options = dict(image_options or {})
    batch = _resolve_inputs(resolved, inputs, int(max_images), options)
    num_classes = head_info(resolved.model).num_classes
    history_data, history_source = _resolve_history(resolved, history)
    return Plan(
        resolved=resolved,
        batch=batch,
        inputs_given=inputs,
        methods=method_names,
        layers=layer_paths,
        targets=_resolve_targets(targets, batch, num_classes),
        class_names=class_names_for(resolved, batch, num_classes),
        history=history_data,
        history_source=history_source,
        formats=chosen_formats,
        style=style,
        seed=int(seed),
        max_images=int(max_images),
        max_classes=int(max_classes),
        top_k=int(top_k),
        metrics=None if metrics is None else list(metrics),
        expand_nested=bool(expand_nested),
        title=title,
        command=command,
        scan=opened,
        image_options=options,
    )
