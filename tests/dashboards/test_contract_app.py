"""The input contract in the dashboard (issue 14): the transfer model of ``tests/transfer_model.py``
started with no extra arguments gets its images on 0-255 and predicts what ``model.predict``
does on raw pixels; the input scale, aspect ratio and class names can be changed in the sidebar,
and vizkit's sanity findings show there."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.dashboards.conftest import APP, problems, sidebar_widget, upload_images


def _top(at, i: int) -> str:
    return next(b.label for b in at.main.button if b.key == f"attr_top_{i}_0")


def _class(label: str) -> int:
    """The class index of a top-class button (``"class 2 · 60%"``, ``"2: blue · 60%"``)."""
    return int(re.search(r"\d+", label).group())


@pytest.fixture
def transfer_app(monkeypatch, transfer_model_file):
    from streamlit.testing.v1 import AppTest

    path, folder, raw = transfer_model_file
    monkeypatch.setenv("VIZKIT_DASHBOARD_MODEL", str(path))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    files = sorted(folder.iterdir())
    upload_images(at, [(f.name, f.read_bytes()) for f in files])
    return at, path, raw


def test_transfer_model_predicts_on_0_255_and_the_sidebar_says_so(transfer_app):
    import vizkit

    at, path, raw = transfer_app
    assert not problems(at), problems(at)
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "Input scale used: 0-255 (detected: Rescaling" in captions
    assert not at.sidebar.warning  # nothing to flag on the right scale
    reference = vizkit.load_model(path).predict(raw.astype(np.float32), verbose=0)
    at.switch_page("views/attribution.py").run()
    assert not problems(at), problems(at)
    shown = [_top(at, i) for i in range(4)]  # the four images picked by default
    assert [_class(label) for label in shown] == list(reference[:4].argmax(1))
    assert len({_class(label) for label in shown}) > 1

    sidebar_widget(at, "selectbox", "keep_input_scale").set_value("0-1").run()  # the bug
    assert "Input scale used: 0-1 (you chose it)" in " ".join(c.value for c in at.sidebar.caption)
    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "first layers expect 0-255" in warnings

    labels = sidebar_widget(at, "file_uploader", next(
        u.key for u in at.sidebar.file_uploader if u.key.startswith("vk_labels_")
    ))  # fmt: skip
    labels.set_value(("labels.txt", b"red\ngreen\nblue\n", "text/plain")).run()
    sidebar_widget(at, "selectbox", "keep_input_scale").set_value("detected").run()
    assert not problems(at), problems(at)
    names = ("red", "green", "blue")
    assert [_top(at, i).split(" ·")[0] for i in range(4)] == [
        f"{c}: {names[c]}" for c in reference[:4].argmax(1)
    ]
    assert any("from labels.txt" in c.value for c in at.sidebar.caption)
    sidebar_widget(at, "selectbox", "keep_resize").set_value("pad").run()
    assert not problems(at), problems(at)


def test_worker_side_decoding_and_maps(transfer_model_file, tmp_path):
    """The functions the dashboard's workers run: decoding with the sidebar's spec, maps."""
    from PIL import Image

    import vizkit
    from dashboards import compute

    path, folder, raw = transfer_model_file
    facts = compute.open_model(str(path))
    assert facts.input_spec.label == "0-255" and facts.input_spec.source == "detected"
    files = [(f.name, f.read_bytes()) for f in sorted(folder.iterdir())]
    batches = compute.decode_images(files, (32, 32), 3, facts.input_spec)
    batch = vizkit.ImageBatch.concat(batches)
    np.testing.assert_allclose(batch.array, raw.astype(np.float32))
    ref = compute.ModelRef(facts.key, str(path))
    explanation = compute.explain(ref, batch, "gradcam", None, None, {}, None)
    maps = explanation.maps.reshape(len(raw), -1)
    assert np.abs(maps[:, None] - maps[None]).max() > 0.5 * np.abs(maps).max()
    assert explanation.input_spec.label == "0-255"
    assert compute.input_findings(ref, batch, None) == []

    lite0 = vizkit.input_spec(vizkit.sample_model("imagenet_lite0"))  # what describe() records
    photo = tmp_path / "photo.png"
    Image.fromarray(vizkit.sample_images("imagenet_lite0").originals[0]).save(photo)
    (decoded,) = compute.decode_images(
        [("photo.png", photo.read_bytes())], (224, 224), 3, lite0, "crop"
    )
    assert decoded.input_spec.label == "0-255" and decoded.array.max() > 100
    assert decoded.resize == "crop"
