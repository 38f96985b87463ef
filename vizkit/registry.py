"""Registry of attribution methods: the single source of method facts.

A method is a class that declares its facts once, as class attributes, and registers itself
with the bare :func:`register` decorator::

    @register
    class HiResCAM(GradientCAM):
        name = "hirescam"
        label = "HiResCAM"
        reference = "Draelos & Carin (2020), ..."
        description = "What it shows, how to read it, caveats."
        hyperparameters = common_params()

``family`` and ``needs_layer`` usually come from the family's base class. The registry drives
the contract tests, the dashboard's method menu and parameter widgets, the CLI, the report,
the bench and the map-health advice (by family); nothing else lists method names.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
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


#: Method families: how a method computes its map (health advice and menus group by these).
FAMILIES: dict[str, str] = {
    "gradient": "Gradients of the score with respect to the input pixels",
    "cam": "Class activation maps weighted by gradients at a layer",
    "score-cam": "Class activation maps weighted by the score of channel-masked inputs",
    "activation-cam": "Class activation maps from a layer's activations alone (class-agnostic)",
    "perturbation": "Score changes when parts of the input are hidden",
}


_ARXIV = re.compile(r"arXiv:\s*(\d{4}\.\d{4,5})")
_DOI = re.compile(r"doi:\s*(10\.\d{4,9}/[^\s,;]+)", re.IGNORECASE)
_URL = re.compile(r"https://[^\s,;]+")


def reference_url(reference: str) -> str | None:
    """The paper's address in a reference text: its arXiv abstract, its DOI, or the first
    ``https`` address in it (None when the text has none)."""
    found = _ARXIV.search(reference)
    if found:
        return f"https://arxiv.org/abs/{found.group(1)}"
    found = _DOI.search(reference)
    if found:
        return f"https://doi.org/{found.group(1).rstrip('.')}"
    found = _URL.search(reference)
    return found.group(0).rstrip(".") if found else None


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """What the registry knows about a method: its class, label, paper, family, parameters and
    a plain-language description."""

    name: str
    label: str
    reference: str
    family: str
    cls: type
    params: tuple[Param, ...] = ()
    needs_layer: bool = False
    description: str = ""
    #: :func:`vizkit.explain_layers` computes every layer in one forward and backward pass
    one_pass_layers: bool = False

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    @property
    def url(self) -> str | None:
        """The paper's address (arXiv or DOI), from :attr:`reference`."""
        return reference_url(self.reference)

    @property
    def family_label(self) -> str:
        """One line on what the method's family computes."""
        return FAMILIES.get(self.family, self.family)


_REGISTRY: dict[str, MethodInfo] = {}
_FAMILIES = "vizkit.methods"
_FACTS = ("name", "label", "reference", "family", "description")


def register(cls: type) -> type:
    """Class decorator: register an attribution method from its class attributes.

    Reads ``name``, ``label``, ``reference``, ``family``, ``description`` (non-empty strings),
    ``hyperparameters`` (a tuple of :class:`Param`), ``needs_layer`` and ``one_pass_layers``
    (bools).
    """
    missing = [fact for fact in _FACTS if not isinstance(getattr(cls, fact, None), str)]
    missing += [fact for fact in _FACTS if fact not in missing and not getattr(cls, fact)]
    if missing:
        raise TypeError(f"{cls.__name__} does not declare {', '.join(missing)}")
    if cls.family not in FAMILIES:
        raise TypeError(
            f"{cls.__name__}.family is {cls.family!r}: choose one of {', '.join(FAMILIES)}"
        )
    params = tuple(getattr(cls, "hyperparameters", ()))
    if not all(isinstance(p, Param) for p in params):
        raise TypeError(f"{cls.__name__}.hyperparameters must hold Param objects")
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name].cls is not cls:
        raise RuntimeError(f"method {name!r} is registered twice")
    _REGISTRY[name] = MethodInfo(
        name=name,
        label=cls.label,
        reference=cls.reference,
        family=cls.family,
        cls=cls,
        params=params,
        needs_layer=bool(getattr(cls, "needs_layer", False)),
        description=" ".join(cls.description.split()),
        one_pass_layers=bool(getattr(cls, "one_pass_layers", False)),
    )
    return cls


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
