"""The ``vizkit`` command: reports, single explanation figures and model summaries.

Importing this module is cheap (no TensorFlow, numpy or matplotlib): ``vizkit --help`` answers
at once, and the heavy libraries load only when a command runs. Every argument that can be
checked without a model (files exist, method and sample names, output formats, targets of a
sample model) is checked *before* TensorFlow is imported, so a typo fails in a fraction of a
second; ``vizkit methods`` never imports TensorFlow (it reads :mod:`vizkit.manifest`).

(Over 500 lines: most of it is the flat argparse declarations of the commands' options.)

Exit codes
----------
0  success
1  unexpected internal error (a bug: please report it with the ``--debug`` traceback)
2  bad usage or input: unknown option, missing file, unreadable image, unknown method,
   sample or layer, target out of range
3  model refused or unloadable: the file would run code when loaded (pass ``--trust`` only for
   files you trust), or it is not a Keras model vizkit can read
130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from vizkit.errors import (
    InputError,
    ModelFileError,
    UnsafeModelError,
    VizkitError,
    one_line,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_INTERRUPTED = 130

PROG = "vizkit"

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    unexpected internal error (report it with the --debug traceback)
  2    bad usage or input: missing file, unreadable image, unknown method, sample or
       layer, target out of range
  3    model refused or unloadable (use --trust only for model files you trust)
  130  interrupted
"""

MODEL_HELP = (
    "a Keras model file (.keras, .h5) or sample:NAME for a bundled sample model "
    "(sample:imagenet_lite0, sample:cats_dogs_pandas, sample:shapes_vgg, sample:digits_cnn, "
    "sample:digits_mlp)"
)


class UsageError(Exception):
    """A command-line mistake found by the argument parser (exit code 2)."""

    def __init__(self, message: str, prog: str) -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports mistakes as one line instead of usage plus exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


def _csv(value: str) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    return [item for item in items if item]


def _ints(value: str) -> list[int]:
    try:
        return [int(item) for item in _csv(value)]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a comma-separated list of class indices (e.g. 3 or 3,7)"
        ) from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return number


def _param(value: str) -> tuple[str, str]:
    name, sep, raw = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE (e.g. samples=32)")
    return name.strip(), raw.strip()


def _value_range(value: str) -> Any:
    """``--value-range``: ``LOW,HIGH`` (e.g. ``0,255``) or a name (``0-1``, ``0-255``, ``-1-1``)."""
    text = value.strip()
    if "," in text:
        try:
            low, high = (float(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not LOW,HIGH (e.g. 0,255) or one of 0-1, 0-255, -1-1"
            ) from None
        return (low, high)
    if text not in ("0-1", "0-255", "-1-1"):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not LOW,HIGH (e.g. 0,255) or one of 0-1, 0-255, -1-1"
        )
    return text


#: ``--preprocess`` choices (vizkit.contract.CONVENTIONS, plus Keras' name "tf" for -1-1)
PREPROCESS_CHOICES = ("0-1", "0-255", "-1-1", "tf", "caffe", "torch")
RESIZE_CHOICES = ("stretch", "crop", "pad")


def _input_args(
    parser: argparse.ArgumentParser, *, resize: bool = True, labels: bool = True
) -> None:
    """The input contract: scale, aspect ratio and class names (default: what vizkit decides)."""
    group = parser.add_argument_group(
        "input contract (default: what vizkit detects; see README 'Your own model')"
    )
    scale = group.add_mutually_exclusive_group()
    scale.add_argument(
        "--value-range",
        type=_value_range,
        metavar="LOW,HIGH",
        help="the model's input scale: 8-bit pixels 0..255 map linearly to LOW..HIGH "
        "(e.g. 0,255 or -1,1; also the names 0-1, 0-255, -1-1). Default: a sample's metadata, "
        "a Rescaling/Normalization layer at the model's input, else 0-1",
    )
    scale.add_argument(
        "--preprocess",
        choices=PREPROCESS_CHOICES,
        help="a named input convention: 0-1, 0-255, -1-1 (tf), caffe (BGR, ImageNet mean "
        "subtracted: keras.applications ResNet/VGG), torch (ImageNet mean/std on 0-1: DenseNet)",
    )
    if resize:
        group.add_argument(
            "--resize",
            choices=RESIZE_CHOICES,
            default="stretch",
            help="images of another aspect ratio: stretch (Keras' default), crop (centre crop to "
            "the model's aspect ratio) or pad (black borders) (default: stretch)",
        )
    if labels:
        group.add_argument(
            "--labels",
            metavar="FILE",
            help="class names: one per line, or a JSON list or {index: name} object (default: "
            "a sample's names, ImageNet's for a 1000-way head, else class numbers)",
        )


