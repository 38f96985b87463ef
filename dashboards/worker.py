"""Child processes that do the dashboard's model work under a memory cap and time limits.

The Streamlit server never builds a model itself. Everything that loads a model file, decodes an
uploaded image or runs a network happens in a :class:`Worker`: a spawned child process that runs
named functions of :mod:`dashboards.compute` on a few threads and sends back their (picklable)
results. A worker limits its own address space (``RLIMIT_AS``: what it had after its imports plus
``memory_mb``), so a file that asks for gigabytes, or a job that outgrows its budget, ends that
worker, not the server; each call also has a deadline, after which the worker is stopped. The
calls that were running fail with one :class:`WorkerError` line and the next call starts a fresh
worker. No Streamlit here: the module is tested on its own.

Protocol (one duplex pipe per worker): the parent sends ``(call_id, function, args, kwargs)``
(``None`` asks the child to exit); the child answers ``("progress", call_id, fraction, text)``,
``("done", call_id, result)`` or ``("error", call_id, error)``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib
import itertools
import logging
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vizkit.errors import VizkitError, one_line

log = logging.getLogger("vizkit.dashboard")
ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = "dashboards.compute"  # the module whose functions a worker runs by default
Progress = Callable[[float, str | None], None]


class WorkerError(VizkitError):
    """A computation ended with its worker process (memory cap, deadline or crash)."""


class RemoteError(VizkitError):
    """An unexpected error inside a worker, carried over as its type name and one line."""


# --------------------------------------------------------------------------------------------
# Child side
# --------------------------------------------------------------------------------------------
def address_space() -> int:
    """Bytes of virtual memory this process maps now (``VmSize``), 0 where unknown."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cap_memory(memory_mb: int) -> None:
    """Limit this process to what it maps now plus ``memory_mb`` (Linux; elsewhere a no-op).

    Called after the child's imports (TensorFlow's libraries map about 2 GB of address space),
    so the budget is what the work itself may use. The limit bounds allocations of the data this
    process handles: it is no defence against code that runs in it, which vizkit's safe loader
    and the image decoder's format list keep out.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Linux
        return
    used = address_space()
    if used:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (used + int(memory_mb) * 2**20, hard))


def _portable(err: BaseException) -> BaseException:
    """An exception that survives pickling: vizkit's own, MemoryError, or a RemoteError line."""
    if isinstance(err, (VizkitError, MemoryError)):
        return err
    if type(err).__name__ == "ResourceExhaustedError":  # TensorFlow's out-of-memory
        return MemoryError(one_line(str(err))[:300])
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if first.endswith(":") and len(lines) > 1:  # TensorFlow's "in user code:" preamble
        first = lines[-1]
    return RemoteError(f"{type(err).__name__}: {one_line(first)[:300]}")


