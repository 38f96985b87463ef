"""Result objects (frozen, picklable, frames) and what their plots draw; no TF in those layers."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.metrics.helpers import edge_detector, input_gradient, linear_model
from vizkit.metrics import (
    cascading_randomization,
    deletion,
    insertion,
    map_health,
    pointing_game,
    relevance_mass,
    run_evaluation,
)
from vizkit.plotting.metrics import draw_badge, health_badge, plot_curves

ROOT = Path(__file__).resolve().parents[2]


def axes():
    return Figure().add_subplot()


@pytest.fixture(scope="module")
def curve():
    model = linear_model()
    x = np.ones((3, 2, 2, 1), np.float32)
    maps = np.random.default_rng(0).random((3, 2, 2))
    return deletion(model, x, maps, targets=0, steps=4)


def test_results_are_frozen_and_pickle(curve):
    with pytest.raises(ValueError):
        curve.scores[0, 0] = 1.0
    with pytest.raises(AttributeError):
        curve.kind = "insertion"
    again = pickle.loads(pickle.dumps(curve))
    np.testing.assert_array_equal(again.scores, curve.scores)
    assert not again.scores.flags.writeable


def test_curve_plot_draws_mean_band_and_baseline(curve):
    ax = curve.plot(axes(), label="m")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("m (AUC") and labels[1].startswith("random order (AUC")
    assert len(ax.lines) == 2 and len(ax.collections) == 1  # mean, baseline; std band
    assert "Deletion" in ax.get_title() and ax.get_xlabel() == "share of pixels removed"
    per_image = curve.plot(axes(), per_image=True)
    assert len(per_image.lines) == 2 + 3


def test_plot_without_ax_uses_pyplot(curve):
    import matplotlib.pyplot as plt

    ax = curve.plot()
    assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]


def test_compare_curves_on_one_axes(curve):
    ax = plot_curves({"a": curve, "b": curve.replace(method="b")}, ax=axes())
    assert len(ax.lines) == 3  # two methods and one shared baseline
    ins = insertion(linear_model(), np.ones((1, 2, 2, 1), np.float32), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="cannot mix"):
        plot_curves({"a": curve, "b": ins}, ax=axes())


def test_localization_plots():
    maps = np.random.default_rng(0).random((4, 6, 6))
    masks = np.zeros((4, 6, 6), bool)
    masks[:, 1:4, 1:4] = True
    pg = pointing_game(maps, masks).plot(axes())
    assert len(pg.patches) == 4 and "Pointing game" in pg.get_title()
    rm = relevance_mass(maps, masks).plot(axes())
    assert len(rm.patches) == 4 and "Relevance mass" in rm.get_title()


def test_cascade_plot_flags_failing_methods(cnn, images):
    flagged = cascading_randomization(cnn, images, edge_detector)
    ax = flagged.plot(axes())
    assert "FAILS" in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "head", "conv2", "conv1"]
    assert len(ax.lines) == 3 + 3  # three similarities; threshold +- and the checked step
    passing = cascading_randomization(cnn, images, input_gradient)
    assert "FAILS" not in passing.plot(axes()).get_title()
    fig = flagged.plot_maps(Figure(), image=1)
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "original"
    assert "fails the sanity check" in fig._suptitle.get_text()
    assert any("barely change" in t.get_text() for t in ax.texts)
    assert pickle.loads(pickle.dumps(flagged)).flagged


def test_health_plot_and_badges():
    maps = np.stack([np.zeros((4, 4)), np.random.default_rng(0).random((4, 4))])
    result = map_health(maps)
    ax = result.plot(axes())
    assert len(ax.patches) == 5 and "1 of 2 maps fail" in ax.get_title()
    assert health_badge(result[0]) == "\u26a0 blank" and health_badge(result[1]) == ""
    image_ax = axes()
    assert draw_badge(image_ax, result[0]) is not None and draw_badge(image_ax, result[1]) is None
    assert image_ax.texts[0].get_text() == "\u26a0 blank"


def test_evaluation_result_plot_and_pickle(cnn, images):
    result = run_evaluation(cnn, images, {"g": input_gradient}, metrics=["insertion"], steps=3)
    ax = result.plot(axes(), kind="insertion")
    assert "Insertion" in ax.get_title()
    again = pickle.loads(pickle.dumps(result))
    assert again.to_frame().equals(result.to_frame())


LAYERED = [
    "vizkit/results/metrics.py",
    "vizkit/plotting/metrics.py",
    "vizkit/metrics/health.py",
    "vizkit/metrics/localization.py",
    "vizkit/metrics/_common.py",
]


@pytest.mark.parametrize("path", LAYERED)
def test_no_tensorflow_at_import_time(path):
    tree = ast.parse((ROOT / path).read_text())
    banned = ("tensorflow", "keras", "vizkit._tf", "tf_keras_vis", "streamlit")
    for node in tree.body:  # module level only: _common imports TF lazily inside scorer()
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            assert not name.startswith(banned), f"{path} imports {name}"
    if "results" in path or "plotting" in path:
        assert "vizkit._tf" not in (ROOT / path).read_text()


def test_importing_metrics_does_not_load_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, vizkit.metrics, vizkit.plotting.metrics, vizkit.results.metrics; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # the dashboard badges maps without TensorFlow
