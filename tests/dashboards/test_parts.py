"""Plain-function tests of the dashboard's parts (no Streamlit session): settings, upload checks,
the job and figure stores, the session registry, and the worker processes."""

from __future__ import annotations

import ast
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest

from dashboards import display, entries, jobs, sessions, settings
from dashboards.worker import RemoteError, Worker, WorkerError
from vizkit.errors import InputError, ModelFileError

ROOT = Path(__file__).resolve().parents[2]


def test_settings_from_arguments_and_environment(monkeypatch):
    for name in ("VIZKIT_DASHBOARD_MODEL", "VIZKIT_DASHBOARD_MEMORY_MB"):
        monkeypatch.delenv(name, raising=False)
    conf = settings.settings([])
    assert conf.model == "sample:imagenet_lite0" and conf.memory_mb == settings.DEFAULT_MEMORY_MB
    conf = settings.settings(["--model", "my.keras", "--memory-mb", "900", "--other", "x"])
    assert conf.model == "my.keras" and conf.memory_mb == 900
    monkeypatch.setenv("VIZKIT_DASHBOARD_MODEL", "sample:digits_cnn")
    assert settings.settings([]).model == "sample:digits_cnn"
    assert settings.settings(["--model", "a.h5"]).model == "a.h5"  # the command line wins


def test_upload_limit_is_the_servers_own(monkeypatch):
    import streamlit as st

    monkeypatch.setattr(st, "get_option", lambda name: {"server.maxUploadSize": 7}[name])
    conf = settings.settings([])
    assert conf.upload_mb == 7 and conf.max_upload_bytes == 7 * 2**20 and conf.image_mb == 7


@pytest.mark.parametrize(
    ("name", "data", "limit", "reason"),
    [
        ("notes.txt", b"PK\x03\x04", 100, "not a Keras model file"),
        ("model.keras", b"", 100, "is empty"),
        ("model.h5", b"x" * 101, 100, "more than the server's upload limit"),
    ],
)
def test_model_file_refusals_are_one_line(name, data, limit, reason):
    with pytest.raises(ModelFileError, match=reason) as caught:
        entries.check_upload(name, data, limit)
    assert "\n" not in str(caught.value) and name in str(caught.value)


def _started(value=None, error=None):
    future: Future = Future()
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
    return future


def test_job_store_runs_once_reuses_evicts_and_forgets_failures():
    store = jobs.JobStore()
    calls = []

    def start(job):
        calls.append(job.key)
        job.report(0.5, "half")
        return _started(np.zeros(10))

    first = store.submit("k", "label", start, tags=("model-a",))
    again = store.submit("k", "label", start)
    assert first is again and calls == ["k"]
    assert store.done("k") and first.fraction == 0.5 and first.text == "half"
    assert first.size == 80 and store.size == 80
    failed = store.submit("f", "label", lambda job: _started(error=InputError("bad value")))
    assert not store.done("f") and failed.future.exception() is not None
    assert store.evict(["model-a"]) == 1 and store.get("k") is None


def test_job_store_keeps_results_within_its_byte_budget():
    store = jobs.JobStore(keep_mb=1)
    for i in range(6):
        store.submit(str(i), "", lambda job: _started(np.zeros(2**18, np.float32)))  # 1 MB each
    assert store.size <= 2**20 and store.get("5") is not None and store.get("0") is None


def test_figure_cache_keeps_png_bytes_within_budget_and_evicts_by_tag():
    cache = display.FigureCache(keep_mb=1)
    for i in range(5):
        cache.put(str(i), b"x" * 300_000, tags=("upload",) if i == 4 else ())
    assert cache.size <= 2**20 and cache.get("0") is None and cache.get("4") is not None
    assert cache.evict(["upload"]) == 1 and cache.get("4") is None


