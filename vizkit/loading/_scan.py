"""Read a model config before Keras does: what it names where, and what it would allocate.

:func:`walk` reads the JSON tree once, iteratively, without importing Keras. It knows the
grammar of Keras configs: which keys hold layers (``layers``, ``layer``, ``cell``, ...), which
hold activations, initializers, regularizers, constraints and dtype policies, where the training
configuration and a node's call arguments are; it records every class or function named there
with its position, bounds nesting depth and the memory of serialized arrays, and collects the
tensor shapes the config records. :func:`check` then refuses code (``Lambda`` layers, serialized
functions, Python outside Keras) and, with Keras imported, every name that is not on its
position's allow-list (see :mod:`vizkit.loading._allow`) or that the process's custom-object
registry would answer, unless the caller passed it in ``custom_objects``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from vizkit.errors import ModelFileError, UnsafeModelError, one_line
from vizkit.loading._limits import RAISE, Limits, count, over, size

ADVICE = "load it with trust=True only if you trust its author"
_SPECIAL = frozenset({"__ellipsis__", "__slice__"})
_TF_OP_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda"})
_CODE_LAYERS = {  # checked without Keras, by class name (the allow-lists exclude them too)
    "Lambda": "run Python code",
    "TorchModuleWrapper": "unpickle Python objects, which can run any code,",
    "TFSMLayer": "load and run an external TensorFlow SavedModel",
    "JaxLayer": "call Python functions named in the file",
    "FlaxLayer": "call Python functions named in the file",
}
_LAYER_KEYS = frozenset({"layer", "layers", "forward_layer", "backward_layer", "cell", "cells"})
_NAMED_POSITIONS = ("activation", "initializer", "regularizer", "constraint", "compile")
_OBJECT_KEYS = frozenset({"class_name", "config", "module", "registered_name", "spec_name"})


@dataclasses.dataclass(frozen=True)
class Ref:
    """A class or function the config names, as Keras would look it up."""

    position: str  # layer, activation, initializer, ..., value (see _allow.POSITION_WORDS)
    layer: str  # the layer it belongs to, for messages
    key: str | None  # the config key it sits under
    module: str | None
    name: str  # class or function name
    registered: str | None
    function: bool
    legacy: bool  # resolved by class name among Keras's layers (legacy .h5 layer entries)
    fn_key: str  # the name Keras's name tables use for a function
    primary: str | None = None  # the name Keras first asks custom objects for (None: none)

    @property
    def lookups(self) -> tuple[str, ...]:
        """Names Keras may look up in the custom-object registry for this reference."""
        names = [self.name, self.fn_key] + ([self.registered] if self.registered else [])
        return tuple(dict.fromkeys(n for n in names if n))

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}" if self.module else self.name


@dataclasses.dataclass
class Findings:
    code_layers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    code_in: list[str] = dataclasses.field(default_factory=list)  # serialized functions
    files_read: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # layer, path
    tf_ops: list[str] = dataclasses.field(default_factory=list)
    refs: list[Ref] = dataclasses.field(default_factory=list)
    strings: list[tuple[str, str, str, bool]] = dataclasses.field(default_factory=list)
    shapes: list[tuple[str, list]] = dataclasses.field(default_factory=list)  # layer, shape
    array_bytes: int = 0


# --------------------------------------------------------------------------------------------
# Walking the config
# --------------------------------------------------------------------------------------------
def _child_position(key: str, owner: str) -> str:
    """The position of the value under ``key`` in the config of an object at ``owner``."""
    if owner == "compile":
        return "compile"
    if key in ("activation", "recurrent_activation") or key.endswith("_activation"):
        return "activation"
    for suffix in ("initializer", "regularizer", "constraint"):
        if key.endswith(suffix):
            return suffix
    if key in ("dtype", "dtype_policy"):
        return "dtype_policy"
    if key in _LAYER_KEYS:
        return "layer"
    return "value"


def walk(config: dict, extra: list, limits: Limits) -> Findings:
    """Record what the config names, where; refuse malformed, too deep or too big configs."""
    found = Findings()
    stack: list[tuple[Any, str, str, str | None, int]] = [(config, "layer", "(model)", None, 1)]
    stack += [(root, "compile", "(training config)", None, 1) for root in extra]
    while stack:
        node, position, layer, key, depth = stack.pop()
        if depth > limits.config_depth:
            raise ModelFileError(
                f"model config nests lists and objects more than {limits.config_depth} deep: "
                "the file is corrupt or hostile, refusing to read it"
            )
        if isinstance(node, list):
            stack.extend((item, position, layer, key, depth + 1) for item in reversed(node))
        elif isinstance(node, dict):
            if "class_name" in node:
                stack.extend(_object(node, position, layer, key, depth, found, limits))
            else:
                stack.extend(
                    (value, position, layer, key, depth + 1) for value in reversed(node.values())
                )
        elif isinstance(node, str) and position in _NAMED_POSITIONS:
            found.strings.append((node, position, layer, False))
    if found.array_bytes > limits.array_bytes:
        raise ModelFileError(
            f"model config holds serialized arrays of {over(found.array_bytes, limits.array_bytes)}"
            f": the file is corrupt or hostile, or {RAISE}"
        )
    return found


def _object(
    node: dict, position: str, layer: str, key: str | None, depth: int, found: Findings, limits
) -> Iterator[tuple[Any, str, str, str | None, int]]:
    """Record one ``{"class_name": ...}`` object; yield its children with their positions."""
    class_name = node["class_name"]
    module = node.get("module")
    registered = node.get("registered_name")
    inner = node.get("config")
    if not isinstance(class_name, str) or not isinstance(module, (str, type(None))):
        raise ModelFileError("model config is malformed: a class or module entry is not text")
    if not isinstance(registered, (str, type(None))):
        raise ModelFileError("model config is malformed: a registered_name entry is not text")
    if position == "layer":
        name = inner.get("name") if isinstance(inner, dict) else None
        name = name if isinstance(name, str) else node.get("name")
        layer = one_line(name)[:100] if isinstance(name, str) else layer
    if class_name.startswith("__") and class_name.endswith("__"):
        yield from _special(node, class_name, inner, position, layer, key, depth, found, limits)
        return
    legacy = position == "layer" and "module" not in node
    if class_name in _CODE_LAYERS:
        found.code_layers.setdefault(class_name, []).append(layer)
    elif class_name in _TF_OP_LAYERS:
        found.tf_ops.append(layer)
    elif class_name == "function":
        if not isinstance(inner, str):
            raise ModelFileError("model config is malformed: a function entry has no name")
        fn_key = inner if module == "builtins" else (registered or inner)
        found.refs.append(
            Ref(position, layer, key, module, inner, registered, True, False, fn_key, inner)
        )
        return
    else:
        found.refs.append(
            Ref(
                position,
                layer,
                key,
                module,
                class_name,
                registered,
                False,
                legacy,
                class_name,
                class_name if legacy else node.get("registered_name", class_name),
            )
        )
    if isinstance(inner, dict):
        if isinstance(inner.get("vocabulary"), str):
            found.files_read.append((layer, inner["vocabulary"]))
        owner = "compile" if position == "compile" else position
        for child_key, value in reversed(list(inner.items())):
            if legacy and isinstance(value, str) and child_key != "name":
                # legacy .h5 layers turn any string naming a function into that function
                found.strings.append((value, "legacy_value", layer, True))
            yield value, _child_position(child_key, owner), layer, child_key, depth + 2
    elif isinstance(inner, list):  # Sequential saved by Keras 2.0: config is the layer list
        yield inner, "layer", layer, "layers", depth + 1
    for meta, value in node.items():
        if meta in _OBJECT_KEYS:
            continue
        if meta == "inbound_nodes":
            yield value, "node", layer, "call arguments", depth + 1
        elif meta == "compile_config":
            yield value, "compile", layer, "training configuration", depth + 1
        elif meta == "build_config" and isinstance(value, dict):
            for shape_key in ("input_shape", "shapes_dict"):
                if isinstance(value.get(shape_key), list):
                    found.shapes.append((layer, value[shape_key]))
            yield value, "value", layer, meta, depth + 1
        else:
            yield value, "value", layer, meta, depth + 1


def _special(
    node: dict,
    class_name: str,
    inner: Any,
    position: str,
    layer: str,
    key: str | None,
    depth: int,
    found: Findings,
    limits: Limits,
) -> Iterator[tuple[Any, str, str, str | None, int]]:
    """Keras's serialized values: arrays, tensors, bytes, symbolic tensors, code."""
    if class_name == "__lambda__":
        found.code_in.append(layer)
    elif class_name in ("__numpy__", "__tensor__"):
        if not isinstance(inner, dict) or not isinstance(inner.get("dtype"), str):
            raise ModelFileError("model config is malformed: a serialized array has no dtype")
        found.array_bytes += _array_bytes(inner.get("value"), inner["dtype"], limits)
    elif class_name == "__bytes__":
        value = inner.get("value") if isinstance(inner, dict) else None
        found.array_bytes += len(value) if isinstance(value, str) else 0
    elif class_name == "__keras_tensor__":
        shape = inner.get("shape") if isinstance(inner, dict) else None
        if isinstance(shape, list):
            found.shapes.append((layer, shape))
    elif class_name == "__typespec__":
        spec = node.get("spec_name")
        module = node.get("module")
        if not isinstance(spec, str) or not isinstance(module, (str, type(None))):
            raise ModelFileError("model config is malformed: a type spec has no name")
        registered = node.get("registered_name")
        registered = registered if isinstance(registered, str) else None
        found.refs.append(
            Ref("value", layer, key, module, spec, registered, False, False, spec, registered)
        )
    elif class_name in _SPECIAL:
        yield inner, "value", layer, key, depth + 1
    else:
        found.refs.append(
            Ref(
                position,
                layer,
                key,
                node.get("module"),
                class_name,
                None,
                False,
                False,
                class_name,
                class_name,
            )
        )


