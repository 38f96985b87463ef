"""Dataset views from a scan: values against hand computations, the shortcut check on a
watermark dataset with hand-set models, and what the plots draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import vizkit
from vizkit.results.scan import ClassMeanMaps, ConfusionView, ErrorMaps, RankedImages, SpatialBias

SIZE = 64
WATERMARK = (slice(0, 6), slice(0, 6))  # top-left corner, inside the 6-pixel border band


def watermark_data(n: int = 40, seed: int = 0):
    """Dark noisy images with a bright square object in the middle third; class 1 iff a bright
    watermark sits in the top-left corner (so the object says nothing about the class)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.2, (n, SIZE, SIZE, 3)).astype(np.float32)
    masks = np.zeros((n, SIZE, SIZE), bool)
    labels = np.arange(n) % 2
    for i in range(n):
        r, c = rng.integers(22, 34, size=2)
        masks[i, r : r + 10, c : c + 10] = True
        x[i][masks[i]] = rng.uniform(0.7, 1.0, 3)
        if labels[i]:
            x[i][WATERMARK] = 1.0
    return x, labels, masks


def region_model(region: np.ndarray):
    """Hand-set: brightness (1x1 conv, mean of RGB) -> Dense(2) reading only ``region``:
    logit 1 - logit 0 = 4 * (mean brightness in region - 0.5)."""
    from vizkit._tf import keras

    inp = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(1, 1, name="brightness")
    flat = keras.layers.Flatten()
    head = keras.layers.Dense(2, activation="softmax", name="head")
    model = keras.Model(inp, head(flat(conv(inp))), name="region_model")
    conv.set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32), np.zeros(1, np.float32)])
    weights = region.reshape(-1).astype(np.float32) / region.sum()
    kernel = np.stack([-2 * weights, 2 * weights], axis=1)
    head.set_weights([kernel, np.array([1.0, -1.0], np.float32)])
    return model


def watermark_regions() -> dict[str, np.ndarray]:
    """What each hand-set model reads: the corner watermark (a shortcut) or the object."""
    corner = np.zeros((SIZE, SIZE), bool)
    corner[WATERMARK] = True
    centre = np.zeros((SIZE, SIZE), bool)
    centre[16:48, 16:48] = True
    return {"shortcut": corner, "object": centre}


@pytest.fixture(scope="module")
def watermark_scans(tmp_path_factory):
    x, labels, masks = watermark_data()
    root = tmp_path_factory.mktemp("watermark")
    scans = {}
    for name, region in watermark_regions().items():
        scans[name] = vizkit.scan(
            region_model(region),
            x,
            "saliency",
            out=root / name,
            labels=labels,
            masks=masks,
            class_names=["clean", "marked"],
            chunk_size=16,
            progress=False,
        )
    return scans


def test_shortcut_model_is_flagged_and_object_model_is_not(watermark_scans):
    shortcut = watermark_scans["shortcut"]
    assert (shortcut.table["prediction"] == shortcut.table["label"]).all()  # it uses the mark
    bias = shortcut.spatial_bias()
    assert isinstance(bias, SpatialBias) and bias.flagged
    # saliency of this model is exactly the corner region: all attribution there
    assert bias.share("corners") == pytest.approx(1.0)
    assert bias.share("border") == pytest.approx(1.0)
    assert bias.share("object") == pytest.approx(0.0)
    assert bias.ratio("border") == pytest.approx(1 / bias.areas[0])
    assert len(bias.reasons) == 3 and "border" in bias.reasons[0]
    fair = watermark_scans["object"].spatial_bias()
    assert not fair.flagged and fair.reasons == ()
    assert fair.share("border") == pytest.approx(0.0)
    # every object lies inside the read region, which is 1024 pixels, objects 100 each
    assert fair.share("object") == pytest.approx(100 / 1024, rel=1e-3)
    assert fair.ratio("object") > 1.5


