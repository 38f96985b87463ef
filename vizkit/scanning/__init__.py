"""Whole datasets: :func:`scan` explains every image into a resumable store; :func:`open_scan`
reads it back with dataset-level views.

Importing this package loads no TensorFlow (the dashboard opens scans with :class:`Scan`);
TensorFlow loads when a scan computes.
"""

from __future__ import annotations

from vizkit.scanning.reader import Scan, open_scan
from vizkit.scanning.run import scan

__all__ = ["Scan", "open_scan", "scan"]
