"""Every page on the flagship sample, imagenet_lite0 (EfficientNet-Lite0 with its ImageNet weights,
224x224 photographs, 1000 classes), as ``make dashboard`` opens it. One photo is selected, so
the pages' computations stay a few seconds each on 2 cores."""

from __future__ import annotations

import pytest

from tests.dashboards.conftest import APP, VIEWS, problems

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def flagship():
    from streamlit.testing.v1 import AppTest

    mp = pytest.MonkeyPatch()
    mp.setenv("VIZKIT_DASHBOARD_MODEL", "sample:imagenet_lite0")
    mp.setenv("VIZKIT_MAX_STEPS", "5")
    try:
        app = AppTest.from_file(str(APP), default_timeout=300)
        app.run()
        assert not problems(app), problems(app)
        picker = next(w for w in app.sidebar.multiselect if w.key.startswith("keep_images_"))
        picker.set_value([0]).run()  # chelsea, the cat
        yield app
    finally:
        mp.undo()


@pytest.mark.slow
def test_every_page_works_on_the_flagship(flagship):
    app = flagship
    assert "imagenet_lite0" in app.sidebar.selectbox(key="keep_model").value
    for view in VIEWS:
        app.switch_page(f"views/{view}.py").run()
        assert not problems(app), (view, problems(app))
        assert app.title, view


@pytest.mark.slow
def test_model_page_of_a_converted_sample(flagship):
    """No training history and 7 test photos over 1000 classes: provenance and each photo's
    top-5, no training curves and no 1000x1000 confusion matrix."""
    app = flagship
    app.switch_page("views/model.py").run()
    assert not problems(app), problems(app)
    headers = [h.value for h in app.main.header]
    assert "Where the weights come from" in headers
    assert len(app.main.image) == 1  # the architecture diagram only
    captions = " ".join(c.value for c in app.main.caption)
    assert "Confusion matrix" not in captions and "Training curves" not in captions
    found = {m.label: m.value for m in app.main.metric}
    assert found["Top-1 right"] == "6 of 7" and found["Top-5 right"] == "7 of 7"
    assert found["Published ImageNet top-1 accuracy"] == "75.1%"
    photos = app.main.dataframe[1].value
    assert len(photos) == 7 and photos["top-5 right"].all()


@pytest.mark.slow
def test_grad_cam_of_the_cat_photo(flagship):
    app = flagship
    app.switch_page("views/attribution.py").run()
    assert not problems(app), problems(app)
    assert len(app.main.image) == 1
    first = app.button(key="attr_top_0_0").label  # the most probable class of the cat photo
    assert any(first.startswith(f"{c}: ") for c in CAT_CLASSES), first
    about = [e.label for e in app.main.expander if e.label.startswith("About")]
    assert about and "Grad-CAM" in about[0]
