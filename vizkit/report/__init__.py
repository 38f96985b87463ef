"""Reports: every vizkit view of a model in one self-contained HTML page plus paper-ready files.

:func:`build_report` writes, into ``out_dir``:

- ``report.html``: one file, figures embedded as PNG ``data:`` URIs, CSS inline, no script and no
  external resource, so it opens offline and can be mailed or uploaded as is (paper links are
  plain ``https`` links that load nothing until clicked);
- ``figures/NN-name.{pdf,svg,png}``: each figure as vector PDF (fonts embedded) and SVG and as
  300 dpi PNG, drawn with the same result ``plot`` methods notebooks and the dashboard use;
- ``tables/*.csv``: the layer table, predictions, metrics, ...;
- ``settings.json``: the exact settings, seeds, input and model hashes and package versions,
  plus the command that reproduces the report.

Sections: model summary and architecture, training curves (when a history exists), first-layer
filters, feature maps of selected layers, activation maximization per class (up to 10 classes),
each image's top predictions and method comparison grid, evaluation metrics (each method and
metric with its plain-language explanation and paper), the whole-dataset views of a scan (when
``scan=`` is given), reproducibility. A section whose computation fails does not stop the
report: it shows the one-line reason (``logging.getLogger("vizkit.report")`` has the traceback
at DEBUG level).

The package, by responsibility: :mod:`~vizkit.report.plan` checks and resolves the arguments,
:mod:`~vizkit.report.writer` writes figures and tables and isolates failing sections,
:mod:`~vizkit.report.model_sections`, :mod:`~vizkit.report.image_sections` and
:mod:`~vizkit.report.dataset`
hold the sections, :mod:`~vizkit.report.record` the reproducibility record, and
:mod:`~vizkit.report.build` the orchestration. Models are resolved by :mod:`vizkit.sources`
(shared with the CLI, the dashboard and the scan).
"""

from vizkit.report.build import SECTIONS, build_report
from vizkit.report.figure import explain_figure
from vizkit.report.plan import DEFAULT_METHODS
from vizkit.report.record import package_versions
from vizkit.report.writer import REPORT_FORMATS
from vizkit.sources import ResolvedModel, file_sha256, resolve_model, weights_sha256

__all__ = [
    "DEFAULT_METHODS",
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
