"""The process-wide stores and the per-session registry: the only ``st.cache_*`` user.

- :func:`workers`: the worker processes (:mod:`dashboards.worker`). ``compute`` holds the
  models and runs every computation; ``sandbox`` checks uploaded model files and ``images``
  decodes uploaded images (untrusted bytes; no TensorFlow there), so a hostile upload ends one
  of these, never the shared compute worker or the server; ``datasets`` runs the Dataset page's
  scans and views, so a long scan never holds up the other pages. All run under the memory cap
  of :class:`~dashboards.settings.Settings`; all but ``compute`` stop when idle.
- :func:`jobs`: finished and running computations (:class:`~dashboards.jobs.JobStore`).
- :func:`warmer` and :func:`preload`: graphs traced ahead of the user's requests while the
  compute worker is idle (:class:`~dashboards.warmer.Warmer`).
- :func:`figures`: rendered figures as PNG bytes (:class:`~dashboards.display.FigureCache`),
  never live ``Figure`` objects.
- :func:`method_facts`: the method registry's facts, read from the compute worker (the server
  never imports TensorFlow).
- :func:`registry` and :func:`session`: uploads per session, released when Streamlit drops the
  session (a session-scoped resource whose ``on_release`` runs on disconnect).
- :func:`sample_images`, :func:`sample_metadata`, ...: the sample models' own files.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import uuid
from typing import Any

import streamlit as st

import vizkit
from dashboards import settings as settings_module
from dashboards.display import FigureCache
from dashboards.jobs import JobStore
from dashboards.sessions import Registry, SessionData
from dashboards.warmer import Warmer
from dashboards.worker import Worker

SANDBOX_IDLE_SECONDS = 300.0


@dataclasses.dataclass
class Workers:
    compute: Worker
    sandbox: Worker
    images: Worker
    datasets: Worker

    def stop(self) -> None:
        for worker in (self.compute, self.sandbox, self.images, self.datasets):
            worker.stop()


@st.cache_resource(show_spinner=False)
def workers() -> Workers:
    conf = settings_module.settings()
    found = Workers(
        compute=Worker("compute", memory_mb=conf.memory_mb, threads=3, warm="warm"),
        sandbox=Worker(
            "sandbox",
            memory_mb=conf.memory_mb,
            threads=1,
            warm="warm",
            idle_seconds=SANDBOX_IDLE_SECONDS,
        ),
        images=Worker(
            "images", memory_mb=conf.memory_mb, threads=2, idle_seconds=SANDBOX_IDLE_SECONDS
        ),
        datasets=Worker(  # scans and their views: started by the Dataset page only
            "datasets",
            memory_mb=conf.memory_mb,
            threads=3,
            warm="warm",
            idle_seconds=SANDBOX_IDLE_SECONDS,
        ),
    )
    found.compute.start()  # importing TensorFlow takes seconds: start while the page draws
    atexit.register(found.stop)
    return found


@st.cache_resource(show_spinner=False)
def jobs() -> JobStore:
    return JobStore()


@st.cache_resource(show_spinner=False)
def figures() -> FigureCache:
    return FigureCache()


@st.cache_resource(show_spinner=False)
def freeze_imports() -> int:
    """Once per server: exempt every object that exists now (the imported modules of Streamlit,
    matplotlib, vizkit, ...) from Python's cyclic garbage collection (``gc.freeze``).

    Streamlit runs a full collection after every script run, and traversing those hundreds of
    thousands of permanent objects took about 0.1 s of each run; objects made later (figures,
    results, sessions) are collected as before. Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@st.cache_resource(show_spinner=False)
def warmer() -> Warmer:
    return Warmer(workers().compute)


@st.cache_resource(show_spinner=False)
def preload() -> bool:
    """Once per server: open the start-up model and trace the default attribution method in the
    compute worker while the first page draws (:func:`dashboards.entries.preload`)."""
    from dashboards import entries, work

    entries.preload(settings_module.settings(), warmer(), work.DEFAULT_ATTRIBUTION)
    return True


@st.cache_resource(show_spinner="Starting the compute process...")
def method_facts() -> dict[str, Any]:
    """The registry's method facts by name, read once from the compute worker (filling the
    registry imports TensorFlow, which the server never loads)."""
    facts = workers().compute.call("method_facts", timeout=600, label="Reading the methods")
    return {info.name: info for info in facts}


def _releaser(store: JobStore, cache: FigureCache, found: Workers) -> Any:
    """What to do with uploads no session holds any more (runs on Streamlit's session thread,
    outside any script run, so it gets the stores now rather than through the caches)."""

    def release(tags: set[str]) -> None:
        store.evict(tags)
        cache.evict(tags)
        for tag in tags:
            if tag.startswith("sha256:") and found.compute.pid is not None:
                found.compute.submit("forget", tag, timeout=60)

    return release


@st.cache_resource(show_spinner=False)
def registry() -> Registry:
    found = Registry(_releaser(jobs(), figures(), workers()))
    atexit.register(found.remove_files)
    return found


def _close(data: SessionData) -> None:
    data.close()


@st.cache_resource(scope="session", on_release=_close, show_spinner=False)
def _session(session_id: str) -> SessionData:
    return registry().open(session_id)


def session() -> SessionData:
    """This browser session's :class:`~dashboards.sessions.SessionData`.

    Streamlit drops session-scoped resources when the session disconnects, which closes the data
    (:meth:`~dashboards.sessions.Registry.close`). The id lives in ``st.session_state`` so that
    two ``AppTest`` sessions (which share one Streamlit session id) still get their own data.
    """
    session_id = st.session_state.get("_vk_session")
    if session_id is None:
        session_id = st.session_state["_vk_session"] = uuid.uuid4().hex
    return _session(session_id)


# --------------------------------------------------------------------------------------------
# Sample models' own files (small, trusted, read in the server process)
# --------------------------------------------------------------------------------------------
@st.cache_resource(max_entries=4, show_spinner="Opening the scan...")
def scan(root: str, stamp: tuple[int, ...]) -> Any:
    """A scan store opened for reading (``vizkit.open_scan``; no TensorFlow), once per
    ``stamp`` (its files' modification times: a scan still running is read again)."""
    del stamp
    return vizkit.open_scan(root)


@st.cache_data(ttl=15, max_entries=4, show_spinner=False)
def data_folders(root: str) -> Any:
    """Scans and image folders under the data folder (looked up at most every 15 s)."""
    from dashboards import datasets

    return datasets.find(root)


@st.cache_data(max_entries=8, show_spinner="Loading sample images...")
def sample_images(name: str) -> Any:
    return vizkit.sample_images(name)


@st.cache_data(max_entries=8, show_spinner=False)
def sample_history(name: str) -> Any:
    """The training history, or None for samples whose weights were converted, not trained."""
    from vizkit.errors import VizkitError

    try:
        return vizkit.sample_history(name)
    except VizkitError:
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def sample_metadata(name: str) -> dict[str, Any]:
    return vizkit.sample_metadata(name)


@st.cache_data(max_entries=8, show_spinner="Reading the test-set predictions...")
def sample_test_predictions(name: str) -> Any:
    return vizkit.sample_test_predictions(name)


@st.cache_data(max_entries=8, show_spinner="Reading the test-set predictions...")
def sample_confusion(name: str) -> Any:
    """The sample's test-set confusion matrix (a :class:`vizkit.results.ConfusionMatrix`)."""
    from vizkit.results import ConfusionMatrix

    found = sample_test_predictions(name)
    return ConfusionMatrix.from_predictions(found.labels, found.predictions, found.class_names)
