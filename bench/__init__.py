"""vizkit's benchmarks: ``python -m bench`` (or ``make bench``) runs every ``bench/bench_*.py``.

Each module exposes ``run(report)``; ``report.add(name, results, lines)`` prints the lines and
keeps the results (``python -m bench --json out.json`` writes them). ``report.quick`` is True
under ``--quick`` (about a minute in all): modules should then shrink their work.
"""
