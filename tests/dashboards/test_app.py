"""AppTest tests of every dashboard page on tiny fixture models (no sample models needed)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dashboards.conftest import (
    VIEWS,
    png_bytes,
    problems,
    sidebar_widget,
    upload_images,
    upload_model,
)

KINDS = ("selectbox", "radio", "multiselect", "slider", "number_input", "checkbox", "text_input")


def kept_widgets(block: Any) -> dict[str, tuple[str, Any]]:
    found = {}
    for kind in KINDS:
        for widget in getattr(block, kind):
            if widget.key and widget.key.startswith("keep_"):
                found[widget.key] = (kind, widget)
    return found


def change(at: Any, kind: str, widget: Any) -> None:
    """Give a widget a different valid value (the next option, one step, the other state)."""
    options = (
        at.session_state["_vk_options"].get(widget.key)
        if kind in ("selectbox", "radio", "multiselect")
        else None
    )
    if kind in ("selectbox", "radio"):
        if len(options) < 2:
            return
        widget.set_value(options[(options.index(widget.value) + 1) % len(options)])
    elif kind == "multiselect":
        current = list(widget.value)
        limit = widget.max_selections or len(options)
        extra = [o for o in options if o not in current]
        if len(current) > 1:  # dropping one is cheaper than adding work
            widget.set_value(current[:-1])
        elif extra and len(current) < limit:
            widget.set_value(current + extra[:1])
        else:
            return
    elif kind == "number_input" and widget.value is None:  # "auto": give it a number
        lo = widget.min if widget.min is not None else 1
        widget.set_value(type(lo)(max(lo, (widget.max or 2 * lo) // 2)))
    elif kind in ("slider", "number_input"):
        value, step = widget.value, widget.step or 1
        hi = widget.max if widget.max is not None else value + step
        lo = widget.min if widget.min is not None else value - step
        new = value + step if value + step <= hi else value - step
        if not lo <= new <= hi:
            return
        widget.set_value(type(value)(new))
    elif kind == "checkbox":
        widget.set_value(not widget.value)
    elif kind == "text_input":
        widget.set_value((widget.value or "") + "x")


def exercise(
    at: Any, where: str = "main", rounds: int = 60, done: set[str] | None = None
) -> set[str]:
    """Change every kept widget on the page once (new widgets that appear too)."""
    done = set() if done is None else done
    for _ in range(rounds):
        widgets = kept_widgets(getattr(at, where))
        todo = [k for k in widgets if k not in done]
        if not todo:
            break
        key = todo[0]
        kind, widget = widgets[key]
        change(at, kind, widget)
        done.add(key)
        at.run()
        assert not problems(at), (key, problems(at))
    return done


@pytest.fixture
def app(make_app):
    return make_app("tiny", images=2)


# --------------------------------------------------------------------------------------------
def test_every_page_renders_without_problems(app):
    for view in VIEWS:
        app.switch_page(f"views/{view}.py").run()
        assert not problems(app), (view, problems(app))
        assert app.title, view


@pytest.mark.parametrize(
    "view",
    ["model", "filters", "feature_maps", "units", "perturbation", "activation_max", "evaluation"],
)
def test_every_widget_changes(app, view):
    app.switch_page(f"views/{view}.py").run()
    for button in app.main.button:  # the long-work buttons (Run / Synthesize)
        button.click()
        app.run()
        assert not problems(app), (view, problems(app))
    changed = exercise(app)
    assert changed, f"no widgets on {view}"
    assert not problems(app)


def test_attribution_every_method_and_widget(make_app):
    app = make_app("tiny", images=1)
    app.switch_page("views/attribution.py").run()
    methods = list(app.session_state["_vk_options"]["keep_attr_methods"])
    changed = {"keep_attr_methods"}
    for start in range(0, len(methods), 3):  # a few at a time: small grids redraw fast
        app.multiselect(key="keep_attr_methods").set_value(methods[start : start + 3]).run()
        assert not problems(app), problems(app)
        assert len(app.main.image) == 1
        exercise(app, rounds=60, done=changed)
    assert {"keep_attr_kind", "keep_attr_target", "keep_attr_layer"} <= changed
    for method in ("smoothgrad", "integrated_gradients", "faster_scorecam"):
        assert any(k.startswith(f"keep_attr_{method}_") for k in changed), method


def test_grad_cam_grid_and_downloads(app):
    app.switch_page("views/attribution.py").run()
    assert app.multiselect(key="keep_attr_methods").value == ["gradcam"]
    assert len(app.main.image) == 1
    labels = {b.label for b in app.main.get("download_button")}
    assert {"PNG", "PDF", "CSV", "Maps (NPZ)"} <= labels


def test_sidebar_widgets_and_state_survives_page_switch(app):
    app.switch_page("views/attribution.py").run()
    app.radio(key="keep_attr_kind").set_value("heatmap").run()
    picker = sidebar_widget(
        app,
        "multiselect",
        next(w.key for w in app.sidebar.multiselect if w.key.startswith("keep_images_")),
    )
    picker.set_value([1]).run()
    assert not problems(app)
    app.switch_page("views/model.py").run()
    app.switch_page("views/attribution.py").run()
    assert app.radio(key="keep_attr_kind").value == "heatmap"
    assert next(w for w in app.sidebar.multiselect if w.key == picker.key).value == [1]


def test_uploaded_model_is_loaded_and_selected(app, model_files):
    upload_model(app, "other.keras", model_files["other"].read_bytes())
    assert not problems(app), problems(app)
    chosen = sidebar_widget(app, "selectbox", "keep_model")
    assert "other.keras" in chosen.format_func(chosen.value)
    app.switch_page("views/attribution.py").run()
    assert not problems(app) and len(app.main.image) == 1


def test_hostile_model_is_refused_with_one_line(app, model_files):
    before = sidebar_widget(app, "selectbox", "keep_model").value
    upload_model(app, "hostile.keras", model_files["hostile"].read_bytes())
    errors = [e.value for e in app.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("hostile.keras was refused")
    assert "\n" not in errors[0] and "Traceback" not in errors[0]
    assert "lambda" in errors[0].lower()
    assert not app.exception
    assert sidebar_widget(app, "selectbox", "keep_model").value == before


def test_wrong_file_type_as_model_is_refused(app):
    upload_model(app, "notes.h5", b"these are my notes, not a model")
    errors = [e.value for e in app.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("notes.h5 was refused")
    assert not app.exception


def test_non_image_upload_is_refused(app):
    upload_images(app, [("notes.png", b"just some text"), ("ok.png", png_bytes(3))])
    errors = [e.value for e in app.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("Refused") and "notes.png" in errors[0]
    assert "notes.png: the file is not an image" in errors[0]
    app.switch_page("views/attribution.py").run()
    assert not app.exception and not app.main.error  # the good image is still used
    assert len(app.main.image) == 1


def test_any_image_mode_and_size_is_converted(app):
    upload_images(
        app, [("gray.png", png_bytes(4, (50, 30), "L")), ("rgba.png", png_bytes(5, (7, 9), "RGBA"))]
    )
    app.switch_page("views/feature_maps.py").run()
    assert not problems(app), problems(app)


def test_cam_page_explains_a_model_without_conv_layers(make_app):
    at = make_app("dense", images=1)
    at.switch_page("views/attribution.py").run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "Grad-CAM cannot run on this model" in errors[0] and "spatial" in errors[0]
    assert not at.exception
    at.multiselect(key="keep_attr_methods").set_value(["gradcam", "saliency"]).run()
    assert len(at.main.image) == 1  # saliency still runs
    for view in ("filters", "feature_maps", "units"):
        at.switch_page(f"views/{view}.py").run()
        assert len(at.error) == 1 and not at.exception, view


def test_non_image_model_pages_say_why(make_app):
    at = make_app("vector", images=0)
    for view in ("attribution", "feature_maps", "perturbation"):
        at.switch_page(f"views/{view}.py").run()
        assert not at.exception
        assert [e.value for e in at.error] and "not an image model" in at.error[0].value


def test_two_sessions_never_share_uploads(make_app, model_files):
    first = make_app("tiny", images=1)
    upload_model(first, "other.keras", model_files["other"].read_bytes())
    second = make_app("tiny", images=0)
    labels = sidebar_widget(second, "selectbox", "keep_model").options
    assert not any("other.keras" in label for label in labels)
    assert not second.sidebar.get("image")


def test_refused_start_up_model_shows_the_reason(make_app, monkeypatch):
    from dashboards import entries

    monkeypatch.setattr(entries, "sample_entries", lambda: [])
    at = make_app("hostile", images=0)
    errors = [e.value for e in at.sidebar.error]
    assert len(errors) == 1 and "Lambda" in errors[0] and not at.exception
    assert [i.value for i in at.main.info] == ["Choose a model in the sidebar to begin."]
