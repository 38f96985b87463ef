"""vizkit's error types: every message is one readable sentence naming the problem and the fix."""

from __future__ import annotations


class VizkitError(ValueError):
    """Base of vizkit's errors; catch this to show the user a one-line reason."""


class ModelFileError(VizkitError):
    """A model file is missing, malformed, too large, or cannot be loaded."""


class UnsafeModelError(ModelFileError):
    """A model file would run code when loaded (for example a ``Lambda`` layer)."""


class InputError(VizkitError):
    """Images, targets or parameters that vizkit cannot use."""


class LayerError(VizkitError):
    """A layer name or index that does not exist or does not fit the operation."""


def one_line(message: str) -> str:
    """Collapse whitespace so a message always prints on one line."""
    return " ".join(str(message).split())


class VizkitWarning(UserWarning):
    """A sanity finding about inputs or results (wrong input scale, near-uniform predictions,
    flat faithfulness curves); filter with ``warnings.filterwarnings("ignore",
    category=vizkit.VizkitWarning)``."""
