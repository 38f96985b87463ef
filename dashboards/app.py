"""vizkit dashboard: ``streamlit run dashboards/app.py -- --model sample:shapes_vgg`` (or ``make dashboard``).

The entry point is the frame around every page: it keeps page settings alive across page
switches, draws the sidebar (model and images), stores the session's choice for the pages, and
runs the selected page. ``--model`` takes ``sample:<name>`` or a path to a ``.keras`` / ``.h5``
file (loaded with vizkit's safe loader); ``--max-upload-mb`` caps uploaded model files.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboards import sidebar, state  # noqa: E402
from dashboards import widgets as w  # noqa: E402

HERE = Path(__file__).resolve().parent

PAGES = [
    ("model.py", "Model", ":material/account_tree:"),
    ("filters.py", "Filters", ":material/grid_on:"),
    ("feature_maps.py", "Feature maps", ":material/layers:"),
    ("units.py", "Units", ":material/neurology:"),
    ("attribution.py", "Attribution", ":material/local_fire_department:"),
    ("occlusion.py", "Occlusion", ":material/select_all:"),
    ("activation_max.py", "Activation maximization", ":material/auto_awesome:"),
    ("evaluation.py", "Evaluation", ":material/fact_check:"),
]

st.set_page_config(page_title="vizkit", page_icon=":material/visibility:", layout="wide")
w.keep_widget_state()
navigation = st.navigation(
    [
        st.Page(str(HERE / "views" / file), title=title, icon=icon, default=(i == 0))
        for i, (file, title, icon) in enumerate(PAGES)
    ]
)
context = None
with w.guard("The sidebar"):
    context = sidebar.render(state.settings())
state.set_context(context)
footer = st.sidebar.empty()
navigation.run()
# Written last: browser tests wait for this run number to know a run has finished.
runs = st.session_state["_vk_runs"] = st.session_state.get("_vk_runs", 0) + 1
footer.html(f'<div id="vk-run" data-run="{runs}" style="display:none"></div>')