def _array_bytes(value: Any, dtype_text: str, limits: Limits) -> int:
    """Bytes ``np.array(value, dtype)`` would allocate, counted without allocating."""
    try:
        dtype = np.dtype(dtype_text)
    except (TypeError, ValueError, SyntaxError, OverflowError):
        dtype = None  # TensorFlow names numpy does not know ("string", "bfloat16")
    if dtype is not None and (dtype.subdtype is not None or dtype.fields or dtype.kind == "O"):
        raise ModelFileError(
            f"model config holds a serialized array of dtype {one_line(dtype_text)[:40]!r}: "
            "vizkit loads only plain number and text arrays, refusing the file"
        )
    leaves, longest = 0, 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            leaves += 1
            if isinstance(item, str):
                longest = max(longest, len(item))
    itemsize = dtype.itemsize if dtype is not None else 8
    if dtype is None or (itemsize == 0 and dtype.kind in "SUV"):
        itemsize = max(itemsize, longest * (4 if dtype is None or dtype.kind == "U" else 1))
    total = max(leaves, 1) * itemsize
    if total > limits.array_bytes:
        raise ModelFileError(
            f"model config holds a serialized array of {size(total)} (dtype "
            f"{one_line(dtype_text)[:40]!r}), over the {size(limits.array_bytes)} limit for "
            f"arrays in a config: the file is corrupt or hostile, or {RAISE}"
        )
    return total


