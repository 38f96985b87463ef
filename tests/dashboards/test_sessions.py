"""AppTest tests of what one session may do to others and to the server: uploads are checked in
the sandbox worker, capped per session and released when the session ends; display-only changes
never recompute; the sidebar never mixes one model's images into another's."""

from __future__ import annotations

import pytest

from tests.dashboards.conftest import (
    png_bytes,
    problems,
    sidebar_widget,
    upload_images,
    upload_model,
)


@pytest.fixture
def app(make_app):
    return make_app("tiny", images=2)


def test_uploads_are_capped_per_session_and_released_when_it_ends(app, model_files):
    from streamlit.runtime.caching import clear_session_resource_cache

    from dashboards import caches

    for name in ("other", "extra3", "extra4", "extra5"):
        upload_model(app, f"{name}.keras", model_files[name].read_bytes())
        assert not problems(app), problems(app)
    labels = sidebar_widget(app, "selectbox", "keep_model").options
    uploads = [label for label in labels if label.startswith("Upload")]
    assert len(uploads) == 3 and not any("other.keras" in label for label in uploads)
    assert any("Forgot the upload other.keras" in i.value for i in app.sidebar.info)

    app.switch_page("views/attribution.py").run()
    assert len(app.main.image) == 1
    data = caches.registry().sessions[app.session_state["_vk_session"]]
    keys = list(data.models)
    files = [u.path for u in data.models.values()]
    tagged = [j for j in caches.jobs()._jobs.values() if j.tags & set(keys)]
    assert all(f.exists() for f in files) and tagged
    # what Streamlit does when the browser session disconnects
    clear_session_resource_cache("test session id")  # AppTest's Streamlit session id
    assert data.closed and not data.models
    assert not any(f.exists() for f in files)
    assert not [j for j in caches.jobs()._jobs.values() if j.tags & set(keys)]


def test_changing_the_model_resets_the_image_source(app, model_files):
    source = sidebar_widget(app, "selectbox", "keep_image_source")
    assert source.value == ("upload", "")
    options = app.session_state["_vk_options"]["keep_image_source"]
    source.set_value(next(o for o in options if o[0] == "sample")).run()
    assert not problems(app), problems(app)
    assert sidebar_widget(app, "selectbox", "keep_image_source").value[0] == "sample"
    upload_model(app, "other.keras", model_files["other"].read_bytes())  # selects the upload
    assert sidebar_widget(app, "selectbox", "keep_image_source").value == ("upload", "")


def test_activation_maximization_preselects_every_class_up_to_ten(app):
    app.switch_page("views/activation_max.py").run()
    assert app.multiselect(key="keep_am_classes").value == [0, 1, 2]


def test_top_classes_are_shown_and_clicking_one_explains_it(app):
    app.switch_page("views/attribution.py").run()
    bars = [b for b in app.main.button if b.key and b.key.startswith("attr_top_")]
    assert len(bars) == 2 * 3 and not app.main.get("progress")
    assert sum("vk-prob" in h.proto.body for h in app.main.get("html")) == 2 * 3
    assert "%" in bars[0].label
    second = next(b for b in bars if b.key == "attr_top_0_1")
    second.click().run()
    chosen = app.selectbox(key="keep_attr_target").value
    assert isinstance(chosen, int) and chosen != "predicted"
    assert second.label.startswith(f"{chosen}: ") or second.label.startswith(f"class {chosen}")
    assert not problems(app) and len(app.main.image) == 1


def test_display_changes_redraw_without_recomputing(app, monkeypatch):
    from dashboards import worker

    app.switch_page("views/attribution.py").run()
    calls = []
    submit = worker.Worker.submit

    def counting(self, function, *args, **kwargs):
        calls.append(function)
        return submit(self, function, *args, **kwargs)

    monkeypatch.setattr(worker.Worker, "submit", counting)
    app.slider(key="keep_attr_alpha").set_value(0.8).run()
    app.selectbox(key="keep_attr_cmap").set_value("viridis").run()
    app.radio(key="keep_attr_kind").set_value("heatmap").run()
    assert not problems(app) and len(app.main.image) == 1
    app.switch_page("views/perturbation.py").run()
    calls.clear()
    app.slider(key="keep_pert_alpha").set_value(0.3).run()
    recomputed = [c for c in calls if not c.startswith("warm_")]  # warm-ups trace ahead
    assert recomputed == [] and len(app.main.image) == 1


def test_image_uploads_are_decoded_outside_the_server(app):
    from dashboards import caches

    images = caches.workers().images
    upload_images(app, [("new.png", png_bytes(9, (33, 17)))])
    assert images.pid is not None and not problems(app)


def test_a_model_that_needs_too_much_memory_is_refused_and_the_server_goes_on(app, model_files):
    """Last in this file: the refused file ends the sandbox worker, the next upload restarts it."""
    from dashboards import caches

    compute = caches.workers().compute
    before = compute.pid
    upload_model(app, "bomb.keras", model_files["bomb"].read_bytes())
    errors = [e.value for e in app.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("bomb.keras was refused")
    assert "memory" in errors[0] and "\n" not in errors[0]
    assert compute.pid == before  # the shared compute worker never saw the file
    app.switch_page("views/attribution.py").run()
    assert not app.exception and not app.main.error and len(app.main.image) == 1
