"""Call every class and function a model config may name, under an audit hook (JSON lines out).

Run by ``tests/test_loading_allow.py`` as ``python -m tests.hostile.audit`` in a fresh process.
For each member of vizkit's allow-lists (layers built from their config and called, activations
and regularizers called on a tensor, initializers asked for a tensor, dtype policies built,
optimizers stepped, losses and metrics evaluated), it reports whether the call ran and every
network, process and file-system event Python's audit hook saw during it. Keras's operation
classes are audited statically by the test (they only compute on tensors).
"""

from __future__ import annotations

import inspect
import json
import os
import sys

_EVENTS: list[str] = []
_WATCH = {"on": False}
_READ_ROOTS = tuple(
    os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, "/proc", "/sys"}
) + ("/dev/", "/proc/", "/sys/")
_PROCESS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork")
_NETWORK = ("socket.", "urllib.Request", "http.client")
_FILES = (
    "os.mkdir",
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.truncate",
    "shutil.",
)


def _hook(event: str, args: tuple) -> None:
    if event.startswith(_NETWORK):
        _EVENTS.append(f"{event} {str(args)[:100]}")
        raise PermissionError("network access is blocked in the audit")
    if not _WATCH["on"]:
        return
    if event.startswith(_PROCESS) or event.startswith(_FILES):
        _EVENTS.append(f"{event} {str(args)[:100]}")
    elif event == "open" and args and isinstance(args[0], (str, bytes)):
        path = os.path.realpath(os.fsdecode(args[0]))
        mode, flags = (args[1] if len(args) > 1 else "r"), (args[2] if len(args) > 2 else 0)
        writing = any(c in str(mode) for c in "wax+") or bool(flags & (os.O_WRONLY | os.O_RDWR))
        if writing or not path.startswith(_READ_ROOTS):
            _EVENTS.append(f"open {path} {mode!r}")


def _calls(keras, specs, allowed) -> list[tuple[str, object]]:
    """(name, zero-argument callable that exercises one allowed object)."""
    import numpy as np

    ops = keras.ops
    x = ops.convert_to_tensor(np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4))
    y_true = ops.convert_to_tensor(np.array([[0, 1], [1, 0]], "float32"))
    y_pred = ops.convert_to_tensor(np.array([[0.2, 0.8], [0.6, 0.4]], "float32"))
    positions = allowed.positions
    calls = []
    for obj in positions["activation"] - positions["layer"]:
        extra = (0.5, 0.0) if obj.__name__ == "threshold" else ()
        calls.append((f"activation {obj.__name__}", lambda f=obj, a=extra: f(x, *a)))
    for cls in positions["initializer"]:
        shape = (8, 1, 5) if cls.__name__ == "STFT" else (4, 4)
        calls.append((f"initializer {cls.__name__}", lambda c=cls, s=shape: c()(shape=s)))
    for cls in positions["regularizer"] | positions["constraint"]:
        calls.append((f"regularizer/constraint {cls.__name__}", lambda c=cls: c()(x)))
    for cls in positions["dtype_policy"]:
        calls.append((f"dtype policy {cls.__name__}", lambda c=cls: _policy(c)))
    for obj in positions["compile"]:
        calls.append((f"compile {obj.__name__}", lambda o=obj: _compile(keras, o, y_true, y_pred)))
    keras_layers = [c for c in positions["layer"] if not c.__module__.startswith("keras.src.ops")]
    for cls in keras_layers:
        calls.append((f"layer {cls.__name__}", lambda c=cls: _layer(keras, specs, c)))
    return sorted(calls, key=lambda item: item[0])


def _policy(cls):
    for args in [("float32",), ("mixed_float16",), (), ("int8_from_float32",)]:
        try:
            return cls(*args)
        except (TypeError, ValueError):
            continue
    for kwargs in [
        {"mode": "int8", "source_name": "float32"},
        {"mode": "float8", "source_name": "float32"},
        {"mode": "int4", "source_name": "float32"},
        {"mode": "gptq/4/128/0/0", "source_name": "float32"},
        {"mode": "awq/4/128", "source_name": "float32"},
    ]:
        try:
            return cls(**kwargs)
        except (TypeError, ValueError):
            continue
    raise TypeError(f"could not build {cls.__name__}")


def _compile(keras, obj, y_true, y_pred):
    if not inspect.isclass(obj):
        return obj(y_true, y_pred)
    if issubclass(obj, keras.optimizers.Optimizer):
        kwargs = {"inner_optimizer": keras.optimizers.SGD()} if "LossScale" in obj.__name__ else {}
        optimizer = obj(**kwargs)
        variable = keras.Variable(keras.ops.ones((2, 2)))
        optimizer.apply_gradients([(keras.ops.ones((2, 2)), variable)])
        return optimizer
    if issubclass(obj, keras.optimizers.schedules.LearningRateSchedule):
        for kwargs in [
            {"initial_learning_rate": 0.1, "decay_steps": 10},
            {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
            {"initial_learning_rate": 0.1, "first_decay_steps": 10},
            {"boundaries": [5], "values": [0.1, 0.01]},
        ]:
            try:
                return obj(**kwargs)(3)
            except TypeError:
                continue
        raise TypeError(f"could not build {obj.__name__}")
    instance = obj()
    if hasattr(instance, "update_state"):
        instance.update_state(y_true, y_pred)
        return instance.result()
    return instance(y_true, y_pred)


def _layer(keras, specs, cls):
    import numpy as np

    kwargs, make_inputs = specs.spec(cls.__name__)
    if cls.__name__ in ("Functional", "Model", "Sequential"):
        inputs = keras.Input((4,))
        model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        if cls.__name__ == "Sequential":
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        return cls.from_config(model.get_config())(np.ones((1, 4), "float32"))
    layer = cls(**kwargs())
    rebuilt = cls.from_config(layer.get_config())
    if make_inputs is None:
        return rebuilt
    inputs = make_inputs()
    if cls.__name__ in ("MultiHeadAttention", "GroupedQueryAttention"):
        return rebuilt(*inputs)
    return rebuilt(inputs)


def main() -> None:
    from tests.hostile import specs
    from vizkit._tf import keras
    from vizkit.loading import _allow

    allowed = _allow.allowed()
    calls = _calls(keras, specs, allowed)
    for _, call in calls[:3]:  # warm up TensorFlow's kernels before watching
        try:
            call()
        except Exception:  # noqa: BLE001, S110 - warm-up only
            pass
    sys.addaudithook(_hook)
    for name, call in calls:
        _EVENTS.clear()
        error = None
        _WATCH["on"] = True
        try:
            call()
        except Exception as err:  # noqa: BLE001 - reported
            error = f"{type(err).__name__}: {str(err)[:200]}"
        finally:
            _WATCH["on"] = False
        print(json.dumps({"name": name, "error": error, "events": list(_EVENTS)}), flush=True)


if __name__ == "__main__":
    main()
