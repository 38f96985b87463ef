"""Work the user will probably ask for next, done while the compute worker is idle.

The first Grad-CAM of a layer on a 224x224 network spends seconds tracing its graph and a
fraction of a second running it. The :class:`Warmer` traces such graphs ahead of time (the
start-up model's default method as the server starts; the other top layers of the layer picker
once a page shows one), one call at a time and only when the worker has nothing else to do, so
the user's own requests never queue behind it for long. Each task runs once per server. No
Streamlit here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

log = logging.getLogger("vizkit.dashboard")
TASK_SECONDS = 300.0
IDLE_POLL = 0.2


class Warmer:
    """A background thread feeding warm-up calls to ``worker`` (a :class:`~dashboards.worker.Worker`)
    when it is idle."""

    def __init__(self, worker: Any) -> None:
        self._worker = worker
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self._seen: set[Any] = set()
        self._lock = threading.Lock()
        self.done = 0
        self._thread = threading.Thread(target=self._loop, name="vizkit-warmer", daemon=True)
        self._thread.start()

    def want(self, key: Any, function: str, *args: Any) -> bool:
        """Queue ``function(*args)`` unless ``key`` was queued before; True when queued."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        self._queue.put((function, args))
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _loop(self) -> None:
        while True:
            function, args = self._queue.get()
            while self._worker.busy:
                time.sleep(IDLE_POLL)
            try:
                self._worker.submit(function, *args, timeout=TASK_SECONDS, label="warm-up").result()
                self.done += 1
            except Exception as err:  # noqa: BLE001 - a failed warm-up only costs time later
                log.info("warm-up %s failed: %s", function, err)
