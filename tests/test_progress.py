"""Issue 16, item 11: one progress helper for every long call (bars in notebooks, callbacks)."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from vizkit.progress import Progress, in_notebook


class ZMQInteractiveShell:  # the class name Jupyter kernels use
    pass


@pytest.fixture
def notebook(monkeypatch):
    """Pretend to run in a Jupyter kernel without ipywidgets installed."""
    fake = types.ModuleType("IPython")
    fake.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    yield


def test_callback_gets_done_and_total_from_zero():
    calls = []
    with Progress(lambda d, t: calls.append((d, t)), 3) as bar:
        bar.advance()
        bar.update(3)
        bar.update(2)  # never goes back
    assert calls == [(0, 3), (1, 3), (3, 3), (3, 3)]
    assert bar.active and bar.bar is None


def test_no_bar_off_a_notebook_unless_asked(capsys):
    assert not in_notebook()
    with Progress(None, 5) as quiet:
        quiet.advance(5)
    with Progress(False, 5) as off:
        off.advance(5)
    assert quiet.bar is None and off.bar is None and not quiet.active
    with Progress(True, 5, desc="working") as loud:
        assert loud.bar is not None
        loud.advance(5)
    assert "working" in capsys.readouterr().err


def test_notebook_without_ipywidgets_falls_back_to_text_without_warning(notebook, capsys):
    assert in_notebook()
    with Progress(None, 2, desc="in a notebook") as bar:  # warnings are errors here
        assert type(bar.bar).__module__ == "tqdm.std"
        bar.advance(2)
    assert "in a notebook" in capsys.readouterr().err


def test_explain_and_evaluate_report_progress():
    import vizkit
    from tests.methods import zoo

    model = zoo.sequential()
    x = zoo.images(5)
    calls = []
    vizkit.explain(model, x, "saliency", batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)  # batches of 2, 2 and 1
    calls.clear()
    vizkit.explain(model, x, ["saliency", "gradcam"], batch_size=2, progress=lambda d, t: calls.append((d, t)))  # fmt: skip
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    calls.clear()
    frame = vizkit.evaluate(
        model,
        x,
        ["saliency", "gradcam"],
        metrics=["map_health"],
        progress=lambda d, t: calls.append((d, t)),
    )
    assert len(frame) == 2
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)  # (explanation + one metric) x 2
    single = vizkit.explain(model, x[:1], "saliency", progress=True)  # one batch: fine too
    assert np.isfinite(single.maps).all()
