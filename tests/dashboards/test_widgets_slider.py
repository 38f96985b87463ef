"""A kept slider follows its range: out of range or left at a changed maximum, it resets."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _app():
    import streamlit as st

    from dashboards import widgets as w

    w.keep_widget_state()  # as app.py does on every run
    hi = st.session_state.get("hi", 4)
    w.slider("Channels shown (top k)", 1, hi, "top_k", min(16, hi))


def test_a_slider_at_the_old_maximum_goes_back_to_its_default():
    app = AppTest.from_function(_app)
    app.run()
    slider = app.slider(key="keep_top_k")
    assert slider.value == 4  # the default, capped at the maximum
    app.session_state["hi"] = 64
    app.run()
    assert app.slider(key="keep_top_k").value == 16  # not stuck at 4
    app.slider(key="keep_top_k").set_value(10).run()
    app.session_state["hi"] = 32
    app.run()
    assert app.slider(key="keep_top_k").value == 10  # a value chosen inside the range stays
    app.session_state["hi"] = 8
    app.run()
    assert app.slider(key="keep_top_k").value == 8  # out of range: the default, capped
