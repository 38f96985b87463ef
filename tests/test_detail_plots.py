"""Result plots the dashboard used to draw itself: explanation rows, a feature-map channel, and
the confusion matrix. Built from hand-made results (no TensorFlow); they assert on what was drawn."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from matplotlib.figure import Figure

from vizkit.errors import InputError
from vizkit.plotting import plot_channel, plot_confusion_matrix, plot_explanation_rows
from vizkit.results import ConfusionMatrix
from vizkit.results.explanation import Explanation, Predictions
from vizkit.results.inspection import FeatureMaps

# --------------------------------------------------------------------------------------------
# Confusion matrix
# --------------------------------------------------------------------------------------------
LABELS = np.array([0, 0, 1, 1, 1, 2, 2, 3])
PREDICTED = np.array([0, 1, 1, 1, 2, 2, 0, 0])


def test_confusion_matrix_counts_and_per_class_scores_match_scikit_learn():
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    matrix = ConfusionMatrix.from_predictions(LABELS, PREDICTED, ["a", "b", "c", "d"])
    np.testing.assert_array_equal(matrix.counts, confusion_matrix(LABELS, PREDICTED))
    assert matrix.accuracy == pytest.approx(4 / 8) and matrix.total == 8
    precision, recall, f1, support = precision_recall_fscore_support(
        LABELS, PREDICTED, labels=[0, 1, 2, 3], zero_division=0
    )
    frame = matrix.to_frame()
    assert list(frame["class"]) == ["a", "b", "c", "d"]
    np.testing.assert_allclose(frame["precision"], precision)
    np.testing.assert_allclose(frame["recall"], recall)
    np.testing.assert_allclose(frame["f1"], f1)
    np.testing.assert_array_equal(frame["support"], support)
    np.testing.assert_allclose(matrix.normalized().sum(axis=1), [1, 1, 1, 1])
    assert pickle.loads(pickle.dumps(matrix)).counts.tolist() == matrix.counts.tolist()


def test_confusion_matrix_refuses_bad_input_with_one_line():
    with pytest.raises(InputError, match="differ in length"):
        ConfusionMatrix.from_predictions([0, 1], [0])
    with pytest.raises(InputError, match="0..1"):
        ConfusionMatrix.from_predictions([0, 2], [0, 1], num_classes=2)
    with pytest.raises(InputError, match="square"):
        ConfusionMatrix(counts=np.zeros((2, 3)))
    assert ConfusionMatrix.from_predictions([0, 1], [1, 1]).class_names == ("0", "1")


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_plot_writes_every_cell_and_the_accuracy(normalize):
    matrix = ConfusionMatrix.from_predictions(LABELS, PREDICTED, ["a", "b", "c", "d"])
    fig = Figure()
    ax = matrix.plot(fig.add_subplot(), normalize=normalize)
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 16
    assert cells[0] == ("0.50" if normalize else "1")
    assert "accuracy 50.0%" in ax.get_title()
    assert len(fig.axes) == 2  # the matrix and its colour bar
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert len(plot_confusion_matrix(matrix, Figure().add_subplot(), values=False).texts) == 0


# --------------------------------------------------------------------------------------------
# Explanation rows
# --------------------------------------------------------------------------------------------
def _explanation(n: int = 2) -> Explanation:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(n, 8, 8)).astype(np.float32)
    maps[0, 0, 0] = -3.0  # the largest magnitude is negative
    return Explanation(
        method="occlusion",
        label="Occlusion",
        maps=maps,
        inputs=rng.random((n, 8, 8, 3)).astype(np.float32),
        targets=np.array([1, 0][:n]),
        scores=np.zeros(n, np.float32),
        predictions=Predictions(
            classes=np.array([[1, 0], [1, 0]][:n]),
            probabilities=np.array([[0.7, 0.3], [0.6, 0.4]][:n], np.float32),
        ),
        score_kind="probability",
        value_range=(0.0, 1.0),
        class_names=("cat", "dog"),
        image_names=("first", "second")[:n],
    )


def test_explanation_rows_show_input_raw_map_with_colour_bar_and_overlay():
    explanation = _explanation()
    fig = plot_explanation_rows(explanation, colorbar_label="drop")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 6 and len(fig.axes) == 8  # 2 rows x 3 panels + 2 colour bars
    first = panels[0].get_title()
    assert "first" in first and "explains: dog (70%)" in first and "predicted: dog (70%)" in first
    assert "explains: cat (40%)" in panels[3].get_title()
    image = panels[1].images[0]
    np.testing.assert_array_equal(image.get_array(), explanation.maps[0])  # raw values
    assert image.get_clim() == (-3.0, 3.0)  # symmetric around zero in the map's units
    assert panels[1].get_title() == "Occlusion (probability)" and panels[2].get_title() == "overlay"
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bars[0].get_ylabel() == "drop"


def test_explanation_rows_pick_images_and_refuse_bad_ones():
    explanation = _explanation()
    fig = plot_explanation_rows(explanation, images=[1], map_title="custom")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 and "second" in panels[0].get_title()
    assert panels[1].get_title() == "custom"
    with pytest.raises(InputError, match="out of range"):
        plot_explanation_rows(explanation, images=[2])
    with pytest.raises(InputError, match="no images"):
        plot_explanation_rows(explanation, images=[])


# --------------------------------------------------------------------------------------------
# Feature-map channel
# --------------------------------------------------------------------------------------------
def _maps(images: bool = True) -> FeatureMaps:
    acts = np.arange(2 * 3 * 3 * 4, dtype=np.float32).reshape(2, 3, 3, 4)
    return FeatureMaps(
        activations=acts,
        layer="block/conv",
        layer_shape=(3, 3, 4),
        images=np.full((2, 12, 12, 3), 0.5, np.float32) if images else None,
        names=("a", "b"),
        origin=(1.5, 1.5),
        stride=(4.0, 4.0),
    )


def test_channel_detail_places_the_map_on_receptive_field_centres():
    maps = _maps()
    fig = plot_channel(maps, 1, 2)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 and len(fig.axes) == 4
    assert panels[0].get_title() == "b"
    np.testing.assert_array_equal(panels[1].images[0].get_array(), maps.activations[1, ..., 2])
    assert "block/conv channel 2 (3x3)" in panels[1].get_title()
    overlay = panels[2].images[1]
    # unit (0, 0) is centred on input pixel 1.5 and units are 4 pixels apart
    assert overlay.get_extent() == [-0.5, 11.5, 11.5, -0.5]
    assert panels[2].get_xlim() == (-0.5, 11.5)


def test_channel_detail_without_images_and_bad_requests():
    assert len([a for a in plot_channel(_maps(images=False), 0, 0).axes]) == 2
    with pytest.raises(InputError, match="channel 4 is out of range"):
        plot_channel(_maps(), 0, 4)
    with pytest.raises(InputError, match="image index 5"):
        plot_channel(_maps(), 5, 0)
    dense = FeatureMaps(activations=np.zeros((1, 4), np.float32), layer="fc")
    with pytest.raises(InputError, match="no spatial maps"):
        plot_channel(dense, 0, 0)
