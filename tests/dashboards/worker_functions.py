"""Functions the worker tests run in a child process (memory hogs, sleepers, crashes)."""

from __future__ import annotations

import os
import time

import numpy as np


def echo(value, progress):
    progress(0.5, "half way")
    return value


def allocate(megabytes, progress):
    block = np.ones(int(megabytes) * 2**20, dtype=np.uint8)
    return int(block.sum() // 2**20)


def sleep(seconds, progress):
    time.sleep(seconds)
    return seconds


def fail(kind, progress):
    if kind == "vizkit":
        from vizkit.errors import InputError

        raise InputError("bad value: choose another")
    raise KeyError("no such thing")


def pid(progress):
    return os.getpid()


def crash(progress):
    os.abort()
