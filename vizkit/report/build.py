""":func:`build_report`: check the arguments, run the sections in order, write the page."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vizkit.progress import Progress, ProgressArg
from vizkit.report import dataset, image_sections, model_sections
from vizkit.report.plan import Plan, make_plan
from vizkit.report.record import settings_record
from vizkit.report.writer import REPORT_FORMATS, Writer, section
from vizkit.templates import html as tpl

SectionFunction = Callable[[Writer, tpl.Section, Plan], None]

#: Every section a report can have, in order: ``(id, title)``. The dataset section appears
#: only when a scan is given.
SECTIONS = (
    ("summary", "Model summary"),
    ("training", "Training curves"),
    ("filters", "First-layer filters"),
    ("feature-maps", "Feature maps"),
    ("activation-max", "Activation maximization"),
    ("images", "Predictions and explanations"),
    ("evaluation", "Evaluation metrics"),
    ("dataset", "Whole dataset"),
    ("reproducibility", "Reproducibility"),
)
_BUILDERS: dict[str, SectionFunction] = {
    "summary": model_sections.summary_section,
    "training": model_sections.training_section,
    "filters": model_sections.filters_section,
    "feature-maps": model_sections.feature_maps_section,
    "activation-max": model_sections.activation_max_section,
    "images": image_sections.images_section,
    "evaluation": image_sections.evaluation_section,
    "dataset": dataset.dataset_section,
}
FOOTER = (
    "Figures are also saved as vector PDF/SVG and 300 dpi PNG next to this file; tables as CSV; "
    "settings.json records how to rebuild this report."
)


def build_report(
    model: Any,
    inputs: Any = None,
    methods: Sequence[str] | str | None = None,
    out_dir: str | os.PathLike[str] = "vizkit-report",
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
    scan: Any = None,
) -> Path:
    """Write a report on ``model`` (and ``inputs``, and a dataset ``scan``) into ``out_dir``.

    Parameters
    ----------
    model : keras.Model, path or "sample:NAME"
        The model, a model file (loaded safely, see :func:`vizkit.load_model`), or a sample.
    inputs : paths, folder, arrays, ImageBatch, optional
        Images to explain (at most ``max_images``). Default: the sample's images for sample
        models; per-image sections are skipped when there are none.
    methods : sequence of str or comma-separated str, optional
        Attribution methods (default: :data:`~vizkit.report.plan.DEFAULT_METHODS`; ``"all"``
        for every registered method).
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
    scan : path or Scan, optional
        A scan folder written by :func:`vizkit.scan` (or :func:`vizkit.open_scan`'s result):
        adds the "Whole dataset" section, read from the stored maps without recomputing.

    Returns
    -------
    pathlib.Path
        ``out_dir/report.html``, or ``out_dir`` when ``"html"`` is not among ``formats``.

    Raises
    ------
    InputError, LayerError
        Bad arguments (unknown method, layer, format or style, target out of range, unreadable
        images, a folder that is not a scan), found before any work starts.
    ModelFileError, UnsafeModelError
        The model file cannot be loaded or would run code.
    """
    plan = make_plan(
        model,
        inputs,
        methods,
        layers=layers,
        targets=targets,
        formats=formats,
        history=history,
        style=style,
        seed=seed,
        max_images=max_images,
        max_classes=max_classes,
        top_k=top_k,
        metrics=metrics,
        title=title,
        trust=trust,
        command=command,
        expand_nested=expand_nested,
        scan=scan,
        image_options={},  # the input contract's options (value range, resize, ...) go here
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings_record(plan)
    sections, files = _run_sections(out, plan, settings, progress)
    settings["sections"] = {s.id: {"status": s.status, "reason": s.reason} for s in sections}
    settings["files"] = sorted(files)
    (out / "settings.json").write_text(json.dumps(settings, indent=2, default=str) + "\n")
    if "html" not in plan.formats:
        return out
    path = out / "report.html"
    path.write_text(_page(plan, settings, sections), encoding="utf-8")
    return path


def _run_sections(
    out: Path, plan: Plan, settings: dict[str, Any], progress: ProgressArg
) -> tuple[list[tpl.Section], list[str]]:
    """Run every section in order; return them and the files they wrote."""
    chosen = [(sid, title) for sid, title in SECTIONS if sid != "dataset" or plan.scan is not None]
    bar = Progress(progress, len(chosen), desc="vizkit report", unit="section")
    writer = Writer(out, plan.formats, plan.style, plan.seed, bar)
    sections: list[tpl.Section] = []
    try:
        for sid, title in chosen:
            with section(writer, sections, sid, title) as block:
                if sid == "reproducibility":
                    model_sections.reproducibility_section(writer, block, settings)
                else:
                    _BUILDERS[sid](writer, block, plan)
    finally:
        bar.close()
    return sections, writer.files


def _page(plan: Plan, settings: dict[str, Any], sections: list[tpl.Section]) -> str:
    """The report page's HTML."""
    keras_model, spec = plan.model, plan.resolved.spec
    subtitle = [
        f"Model: {spec}" + (f" ({keras_model.name})" if spec != keras_model.name else ""),
        f"Created {settings['created']} with vizkit {settings['versions'].get('vizkit', '?')}; "
        f"style {plan.style}, seed {plan.seed}.",
    ]
    title = plan.title or f"vizkit report: {keras_model.name}"
    return tpl.render_page(title, sections, subtitle=subtitle, footer=FOOTER)