# --------------------------------------------------------------------------------------------
# Refusing
# --------------------------------------------------------------------------------------------
def refuse_code(found: Findings, trust: bool, custom_objects: Mapping[str, Any]) -> None:
    """Refusals that need no Keras: code layers, serialized code, files read, stdlib names."""
    if not trust:
        if found.code_layers or found.code_in:
            raise UnsafeModelError(_code_message(found))
        if found.files_read:
            layer, path = found.files_read[0]
            raise UnsafeModelError(
                f"layer {layer!r} would read the file {one_line(path)[:120]!r} from this machine "
                f"when loaded: {ADVICE}"
            )
    if found.tf_ops and not _TF_OP_LAYERS & set(custom_objects):
        raise ModelFileError(
            f"model uses raw TensorFlow operations (layer {found.tf_ops[0]!r}) saved by tf.keras "
            "2, which Keras 3 cannot load: re-save it with those operations wrapped in layers"
        )
    if trust:
        return
    system = [
        ref.full
        for ref in found.refs
        if ref.module
        and _is_system(ref.module)
        and ref.primary not in custom_objects
        and not (ref.module == "builtins" and ref.function)
    ]
    if system:
        raise UnsafeModelError(_system_message(system))


def _python_code(ref: Ref) -> bool:
    """A name from Python's standard library (``builtins.eval``, ``os.system``)."""
    if ref.module == "builtins":
        import builtins

        return ">" not in ref.name and hasattr(builtins, ref.name)
    return bool(ref.module) and _is_system(ref.module)


