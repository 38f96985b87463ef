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


def _explanation(method, target=1, predicted=0, maps=None):
    import vizkit

    info = vizkit.get_method(method)
    predictions = Predictions(
        classes=np.array([[predicted, target]]), probabilities=np.array([[0.9, 0.1]], np.float32)
    )
    explanation = fake_explanation(
        np.zeros((1, 8, 8)) if maps is None else maps,
        targets=np.array([target]),
        method=method,
        predictions=predictions,
    )
    explanation.family = info.family
    return explanation


def test_advice_follows_the_family_from_the_registry():
    import vizkit

    reasons = {}
    for method in vizkit.available_methods():
        family = vizkit.get_method(method).family
        blank = map_health(_explanation(method, target=0))[0]
        assert blank.status == "blank"
        reasons.setdefault(family, set()).add(blank.reason)
        constant = map_health(_explanation(method, maps=np.full((1, 8, 8), 0.5)))[0]
        assert constant.status == "constant"
        if family == "perturbation":
            assert "patch" in constant.reason and "layer" not in constant.reason
            assert "patch" in blank.reason and "layer" not in blank.reason
        if family in ("cam", "score-cam", "activation-cam"):
            assert "layer" in constant.reason
        if family == "gradient":
            assert "layer" not in blank.reason + constant.reason
            assert "score='logit'" in blank.reason
        if family == "activation-cam":
            assert "logit" not in blank.reason  # no score is involved
    assert all(len(r) == 1 for r in reasons.values())  # one family, one advice
    assert len({r for rs in reasons.values() for r in rs}) == len(reasons)  # distinct advice
    # a bare array with a registered name gets its family's advice too
    assert "patch" in check_map(np.zeros((4, 4)), method="occlusion").reason


def test_score_cam_blank_for_a_class_the_model_does_not_predict_is_explained():
    report = map_health(_explanation("scorecam", target=1, predicted=0))[0]
    assert report.status == "blank"
    assert "class 1 (p = 10.00%, the model predicts 0)" in report.reason
    assert "explain the predicted class" in report.reason
    same = map_health(_explanation("scorecam", target=0, predicted=0))[0]
    assert "pick another layer" in same.reason


def test_score_cam_on_a_saturated_model_is_flagged_for_every_other_class():
    """A softmax so sure of class 0 that no masked image makes another class likely: the maps
    of classes 1 and 2 are (near) zero and flagged; class 0's map is fine."""
    import vizkit
    from vizkit._tf import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(h)
    head = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, head(h))
    kernel, _ = head.get_weights()
    head.set_weights([kernel * 0.01, np.array([12.0, 0.0, -30.0], np.float32)])
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    health = {t: map_health(vizkit.explain(model, x, "scorecam", targets=t)) for t in (0, 1, 2)}
    assert health[0].ok
    for t in (1, 2):
        assert [r.status for r in health[t]] == ["blank", "blank"], t
        assert f"class {t} (p = " in health[t][0].reason


def test_every_metric_has_a_plain_language_description():
    from vizkit.metrics import METRIC_INFO, METRICS, metric_info

    assert set(METRIC_INFO) == set(METRICS)
    for name in METRICS:
        info = metric_info(name)
        assert info.label and info.reference and 150 <= len(info.description) <= 800, name
        assert info.better in ("lower", "higher", "")
    assert metric_info("health").name == "map_health"
    with pytest.raises(InputError, match="unknown metric 'auc'"):
        metric_info("auc")
