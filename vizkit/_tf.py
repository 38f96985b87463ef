"""The one place that imports TensorFlow and Keras, after quieting their start-up logs.

Import ``tf`` and ``keras`` from here (``from vizkit._tf import tf, keras``) so that any entry
point (library, dashboard, CLI, tests) gets the same quiet set-up. Users who want the logs back set
``TF_CPP_MIN_LOG_LEVEL`` themselves before importing vizkit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

_USER_CHOSE_LOGS = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in (
    "0",
    "1",
)  # asked for logs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence what TensorFlow's C++ start-up writes straight to file descriptor 2.

    TensorFlow's native libraries log oneDNN and CPU-feature notices before they read
    ``TF_CPP_MIN_LOG_LEVEL``; Python-level errors still raise normally.
    """
    if _USER_CHOSE_LOGS:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_native_stderr():
    import keras
    import tensorflow as tf

    tf.constant(0.0) + 1.0  # initialise the runtime (and its notices) while quiet

tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)

__all__ = ["tf", "keras"]
