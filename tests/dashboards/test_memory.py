"""The server's memory stays flat while one session renders Grad-CAM 50 times.

Before the figure cache held PNG bytes (it held live ``Figure`` objects) and the models moved to
worker processes, 200 renders grew the server from 782 to 2317 MB (7.7 MB a render). Here every
render changes the opacity or the target, so most renders draw a new figure; over the 40 renders
after a warm-up the server's resident memory may not grow by more than a few tens of MB (the
slope is fitted over all 40; the old leak would show as 300 MB), and no matplotlib figure may
stay alive.
"""

from __future__ import annotations

import gc
import os

import numpy as np
import pytest

from tests.dashboards.conftest import problems

#: ``VIZKIT_MEMORY_RENDERS=200`` for the long run recorded in bench/README.md
RENDERS = int(os.environ.get("VIZKIT_MEMORY_RENDERS", "50"))
WARM_UP = 10


def resident_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_flat_over_50_grad_cam_renders(make_app):
    from matplotlib.figure import Figure

    from dashboards import caches

    app = make_app("tiny", images=1)
    app.switch_page("views/attribution.py").run()
    assert app.multiselect(key="keep_attr_methods").value == ["gradcam"]
    targets = app.session_state["_vk_options"]["keep_attr_target"]
    memory = []
    for i in range(RENDERS):
        app.slider(key="keep_attr_alpha").set_value(round(0.05 * (i % 21), 2))
        app.selectbox(key="keep_attr_target").set_value(targets[(i // 21) % len(targets)])
        app.run()
        assert len(app.main.image) == 1, problems(app)
        if i >= WARM_UP:
            memory.append(resident_mb())
    gc.collect()
    growth = memory[-1] - memory[0]
    slope = np.polyfit(np.arange(len(memory)), memory, 1)[0]
    print(f"server memory {memory[0]:.0f} -> {memory[-1]:.0f} MB, {slope * 100:.1f} MB/100 renders")
    assert growth < 60 and slope * 100 < 20, (growth, slope)
    assert not any(isinstance(o, Figure) for o in gc.get_objects())
    assert not problems(app)
    assert caches.figures().size < 64 * 2**20
