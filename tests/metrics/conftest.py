"""Fixtures for the metrics tests (tiny models only; see helpers.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.metrics.helpers import tiny_cnn


@pytest.fixture(scope="module")
def cnn():
    return tiny_cnn()


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(1).random((5, 8, 8, 1)).astype(np.float32)
