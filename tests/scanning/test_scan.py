"""vizkit.scan: tables, maps and statistics against independent references; resume; sources."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

import vizkit
from tests.scanning.conftest import load_folder
from vizkit.errors import InputError
from vizkit.scanning.compute import map_statistics, regions


def _events(root):
    return [json.loads(line) for line in (root / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def folder_scan(tmp_path_factory, model, shapes):
    out = tmp_path_factory.mktemp("scan") / "store"
    result = vizkit.scan(
        model,
        shapes / "images",
        "gradcam,saliency",
        out=out,
        masks=shapes / "masks",
        metrics="pointing_game,relevance_mass,deletion",
        metric_params={"deletion": {"steps": 8}},
        chunk_size=16,
        map_dtype="float32",
        progress=False,
    )
    return result


def test_folder_scan_matches_independent_references(folder_scan, model, shapes):
    table = folder_scan.table.sort_values("id")
    x, labels, masks, paths = load_folder(shapes)
    assert table["path"].tolist() == paths
    np.testing.assert_array_equal(table["label"], labels)
    assert folder_scan.class_names == ("circle", "square", "triangle")
    # predictions and top-k probabilities: the model's own forward pass
    probs = model.predict(x, verbose=0)
    np.testing.assert_array_equal(table["prediction"], probs.argmax(axis=1))
    np.testing.assert_allclose(table["probability"], probs.max(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(table["target"], probs.argmax(axis=1))
    # content hash: blake2b of the file's bytes
    first = shapes / "images" / paths[0]
    assert table["hash"].iloc[0] == hashlib.blake2b(first.read_bytes(), digest_size=16).hexdigest()
    # stored maps: what vizkit.explain gives for the same images
    for method in ("gradcam", "saliency"):
        expected = vizkit.explain(model, x, method=method).maps
        stored = folder_scan.maps(method, table["id"].to_numpy())
        np.testing.assert_allclose(stored, expected, rtol=1e-4, atol=1e-6)
    # localization metrics: the metrics module on the same maps and masks
    cam = vizkit.explain(model, x, method="gradcam")
    hits = vizkit.metrics.pointing_game(cam.maps, masks).hits
    np.testing.assert_array_equal(table["gradcam.pointing_hit"], hits)
    mass = vizkit.metrics.relevance_mass(cam.maps, masks).mass
    np.testing.assert_allclose(table["gradcam.relevance_mass"], mass, rtol=1e-5)
    curve = vizkit.metrics.deletion(model, cam, steps=8, seed=0)
    np.testing.assert_allclose(table["gradcam.deletion_auc"], curve.auc, rtol=1e-4, atol=1e-6)
    assert (table["gradcam.health"] == "ok").all()
    assert table["correct"].tolist() == list(probs.argmax(axis=1) == labels)


def test_unreadable_files_are_skipped_with_reasons(folder_scan):
    skipped = folder_scan.skipped.set_index("path")["reason"]
    assert set(skipped.index) == {
        "square/zz_truncated.png",
        "triangle/zz_fake.png",
        "circle/notes.txt",
    }
    assert "truncated" in skipped["square/zz_truncated.png"]
    assert "not an image" in skipped["triangle/zz_fake.png"]
    assert "not an image file" in skipped["circle/notes.txt"]
    assert len(folder_scan.table) == 48
    assert ".hidden.png" not in " ".join(folder_scan.table["path"])


def test_map_statistics_by_hand():
    maps = np.zeros((2, 10, 10), np.float32)
    maps[0, 0, 0] = 3.0  # a corner pixel (border and corner)
    maps[0, 5, 5] = -1.0  # the centre, negative: counts by magnitude
    maps[1] = 1.0  # uniform: shares equal the areas
    stats = map_statistics(maps, border=0.1)
    np.testing.assert_allclose(stats["border_share"], [0.75, 0.36])
    np.testing.assert_allclose(stats["corners_share"], [0.75, 0.04])
    np.testing.assert_allclose(stats["center_share"], [0.25, 0.36])
    np.testing.assert_allclose(stats["positive_fraction"], [0.75, 1.0])
    assert (stats["peak_row"][0], stats["peak_col"][0]) == (0, 0)
    np.testing.assert_allclose(stats["centroid_row"][1], 0.5)
    areas = {k: v.mean() for k, v in regions(10, 10, 0.1).items()}
    assert areas == pytest.approx({"border": 0.36, "corners": 0.04, "center": 0.36})


def test_rerun_with_more_methods_computes_only_whats_missing(tmp_path, model, shapes):
    out = tmp_path / "store"
    first = vizkit.scan(model, shapes / "images", "gradcam", out=out, chunk_size=32, progress=False)
    before = len(_events(out))
    second = vizkit.scan(
        model, shapes / "images", ["gradcam", "saliency"], out=out, chunk_size=32, progress=False
    )
    later = _events(out)[before:]
    keys = {m["column"]: m["key"] for m in second.manifest["current"]}
    started = [e for e in later if e["event"] == "started"]
    assert started and all(e["methods"] == [keys["saliency"]] for e in started)
    pd.testing.assert_frame_equal(
        first.table[[c for c in first.table.columns]],
        second.table[[c for c in first.table.columns]],
    )
    # a third identical run computes nothing at all
    count = len(_events(out))
    vizkit.scan(
        model, shapes / "images", ["gradcam", "saliency"], out=out, chunk_size=32, progress=False
    )
    assert not [e for e in _events(out)[count:] if e["event"] == "started"]


def test_ctrl_c_leaves_a_resumable_store(tmp_path, model, shapes):
    reference = vizkit.scan(
        model, shapes / "images", "gradcam", out=tmp_path / "ref", chunk_size=8, progress=False
    )
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 3:  # after the second chunk is stored
            raise KeyboardInterrupt

    out = tmp_path / "store"
    with pytest.raises(KeyboardInterrupt):
        vizkit.scan(model, shapes / "images", "gradcam", out=out, chunk_size=8, progress=interrupt)
    partial = vizkit.open_scan(out)
    assert not partial.complete and len(partial.table) == 16
    assert not list((out).glob("tmp/*"))
    done = []
    resumed = vizkit.scan(
        model,
        shapes / "images",
        "gradcam",
        out=out,
        chunk_size=8,
        progress=lambda d, t: done.append(d),
    )
    assert done[0] == 16 and resumed.complete
    pd.testing.assert_frame_equal(resumed.table, reference.table)


def test_array_and_tf_data_sources_agree(tmp_path, model, shapes):
    from vizkit._tf import tf

    x, labels, masks, _ = load_folder(shapes)
    x, labels, masks = x[:20], labels[:20], masks[:20]
    arrays = vizkit.scan(
        model,
        x,
        "gradcam",
        out=tmp_path / "a",
        labels=labels,
        masks=masks,
        metrics="pointing_game",
        chunk_size=8,
        progress=False,
        class_names=["circle", "square", "triangle"],
    )
    dataset = tf.data.Dataset.from_tensor_slices((x, labels, masks)).batch(6)
    data = vizkit.scan(
        model,
        dataset,
        "gradcam",
        out=tmp_path / "d",
        metrics="pointing_game",
        chunk_size=8,
        progress=False,
    )
    a, d = arrays.table, data.table
    assert len(a) == len(d) == 20
    for column in ("hash", "label", "prediction", "gradcam.pointing_hit", "gradcam.border_share"):
        np.testing.assert_array_equal(a[column], d[column])
    np.testing.assert_allclose(
        arrays.maps("gradcam", range(20)), data.maps("gradcam", range(20)), rtol=1e-3, atol=1e-6
    )
    assert arrays.class_name(2) == "triangle"


def test_map_size_dtype_and_thumbnails(tmp_path, model, shapes):
    x, labels, _, _ = load_folder(shapes)
    result = vizkit.scan(model, x[:6], "gradcam", out=tmp_path / "s", map_size=16, progress=False)
    maps = result.maps("gradcam", range(6))
    assert maps.shape == (6, 16, 16)
    full = vizkit.explain(model, x[:6], method="gradcam").maps
    expected = full.reshape(6, 16, 4, 16, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(maps, expected, rtol=2e-3, atol=1e-4)  # float16
    thumbs = result.images(range(6))
    assert thumbs.shape == (6, 16, 16, 3) and thumbs.dtype == np.uint8
    explanation = result.explanation("gradcam", [0, 1])
    assert explanation.maps.shape == (2, 16, 16) and explanation.image_names


def test_bad_input_gets_one_line_errors(tmp_path, model, shapes):
    with pytest.raises(InputError, match="need object masks"):
        vizkit.scan(
            model,
            shapes / "images",
            "gradcam",
            out=tmp_path / "a",
            metrics="pointing_game",
            progress=False,
        )
    with pytest.raises(InputError, match="unknown metric"):
        vizkit.scan(
            model, shapes / "images", "gradcam", out=tmp_path / "b", metrics="nope", progress=False
        )
    with pytest.raises(InputError, match="out=DIR"):
        vizkit.scan(model, shapes / "images", "gradcam", progress=False)
    x = np.zeros((2, 64, 64, 3), np.float32)
    vizkit.scan(model, x, "gradcam", out=tmp_path / "c", progress=False)
    other = type(model).from_config(model.get_config())
    other.set_weights([w + 1 for w in model.get_weights()])
    with pytest.raises(InputError, match="another model"):
        vizkit.scan(other, x, "gradcam", out=tmp_path / "c", progress=False)
    with pytest.raises(InputError, match="not a vizkit scan"):
        vizkit.open_scan(tmp_path)