def test_class_means_and_errors_by_hand(watermark_scans):
    scan = watermark_scans["object"]
    table = scan.table
    maps = scan.maps("saliency", table["id"])
    normal = maps / np.abs(maps).reshape(len(maps), -1).max(axis=1)[:, None, None]
    view = scan.class_means(by="label")
    assert isinstance(view, ClassMeanMaps)
    for c in (0, 1):
        pick = (table["label"] == c).to_numpy()
        np.testing.assert_allclose(view.maps[c], normal[pick].mean(axis=0), rtol=1e-5, atol=1e-7)
        assert view.counts[c] == pick.sum()
    np.testing.assert_allclose(view.overall, normal.mean(axis=0), rtol=1e-5, atol=1e-7)
    errors = scan.errors()
    assert isinstance(errors, ErrorMaps)
    wrong = (table["label"] != table["prediction"]).to_numpy()
    assert (
        errors.wrong_counts.sum() == wrong.sum() and errors.correct_counts.sum() == (~wrong).sum()
    )
    if wrong.any():
        np.testing.assert_allclose(errors.overall_wrong, normal[wrong].mean(axis=0), atol=1e-6)


def test_confusion_and_rankings(watermark_scans):
    scan = watermark_scans["object"]  # looks at the object: about half its answers are wrong
    table = scan.table
    view = scan.confusion(examples=3)
    assert isinstance(view, ConfusionView)
    expected = pd.crosstab(table["label"], table["prediction"]).reindex(
        index=[0, 1], columns=[0, 1], fill_value=0
    )
    np.testing.assert_array_equal(view.matrix, expected.to_numpy())
    for c, ((i, j), ids, probs) in enumerate(zip(view.cells, view.ids, view.probabilities)):
        assert i != j
        shown = ids[ids >= 0]
        rows = table.set_index("id").loc[shown]
        assert (rows["label"] == i).all() and (rows["prediction"] == j).all()
        assert list(probs[ids >= 0]) == sorted(probs[ids >= 0], reverse=True)
        np.testing.assert_allclose(view.maps[c, : len(shown)], scan.maps("saliency", shown))
    outside = scan.ranked(by="outside_mask", k=5)
    assert isinstance(outside, RankedImages) and len(outside) == 5
    values = np.sort(1 - table["saliency.object_share"].to_numpy())[::-1][:5]
    np.testing.assert_allclose(outside.values, values)
    np.testing.assert_allclose(outside.maps, scan.maps("saliency", outside.ids))
    assert scan.ranked(by="health").total == (table["saliency.health"] != "ok").sum()
    assert set(scan.filter(correct=False)["id"]) == set(
        table["id"][table["label"] != table["prediction"]]
    )
    assert set(scan.filter(label="marked")["id"]) == set(table["id"][table["label"] == 1])
    low = scan.filter(column="border_share", high=0.0)
    assert len(low) == len(table)
    assert scan.sort("object_share", ascending=False)[
        "saliency.object_share"
    ].is_monotonic_decreasing


def test_views_plot_on_given_axes_and_pickle(watermark_scans):
    import pickle

    scan = watermark_scans["shortcut"]
    fig = Figure(figsize=(10, 8))
    axes = fig.subplots(2, 3).ravel()
    views = [
        scan.class_means(),
        scan.confusion(),
        scan.errors(),
        scan.ranked(by="outside_mask", k=4),
        scan.spatial_bias(),
    ]
    for view, ax in zip(views, axes):
        assert view.plot(ax=ax) is ax
        assert pickle.loads(pickle.dumps(view)).to_frame().equals(view.to_frame())
    assert scan.confusion().plot_examples(ax=axes[5]) is axes[5]
    montage = axes[0]
    assert len(montage.images) == 1
    assert [t.get_text() for t in montage.texts] == ["clean (n=20)", "marked (n=20)", "all (n=40)"]
    assert "possible shortcut" in axes[4].get_title()
    assert len(axes[4].patches) == 2 * len(views[4].regions)
    assert len(axes[3].texts) == 4
