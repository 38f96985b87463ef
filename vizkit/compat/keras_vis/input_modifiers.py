"""keras-vis ``vis.input_modifiers`` names, so tutorials that import them keep running.

vizkit's activation maximization applies its own random jitter, scale and rotation every step,
so these classes only record their arguments; ``visualize_activation`` ignores them (with a
warning) when they are passed as ``input_modifiers``.
"""

from __future__ import annotations

from typing import Any


class InputModifier:
    """Base of the keras-vis input modifiers (a no-op here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def pre(self, inp: Any) -> Any:
        return inp

    def post(self, inp: Any) -> Any:
        return inp


class Jitter(InputModifier):
    """keras-vis ``Jitter(jitter=16)``: vizkit jitters by default (its ``jitter`` parameter)."""


__all__ = ["InputModifier", "Jitter"]
