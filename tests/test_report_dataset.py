"""The report's dataset section from a scan (issue 17, item 3): numbers against the scan's own
table, the shortcut verdict on the watermark models of tests/scanning/test_views.py, and the
checks made before any work."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

import vizkit
from tests.scanning.test_views import region_model, watermark_data, watermark_regions


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """Two hand-set models on the watermark data, each with its saliency scan: one reads the
    corner watermark (a shortcut, always right), one reads the object (about half wrong)."""
    x, labels, masks = watermark_data()
    root = tmp_path_factory.mktemp("report-scans")
    found = {}
    for name, region in watermark_regions().items():
        model = region_model(region)
        scan = vizkit.scan(
            model,
            x,
            "saliency",
            out=root / name,
            labels=labels,
            masks=masks,
            class_names=["clean", "marked"],
            chunk_size=16,
            progress=False,
        )
        found[name] = (model, scan)
    return found


def _report(model, scan, out, **kwargs):
    options = {"methods": ["saliency"], "formats": ["html"], "max_classes": 2, "progress": False}
    path = vizkit.build_report(model, None, out_dir=out, scan=scan, **{**options, **kwargs})
    return path.read_text(encoding="utf-8"), json.loads((out / "settings.json").read_text())


def _dataset_html(page: str) -> str:
    return page[page.index('<section id="dataset"') : page.index('<section id="reproducibility"')]


def test_dataset_section_numbers_come_from_the_scan(scans, tmp_path):
    model, scan = scans["object"]
    page, settings = _report(model, scan.root, tmp_path)
    assert settings["sections"]["dataset"] == {"status": "ok", "reason": ""}
    assert settings["scan"]["path"] == str(scan.root) and settings["scan"]["images"] == 40
    assert settings["command_line"] == ""  # an in-memory model cannot be rebuilt from a command
    table = scan.table
    tables = tmp_path / "tables"
    # the confusion matrix against a crosstab of the stored labels and predictions
    confusion = pd.read_csv(tables / "dataset-confusion.csv", index_col=0)
    expected = pd.crosstab(table["label"], table["prediction"]).reindex(
        index=[0, 1], columns=[0, 1], fill_value=0
    )
    np.testing.assert_array_equal(confusion.to_numpy(), expected.to_numpy())
    assert list(confusion.columns) == ["clean", "marked"]
    # per-class recall and support by hand
    classes = pd.read_csv(tables / "dataset-classes.csv")
    for c, name in enumerate(["clean", "marked"]):
        rows = table[table["label"] == c]
        row = classes[classes["class"] == name].iloc[0]
        assert row["support"] == len(rows)
        assert row["recall"] == pytest.approx((rows["prediction"] == c).mean())
    accuracy = (table["label"] == table["prediction"]).mean()
    assert f"accuracy {accuracy:.3f} on 40" in page
    # class means and right / wrong counts per class
    means = pd.read_csv(tables / "dataset-saliency-class-means.csv")
    assert list(means["images"]) == [int((table["label"] == c).sum()) for c in (0, 1)]
    errors = pd.read_csv(tables / "dataset-saliency-errors.csv")
    assert errors["wrong"].sum() == int((table["label"] != table["prediction"]).sum()) > 0
    # the shortcut check equals the library's view; this model reads the object: not flagged
    bias = pd.read_csv(tables / "dataset-saliency-spatial-bias.csv")
    pd.testing.assert_frame_equal(bias, scan.spatial_bias("saliency").to_frame(), atol=1e-12)
    section = _dataset_html(page)
    assert "saliency: no spatial bias found." in section
    assert "possible shortcut" not in section
    # figures: confusion, class means, errors, mistakes, worst by mask, spatial bias
    assert len(re.findall(r'<img src="data:image/png', section)) >= 6
    assert html.escape(vizkit.get_method("saliency").description, quote=True) in section
    assert "The scan was made with another model" not in section


def test_shortcut_is_flagged_in_the_report(scans, tmp_path):
    model, scan = scans["shortcut"]
    page, settings = _report(model, scan, tmp_path, formats=["html", "png"])
    section = _dataset_html(page)
    notes = re.findall(r'<div class="note warning">([^<]*possible shortcut[^<]*)</div>', section)
    assert len(notes) == 3  # border, corners and object: its attribution is all in the corner
    assert "No mistakes" in section  # it is always right, by reading the watermark
    pngs = sorted((tmp_path / "figures").glob("*dataset*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert set(settings["files"]) >= {p.relative_to(tmp_path).as_posix() for p in pngs}


def test_a_scan_of_another_model_is_named_and_bad_scan_folders_fail_first(scans, tmp_path):
    model, _ = scans["object"]
    _, other = scans["shortcut"]
    page, _ = _report(model, other, tmp_path / "other", max_classes=1)
    assert "The scan was made with another model" in _dataset_html(page)
    with pytest.raises(vizkit.InputError, match="is not a vizkit scan"):
        vizkit.build_report(model, out_dir=tmp_path / "bad", scan=tmp_path, progress=False)
    assert not (tmp_path / "bad").exists()


def test_without_a_scan_there_is_no_dataset_section(scans, tmp_path):
    from vizkit.report import SECTIONS

    assert "dataset" in dict(SECTIONS)
    model, _ = scans["object"]
    page, settings = _report(model, None, tmp_path, max_classes=1)
    assert "dataset" not in settings["sections"] and settings["scan"] is None
    assert '<section id="dataset"' not in page
