"""Computations and their results: a process-wide store of jobs, and waiting for one on a page.

A :class:`Job` is one call into a worker process (:mod:`dashboards.worker`), named completely by
its key (model key, images key, method, parameters), so identical work asked for by two sessions
runs once and neither session sees inputs it did not provide. The :class:`JobStore` keeps
finished results, least recently used first out, within a byte budget (results are numpy data;
nothing else is kept), and forgets every job tagged with a model or image set whose session
ended. :func:`run` waits for a job on a page with a progress bar: a page switch ends the wait,
not the job, so coming back shows the finished result at once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

Start = Callable[["Job"], concurrent.futures.Future]
KEEP_MB = 512  # results kept in the server process
KEEP_JOBS = 256


def make_key(*parts: Any) -> str:
    """A stable key from parts whose ``repr`` names them (keys, names, numbers, tuples)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def nbytes(value: Any, depth: int = 0) -> int:
    """Roughly how many bytes ``value`` holds: its numpy arrays and bytes, recursively."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if depth > 6:
        return 0
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(nbytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, depth + 1) for v in value)
    return 64


class Job:
    """One computation; ``report(fraction, text)`` is its progress callback."""

    def __init__(self, key: str, label: str, tags: Iterable[str] = ()) -> None:
        self.key = key
        self.label = label
        self.text = label
        self.fraction = 0.0
        self.tags = frozenset(t for t in tags if t)
        self.started = time.monotonic()
        self.size = 0
        self.future: concurrent.futures.Future | None = None

    def report(self, fraction: float, text: str | None = None) -> None:
        self.fraction = float(min(max(fraction, 0.0), 1.0))
        if text:
            self.text = text

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def finished(self) -> bool:
        """Done without an error."""
        future = self.future
        return bool(future and future.done() and future.exception() is None)


class JobStore:
    """Running and finished jobs by key (see the module docstring)."""

    def __init__(self, keep_mb: float = KEEP_MB, keep: int = KEEP_JOBS) -> None:
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._keep_bytes = int(keep_mb * 2**20)
        self._keep = keep

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def size(self) -> int:
        """Bytes held by finished results."""
        with self._lock:
            return sum(j.size for j in self._jobs.values())

    def get(self, key: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._jobs.move_to_end(key)
            return job

    def done(self, key: str) -> bool:
        job = self.get(key)
        return bool(job and job.finished)

    def submit(self, key: str, label: str, start: Start, tags: Iterable[str] = ()) -> Job:
        """The job ``key``: the existing one, or a new one started with ``start(job)``."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._jobs.move_to_end(key)
                return job
            job = Job(key, label, tags)
            self._jobs[key] = job
        try:
            job.future = start(job)
        except BaseException:
            self.forget(key)
            raise
        job.future.add_done_callback(lambda _, job=job: self._finished(job))
        return job

    def _finished(self, job: Job) -> None:
        if job.future is not None and job.future.exception() is None:
            job.size = nbytes(job.future.result())
        with self._lock:
            self._trim()

    def forget(self, key: str) -> None:
        with self._lock:
            self._jobs.pop(key, None)

    def evict(self, tags: Iterable[str]) -> int:
        """Forget every job tagged with one of ``tags``; returns how many."""
        tags = set(tags)
        with self._lock:
            gone = [k for k, j in self._jobs.items() if j.tags & tags]
            for key in gone:
                del self._jobs[key]
        return len(gone)

    def _trim(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.future is not None and j.future.done()]
        total = sum(self._jobs[k].size for k in finished)
        while finished and (len(self._jobs) > self._keep or total > self._keep_bytes):
            key = finished.pop(0)
            total -= self._jobs.pop(key).size


# --------------------------------------------------------------------------------------------
# Waiting on a page
# --------------------------------------------------------------------------------------------
def run(store: JobStore, key: str, label: str, start: Start, tags: Iterable[str] = ()) -> Any:
    """Run (or reuse) the job ``key`` and wait for it with a progress bar; return its result.

    The wait polls with Streamlit calls, so a page switch stops the wait (not the job). A failed
    job is forgotten after its error is raised, so the user can retry.
    """
    import streamlit as st

    job = store.submit(key, label, start, tags)
    future = job.future
    assert future is not None
    if not future.done():
        try:  # most quick calls finish before a bar would be worth drawing
            future.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            bar = st.progress(0.0, text=label)
            while not future.done():
                try:
                    future.result(timeout=0.15)
                except concurrent.futures.TimeoutError:
                    bar.progress(job.fraction, text=f"{job.text} ({job.elapsed:.0f} s)")
                except Exception:  # noqa: BLE001 - raised below, after the bar is gone
                    break
            bar.empty()
        except Exception:  # noqa: BLE001 - raised below
            pass
    error = future.exception()
    if error is not None:
        store.forget(key)
        raise error
    return future.result()


def finished(store: JobStore, key: str) -> Any | None:
    """A finished job's result, or None (never waits, never starts work)."""
    job = store.get(key)
    return job.future.result() if job is not None and job.finished and job.future else None


def running(store: JobStore, key: str) -> bool:
    job = store.get(key)
    return bool(job and job.future and not job.future.done())
