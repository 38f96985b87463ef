"""Command line: ``python -m sample_models build [--force] [--mnist] [names...]``, ``list`` and
``shapes-folder OUT --count N`` (the shapes data as an image folder with masks).

The trained samples are built by :mod:`sample_models.build`, the converted ImageNet ones by
:mod:`sample_models.pretrained`; only the kind that needs work starts TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import time

from sample_models import catalog


def _list() -> int:
    print(f"sample models in {catalog.build_root()}")
    for name in catalog.SAMPLE_NAMES:
        state, reason = catalog.status(name)
        metadata = catalog.read_metadata(name) or {}
        title = metadata.get("title", "")
        print(f"  {name:<16} {state:<8} {reason}" + (f"\n  {'':<16} {title}" if title else ""))
    return 0


def _build(names: list[str], force: bool, source: str | None) -> int:
    for name in names:
        catalog.check_name(name)
    todo = [
        name
        for name in (names or catalog.SAMPLE_NAMES)
        if force
        or catalog.status(name, source=source if name.startswith("digits") else None)[0] != "ok"
    ]
    if not todo:  # nothing to do: answer without starting TensorFlow
        for name in names or catalog.SAMPLE_NAMES:
            print(f"[{name}] {catalog.status(name)[1]}", file=sys.stderr)
        return 0
    started = time.perf_counter()
    outcome: dict[str, str] = {}
    trained = [n for n in todo if n in catalog.TRAINED_NAMES]
    converted = [n for n in todo if n in catalog.CONVERTED_NAMES]
    if trained:
        from sample_models.build import build

        outcome.update(build(trained, force=force, source=source))
    if converted:
        from sample_models.pretrained import build as convert

        outcome.update(convert(converted, force=force))
    built = [n for n, s in outcome.items() if s == "built"]
    print(
        f"[sample_models] built {', '.join(built) or 'nothing'} in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sample_models``."""
    parser = argparse.ArgumentParser(
        prog="python -m sample_models", description="Build or list vizkit's sample models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser(
        "build", help="train the samples that are missing or stale (cached otherwise)"
    )
    build.add_argument("names", nargs="*", help=f"any of {', '.join(catalog.SAMPLE_NAMES)}")
    build.add_argument("--force", action="store_true", help="rebuild even when up to date")
    build.add_argument(
        "--mnist",
        action="store_true",
        help="train the digits models on real MNIST (downloads it; default: scikit-learn's "
        "bundled digits, offline)",
    )
    commands.add_parser("list", help="show each sample's state and test accuracy")
    folder = commands.add_parser(
        "shapes-folder",
        help="write shape images as OUT/images/<class>/N.png with masks in OUT/masks/",
    )
    folder.add_argument("out", help="output folder")
    folder.add_argument("--count", type=int, default=1000, help="number of images (default 1000)")
    folder.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    folder.add_argument(
        "--split", default="test", choices=["train", "val", "test"], help="random stream"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "shapes-folder":
            from sample_models.folders import write_shapes_folder

            started = time.perf_counter()
            root = write_shapes_folder(args.out, args.count, seed=args.seed, split=args.split)
            print(
                f"[sample_models] wrote {args.count} images and masks under {root} in "
                f"{time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            return 0
        return _build(args.names, args.force, "mnist" if args.mnist else None)
    except (ValueError, OSError) as err:  # InputError for unknown names, MNIST download
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
