"""Base class for vizkit's result objects.

Every computation returns a frozen dataclass built on :class:`Result`: numpy arrays (made
read-only) plus plain metadata. Results pickle, compare by value in tests, and draw themselves
with ``plot(ax=None)`` / ``plot(fig=None)`` through :mod:`vizkit.plotting` (never by importing
TensorFlow).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def frozen_array(value: Any, dtype: Any = None) -> np.ndarray:
    """Return ``value`` as a read-only numpy array (a copy when it was writeable elsewhere)."""
    array = np.array(value, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True)
class Result:
    """Marker base: subclasses are ``@dataclasses.dataclass(frozen=True)``.

    ``__post_init__`` freezes every ``np.ndarray`` field, so results can be shared between the
    dashboard's cache, reports and notebooks without defensive copies.

    Every result prints as one short line (arrays by shape and dtype, never their values) and
    renders in notebooks through ``_repr_html_`` (see :mod:`vizkit.results.display`). A
    subclass's own ``__repr__`` wins; otherwise the dataclass-generated one (which would dump
    whole arrays) is replaced by the short one.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:  # @dataclass then keeps it (it never overwrites)
            cls.__repr__ = Result.__repr__  # type: ignore[method-assign]

    def __repr__(self) -> str:
        from vizkit.results.display import short_repr

        return short_repr(self)

    def _repr_html_(self) -> str:
        """A notebook view: the result's figure, table or thumbnails."""
        from vizkit.results.display import result_html

        return result_html(self)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                object.__setattr__(self, field.name, frozen_array(value))

    def replace(self, **changes: Any) -> Result:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, key, value)