def _input_options(args: argparse.Namespace) -> dict[str, Any]:
    """``load_images`` keyword arguments from the input-contract options (labels file read)."""
    options: dict[str, Any] = {}
    if getattr(args, "value_range", None) is not None:
        options["value_range"] = args.value_range
    if getattr(args, "preprocess", None) is not None:
        options["preprocess"] = args.preprocess
    if getattr(args, "resize", "stretch") != "stretch":
        options["resize"] = args.resize
    if getattr(args, "labels", None):
        from vizkit.classes import read_class_names

        _check_file(args.labels, "labels file")
        options["class_names"] = read_class_names(args.labels)
    return options


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output and diagnostics")
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars or messages (errors still print)",
    )
    group.add_argument(
        "--debug", action="store_true", help="show full tracebacks and the library's debug log"
    )


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="PATH|sample:NAME", help=MODEL_HELP)
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load model files that run code when loaded (Lambda layers, custom objects); "
        "only for files you trust",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``vizkit`` argument parser (exposed for documentation and tests)."""
    from vizkit import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog=PROG,
        description="See inside trained Keras CNNs: reports, attribution figures and summaries.",
        epilog=EXIT_CODES_HELP + "\nRun 'vizkit COMMAND --help' for a command's options.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"vizkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _report_parser(commands, formatter)
    _explain_parser(commands, formatter)
    _predict_parser(commands, formatter)
    _summary_parser(commands, formatter)
    _scan_parser(commands, formatter)
    _methods_parser(commands, formatter)
    return parser


def _report_parser(commands: Any, formatter: Any) -> None:
    """The ``vizkit report`` subcommand."""
    report = commands.add_parser(
        "report",
        help="write an HTML report with every figure as PDF/SVG/PNG and tables as CSV",
        description=(
            "Write DIR/report.html (one self-contained file) plus each figure as vector\n"
            "PDF/SVG and 300 dpi PNG under DIR/figures/, tables as CSV under DIR/tables/,\n"
            "and the exact settings, seeds and package versions in DIR/settings.json."
        ),
        epilog=EXIT_CODES_HELP
        + "\nexample:\n  vizkit report --model sample:digits_cnn --methods gradcam,saliency "
        "--out report/",
        formatter_class=formatter,
    )
    _model_args(report)
    report.add_argument(
        "--images",
        nargs="+",
        metavar="PATH",
        help="image files or folders to explain (default: the sample's test images for "
        "sample models; none otherwise)",
    )
    report.add_argument(
        "--methods",
        type=_csv,
        metavar="M1,M2",
        help="attribution methods, comma-separated, or 'all' (default: saliency, smoothgrad, "
        "integrated_gradients, gradcam, gradcam_pp, occlusion; see 'vizkit methods')",
    )
    report.add_argument(
        "--layers",
        type=_csv,
        metavar="L1,L2",
        help="layers whose feature maps to show (default: a few convolutional layers)",
    )
    report.add_argument(
        "--targets",
        type=_ints,
        metavar="C[,C...]",
        help="class to explain: one index for every image or one per image "
        "(default: the predicted class)",
    )
    _report_output_args(report)
    _input_args(report)
    _common(report)
    report.set_defaults(handler=_run_report)


def _report_output_args(report: argparse.ArgumentParser) -> None:
    """``vizkit report``'s options for what it writes and how much: output, formats, style,
    limits, extra sections."""
    report.add_argument("--out", required=True, metavar="DIR", help="output folder")
    report.add_argument(
        "--formats",
        type=_csv,
        default=["html", "pdf", "png", "svg"],
        metavar="F1,F2",
        help="what to write: html, pdf, png, svg (default: all; CSV tables are always written)",
    )
    report.add_argument(
        "--style",
        choices=["paper", "screen"],
        default="paper",
        help="figure style (default: paper)",
    )
    report.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    report.add_argument(
        "--max-images",
        type=_positive,
        default=4,
        metavar="N",
        help="explain at most N images (default: 4)",
    )
    report.add_argument(
        "--max-classes",
        type=_positive,
        default=10,
        metavar="N",
        help="activation maximization for at most N classes (default: 10)",
    )
    report.add_argument(
        "--history",
        metavar="PATH",
        help="training history as JSON ({metric: [values]}) or a Keras CSVLogger file "
        "(default: the sample's history for sample models)",
    )
    report.add_argument(
        "--scan",
        metavar="DIR",
        help="add the whole-dataset section from a scan folder written by 'vizkit scan' "
        "(read from its stored maps, nothing recomputed)",
    )
    report.add_argument("--title", help="report title (default: from the model name)")
    report.add_argument(
        "--expand-nested",
        action="store_true",
        help="list the layers inside nested models in the summary (default: one row and one "
        "box per nested model)",
    )


def _explain_parser(commands: Any, formatter: Any) -> None:
    """The ``vizkit explain`` subcommand."""
    explain = commands.add_parser(
        "explain",
        help="one attribution figure for one image",
        description="Explain one image with one method and save the figure\n"
        "(PNG, PDF or SVG, from the file name).",
        epilog=EXIT_CODES_HELP
        + "\nexample:\n  vizkit explain --model model.keras --image cat.png --method gradcam "
        "--out cat_gradcam.pdf",
        formatter_class=formatter,
    )
    _model_args(explain)
    explain.add_argument("--image", required=True, metavar="PATH", help="the image to explain")
    explain.add_argument(
        "--method", default="gradcam", help="attribution method (default: gradcam)"
    )
    explain.add_argument(
        "--target", type=int, metavar="C", help="class to explain (default: the predicted class)"
    )
    explain.add_argument("--layer", help="layer for CAM methods (default: the last conv layer)")
    explain.add_argument(
        "--layers",
        nargs="+",
        metavar="LAYER",
        help="a CAM at several layers side by side, from one pass for gradient CAMs: layer "
        "names, or 'all' for up to 6 spread from the deepest to the shallowest",
    )
    explain.add_argument(
        "--param",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="method hyperparameter, repeatable (e.g. --param samples=32)",
    )
    explain.add_argument(
        "--out", required=True, metavar="FILE", help="output figure: .png, .pdf or .svg"
    )
    explain.add_argument(
        "--kind",
        choices=["auto", "overlay", "heatmap", "masked"],
        default="auto",
        help="map over the image (in grey), map alone, or image with low-attribution pixels "
        "dimmed; auto: heatmap for pixel-level gradient maps, overlay for smooth maps such as "
        "CAMs and occlusion (default: auto)",
    )
    explain.add_argument(
        "--style",
        choices=["paper", "screen"],
        default="paper",
        help="figure style (default: paper)",
    )
    explain.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _input_args(explain)
    _common(explain)
    explain.set_defaults(handler=_run_explain)


def _predict_parser(commands: Any, formatter: Any) -> None:
    """The ``vizkit predict`` subcommand."""
    predict = commands.add_parser(
        "predict",
        help="print the model's top classes for images",
        description="Print each image's top classes and their probabilities, and the input\n"
        "scale vizkit used (check it before explaining a model of your own).",
        epilog=EXIT_CODES_HELP
        + "\nexample:\n  vizkit predict --model model.keras --images photos/ --top 3",
        formatter_class=formatter,
    )
    _model_args(predict)
    predict.add_argument(
        "--images", required=True, nargs="+", metavar="PATH", help="image files or folders"
    )
    predict.add_argument(
        "--top", type=_positive, default=3, metavar="K", help="classes per image (default: 3)"
    )
    predict.add_argument(
        "--format",
        choices=["text", "csv"],
        default="text",
        help="text table or CSV (default: text)",
    )
    _input_args(predict)
    _common(predict)
    predict.set_defaults(handler=_run_predict)


def _summary_parser(commands: Any, formatter: Any) -> None:
    """The ``vizkit summary`` subcommand."""
    summary = commands.add_parser(
        "summary",
        help="print the model's layer table",
        description="Print the layer table: output shapes, parameters, MACs, receptive fields.",
        epilog=EXIT_CODES_HELP,
        formatter_class=formatter,
    )
    _model_args(summary)
    summary.add_argument(
        "--format",
        choices=["text", "csv"],
        default="text",
        help="text table or CSV (default: text)",
    )
    summary.add_argument(
        "--width", type=_positive, default=100, help="text table width (default: 100)"
    )
    summary.add_argument(
        "--expand-nested",
        action="store_true",
        help="list the layers inside nested models (default: one row per nested model)",
    )
    _common(summary)
    summary.set_defaults(handler=_run_summary)


def _methods_parser(commands: Any, formatter: Any) -> None:
    """The ``vizkit methods`` subcommand."""
    methods = commands.add_parser(
        "methods",
        help="what each attribution method and metric shows, how to read it, its paper",
        description="List the attribution methods --methods and --method accept and the\n"
        "metrics of evaluation and scans: each with a plain-language paragraph\n"
        "(what it shows, how to read it, its caveats) and its paper.",
        epilog=EXIT_CODES_HELP + "\nexample:\n  vizkit methods gradcam deletion",
        formatter_class=formatter,
    )
    methods.add_argument(
        "names", nargs="*", metavar="NAME", help="only these methods or metrics (default: all)"
    )
    methods.add_argument(
        "--brief", action="store_true", help="one line per method and metric: name and label"
    )
    _common(methods)
    methods.set_defaults(handler=_run_methods)


# --------------------------------------------------------------------------------------------
# Commands (heavy imports happen inside)
# --------------------------------------------------------------------------------------------
def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def _check_file(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")


def _check_model(spec: str) -> str | None:
    """Check ``--model`` without loading it: the file exists, or the sample name is known.
    Return the sample name (None for a file)."""
    from vizkit.sources import check_model_spec

    return check_model_spec(spec)


def _check_methods(names: Sequence[str]) -> None:
    from vizkit.manifest import method_entry

    for name in names:
        if name != "all":
            method_entry(name)  # one line listing the valid names


def _check_targets(targets: Sequence[int] | None, sample: str | None, images: int | None) -> None:
    """Targets are class indices: not negative, below a sample's class count, one per image."""
    if not targets:
        return
    negative = [t for t in targets if t < 0]
    if negative:
        raise InputError(f"target {negative[0]} is negative: give class indices from 0")
    if images is not None and len(targets) not in (1, images):
        raise InputError(
            f"{len(targets)} targets for {images} images: give one target for all images "
            "or one per image"
        )
    if sample is not None:
        from vizkit.samples import sample_metadata

        classes = len(sample_metadata(sample).get("class_names") or [])
        high = [t for t in targets if classes and t >= classes]
        if high:
            raise InputError(
                f"target {high[0]} is out of range: sample {sample!r} has {classes} classes "
                f"(0 to {classes - 1})"
            )


