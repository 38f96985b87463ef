"""The methods x metrics table."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from tests.metrics.helpers import edge_detector, input_gradient
from vizkit.errors import InputError
from vizkit.inputs import ImageBatch
from vizkit.metrics import evaluate, run_evaluation
from vizkit.results.metrics import EvaluationResult, PerturbationCurve


def masks(n=5, size=8):
    out = np.zeros((n, size, size), bool)
    out[:, 2:6, 2:6] = True
    return out


def test_table_rows_methods_columns_metrics(cnn, images):
    frame = evaluate(cnn, images, {"grad": input_gradient, "edges": edge_detector}, masks=masks())
    assert frame.index.tolist() == ["grad", "edges"]
    assert frame.index.name == "method"
    for column in (
        "deletion_auc",
        "deletion_random_auc",
        "insertion_auc",
        "pointing_game",
        "relevance_mass",
        "relevance_mass_chance",
        "unhealthy_maps",
    ):
        assert column in frame.columns
    assert frame.loc["grad", "relevance_mass_chance"] == pytest.approx(16 / 64)


def test_each_methods_maps_are_computed_once(cnn, images):
    calls = []

    def counted(model, x, targets):
        calls.append(len(x))
        return input_gradient(model, x, targets)

    run_evaluation(cnn, images, {"counted": counted}, masks=masks())
    assert calls == [5]


def test_targets_are_resolved_once_for_every_method(cnn, images):
    seen = []

    def record(model, x, targets):
        seen.append(np.asarray(targets).tolist())
        return input_gradient(model, x, targets)

    run_evaluation(cnn, images, {"a": record, "b": record}, metrics=["deletion"])
    predicted = np.argmax(cnn(images).numpy(), axis=1).tolist()
    assert seen == [predicted, predicted]


def test_defaults_skip_localization_without_masks(cnn, images):
    result = run_evaluation(cnn, images, {"grad": input_gradient})
    assert result.metrics == ("deletion", "insertion", "map_health")
    batch = ImageBatch(array=images, masks=masks())
    with_masks = run_evaluation(cnn, batch, {"grad": input_gradient})
    assert "pointing_game" in with_masks.metrics
    boxes = run_evaluation(cnn, images, {"g": input_gradient}, boxes=np.tile([2, 2, 6, 6], (5, 1)))
    assert "relevance_mass" in boxes.metrics


def test_result_object_holds_curves_and_warnings(cnn, images):
    blank = np.zeros((5, 8, 8))
    result = run_evaluation(
        cnn,
        images,
        {"edges": edge_detector, "blank": blank},
        metrics=["deletion", "map_health"],
    )
    assert isinstance(result, EvaluationResult)
    curves = result.curves("deletion")
    assert set(curves) == {"edges", "blank"}
    assert isinstance(curves["edges"], PerturbationCurve) and curves["edges"].method == "edges"
    assert result.warnings["edges"] == []
    (note,) = result.warnings["blank"]  # one line per failing status, not per map
    assert note.startswith("5 of 5 maps blank (maps 0, 1, 2, 3, 4): all zeros")
    assert result.to_frame().loc["blank", "unhealthy_maps"] == 5


def test_randomization_columns_flag_model_independent_maps(cnn, images):
    frame = evaluate(
        cnn,
        images,
        {"grad": input_gradient, "edges": edge_detector},
        metrics=["cascading_randomization"],
    )
    assert frame.loc["edges", "randomization_flagged"]
    assert not frame.loc["grad", "randomization_flagged"]
    assert frame.loc["edges", "randomization_spearman"] == pytest.approx(1.0)


def test_registered_methods_and_params(cnn, images):
    frame = evaluate(
        cnn,
        images,
        ["gradcam", "saliency"],
        metrics=["deletion", "map_health"],
        params={"gradcam": {"layer": "conv1"}},
        steps=4,
    )
    assert frame.index.tolist() == ["gradcam", "saliency"]
    explanation = vizkit.explain(cnn, images, "gradcam", layer="conv1")
    again = evaluate(cnn, images, {"precomputed": explanation}, metrics="deletion", steps=4)
    assert again.loc["precomputed", "deletion_auc"] == pytest.approx(
        frame.loc["gradcam", "deletion_auc"]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": ["accuracy"]}, "unknown metric 'accuracy'"),
        ({"metrics": ["pointing_game"]}, "needs ground truth"),
        ({"metrics": ["data_randomization"]}, "needs train="),
        ({"methods": []}, "no methods given"),
        ({"params": {"occlusion": {}}}, "params given for methods not evaluated"),
    ],
)
def test_bad_arguments(cnn, images, kwargs, message):
    kwargs.setdefault("methods", ["gradcam"])
    with pytest.raises(InputError, match=message):
        evaluate(cnn, images, **kwargs)


def test_randomization_needs_a_method_not_maps(cnn, images):
    with pytest.raises(InputError, match="not precomputed maps"):
        evaluate(cnn, images, {"m": np.zeros((5, 8, 8))}, metrics=["cascading_randomization"])


def test_randomization_reruns_a_precomputed_explanation(cnn, images):
    explanation = vizkit.explain(cnn, images, "gradcam", layer="conv1")
    result = run_evaluation(cnn, images, {"g": explanation}, metrics=["cascading_randomization"])
    cascade = result.get("g", "cascading_randomization")
    np.testing.assert_allclose(cascade.original_maps, explanation.maps, rtol=1e-5, atol=1e-7)


def test_top_level_shortcut():
    assert vizkit.evaluate is evaluate
