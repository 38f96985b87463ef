"""Load every case of the hostile corpus in this process and report what happened (JSON lines).

Run by ``test_corpus.py`` as ``python -m tests.hostile.runner MANIFEST`` in a fresh process whose
environment points ``KERAS_HOME`` and ``VIZKIT_HOSTILE_MARKERS`` into the test's temporary
folder and puts a fake ``gs`` first on ``PATH``. An audit hook records (and blocks) network
access, and records processes started and files opened that a payload could use; the peak
resident memory of each case is read from ``/proc/self/status`` after resetting it through
``/proc/self/clear_refs``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

_EVENTS: list[str] = []
_WATCH = {"on": False}
_PROCESS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork")
_NETWORK = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request")


def _hook(event: str, args: tuple) -> None:
    if event.startswith(_NETWORK):
        _EVENTS.append(f"{event} {args[:2]!r}")
        raise PermissionError("network access is blocked in the hostile corpus runner")
    if not _WATCH["on"]:
        return
    if event.startswith(_PROCESS):
        _EVENTS.append(f"{event} {str(args)[:120]}")
    elif event in ("open", "os.mkdir") and args and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        watched = (os.environ["VIZKIT_HOSTILE_MARKERS"], os.environ["KERAS_HOME"], "SECRET")
        if any(w in path for w in watched):
            _EVENTS.append(f"{event} {path}")


def _memory() -> tuple[int, int]:
    """(current, peak) resident memory in bytes."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _register_evil() -> None:
    """A custom class registered in this process, as an import elsewhere might (a gadget)."""
    from vizkit._tf import keras

    @keras.saving.register_keras_serializable(package="vizkit_hostile", name="Evil")
    class Evil(keras.layers.Dense):
        @classmethod
        def from_config(cls, config):
            marker = os.path.join(os.environ["VIZKIT_HOSTILE_MARKERS"], "registered")
            open(marker, "w").close()
            return super().from_config(config)


def _run(case: dict, flags: dict) -> None:
    import numpy as np
    from PIL import Image

    import vizkit

    if case["kind"] == "model":
        model = vizkit.load_model(case["path"], **case["kwargs"])
        if case["live"]:
            x = np.zeros((1,) + tuple(model.inputs[0].shape[1:]), "float32")
            model(x)
    elif case["live"]:  # Pillow's own plugins, as vizkit used them before
        Image.open(case["path"]).load()
    else:
        kwargs = dict(case["kwargs"])
        if "size" in kwargs:
            kwargs["size"] = tuple(kwargs["size"])
        vizkit.load_images(case["path"], **kwargs)


def main(manifest: str) -> None:
    import numpy as np
    import PIL.ImageFile

    import vizkit
    import vizkit.loading

    cases = json.loads(open(manifest).read())
    flags = {"built": False, "decoded": False}
    keras_load = vizkit.loading.keras_load
    image_load = PIL.ImageFile.ImageFile.load

    def built(*args, **kwargs):
        flags["built"] = True
        return keras_load(*args, **kwargs)

    def decoded(self, *args, **kwargs):
        flags["decoded"] = True
        return image_load(self, *args, **kwargs)

    vizkit.loading.keras_load = built
    PIL.ImageFile.ImageFile.load = decoded
    # warm up: TensorFlow, the allow-lists, Pillow's plugins
    warm = os.path.join(os.path.dirname(manifest), "base", "mlp.keras")
    vizkit.load_model(warm)
    vizkit.load_images(np.zeros((4, 4, 3), "uint8"), size=(2, 2))
    _register_evil()
    sys.addaudithook(_hook)
    for case in sorted(cases, key=lambda c: c["live"]):  # controls last
        flags.update(built=False, decoded=False)
        _EVENTS.clear()
        markers = set(os.listdir(os.environ["VIZKIT_HOSTILE_MARKERS"]))
        exact = _reset_peak()
        before, _ = _memory()
        start = time.perf_counter()
        error = message = None
        _WATCH["on"] = True
        try:
            _run(case, flags)
        except Exception as err:  # noqa: BLE001 - reported, not hidden
            error, message = type(err).__name__, str(err)
            if not isinstance(err, vizkit.VizkitError):
                message += " | " + traceback.format_exc(limit=3)[-400:]
        finally:
            _WATCH["on"] = False
        elapsed = time.perf_counter() - start
        after, peak = _memory()
        growth = (peak if exact else after) - before
        print(
            json.dumps(
                {
                    "name": case["name"],
                    "error": error,
                    "message": message,
                    "seconds": round(elapsed, 3),
                    "growth": growth,
                    "built": flags["built"],
                    "decoded": flags["decoded"],
                    "events": list(_EVENTS),
                    "markers": sorted(
                        set(os.listdir(os.environ["VIZKIT_HOSTILE_MARKERS"])) - markers
                    ),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1])