def _load(args: argparse.Namespace) -> Any:
    """Resolve ``--model``; a missing file is bad input (2), a refused one exit code 3."""
    from vizkit.sources import resolve_model

    _check_model(args.model)
    return resolve_model(args.model, trust=args.trust)


def _run_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from vizkit.report import REPORT_FORMATS, build_report

    bad = [f for f in args.formats if f not in REPORT_FORMATS]
    if bad or not args.formats:
        raise InputError(
            f"unknown format {bad[0]!r}: choose from {', '.join(REPORT_FORMATS)}"
            if bad
            else f"--formats is empty: choose from {', '.join(REPORT_FORMATS)}"
        )
    for path in args.images or ():
        _check_file(path, "image")
    if args.history:
        _check_file(args.history, "history file")
    if args.scan and not os.path.isfile(os.path.join(args.scan, "manifest.json")):
        raise InputError(
            f"{args.scan!r} is not a vizkit scan (no manifest.json): give the --out folder of "
            "'vizkit scan'"
        )
    sample = _check_model(args.model)
    _check_methods(args.methods or ())
    _check_targets(args.targets, sample, None)  # the count is checked once images are read
    options = _input_options(args)
    if options and not args.images:
        raise InputError(
            "--value-range, --preprocess, --resize and --labels apply to --images: name the "
            "images to explain"
        )
    resolved = _load(args)  # TensorFlow loads from here on
    images: Any = args.images
    if options:  # the report takes an ImageBatch as it is (the first --max-images images)
        images = _read_images(args.images, resolved.model, options, args.max_images)
    path = build_report(
        resolved,
        images,
        methods=args.methods,
        out_dir=args.out,
        layers=args.layers,
        targets=args.targets,
        formats=args.formats,
        history=args.history,
        style=args.style,
        seed=args.seed,
        max_images=args.max_images,
        max_classes=args.max_classes,
        title=args.title,
        progress=not args.quiet,
        command=[PROG, *argv],
        expand_nested=args.expand_nested,
        scan=args.scan,
    )
    if not args.quiet:
        print(path)
    return EXIT_OK


