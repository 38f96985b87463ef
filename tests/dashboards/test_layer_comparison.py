"""The Attribution page's "Compare layers": one CAM at several layers, from the kept sweep
(its values are checked against ``vizkit.explain`` in ``test_sweeps.py``)."""

from __future__ import annotations

from tests.dashboards.conftest import problems


def markers(app) -> str:
    return " ".join(str(h.proto.body) for h in app.main.get("html"))


def test_compare_layers_shows_the_chosen_cam_at_the_chosen_layers(make_app):
    app = make_app("tiny", images=2)
    app.switch_page("views/attribution.py").run()
    assert not problems(app) and len(app.main.image) == 1  # off by default: the grid only
    app.checkbox(key="keep_attr_layers_on").check().run()
    assert not problems(app), problems(app)
    assert len(app.main.image) == 2 and "vk-figure-attribution_layers" in markers(app)
    picker = next(m for m in app.main.multiselect if m.key.startswith("keep_attr_layers_"))
    assert picker.value == ["conv2", "conv1"]  # every candidate of the tiny CNN, deepest first
    picker.set_value(["conv1"]).run()
    assert not problems(app) and len(app.main.image) == 2
    picker = next(m for m in app.main.multiselect if m.key.startswith("keep_attr_layers_"))
    picker.set_value([]).run()
    assert not problems(app) and any("Choose at least one layer" in i.value for i in app.info)
    app.multiselect(key="keep_attr_methods").set_value(["saliency"]).run()
    assert not problems(app) and len(app.main.image) == 1  # no CAM chosen: nothing to compare
