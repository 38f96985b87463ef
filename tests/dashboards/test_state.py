"""Plain-function tests of the dashboard's state and widget helpers (no Streamlit session)."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dashboards import state, widgets
from vizkit.errors import InputError, ModelFileError

ROOT = Path(__file__).resolve().parents[2]


def test_settings_from_arguments_and_environment(monkeypatch):
    monkeypatch.delenv("VIZKIT_DASHBOARD_MODEL", raising=False)
    monkeypatch.delenv("VIZKIT_MAX_UPLOAD_MB", raising=False)
    assert state.settings([]) == state.Settings(model="sample:shapes_vgg", max_upload_mb=200)
    conf = state.settings(["--model", "my.keras", "--max-upload-mb", "5", "--other", "x"])
    assert conf.model == "my.keras" and conf.max_upload_bytes == 5 * 2**20
    monkeypatch.setenv("VIZKIT_DASHBOARD_MODEL", "sample:digits_cnn")
    monkeypatch.setenv("VIZKIT_MAX_UPLOAD_MB", "7")
    assert state.settings([]) == state.Settings(model="sample:digits_cnn", max_upload_mb=7)
    assert state.settings(["--model", "a.h5"]).model == "a.h5"  # the command line wins


@pytest.mark.parametrize(
    ("name", "data", "limit", "reason"),
    [
        ("notes.txt", b"PK\x03\x04", 100, "not a Keras model file"),
        ("model.keras", b"", 100, "is empty"),
        ("model.h5", b"x" * 101, 100, "more than the dashboard's limit"),
    ],
)
def test_model_file_refusals_are_one_line(name, data, limit, reason):
    with pytest.raises(ModelFileError, match=reason) as caught:
        state.check_model_file(name, data, limit)
    assert "\n" not in str(caught.value) and name in str(caught.value)


def test_hostile_model_bytes_are_refused_by_the_safe_loader(model_files):
    from vizkit.errors import UnsafeModelError

    data = model_files["hostile"].read_bytes()
    state.check_model_file("hostile.keras", data, 10**9)  # passes the cheap checks ...
    with pytest.raises(UnsafeModelError, match="Lambda"):  # ... the safe loader refuses it
        state._load_bytes_uncached(data, "hostile.keras")


def test_job_store_runs_once_reuses_and_forgets_failures():
    store = state.JobStore(workers=1)
    calls = []
    gate = threading.Event()

    def work(job):
        calls.append(1)
        job.report(0.5, "half")
        gate.wait(5)
        return 42

    first = store.submit("k", "label", work)
    again = store.submit("k", "label", work)
    assert first is again
    gate.set()
    assert first.future.result(5) == 42 and calls == [1]
    assert store.done("k") and first.fraction == 0.5 and first.text == "half"

    def fail(job):
        raise InputError("bad value")

    failed = store.submit("f", "label", fail)
    with pytest.raises(InputError):
        failed.future.result(5)
    assert not store.done("f")
    store.forget("f")
    assert store.get("f") is None


def test_job_store_keeps_a_bounded_number_of_results():
    store = state.JobStore(workers=1, keep=3)
    for i in range(6):
        store.submit(str(i), "", lambda job, i=i: i).future.result(5)
        time.sleep(0.01)
    assert sum(store.get(str(i)) is not None for i in range(6)) <= 4


def test_error_messages_are_one_line_without_tracebacks():
    assert widgets.error_message(InputError("layer 'x' is not spatial: use conv2")) == (
        "layer 'x' is not spatial: use conv2"
    )
    tf_like = RuntimeError("in user code:\n\n  File 'x.py', line 3\n\nTypeError: bad shape")
    message = widgets.error_message(tf_like, "The page")
    assert "\n" not in message and "bad shape" in message and message.startswith("The page failed")
    assert "memory" in widgets.error_message(MemoryError(), "The page")


def test_top_k_frame_and_evaluation_summary():
    from vizkit.inputs import ImageBatch

    images = ImageBatch(
        array=np.zeros((2, 4, 4, 3), np.float32), names=("a", "b"), labels=np.array([0, 2])
    )
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    frame = state.top_k_frame(images, probs, ["cat", "dog", "eel"], k=2)
    assert list(frame.columns) == ["image", "true", "top 1", "top 2"]
    assert frame.loc[1, "top 1"] == "eel (60.0%)" and frame.loc[0, "true"] == "cat"
    summary = state.evaluation_summary(
        np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), ["a", "b", "c"]
    )
    assert summary["accuracy"] == 0.75 and summary["matrix"].tolist() == [
        [1, 0, 0],
        [0, 1, 1],
        [0, 0, 1],
    ]
    assert summary["report"]["recall"].tolist() == [1.0, 0.5, 1.0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_layering_dashboard_never_imports_tensorflow_and_vizkit_never_streamlit():
    for path in (ROOT / "dashboards").rglob("*.py"):
        assert not _imports(path) & {"tensorflow", "tf_keras_vis", "keras"}, path
    for path in (ROOT / "vizkit").rglob("*.py"):
        assert "streamlit" not in _imports(path), path
    cached = [p.name for p in (ROOT / "dashboards").rglob("*.py") if "st.cache_" in p.read_text()]
    assert cached == ["state.py"]
