"""Registry of attribution methods.

Each method family module registers its classes with :func:`register`; the registry drives the
contract tests, the dashboard's method menu and parameter widgets, and the report.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from vizkit.errors import InputError


@dataclasses.dataclass(frozen=True)
class Param:
    """One typed hyperparameter of a method, with what a widget needs to offer it."""

    name: str
    type: type
    default: Any
    label: str = ""
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about a method: its class, label, paper, and parameters."""

    name: str
    label: str
    reference: str
    family: str
    cls: type
    params: tuple[Param, ...] = ()
    needs_layer: bool = False

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}


_REGISTRY: dict[str, MethodInfo] = {}
_FAMILIES = "vizkit.methods"


def register(
    name: str,
    *,
    label: str,
    reference: str,
    family: str,
    params: Sequence[Param] = (),
    needs_layer: bool = False,
) -> Callable[[type], type]:
    """Class decorator: register an attribution method under ``name``."""

    def decorate(cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise RuntimeError(f"method {name!r} is registered twice")
        _REGISTRY[name] = MethodInfo(
            name=name,
            label=label,
            reference=reference,
            family=family,
            cls=cls,
            params=tuple(params),
            needs_layer=needs_layer,
        )
        cls.name = name
        return cls

    return decorate


def _load() -> None:
    importlib.import_module(_FAMILIES)


def available_methods() -> list[str]:
    """Names of every registered attribution method, in registration order."""
    _load()
    return list(_REGISTRY)


def get_method(name: str) -> MethodInfo:
    """The :class:`MethodInfo` for ``name``; a clear error lists the valid names."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(_REGISTRY)
        raise InputError(f"unknown method {name!r}: choose one of {valid}") from None
