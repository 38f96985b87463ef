"""The one head rule (vizkit.scoring): predicted classes, target scores, probabilities, and
vizkit.predict, against closed forms and the caller's own model outputs."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from vizkit._tf import keras
from vizkit.models import class_probabilities, head_info
from vizkit.scoring import Scoring


def head_of(units, activation=None):
    return head_info(keras.Sequential([keras.Input((2,)), keras.layers.Dense(units, activation)]))


@pytest.mark.parametrize(
    "units, activation, outputs, expected",
    [
        (3, "softmax", [[0.2, 0.5, 0.3]], [[0.2, 0.5, 0.3]]),
        (2, None, [[0.0, np.log(3.0)]], [[0.25, 0.75]]),  # linear head: softmax of logits
        (2, "sigmoid", [[0.9, 0.4]], [[0.9, 0.4]]),  # multi-label: one probability per unit
        (1, "sigmoid", [[0.8]], [[0.2, 0.8]]),
        (1, None, [[np.log(4.0)]], [[0.2, 0.8]]),  # a binary logit: its sigmoid
    ],
)
def test_probabilities_of_each_head(units, activation, outputs, expected):
    head = head_of(units, activation)
    probs = Scoring(head, "probability").probabilities(np.array(outputs)).numpy()
    np.testing.assert_allclose(probs, expected, rtol=1e-6)
    np.testing.assert_allclose(class_probabilities(np.array(outputs), head), expected, rtol=1e-6)
    assert class_probabilities(np.array(outputs), head).dtype == np.float32


def test_single_unit_class_zero_is_the_negation():
    sigmoid, logit = head_of(1, "sigmoid"), head_of(1)
    assert logit.binary and logit.num_classes == 2
    for head in (sigmoid, logit):
        rule = Scoring(head, "logit")
        np.testing.assert_allclose(rule.score([[2.0], [2.0]], [1, 0]), [2.0, -2.0])
        assert rule.predicted([[-1.0], [2.0]]).numpy().tolist() == [0, 1]
    rule = Scoring(sigmoid, "probability")  # the model's own output: a probability
    np.testing.assert_allclose(rule.score([[0.8], [0.8]], [1, 0]), [0.8, 0.2], atol=1e-6)
    assert rule.predicted([[0.7], [0.2]]).numpy().tolist() == [1, 0]
    rule = Scoring(logit, "probability")  # a logit unit's probability is its sigmoid
    p = 1 / (1 + np.exp(-2.0))
    np.testing.assert_allclose(rule.score([[2.0], [2.0]], [1, 0]), [p, 1 - p], rtol=1e-6)


def test_resolve_replaces_only_minus_one_and_returns_matching_scores():
    rule = Scoring(head_of(3), "logit")
    out = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]], np.float32)
    resolved, scores = rule(out, [-1, 2])
    assert resolved.numpy().tolist() == [1, 2]
    np.testing.assert_allclose(scores, [2.0, 1.0])
    with pytest.raises(vizkit.InputError, match="score='prob'.*logit, probability"):
        Scoring(head_of(3), "prob")


def test_predict_matches_the_models_own_outputs():
    model = zoo.sequential()
    x = zoo.images(5)
    probs = np.asarray(model(x, training=False), np.float64)
    preds = vizkit.predict(model, x, k=2, batch_size=2)
    assert isinstance(preds, vizkit.Predictions) and len(preds) == 5
    np.testing.assert_allclose(preds.all_probabilities, probs, rtol=1e-5)
    np.testing.assert_array_equal(preds.top, probs.argmax(axis=1))
    np.testing.assert_array_equal(preds.classes, np.argsort(-probs, axis=1)[:, :2])
    np.testing.assert_allclose(preds.probabilities, -np.sort(-probs, axis=1)[:, :2], rtol=1e-5)
    np.testing.assert_allclose(preds.probability_of([2] * 5), probs[:, 2], rtol=1e-5)
    # explanations carry the same predictions (top 5 of 3 classes: all three)
    e = vizkit.explain(model, x, "saliency")
    np.testing.assert_array_equal(e.predictions.classes[:, :2], preds.classes)
    np.testing.assert_allclose(e.predictions.probabilities[:, :2], preds.probabilities, 1e-5)
    np.testing.assert_array_equal(e.targets, preds.top)


def test_predict_on_a_logits_head_a_binary_head_and_one_output_of_many():
    model = zoo.logits()
    x = zoo.images(4)
    np.testing.assert_allclose(
        vizkit.predict(model, x).all_probabilities, zoo.head_probabilities(model, x), rtol=1e-5
    )
    binary = zoo.sigmoid_binary()
    p = np.asarray(binary(x, training=False))[:, 0]
    preds = vizkit.predict(binary, x)
    np.testing.assert_allclose(preds.all_probabilities, np.stack([1 - p, p], 1), rtol=1e-5)
    np.testing.assert_array_equal(preds.top, (p > 0.5).astype(int))
    multi = zoo.multi_output()
    with pytest.raises(vizkit.InputError, match="pick one with output="):
        vizkit.predict(multi, x)
    kind = vizkit.predict(multi, x, output="kind")
    np.testing.assert_allclose(kind.all_probabilities, np.asarray(multi(x)[1]), rtol=1e-5)
    with pytest.raises(vizkit.InputError, match="k must be a positive integer"):
        vizkit.predict(model, x, k=0)


def test_predict_reuses_its_compiled_function_and_frames_the_result():
    from vizkit.inputs import ImageBatch
    from vizkit.models import model_cache

    model = zoo.sequential()
    batch = ImageBatch(
        array=np.array(zoo.images(2)), names=("a.png", "b.png"), class_names=("x", "y", "z")
    )
    first = vizkit.predict(model, batch, k=2)
    functions = [
        v for v in model_cache(model).values() if hasattr(v, "experimental_get_tracing_count")
    ]
    counts = [f.experimental_get_tracing_count() for f in functions]
    vizkit.predict(model, zoo.images(3, seed=4))
    assert [f.experimental_get_tracing_count() for f in functions] == counts
    frame = first.to_frame()
    assert list(frame.columns) == [
        "image",
        "image_name",
        "rank",
        "class",
        "class_name",
        "probability",
    ]
    assert frame["image_name"].tolist() == ["a.png", "a.png", "b.png", "b.png"]
    assert frame["rank"].tolist() == [1, 2, 1, 2]
    assert frame["class_name"].tolist() == [("x", "y", "z")[c] for c in first.classes.ravel()]
    assert "class_name" not in vizkit.predict(model, zoo.images(2)).to_frame().columns
    assert first[1].to_frame(["p", "q", "r"])["class_name"].iloc[0] == "pqr"[first.classes[1, 0]]
