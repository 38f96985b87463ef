"""The Dataset page on a small generated scan: open it, filter, sort, pick an image (its stored
maps, nothing recomputed), every dataset view; start a scan in the background; refuse paths
outside the data folder."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.dashboards.conftest import problems


@pytest.fixture
def dataset_app(make_app, scan_data, monkeypatch):
    monkeypatch.setenv("VIZKIT_DASHBOARD_DATA", str(scan_data))
    app = make_app("tiny", images=0)
    app.switch_page("views/dataset.py").run()
    return app


def metrics(app) -> dict[str, str]:
    return {m.label: m.value for m in app.main.metric}


def table(app):
    return app.main.dataframe[0].value


def test_a_scan_opens_with_every_view(dataset_app, scan_data):
    import vizkit

    app = dataset_app
    assert not problems(app), problems(app)
    assert app.selectbox(key="keep_ds_scan").value == "scans/tiny"
    scan = vizkit.open_scan(scan_data / "scans" / "tiny")
    found = metrics(app)
    assert found["Images"] == "60" and found["State"] == "complete"
    assert found["Accuracy"] == f"{scan.table['correct'].mean():.1%}"
    assert [t.label for t in app.main.tabs] == [
        "Images",
        "Per class",
        "Confusion",
        "When wrong",
        "Worst images",
        "Spatial bias",
    ]
    # the image's maps, class means, confusion matrix and mistakes, errors, worst, bias
    assert len(app.main.image) >= 6
    assert not (scan.table["correct"]).all()  # the untrained model makes mistakes to show
    for rank in ("outside_mask", "faithfulness", "saliency.abs_mean"):
        app.selectbox(key="keep_ds_rank_by").set_value(rank.split(".")[-1]).run()
        errors = [e.value for e in app.main.error]
        if rank == "faithfulness":  # the scan has no deletion metric: one line says so
            assert len(errors) == 1 and "deletion" in errors[0] and "\n" not in errors[0]
        else:
            assert not errors, errors
    app.selectbox(key="keep_ds_method").set_value("saliency").run()
    app.radio(key="keep_ds_means_by").set_value("prediction").run()
    assert not problems(app), problems(app)


def test_filter_sort_and_pick_an_image_without_recomputing(dataset_app, scan_data):
    import vizkit
    from dashboards import caches

    app = dataset_app
    scan = vizkit.open_scan(scan_data / "scans" / "tiny")
    app.multiselect(key="keep_ds_classes").set_value([1]).run()
    shown = table(app)
    assert set(shown["label"]) == {scan.class_name(1)} and len(shown) == 20
    app.selectbox(key="keep_ds_outcome").set_value("wrong").run()
    wrong = table(app)
    expected = scan.filter(label=1, correct=False)
    assert list(wrong["id"]) == list(expected["id"]) and not wrong["correct"].any()
    app.multiselect(key="keep_ds_classes").set_value([]).run()
    app.selectbox(key="keep_ds_outcome").set_value("all").run()
    app.selectbox(key="keep_ds_sort").set_value("probability").run()
    assert np.all(np.diff(table(app)["probability"].to_numpy()) >= 0)
    app.checkbox(key="keep_ds_descending").check().run()
    assert np.all(np.diff(table(app)["probability"].to_numpy()) <= 0)  # largest first
    app.selectbox(key="keep_ds_metric").set_value("border_share").run()
    low, high = app.slider(key="keep_ds_range_gradcam_border_share").value
    middle = float(np.median(scan.table["gradcam.border_share"]))
    app.slider(key="keep_ds_range_gradcam_border_share").set_value((low, middle)).run()
    kept = table(app)
    assert 0 < len(kept) < 60 and (kept["border_share"] <= middle + 1e-9).all()
    jobs_before = len(caches.jobs())
    image = int(kept["id"].iloc[-1])
    app.selectbox(key="keep_ds_image").set_value(image).run()
    assert not problems(app), problems(app)
    caption = next(c.value for c in app.main.caption if "nothing recomputed" in c.value)
    assert caption.startswith(scan.table.set_index("id").loc[image, "path"])
    assert len(caches.jobs()) == jobs_before  # read from the store, no job ran


def test_paths_outside_the_data_folder_are_refused(dataset_app):
    app = dataset_app
    app.text_input(key="keep_ds_scan_path").set_value("../..").run()
    errors = [e.value for e in app.main.error]
    assert len(errors) == 1 and "outside the dashboard's data folder" in errors[0]
    assert not app.exception


def test_a_folder_is_scanned_in_the_background(dataset_app, scan_data):
    import vizkit

    app = dataset_app
    app.radio(key="keep_ds_source").set_value("scan").run()
    assert app.selectbox(key="keep_ds_folder").value == "shapes/images"
    assert app.selectbox(key="keep_ds_masks_shapes/images").value == "shapes/masks"
    app.text_input(key="keep_ds_out_shapes/images").set_value("scans/background").run()
    app.button(key="ds_start").click().run()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        app.run()
        assert not problems(app), problems(app)
        if any("Scanned 60 images" in s.value for s in app.main.success):
            break
        time.sleep(1.0)
    else:
        raise AssertionError("the background scan did not finish")
    app.run()
    assert metrics(app)["Images"] == "60"
    scan = vizkit.open_scan(scan_data / "scans" / "background")
    assert scan.complete and scan.methods == ("gradcam",)