def _run_explain(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from vizkit.plotting.figures import save_format_for
    from vizkit.report import explain_figure

    save_format_for(args.out)  # check the suffix before any model work
    _check_file(args.image, "image")
    sample = _check_model(args.model)
    _check_methods([args.method])
    if args.layers:
        from vizkit.manifest import method_entry

        if args.layer:
            raise InputError("give --layer (one layer) or --layers (several), not both")
        if not method_entry(args.method).needs_layer:
            raise InputError(
                f"--layers needs a method that uses a layer (a CAM), not {args.method!r}: "
                "drop --layers or choose e.g. --method gradcam"
            )
    _check_targets(None if args.target is None else [args.target], sample, 1)
    options = _input_options(args)
    resolved = _load(args)  # TensorFlow loads from here on
    params = _parse_params(args.param)
    batch = _read_images([args.image], resolved.model, options, 1)
    path = explain_figure(
        resolved,
        batch,
        method=args.method,
        out=args.out,
        target=args.target,
        layer=args.layer,
        layers=None if not args.layers or args.layers == ["all"] else args.layers,
        sweep=bool(args.layers),
        params=params,
        kind=args.kind,
        style=args.style,
        seed=args.seed,
    )
    _say(args, f"input scale: {batch.input_spec.describe()}")
    if not args.quiet:
        print(path)
    return EXIT_OK


def _read_images(paths: Sequence[str], model: Any, options: dict[str, Any], limit: int) -> Any:
    """The first ``limit`` images of ``paths`` (files or folders) for ``model``, with the input
    contract options (scale, aspect ratio, class names)."""
    from vizkit.inputs import _expand_sources, load_images

    items = [item for item, _ in _expand_sources(list(paths))][:limit]
    return load_images(items, model, **options)


def _run_predict(args: argparse.Namespace, argv: Sequence[str]) -> int:
    for path in args.images:
        _check_file(path, "image")
    options = _input_options(args)
    resolved = _load(args)  # TensorFlow loads from here on
    from vizkit.inputs import _expand_sources, load_images
    from vizkit.scoring import predict

    batch = load_images(
        [item for item, _ in _expand_sources(args.images)], resolved.model, **options
    )
    frame = predict(resolved.model, batch, k=args.top).to_frame()
    _say(args, f"input scale: {batch.input_spec.describe()}")
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    else:
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return EXIT_OK


def _scan_parser(commands: Any, formatter: Any) -> None:
    """The ``vizkit scan`` subcommand."""
    scan = commands.add_parser(
        "scan",
        help="explain a whole dataset into a resumable store (Parquet table + Zarr maps)",
        description=(
            "Stream a folder of images (class subfolders as labels, or flat) through the\n"
            "model and attribution methods: DIR/scan.parquet gets one row per image\n"
            "(prediction, map statistics, health, metrics), DIR/maps.zarr the maps.\n"
            "Rerunning the same command resumes an interrupted scan; adding methods\n"
            "computes only what is missing. Unreadable files are listed in\n"
            "DIR/skipped.parquet, never fatal."
        ),
        epilog=EXIT_CODES_HELP
        + "\nexample:\n  vizkit scan --model sample:shapes_vgg --images shapes/images "
        "--masks shapes/masks \\\n      --methods gradcam,saliency --metrics pointing_game "
        "--out scan/",
        formatter_class=formatter,
    )
    _model_args(scan)
    scan.add_argument(
        "--images", required=True, nargs="+", metavar="PATH", help="a folder, or image files"
    )
    scan.add_argument(
        "--masks", metavar="DIR", help="object masks: a folder mirroring the images' paths"
    )
    scan.add_argument(
        "--methods",
        type=_csv,
        default=["gradcam"],
        metavar="M1,M2",
        help="attribution methods, comma-separated (default: gradcam; see 'vizkit methods')",
    )
    scan.add_argument(
        "--layer", help="layer for CAM methods (default: the last convolutional layer)"
    )
    scan.add_argument(
        "--metrics",
        type=_csv,
        default=[],
        metavar="M1,M2",
        help="per-image metrics: deletion, insertion, pointing_game, relevance_mass "
        "(the last two need --masks)",
    )
    scan.add_argument("--out", required=True, metavar="DIR", help="the scan folder")
    scan.add_argument(
        "--target",
        choices=["predicted", "label"],
        default="predicted",
        help="explain the predicted class or the true label (default: predicted)",
    )
    scan.add_argument("--chunk-size", type=_positive, metavar="N", help="images per chunk")
    scan.add_argument(
        "--map-dtype",
        choices=["float16", "float32"],
        default="float16",
        help="stored map precision (default: float16)",
    )
    scan.add_argument(
        "--map-size", type=_positive, metavar="S", help="store maps downsampled to SxS"
    )
    scan.add_argument(
        "--no-images", action="store_true", help="do not keep thumbnails of the images"
    )
    scan.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local threads, or a Ray Data actor pool (RAY_ADDRESS picks the cluster)",
    )
    scan.add_argument(
        "--workers", type=_positive, metavar="N", help="Ray actors (default: one per CPU)"
    )
    scan.add_argument(
        "--overwrite", action="store_true", help="replace a scan of another model in --out"
    )
    scan.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _input_args(scan, resize=False, labels=False)
    _common(scan)
    scan.set_defaults(handler=_run_scan)


