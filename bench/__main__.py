"""Run vizkit's benchmarks in one process: ``python -m bench [--quick] [--only NAME] [--json F]``."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any


class Report:
    """Collects what each benchmark module reports, printing as it goes."""

    def __init__(self, quick: bool = False) -> None:
        self.quick = quick
        self.results: dict[str, Any] = {}

    def add(self, name: str, results: Any, lines: list[str]) -> Any:
        print(f"\n== {name} ==")
        for line in lines:
            print(line)
        sys.stdout.flush()
        self.results[name] = results
        return results

    __call__ = add


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("bench_*.py"))


def machine() -> dict[str, Any]:
    import os

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        from vizkit._tf import keras, tf

        info["tensorflow"] = tf.__version__
        info["keras"] = keras.__version__
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about one minute in all")
    parser.add_argument("--only", action="append", default=[], help="run bench_NAME only")
    parser.add_argument("--json", help="write all results to this file")
    args = parser.parse_args(argv)

    names = discover()
    if args.only:
        wanted = {n if n.startswith("bench_") else f"bench_{n}" for n in args.only}
        names = [n for n in names if n in wanted]
    report = Report(quick=args.quick)
    info = machine()
    print(f"vizkit bench {time.strftime('%Y-%m-%d %H:%M')} on {info}")
    failed = []
    for name in names:
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            module.run(report)
        except Exception:  # noqa: BLE001 - one broken bench must not hide the others
            traceback.print_exc()
            failed.append(name)
        print(f"({name}: {time.perf_counter() - start:.0f} s)")
    if args.json:
        payload = {"machine": info, "date": time.strftime("%Y-%m-%d"), "results": report.results}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=float))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
