"""The hyperparameters every method shares, and their validation.

The registry's :class:`~vizkit.registry.Param` objects are the single source of truth: the
dashboard's widgets, the CLI and :meth:`vizkit.methods.base.Method._validate` all read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.registry import Param

SCORE = Param(
    "score",
    str,
    "logit",
    label="Score",
    help="Explain the pre-activation score (logit) of a softmax/sigmoid head, or its probability",
    choices=("logit", "probability"),
)
BATCH_SIZE = Param(
    "batch_size",
    int,
    None,
    label="Batch size",
    help="Images (or noisy copies, path points, masked images) per pass: memory versus speed; "
    "None sizes it to the model (see vizkit.methods.batching.auto_batch_size)",
    min=1,
    max=4096,
    step=1,
)
SEED = Param(
    "seed", int, 0, label="Seed", help="Random seed: same seed, same map", min=0, max=2**31 - 1
)
CHANNELS = Param(
    "channels",
    str,
    "sum",
    label="Channel reduction",
    help="How colour channels become one map: signed sum, largest absolute value, or L2 norm",
    choices=("sum", "max_abs", "l2"),
)
ENGINE = Param(
    "engine",
    str,
    "native",
    label="Engine",
    help="Compute with vizkit's compiled graph (native) or through tf-keras-vis on the same "
    "rebuilt model, to cross-check",
    choices=("native", "tf-keras-vis"),
)


def common_params(score: str = "logit") -> tuple[Param, ...]:
    """The ``score`` and ``batch_size`` parameters every method takes."""
    if score == SCORE.default:
        return (SCORE, BATCH_SIZE)
    return (Param(**{**SCORE.__dict__, "default": score}), BATCH_SIZE)


def check_param(param: Param, value: Any, method: str) -> Any:
    """``value`` checked against ``param`` (type, choices, range); a clear error names the fix."""
    where = f"{method}: parameter {param.name!r}"
    if value is None and param.default is None:
        return None
    if param.choices is not None and param.type is str:
        if value not in param.choices:
            choices = ", ".join(repr(c) for c in param.choices)
            raise InputError(f"{where} is {value!r}: choose one of {choices}")
        return value
    if param.type is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"{where} must be True or False, not {value!r}")
        return bool(value)
    if param.type is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise InputError(f"{where} must be an integer, not {value!r}")
        value = int(value)
    elif param.type is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise InputError(f"{where} must be a number, not {value!r}")
        value = float(value)
        if not np.isfinite(value):
            raise InputError(f"{where} must be finite, not {value!r}")
    if param.min is not None and value < param.min:
        raise InputError(f"{where} is {value}: it must be at least {param.min}")
    if param.max is not None and value > param.max:
        raise InputError(f"{where} is {value}: it must be at most {param.max}")
    return value


def unknown_params(params: Mapping[str, Any], known: Mapping[str, Param], method: str) -> None:
    """Raise a clear error for the first parameter ``method`` does not take."""
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(
            f"method {method!r} has no parameter {unknown[0]!r}: its parameters are "
            f"{', '.join(known)}"
        )