def _run_scan(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from vizkit.scanning import scan

    for path in args.images:
        _check_file(path, "image source")
    if args.masks:
        _check_file(args.masks, "mask folder")
    resolved = _load(args)
    source = args.images[0] if len(args.images) == 1 else args.images
    methods: Any = args.methods
    if args.layer:
        from vizkit.registry import get_method

        methods = {
            m: ({"layer": args.layer} if get_method(m).needs_layer else {}) for m in args.methods
        }
    try:
        result = scan(
            resolved,
            source,
            methods,
            out=args.out,
            metrics=args.metrics,
            masks=args.masks,
            targets="label" if args.target == "label" else None,
            chunk_size=args.chunk_size,
            map_dtype=args.map_dtype,
            map_size=args.map_size,
            store_images=not args.no_images,
            engine=args.engine,
            workers=args.workers,
            overwrite=args.overwrite,
            seed=args.seed,
            trust=args.trust,
            value_range=args.value_range,
            preprocess=args.preprocess,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"{PROG}: scan interrupted; what was stored in {args.out} is kept: run the same "
            "command again to resume",
            file=sys.stderr,
        )
        raise
    _say(args, f"{len(result.table)} images scanned, {len(result.skipped)} skipped")
    if not args.quiet:
        print(result.root)
    return EXIT_OK


def _parse_params(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    import ast

    params: dict[str, Any] = {}
    for name, raw in pairs:
        try:
            params[name] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[name] = raw  # a plain word such as a layer name or a mode
    return params


def _run_summary(args: argparse.Namespace, argv: Sequence[str]) -> int:
    resolved = _load(args)
    from vizkit.summary import summarize

    summary = summarize(resolved.model, expand_nested=args.expand_nested)
    if args.format == "csv":
        summary.to_frame().to_csv(sys.stdout, index=False)
    else:
        print(summary.to_text(width=args.width))
    return EXIT_OK


def _paragraph(text: str, indent: int = 4, width: int = 96) -> str:
    import textwrap

    pad = " " * indent
    return textwrap.fill(
        text,
        width,
        initial_indent=pad,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _describe(entry: Any, kind: str) -> list[str]:
    """The lines ``vizkit methods`` prints for one method or metric entry."""
    lines = [f"{entry.name}: {entry.label}" + (f" ({kind})" if kind else "")]
    lines.append(_paragraph(entry.description))
    if entry.reference and entry.reference != "vizkit":
        lines.append(_paragraph(f"Paper: {entry.reference}"))
        if entry.url and entry.url not in entry.reference:
            lines.append(f"    {entry.url}")
    return lines + [""]


def _run_methods(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from vizkit.manifest import METHODS, METRICS  # no TensorFlow: a static copy of the registry
    from vizkit.registry import FAMILIES

    known = [e.name for e in METHODS] + [e.name for e in METRICS]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise InputError(f"unknown method or metric {unknown[0]!r}: choose from {', '.join(known)}")
    wanted = set(args.names or known)
    methods = [e for e in METHODS if e.name in wanted]
    metrics = [e for e in METRICS if e.name in wanted]
    if args.brief:
        for entry in methods:
            layer = "  (uses a layer)" if entry.needs_layer else ""
            print(f"{entry.name:<24} {entry.label}{layer}")
        for entry in metrics:
            print(f"{entry.name:<24} {entry.label} (metric)")
        return EXIT_OK
    if methods:
        print("Attribution methods (--methods, --method):\n")
    for entry in methods:
        family = FAMILIES[entry.family].lower() + ("; uses a layer" if entry.needs_layer else "")
        print("\n".join(_describe(entry, family)))
    if metrics:
        print("Metrics (vizkit.evaluate, vizkit scan --metrics):\n")
    for entry in metrics:
        print("\n".join(_describe(entry, f"{entry.better} is better" if entry.better else "")))
    return EXIT_OK


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def exit_code_for(error: BaseException) -> int:
    """The documented exit code for an exception raised while running a command."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, ModelFileError):  # includes UnsafeModelError
        return EXIT_MODEL
    if isinstance(error, (VizkitError, UsageError, FileNotFoundError)):
        return EXIT_USAGE
    return EXIT_INTERNAL


def _configure_logging(debug: bool) -> None:
    import logging

    if debug:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        logging.getLogger("vizkit").setLevel(logging.DEBUG)


def _with_warnings(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the command; vizkit's sanity findings print as ``vizkit: warning: ...`` lines."""
    import warnings

    from vizkit.errors import VizkitWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VizkitWarning)
        try:
            return int(args.handler(args, argv))
        finally:
            others = [w for w in caught if not issubclass(w.category, VizkitWarning)]
            messages = dict.fromkeys(
                one_line(str(w.message)) for w in caught if issubclass(w.category, VizkitWarning)
            )
            for message in messages:
                print(f"{PROG}: warning: {message}", file=sys.stderr)
            caught.clear()
            for w in others:  # not vizkit's: shown as Python would
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vizkit`` command with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as stop:  # --help, --version
            return int(stop.code or 0) if not isinstance(stop.code, str) else EXIT_USAGE
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        _configure_logging(args.debug)
        return _with_warnings(args, argv)
    except UsageError as error:
        print(
            f"{error.prog}: error: {one_line(str(error))} (see '{error.prog} --help')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the CLI's last line of defence
        code = exit_code_for(error)
        if debug:
            import traceback

            traceback.print_exc()
        if code == EXIT_INTERNAL:
            message = f"internal error: {type(error).__name__}: {one_line(str(error))}"
            if not debug:
                message += " (run again with --debug for the traceback)"
        else:
            message = one_line(str(error))
            if isinstance(error, UnsafeModelError):  # the library says trust=True
                message = message.replace("trust=True", "--trust")
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
