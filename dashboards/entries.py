"""The models a session can pick: samples, the start-up model, and its own uploads.

An uploaded file is refused early for the cheap reasons (suffix, empty, over the server's upload
limit), then checked, loaded and run once on a blank image in the **sandbox** worker (vizkit's
safe loader; ``trust`` is never offered), and only then opened in the compute worker. A session
keeps at most ``MAX_MODEL_UPLOADS`` uploads: a new one replaces the oldest.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import vizkit
from dashboards import caches, jobs
from dashboards.compute import ModelFacts, ModelRef
from dashboards.sessions import SessionData, Upload
from dashboards.settings import MAX_MODEL_UPLOADS, Settings, settings
from vizkit.errors import ModelFileError

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
CHECK_SECONDS = 180.0
OPEN_SECONDS = 900.0  # a sample model that is missing is built first


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model the session can pick.

    ``key`` names the model everywhere (``"sample:NAME"`` or ``"sha256:<hex>"`` of the file);
    ``spec`` is what a worker loads (``"sample:NAME"`` or a file path).
    """

    key: str
    label: str
    kind: str  # "sample" | "file" | "upload"
    name: str
    spec: str
    size: int = 0

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.key, self.spec)


def sample_entry(name: str) -> ModelEntry:
    spec = f"sample:{name}"
    return ModelEntry(key=spec, label=f"Sample: {name}", kind="sample", name=name, spec=spec)


def sample_entries() -> list[ModelEntry]:
    return [sample_entry(name) for name in vizkit.sample_names()]


def _facts_job(entry: ModelEntry) -> tuple[str, str, jobs.Start]:
    seconds = min(OPEN_SECONDS, settings().job_seconds)
    compute = caches.workers().compute
    return (
        jobs.make_key("facts", entry.spec),
        f"Loading {entry.name}...",
        lambda job: compute.submit("open_model", entry.spec, timeout=seconds, progress=job.report),
    )


def facts(entry: ModelEntry) -> ModelFacts:
    """Open the entry's model in the compute worker (once) and return its facts."""
    key, label, start = _facts_job(entry)
    return jobs.run(caches.jobs(), key, label, start, tags=(entry.key,))


def preload(conf: Settings, warmer: Any, methods: Sequence[str]) -> None:
    """Open the start-up model now and then trace ``methods`` on its default layer, while the
    first browser page is still loading (the page's own requests then find them done)."""
    from dashboards import work

    entry = ModelEntry(conf.model, "", "file", Path(conf.model).name, conf.model)
    key, label, start = _facts_job(entry)
    job = caches.jobs().submit(key, label, start, tags=(entry.key,))

    def then(future: Any) -> None:
        if future.exception() is None:
            work.warm(warmer, future.result(), entry.spec, methods, None)

    job.future.add_done_callback(then)


def startup_entry(conf: Settings) -> ModelEntry:
    """The model chosen on the command line (vizkit resolves ``sample:NAME`` or the path)."""
    name = Path(conf.model).name
    found = facts(ModelEntry(conf.model, "", "file", name, conf.model))
    if found.sample:
        return sample_entry(found.sample)
    return ModelEntry(key=found.key, label=f"File: {name}", kind="file", name=name, spec=conf.model)


def check_upload(name: str, data: bytes, max_bytes: int) -> str:
    """The cheap refusals, before any loader sees the file; returns the suffix.

    Raises :class:`~vizkit.errors.ModelFileError` with a one-line reason.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise ModelFileError(
            f"{name!r} is not a Keras model file: upload a .keras archive or a legacy .h5 file"
        )
    if not data:
        raise ModelFileError(f"{name!r} is empty: upload the saved model file again")
    if len(data) > max_bytes:
        raise ModelFileError(
            f"{name!r} is {len(data) / 2**20:.1f} MB, more than the server's upload limit of "
            f"{max_bytes / 2**20:.0f} MB: start it with --server.maxUploadSize to raise it"
        )
    return suffix


def accept_upload(session: SessionData, name: str, data: bytes, conf: Settings) -> ModelEntry:
    """Check, load and register an uploaded model file for this session; return its entry.

    Raises a :class:`~vizkit.errors.VizkitError` (one line) when the file is refused.
    """
    suffix = check_upload(name, data, conf.max_upload_bytes)
    digest = hashlib.sha256(data).hexdigest()
    key = f"sha256:{digest}"
    registry = caches.registry()
    path = registry.file_for(digest, suffix, data)
    try:
        caches.workers().sandbox.call(
            "check_model",
            str(path),
            timeout=min(CHECK_SECONDS, conf.job_seconds),
            label=f"Checking {name!r}",
        )
    except BaseException:
        if not registry.held(key):
            path.unlink(missing_ok=True)
        raise
    entry = ModelEntry(
        key=key, label=f"Upload: {name}", kind="upload", name=name, spec=str(path), size=len(data)
    )
    registry.hold(session, [key])
    session.models[key] = Upload(entry, path)
    session.models.move_to_end(key)
    facts(entry)
    while len(session.models) > MAX_MODEL_UPLOADS:
        _, oldest = session.models.popitem(last=False)
        registry.let_go(session, [oldest.entry.key])
        session.notice = (
            f"Forgot the upload {oldest.entry.name}: a session keeps its last "
            f"{MAX_MODEL_UPLOADS} uploaded models."
        )
    return entry
