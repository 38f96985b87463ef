"""Map health: each failure, its reason, and the badge helpers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.metrics.helpers import fake_explanation
from vizkit.errors import InputError
from vizkit.metrics import check_map, map_health
from vizkit.results.explanation import Predictions


def smooth_map(size=16):
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((yy - 5) ** 2 + (xx - 9) ** 2) / 8.0)


def test_healthy_map():
    report = check_map(smooth_map())
    assert report.ok and report.status == "ok" and report.reason == "" and report.badge == ""
    assert bool(report)


def test_blank_map_blames_a_saturated_softmax():
    report = check_map(np.zeros((8, 8)))
    assert report.status == "blank" and not report.ok
    assert "gradients vanished" in report.reason and "score='logit'" in report.reason
    tiny = check_map(np.full((8, 8), 1e-15))
    assert tiny.status == "blank"


def test_nan_constant_saturated():
    nan = smooth_map()
    nan[0, 0] = np.nan
    assert check_map(nan).status == "nan"
    assert check_map(np.full((8, 8), np.inf)).status == "nan"
    constant = check_map(np.full((8, 8), 0.3))
    assert constant.status == "constant" and "no spatial information" in constant.reason
    clipped = np.clip(smooth_map() * 10, 0, 1)  # most of the blob clipped at 1
    saturated = check_map(clipped, saturation=0.05)
    assert saturated.status == "saturated" and saturated.saturated_share > 0.05
    assert check_map(clipped, saturation=0.9).ok


def test_map_health_sequence_and_frame():
    maps = np.stack([smooth_map(), np.zeros((16, 16)), np.full((16, 16), 2.0)])
    result = map_health(maps, method="saliency")
    assert len(result) == 3 and not result.ok
    assert [r.status for r in result] == ["ok", "blank", "constant"]
    assert result.badges == ["", "blank", "constant"]
    assert [r.index for r in result.failures] == [1, 2]
    assert result.counts() == {"ok": 1, "nan": 0, "blank": 1, "constant": 1, "saturated": 0}
    frame = result.to_frame()
    assert frame["status"].tolist() == ["ok", "blank", "constant"]
    assert map_health(smooth_map()).ok  # one (H, W) map


def test_reasons_use_the_method_and_confidence():
    predictions = Predictions(
        classes=np.array([[2, 0, 1]]), probabilities=np.array([[0.99999, 1e-5, 0.0]], np.float32)
    )
    explanation = fake_explanation(
        np.zeros((1, 8, 8)), targets=np.array([2]), method="gradcam", predictions=predictions
    )
    report = map_health(explanation)[0]
    assert report.status == "blank"
    assert "earlier convolutional layer" in report.reason
    assert "sure of the target" in report.reason


def test_bad_saturation():
    with pytest.raises(InputError, match="saturation"):
        map_health(np.zeros((1, 4, 4)), saturation=0)


def test_warn_issues_one_warning_per_failing_status():
    maps = np.stack([np.zeros((4, 4)), np.zeros((4, 4)), np.full((4, 4), 1.0)])
    with pytest.warns(UserWarning) as caught:
        map_health(maps, method="saliency", warn=True)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert messages[0].startswith("saliency: 2 of 3 maps blank")
