"""What the person starting the server chose: ``streamlit run dashboards/app.py -- --model ...``.

Options after ``--`` win over environment variables:

- ``--model`` (``VIZKIT_DASHBOARD_MODEL``): ``sample:NAME`` or a ``.keras`` / ``.h5`` path, loaded
  with vizkit's safe loader like any upload (default ``sample:imagenet_lite0``, the flagship);
- ``--memory-mb`` (``VIZKIT_DASHBOARD_MEMORY_MB``): memory each worker process may add to what it
  needs to start (default 3072); a model or job that needs more ends with a one-line error;
- ``--job-seconds`` (``VIZKIT_DASHBOARD_JOB_SECONDS``): the longest one computation may run
  (default 1800; a dataset scan stopped at this limit resumes where it stopped when started
  again);
- ``--data`` (``VIZKIT_DASHBOARD_DATA``): the folder the Dataset page may read image folders and
  scans from and write new scans into (default: the folder the server was started in); paths
  outside it are refused.

The upload limit is Streamlit's own ``server.maxUploadSize`` (``--server.maxUploadSize 500``),
which the server enforces: the file widgets read it, so widget and server always agree.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

import streamlit as st

DEFAULT_MODEL = "sample:imagenet_lite0"
DEFAULT_MEMORY_MB = 3072
DEFAULT_JOB_SECONDS = 1800.0
MAX_MODEL_UPLOADS = 3  # per session; the oldest is forgotten when a fourth arrives
MAX_IMAGE_FILES = 32  # per session
MAX_IMAGE_MB = 50  # per image file (never more than the server's limit)
MAX_SELECTED_IMAGES = 8


@dataclasses.dataclass(frozen=True)
class Settings:
    """The server's settings; see the module docstring for the options."""

    model: str = DEFAULT_MODEL
    memory_mb: int = DEFAULT_MEMORY_MB
    job_seconds: float = DEFAULT_JOB_SECONDS
    upload_mb: int = 200
    data: str = "."

    @property
    def max_upload_bytes(self) -> int:
        return self.upload_mb * 2**20

    @property
    def image_mb(self) -> int:
        return min(MAX_IMAGE_MB, self.upload_mb)


def _number(value: str | None, default: float, kind: type) -> float:
    try:
        return kind(value) if value not in (None, "") else default
    except ValueError:
        return default


def settings(argv: Sequence[str] | None = None) -> Settings:
    """Parse the options after ``--`` (``sys.argv`` by default) and the environment."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model", default=None)
    parser.add_argument("--memory-mb", default=None)
    parser.add_argument("--job-seconds", default=None)
    parser.add_argument("--data", default=None)
    args, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    env = os.environ
    model = args.model or env.get("VIZKIT_DASHBOARD_MODEL") or DEFAULT_MODEL
    memory = args.memory_mb or env.get("VIZKIT_DASHBOARD_MEMORY_MB")
    seconds = args.job_seconds or env.get("VIZKIT_DASHBOARD_JOB_SECONDS")
    return Settings(
        model=model.strip(),
        memory_mb=max(256, int(_number(memory, DEFAULT_MEMORY_MB, int))),
        job_seconds=max(10.0, float(_number(seconds, DEFAULT_JOB_SECONDS, float))),
        upload_mb=int(st.get_option("server.maxUploadSize")),
        data=os.path.abspath(args.data or env.get("VIZKIT_DASHBOARD_DATA") or "."),
    )