def test_registry_releases_uploads_only_when_no_session_holds_them(tmp_path):
    released = []
    registry = sessions.Registry(released.append, folder=str(tmp_path))
    first, second = registry.open("a"), registry.open("b")
    path = registry.file_for("abc", ".keras", b"model bytes")
    assert path.read_bytes() == b"model bytes" and oct(path.stat().st_mode)[-3:] == "600"
    registry.hold(first, ["sha256:abc", "pool-1"])
    registry.hold(second, ["sha256:abc"])
    registry.close(first)
    assert released == [{"pool-1"}] and path.exists()  # the second session still holds it
    registry.close(second)
    assert released[-1] == {"sha256:abc"} and not path.exists()
    assert registry.sessions == {}


def test_error_messages_are_one_line_without_tracebacks():
    assert display.error_message(InputError("layer 'x' is not spatial: use conv2")) == (
        "layer 'x' is not spatial: use conv2"
    )
    tf_like = RuntimeError("in user code:\n\n  File 'x.py', line 3\n\nTypeError: bad shape")
    message = display.error_message(tf_like, "The page")
    assert "\n" not in message and "bad shape" in message and message.startswith("The page failed")
    assert "memory" in display.error_message(MemoryError(), "The page")


# --------------------------------------------------------------------------------------------
# Worker processes
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def worker():
    found = Worker("test", memory_mb=400, threads=2, functions="tests.dashboards.worker_functions")
    yield found
    found.stop()


def test_worker_runs_calls_with_progress_and_carries_errors(worker):
    seen = []
    assert worker.call("echo", {"a": 1}, timeout=60, progress=lambda f, t: seen.append((f, t))) == {
        "a": 1
    }
    assert seen == [(0.5, "half way")]
    with pytest.raises(InputError, match="bad value"):
        worker.call("fail", "vizkit", timeout=60)
    with pytest.raises(RemoteError, match="KeyError"):
        worker.call("fail", "other", timeout=60)


def test_worker_memory_cap_ends_the_call_not_the_caller(worker):
    assert worker.call("allocate", 50, timeout=60) == 50
    with pytest.raises(WorkerError, match="memory"):
        worker.call("allocate", 2000, timeout=60)
    assert worker.call("allocate", 50, timeout=60) == 50  # the same (or a fresh) worker goes on


def test_worker_deadline_stops_the_process_and_the_next_call_restarts_it(worker):
    before = worker.call("pid", timeout=60)
    with pytest.raises(WorkerError, match="took longer"):
        worker.call("sleep", 30, timeout=1)
    after = worker.call("pid", timeout=60)
    assert after != before


def test_a_crashed_worker_fails_its_calls_with_one_line(worker):
    with pytest.raises(WorkerError, match="crashed") as caught:
        worker.call("crash", timeout=60)
    assert "\n" not in str(caught.value)
    assert worker.call("echo", 1, timeout=60) == 1


def test_concurrent_calls_share_a_worker(worker):
    results = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(worker.call("echo", i, timeout=60)))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == [0, 1, 2, 3]


# --------------------------------------------------------------------------------------------
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
    assert cached == ["caches.py"]


def test_warm_traces_the_layers_after_the_one_shown():
    from types import SimpleNamespace

    from dashboards import work

    asked = []
    warmer = SimpleNamespace(want=lambda key, fn, ref, method, *path: asked.append((fn, *path)))
    facts = SimpleNamespace(
        key="sample:x",
        input_shape=(None, 8, 8, 3),
        candidates=[SimpleNamespace(path=p) for p in ("a", "b", "c", "d", "e")],
    )
    work.warm(warmer, facts, "sample:x", ["gradcam"], None)
    # the first layer for the first figure, then the every-layer graph
    assert asked == [("warm_method", "a"), ("warm_sweep",)]
    asked.clear()
    work.warm(warmer, facts, "sample:x", ["scorecam"], "c", count=3)
    assert asked == [("warm_method", p) for p in ("d", "e", "a")]  # next ones, wrapping round
    asked.clear()
    work.warm(warmer, facts, "sample:x", ["gradcam", "scorecam"], "c", 1, one_pass=["gradcam"])
    assert asked == [("warm_sweep",), ("warm_method", "d")]
