"""vizkit dashboard: ``streamlit run dashboards/app.py -- --model sample:imagenet_lite0`` (or ``make dashboard``).

The entry point is the frame around every page: it keeps page settings alive across page
switches, draws the sidebar (model and images), stores the session's choice for the pages, and
runs the selected page. Options are described in :mod:`dashboards.settings`. Nothing is fetched
from the network: the page icon is drawn here, the navigation icons come with Streamlit.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import streamlit as st  # noqa: E402
from PIL import Image  # noqa: E402

from dashboards import caches, context, settings, sidebar, work  # noqa: E402
from dashboards import widgets as w  # noqa: E402
from dashboards.display import guard  # noqa: E402

HERE = Path(__file__).resolve().parent


PAGES = [
    ("model.py", "Model", ":material/account_tree:"),
    ("filters.py", "Filters", ":material/grid_on:"),
    ("feature_maps.py", "Feature maps", ":material/layers:"),
    ("units.py", "Units", ":material/neurology:"),
    ("attribution.py", "Attribution", ":material/local_fire_department:"),
    ("perturbation.py", work.perturbation_title(), ":material/select_all:"),
    ("activation_max.py", "Activation maximization", ":material/auto_awesome:"),
    ("evaluation.py", "Evaluation", ":material/fact_check:"),
    ("dataset.py", "Dataset", ":material/dataset:"),
]


def icon() -> Image.Image:
    """A 32x32 eye-like page icon drawn in code (a ``:material/...`` icon is fetched online)."""
    y, x = np.mgrid[-1:1:32j, -1:1:32j]
    eye = (x / 0.95) ** 2 + (y / 0.55) ** 2 <= 1.0
    iris = x**2 + y**2 <= 0.3**2
    image = np.ones((32, 32, 3))
    image[eye] = (0.13, 0.4, 0.75)
    image[iris] = (0.95, 0.6, 0.1)
    return Image.fromarray((image * 255).astype(np.uint8))


caches.freeze_imports()  # once: Streamlit's collection after each run skips the imports
st.set_page_config(page_title="vizkit", page_icon=icon(), layout="wide")
w.keep_widget_state()
conf = settings.settings()
caches.workers()  # starts the compute worker (TensorFlow loads while the page draws)
caches.preload()  # opens the start-up model and traces its first method meanwhile
navigation = st.navigation(
    [
        st.Page(str(HERE / "views" / file), title=title, icon=page_icon, default=(i == 0))
        for i, (file, title, page_icon) in enumerate(PAGES)
    ]
)
ctx = None
with guard("The sidebar"):
    ctx = sidebar.render(conf)
context.set_current(ctx)
footer = st.sidebar.empty()
navigation.run()
# Written last: browser tests wait for this run number to know a run has finished.
runs = st.session_state["_vk_runs"] = st.session_state.get("_vk_runs", 0) + 1
footer.html(f'<div id="vk-run" data-run="{runs}" style="display:none"></div>')
