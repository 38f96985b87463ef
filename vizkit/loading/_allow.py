"""Which Keras objects a model config may name, and where (imports Keras).

Every class or function a config names sits in a *position*: a layer, an activation, an
initializer, a regularizer, a constraint, a dtype policy, the training configuration, a node's
call arguments, or a plain value. Each position has its own allow-list, derived from Keras's
public registries (``keras.layers``, ``keras.activations``, ``keras.initializers``, ...): a
``Dense`` activation may be ``relu`` but not ``keras.applications.densenet.DenseNet121`` or
``keras.utils.get_file``, although all three live inside Keras. Names are resolved the way Keras
resolves them (public API name, built-in function search, module import, the legacy ``.h5``
tables), and the object Keras would get must be on the list for that position.

``tests/test_loading_allow.py`` calls every member of every list under an audit hook that
fails on network, file-system and process access.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Iterable
from typing import Any

# Keras layers that run code or read files named by the config (Keras gates some with safe mode)
CODE_LAYERS = {
    "Lambda": "run Python code",
    "TorchModuleWrapper": "unpickle Python objects, which can run any code,",
    "TFSMLayer": "load and run an external TensorFlow SavedModel",
    "JaxLayer": "call Python functions named in the file",
    "FlaxLayer": "call Python functions named in the file",
}
_NOT_LAYERS = frozenset({"Layer", "Wrapper", "InputSpec"})  # abstract bases, not layers
_OPS_MODULES = ("core", "einops", "image", "linalg", "math", "nn", "numpy")
# operations whose arguments or config are Python callables (the file would name the callable)
_CALLABLE_OPS = frozenset(
    {"Map", "Scan", "AssociativeScan", "Switch", "WhileLoop", "ForiLoop", "Cond", "VectorizedMap"}
    | {"JVP", "CustomGradient"}
)
_MERGE_FUNCTIONS = ("add", "average", "concatenate", "dot", "maximum", "minimum", "multiply")
_MERGE_FUNCTIONS += ("subtract",)
_KERAS_PACKAGES = frozenset({"keras", "keras_hub", "keras_cv", "keras_nlp"})
UNLOADED = object()  # a module Keras would import to resolve a name: never allowed

POSITION_WORDS = {
    "layer": "a Keras layer",
    "activation": "a Keras activation",
    "initializer": "a Keras initializer",
    "regularizer": "a Keras regularizer",
    "constraint": "a Keras constraint",
    "dtype_policy": "a Keras dtype policy",
    "compile": "a Keras optimizer, loss or metric",
    "node": "a value a layer may be called with",
    "value": "a Keras building block",
    "legacy_value": "a Keras activation or merge function",
}
MODULE_OBJECT_POSITIONS = ("initializer", "regularizer", "constraint", "dtype_policy")


@dataclasses.dataclass(frozen=True)
class Allowed:
    """The allow-lists, and the name tables Keras resolves some positions with."""

    positions: dict[str, frozenset]
    module_objects: dict[str, dict[str, Any]]  # position -> Keras's own name table
    legacy_layers: dict[str, Any]  # what legacy (.h5) layer configs resolve class names in

    def allows(self, position: str, obj: Any) -> bool:
        return obj in self.positions[position]


def _public(module: Any, skip: Iterable[str] = ("get", "serialize", "deserialize")) -> dict:
    skip = set(skip)
    return {
        name: getattr(module, name)
        for name in dir(module)
        if not name.startswith("_")
        and name not in skip
        and not inspect.ismodule(getattr(module, name))
    }


def _subclasses(module: Any, base: type) -> set:
    return {
        obj
        for obj in _public(module).values()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base
    }


def _defined_in(prefixes: tuple[str, ...], base: type, skip: frozenset = frozenset()) -> set:
    """Subclasses of ``base`` defined in loaded modules whose names start with ``prefixes``."""
    found = set()
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(prefixes):
            continue
        for attr, obj in list(vars(module).items()):
            if (
                inspect.isclass(obj)
                and obj.__module__ == name
                and issubclass(obj, base)
                and obj is not base
                and attr not in skip
            ):
                found.add(obj)
    return found


def quiet_keras() -> None:
    """Import Keras through :mod:`vizkit._tf` (TensorFlow's start-up notices silenced) before
    any ``keras.src`` module: importing one first would start TensorFlow noisily."""
    import vizkit._tf  # noqa: F401


@functools.cache
def allowed() -> Allowed:
    """The allow-lists for the installed Keras (built once per process)."""
    from vizkit._tf import keras as keras_api  # TensorFlow's quiet start-up comes first

    k = keras_api
    from keras.src import constraints, dtype_policies, initializers, layers, regularizers
    from keras.src.models.functional import Functional
    from keras.src.ops.operation import Operation

    activation_fns = {
        obj for obj in _public(k.activations).values() if callable(obj) and not inspect.isclass(obj)
    }
    layer_classes = {
        obj
        for name, obj in _public(k.layers).items()
        if inspect.isclass(obj)
        and issubclass(obj, k.layers.Layer)
        and name not in CODE_LAYERS
        and name not in _NOT_LAYERS
    }
    layer_classes -= {getattr(k.layers, name) for name in CODE_LAYERS if hasattr(k.layers, name)}
    layer_classes |= {k.Model, k.Sequential, Functional}
    ops = _defined_in(
        tuple(f"keras.src.ops.{m}" for m in _OPS_MODULES), Operation, skip=_CALLABLE_OPS
    )
    # layers Keras's own applications define and save (ConvNeXt's LayerScale, ...)
    application_layers = _defined_in(("keras.src.applications.",), k.layers.Layer)
    positions = {
        "layer": frozenset(layer_classes | ops | application_layers),
        "activation": frozenset(activation_fns | layer_classes | application_layers),
        "initializer": frozenset(_subclasses(k.initializers, k.initializers.Initializer)),
        "regularizer": frozenset(_subclasses(k.regularizers, k.regularizers.Regularizer)),
        "constraint": frozenset(_subclasses(k.constraints, k.constraints.Constraint)),
        "dtype_policy": frozenset(
            obj for obj in _public(k.dtype_policies).values() if inspect.isclass(obj)
        ),
    }
    positions["compile"] = frozenset(
        _subclasses(k.optimizers, k.optimizers.Optimizer)
        | _subclasses(k.optimizers.schedules, k.optimizers.schedules.LearningRateSchedule)
        | {obj for obj in _public(k.losses).values() if callable(obj)} - {k.losses.Loss}
        | {obj for obj in _public(k.metrics).values() if callable(obj)} - {k.metrics.Metric}
    )
    union = frozenset().union(
        *(positions[p] for p in ("layer", "activation", *MODULE_OBJECT_POSITIONS))
    )
    positions["node"] = union
    positions["value"] = union
    positions["legacy_value"] = frozenset(
        activation_fns | {getattr(layers, name) for name in _MERGE_FUNCTIONS}
    )
    legacy = dict(vars(layers))
    legacy.update(
        InputLayer=layers.InputLayer, Functional=Functional, Model=k.Model, Sequential=k.Sequential
    )
    quiet_keras()
    from keras.src import losses, metrics, optimizers

    compile_names = {**metrics.ALL_OBJECTS_DICT, **losses.ALL_OBJECTS_DICT}
    compile_names.update(optimizers.ALL_OBJECTS_DICT)
    compile_names.update(
        (name, obj) for name, obj in _public(k.optimizers.schedules).items() if inspect.isclass(obj)
    )
    module_objects = {
        "compile": compile_names,
        "initializer": initializers.ALL_OBJECTS_DICT,
        "regularizer": regularizers.ALL_OBJECTS_DICT,
        "constraint": constraints.ALL_OBJECTS_DICT,
        "dtype_policy": dtype_policies.ALL_OBJECTS_DICT,
    }
    return Allowed(positions, module_objects, legacy)


# --------------------------------------------------------------------------------------------
# Resolving a name as Keras would
# --------------------------------------------------------------------------------------------
def registered(name: str | None) -> bool:
    """Whether the process has a custom object registered (globally or in a scope) as ``name``."""
    if not name:
        return False
    quiet_keras()
    from keras.src.saving import object_registration

    return object_registration.get_registered_object(name) is not None


def resolve(
    position: str, module: str | None, name: str, function: bool, legacy: bool, fn_key: str
) -> list[Any]:
    """The Keras objects the name could resolve to in ``position`` (empty: not Keras's own).

    ``fn_key`` is the name Keras's name tables use for a function (its ``registered_name``, or
    the function name for ``builtins``). :data:`UNLOADED` stands for a module Keras would
    import to find the name.
    """
    table = allowed()
    if position in MODULE_OBJECT_POSITIONS:
        found = table.module_objects[position].get(fn_key if function else name)
        return [found] if found is not None else []
    if legacy:
        found = table.legacy_layers.get(name)
        return [found] if found is not None else []
    if position == "compile" and not module:  # legacy .h5 training configs: by name
        key = fn_key if function else name
        names = table.module_objects["compile"]
        found = names.get(key, names.get(key.lower()))  # optimizers are looked up lower-case
        return [found] if found is not None else []
    if not module:
        return []
    quiet_keras()
    from keras.src.api_export import get_symbol_from_name
    from keras.src.saving.keras_saveable import KerasSaveable
    from keras.src.saving.serialization_lib import BUILTIN_MODULES

    if module == "keras" or module.startswith("keras."):
        found = get_symbol_from_name(f"{module}.{name}")
        if found is not None:
            return [found]
    if function and module == "builtins":
        found = [get_symbol_from_name(f"keras.{mod}.{name}") for mod in sorted(BUILTIN_MODULES)]
        found = [obj for obj in found if obj is not None]
        if found:
            return found
    if module.split(".", 1)[0] in _KERAS_PACKAGES:
        loaded = sys.modules.get(module)
        if loaded is None:  # keras_hub & co. not installed or not imported: custom objects
            return [UNLOADED] if module.startswith("keras.") else []
        found = vars(loaded).get(name)
        if inspect.isclass(found) and issubclass(found, KerasSaveable):
            return [found]
    return []


def layer_class_name(node: dict, custom_objects: Iterable[str] = ()) -> str | None:
    """The Keras class a layer entry of a config builds (``"Dense"``), None for custom ones."""
    name, module = node.get("class_name"), node.get("module")
    if not isinstance(name, str) or name in set(custom_objects):
        return None
    found = resolve("layer", module, name, False, "module" not in node, name)
    obj = found[0] if found else None
    return obj.__name__ if isinstance(obj, type) else None


def public_name(obj: Any) -> str:
    """``keras.layers.Dense`` for Keras's objects, else ``module.name``."""
    quiet_keras()
    from keras.src.api_export import get_name_from_symbol

    try:
        name = get_name_from_symbol(obj)
    except Exception:  # noqa: BLE001 - only for messages
        name = None
    if name:
        return name
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
