"""Drop-in replacements for the APIs of older visualization libraries, built on vizkit.

- :mod:`vizkit.compat.keras_vis`: keras-vis (``vis.visualization``, ``vis.utils.utils``), so code
  written for keras-vis runs on TensorFlow 2 / Keras 3 with its import lines changed.

Importing this package loads nothing; each submodule loads TensorFlow when it is imported.
"""

from __future__ import annotations

__all__ = ["keras_vis"]