def _is_system(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in sys.stdlib_module_names or top in ("builtins", "__builtin__")


def _system_message(names: list[str]) -> str:
    shown = ", ".join(dict.fromkeys(names))
    return (
        f"model config refers to {shown}, Python code outside Keras that could run on this "
        f"machine when loaded: {ADVICE}"
    )


def _code_message(found: Findings) -> str:
    for class_name, action in _CODE_LAYERS.items():
        names = list(dict.fromkeys(found.code_layers.get(class_name, [])))
        if names:
            quoted = ", ".join(repr(name) for name in names)
            what = (
                f"{class_name} layer {quoted}"
                if len(names) == 1
                else f"{class_name} layers {quoted}"
            )
            article = "" if len(names) > 1 else "a "
            return f"model contains {article}{what} that would {action} when loaded: {ADVICE}"
    quoted = ", ".join(repr(name) for name in dict.fromkeys(found.code_in))
    return f"model contains Python code in layer {quoted} that would run when loaded: {ADVICE}"


def custom_message(names: list[str], offer_trust: bool = True) -> str:
    shown = names[:8]
    more = f" (and {len(names) - 8} more)" if len(names) > 8 else ""
    mapping = ", ".join(f"{name!r}: ..." for name in shown)
    return (
        f"model needs custom objects {', '.join(shown)}{more}: pass custom_objects={{{mapping}}} "
        "with your implementations"
        + (", or trust=True to use ones registered in this process" if offer_trust else "")
    )


def check_names(found: Findings, trust: bool, custom_objects: Mapping[str, Any]) -> tuple[str, ...]:
    """Resolve every reference as Keras would; refuse what is not allowed where it sits.

    Returns the names resolved through ``custom_objects``. Imports Keras.
    """
    from vizkit.loading import _allow

    provided = set(custom_objects)
    used: list[str] = []
    custom: list[str] = []
    for ref in found.refs:
        if ref.primary is not None and ref.primary in provided:
            used.append(ref.primary)  # Keras takes the caller's object before anything else
            continue
        if any(_allow.registered(name) for name in ref.lookups):
            custom.append(ref.registered or ref.name)
            continue
        candidates = _allow.resolve(
            ref.position, ref.module, ref.name, ref.function, ref.legacy, ref.fn_key
        )
        if not candidates:
            if _python_code(ref) and not trust:
                raise UnsafeModelError(_system_message([ref.full]))
            custom.append(ref.fn_key if ref.function else (ref.registered or ref.name))
            continue
        if ref.registered and ref.registered not in (ref.name, ref.fn_key):
            custom.append(ref.registered)  # a registered custom object, not Keras's own
            continue
        if trust:
            continue
        bad = [obj for obj in candidates if not _allow.allowed().allows(ref.position, obj)]
        if bad:
            raise UnsafeModelError(_not_allowed(ref, bad[0]))
    custom += _check_strings(found, trust, provided, used)
    if custom and not trust:
        raise UnsafeModelError(custom_message(list(dict.fromkeys(custom))))
    return tuple(dict.fromkeys(used))


def _check_strings(found: Findings, trust: bool, provided: set, used: list[str]) -> list[str]:
    """Names given as text where Keras looks them up (registry first, then its own tables)."""
    import inspect

    from vizkit.loading import _allow

    custom = []
    for name, position, layer, legacy in found.strings:
        if name in provided:
            used.append(name)
        elif _allow.registered(name):
            custom.append(name)
        elif legacy and not trust:
            obj = _allow.allowed().legacy_layers.get(name)
            if inspect.isfunction(obj) and not _allow.allowed().allows(position, obj):
                ref = Ref(position, layer, None, None, name, None, True, True, name)
                raise UnsafeModelError(_not_allowed(ref, obj))
    return custom


def _not_allowed(ref: Ref, obj: Any) -> str:
    from vizkit.loading import _allow

    if obj is _allow.UNLOADED:
        return (
            f"model config names {ref.full}, from a module of Keras that no model uses "
            f"({ref.module}): {ADVICE}"
        )
    what = _allow.public_name(obj)
    words = _allow.POSITION_WORDS[ref.position]
    if ref.position == "layer":
        where = f"builds layer {ref.layer!r} from {what}"
    elif ref.key and ref.position != "node":
        where = f"uses {what} as the {ref.key} of layer {ref.layer!r}"
    else:
        where = f"uses {what} in layer {ref.layer!r}"
    return (
        f"model config {where}, which is not {words} (it could download files or run other "
        f"code when loaded): {ADVICE}"
    )


def check_shapes(found: Findings, limits: Limits) -> None:
    """Refuse tensors the config records (inputs, node arguments) over the activation budget."""
    for layer, shape in found.shapes:
        values = _values(shape)
        if values > limits.activation_values:
            raise ModelFileError(activation_message(layer, shape, values, limits))


def _values(shape: list) -> int:
    """Values per example in a recorded shape (batch dimension and unknown sizes excluded)."""
    if shape and all(isinstance(s, list) for s in shape):  # several inputs
        return max((_values(s) for s in shape), default=0)
    n = 1
    for dim in shape[1:]:
        if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0:
            n *= dim
    return n


def activation_message(layer: str, shape: Any, values: int, limits: Limits) -> str:
    shown = one_line(str(shape))[:60]
    return (
        f"layer {layer!r} works on tensors of shape {shown}, {count(values)} values per image, "
        f"over the {count(limits.activation_values)} limit ({size(4 * limits.activation_values)} "
        f"as float32): images this large would exhaust memory; {RAISE}"
    )