def _child_main(
    conn: Any, functions: str, memory_mb: int | None, threads: int, warm: str | None
) -> None:
    """The child's loop: run each request on a thread, answer on the same connection."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C on the server stops it, not us
    try:  # fewer malloc arenas: less address space reserved per thread (glibc only)
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
    module = importlib.import_module(functions)
    if warm:
        getattr(module, warm)()
    if memory_mb:
        cap_memory(memory_mb)
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    def run(call_id: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        def progress(fraction: float, text: str | None = None) -> None:
            send(("progress", call_id, float(fraction), text))

        try:
            result = getattr(module, name)(*args, progress=progress, **kwargs)
        except BaseException as err:  # noqa: BLE001 - every failure goes back to the caller
            send(("error", call_id, _portable(err)))
            return
        try:
            send(("done", call_id, result))
        except Exception as err:  # noqa: BLE001 - an unpicklable result
            send(("error", call_id, _portable(err)))

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        pool.submit(run, *message)
    os._exit(0)  # do not wait for running calls: the parent has gone or asked us to stop


# --------------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Call:
    future: concurrent.futures.Future
    progress: Progress | None
    deadline: float
    label: str


class Worker:
    """One child process running :mod:`dashboards.compute` functions; restarted when it ends.

    Parameters
    ----------
    name : str
        For messages and the process title.
    memory_mb : int, optional
        Address space the child may add after its imports (None: unlimited).
    threads : int
        Calls the child runs at once.
    warm : str, optional
        A function of the compute module the child runs before taking calls (imports).
    idle_seconds : float, optional
        Stop the child after this long without calls (it starts again on the next call).
    functions : str
        The module whose functions the child runs.
    """

    def __init__(
        self,
        name: str,
        *,
        memory_mb: int | None = None,
        threads: int = 2,
        warm: str | None = None,
        idle_seconds: float | None = None,
        functions: str = FUNCTIONS,
    ) -> None:
        self.name = name
        self.functions = functions
        self.memory_mb = memory_mb
        self.threads = threads
        self.warm = warm
        self.idle_seconds = idle_seconds
        self.restarts = 0
        self._lock = threading.Lock()
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count()
        self._process: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None
        self._last_use = time.monotonic()
        self._stopped_because: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def busy(self) -> bool:
        """True while calls are running (the warmer waits for an idle worker)."""
        with self._lock:
            return bool(self._calls)

    def start(self) -> None:
        """Start the child now (it also starts on the first call)."""
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        command = [
            sys.executable,
            "-m",
            "dashboards.worker",
            str(child.fileno()),
            self.functions,
            str(self.memory_mb or 0),
            str(self.threads),
            self.warm or "",
        ]
        process = subprocess.Popen(command, env=env, pass_fds=(child.fileno(),))
        child.close()
        conn = multiprocessing.connection.Connection(parent.detach())
        self._process, self._conn = process, conn
        self._last_use = time.monotonic()
        self._reader = threading.Thread(
            target=self._read, args=(process, conn), name=f"vizkit-{self.name}-reader", daemon=True
        )
        self._reader.start()

    def stop(self, reason: str | None = None) -> None:
        """End the child; running calls fail with ``reason``."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
            calls, self._calls = self._calls, {}
        if process is not None:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            conn.close()
        message = reason or f"the {self.name} process was stopped: try again"
        for call in calls.values():
            if not call.future.done():
                call.future.set_exception(WorkerError(message))

    # -- calls -------------------------------------------------------------------------------
    def submit(
        self,
        function: str,
        *args: Any,
        timeout: float,
        progress: Progress | None = None,
        label: str = "",
        **kwargs: Any,
    ) -> concurrent.futures.Future:
        """Run ``<functions>.<function>(*args, progress=..., **kwargs)`` in the child."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._ensure_started()
            call_id = next(self._ids)
            self._calls[call_id] = _Call(
                future, progress, time.monotonic() + timeout, label or function
            )
            self._last_use = time.monotonic()
            try:
                self._conn.send((call_id, function, args, kwargs))
            except Exception as err:  # noqa: BLE001 - unpicklable arguments or a dead pipe
                self._calls.pop(call_id, None)
                future.set_exception(_portable(err))
        return future

    def call(self, function: str, *args: Any, timeout: float, **kwargs: Any) -> Any:
        """:meth:`submit` and wait for the result."""
        return self.submit(function, *args, timeout=timeout, **kwargs).result()

    # -- the reader thread -------------------------------------------------------------------
    def _read(self, process: Any, conn: Any) -> None:
        while True:
            try:
                ready = conn.poll(0.25)
                message = conn.recv() if ready else None
            except (EOFError, OSError):
                self._ended(process, conn)
                return
            except Exception:  # noqa: BLE001 - an answer that does not unpickle here
                log.exception("unreadable answer from the %s process", self.name)
                self.stop(f"the {self.name} process sent an unreadable answer: try again")
                return
            if message is not None:
                self._dispatch(message)
            if self._process is not process:  # stopped or replaced
                return
            self._watch(process)

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind, call_id = message[0], message[1]
        with self._lock:
            call = self._calls.get(call_id)
            if kind in ("done", "error"):
                self._calls.pop(call_id, None)
                self._last_use = time.monotonic()
        if call is None:
            return
        if kind == "progress":
            if call.progress is not None:
                try:
                    call.progress(message[2], message[3])
                except Exception:  # noqa: BLE001 - a progress display must not end the call
                    log.exception("progress callback failed")
        elif kind == "done":
            call.future.set_result(message[2])
        else:
            error = message[2]
            if isinstance(error, MemoryError):
                error = WorkerError(self._memory_message(call.label))
            call.future.set_exception(error)

    def _watch(self, process: Any) -> None:
        now = time.monotonic()
        with self._lock:
            late = [c for c in self._calls.values() if c.deadline < now]
            idle = (
                not self._calls
                and self.idle_seconds is not None
                and now - self._last_use > self.idle_seconds
            )
        if late:
            self.stop(
                f"{late[0].label} took longer than the dashboard allows, so its "
                f"{self.name} process was stopped: choose fewer images or a lighter setting"
            )
        elif idle and process is self._process:
            self.stop()

    def _ended(self, process: Any, conn: Any) -> None:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        with self._lock:
            if self._process is not process:
                return
            self._process = self._conn = None
            calls, self._calls = self._calls, {}
            self.restarts += 1
        conn.close()
        code = process.returncode
        labels = ", ".join(sorted({c.label for c in calls.values()})) or "a computation"
        message = self._memory_message(labels, code)
        log.warning("%s process ended with exit code %s during %s", self.name, code, labels)
        for call in calls.values():
            if not call.future.done():
                call.future.set_exception(WorkerError(message))

    def _memory_message(self, what: str, code: int | None = None) -> str:
        limit = f" of {self.memory_mb} MB" if self.memory_mb else ""
        how = f" (exit code {code})" if code is not None else ""
        return (
            f"{what} needed more memory than the dashboard's limit{limit} or crashed{how}: "
            "choose fewer images, a smaller model or lighter settings"
        )


def kill_all(workers: Sequence[Worker]) -> None:
    """Stop every worker (used at exit and by tests)."""
    for worker in workers:
        worker.stop()


if __name__ == "__main__":  # the child: python -m dashboards.worker FD FUNCTIONS MB THREADS WARM
    from dashboards import worker  # the module's own classes, not copies in __main__

    _fd, _functions, _memory, _threads, _warm = sys.argv[1:6]
    worker._child_main(
        multiprocessing.connection.Connection(int(_fd)),
        _functions,
        int(_memory) or None,
        int(_threads),
        _warm or None,
    )
