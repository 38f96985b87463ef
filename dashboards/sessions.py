"""What one browser session holds, and what happens when the session ends.

Each session gets a :class:`SessionData` (kept by Streamlit in a session-scoped resource cache, see
:func:`dashboards.caches.session`): its uploaded models (at most ``MAX_MODEL_UPLOADS``, the oldest
forgotten first), its decoded image uploads and the inputs the pages work on. Uploaded model
bytes are written to a private folder (``0700``) that only the worker processes read.

The process-wide :class:`Registry` counts which sessions hold which uploads (tags: a model key
such as ``"sha256:<hex>"`` or an image set key). When Streamlit drops a session (its browser tab
closed or its connection went away), :meth:`Registry.close` runs: every tag no other session holds
is released (its jobs, figures, worker-side model and file are forgotten) through the callback the
dashboard gave the registry. No Streamlit here.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("vizkit.dashboard")


@dataclasses.dataclass
class Upload:
    """An uploaded model file that passed the checks: its entry and its private copy."""

    entry: Any  # dashboards.entries.ModelEntry
    path: Path


@dataclasses.dataclass
class SessionData:
    """One browser session's uploads and inputs (see the module docstring)."""

    id: str
    models: collections.OrderedDict[str, Upload] = dataclasses.field(
        default_factory=collections.OrderedDict
    )
    images: collections.OrderedDict[str, Any] = dataclasses.field(
        default_factory=collections.OrderedDict
    )  # upload digest + model key -> one-image ImageBatch or refusal line
    startup: tuple[Any, str | None] | None = None  # (start-up entry, refusal), asked once
    seen_upload: tuple[str, str] | None = None  # (file name, digest) of the last model upload
    refusal: str | None = None
    notice: str | None = None
    context: Any = None  # dashboards.context.Context of the current run
    closed: bool = False
    registry: Any = dataclasses.field(default=None, repr=False)  # the Registry that opened it

    def close(self) -> None:
        """The session ended (called by Streamlit's thread, outside any script run)."""
        if self.registry is not None:
            self.registry.close(self)


class Registry:
    """Which session holds which uploads, and the private folder for uploaded model files.

    Parameters
    ----------
    release : callable
        Called with the tags that no session holds any more (from the thread that closed the
        session): forget their jobs, figures and worker-side models.
    folder : path, optional
        Where uploaded model files go (default: a new private temporary folder).
    """

    def __init__(self, release: Callable[[set[str]], None], folder: str | None = None) -> None:
        self._release = release
        self._lock = threading.Lock()
        self._holders: dict[str, set[str]] = collections.defaultdict(set)
        self._sessions: dict[str, SessionData] = {}
        base = folder or os.environ.get("VIZKIT_DASHBOARD_TMP") or None
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="vizkit-uploads-", dir=base))
        os.chmod(self.folder, 0o700)

    # -- sessions ----------------------------------------------------------------------------
    def open(self, session_id: str) -> SessionData:
        data = SessionData(id=session_id, registry=self)
        with self._lock:
            self._sessions[session_id] = data
        return data

    @property
    def sessions(self) -> dict[str, SessionData]:
        with self._lock:
            return dict(self._sessions)

    def hold(self, data: SessionData, tags: Iterable[str]) -> None:
        with self._lock:
            for tag in tags:
                if tag:
                    self._holders[tag].add(data.id)

    def let_go(self, data: SessionData, tags: Iterable[str]) -> None:
        """The session no longer needs ``tags`` (e.g. an upload it replaced)."""
        self._release_unheld(self._drop(data.id, set(tags)))

    def close(self, data: SessionData) -> None:
        """The session ended: forget its uploads and everything computed only for them."""
        if data.closed:
            return
        data.closed = True
        with self._lock:
            self._sessions.pop(data.id, None)
            tags = {t for t, ids in self._holders.items() if data.id in ids}
        unheld = self._drop(data.id, tags)
        data.models.clear()
        data.images.clear()
        data.context = None
        self._release_unheld(unheld)
        log.info("session %s ended: released %d upload(s)", data.id[:8], len(unheld))

    def _drop(self, session_id: str, tags: set[str]) -> set[str]:
        unheld = set()
        with self._lock:
            for tag in tags:
                ids = self._holders.get(tag)
                if ids is None:
                    continue
                ids.discard(session_id)
                if not ids:
                    del self._holders[tag]
                    unheld.add(tag)
        return unheld

    def _release_unheld(self, tags: set[str]) -> None:
        if not tags:
            return
        for tag in tags:  # uploaded model files are named by their content hash
            if tag.startswith("sha256:"):
                for path in self.folder.glob(tag.split(":", 1)[1] + ".*"):
                    path.unlink(missing_ok=True)
        self._release(tags)

    def held(self, tag: str) -> bool:
        with self._lock:
            return bool(self._holders.get(tag))

    # -- files -------------------------------------------------------------------------------
    def file_for(self, digest: str, suffix: str, data: bytes) -> Path:
        """Write ``data`` to the private folder as ``<digest><suffix>`` (once) and return it."""
        path = self.folder / f"{digest}{suffix}"
        if not path.exists():
            partial = path.with_suffix(path.suffix + ".part")
            with open(partial, "wb") as handle:
                handle.write(data)
            os.chmod(partial, 0o600)
            partial.replace(path)
        return path

    def remove_files(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
