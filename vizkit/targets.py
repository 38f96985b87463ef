"""Target objects: explain something other than one class of a classifier.

``targets=`` in :func:`vizkit.explain` (and ``Method.explain``) takes class indices, or one of
these objects for the whole batch (in the spirit of pytorch-grad-cam's
``ClassifierOutputTarget`` / ``SemanticSegmentationTarget``):

- :class:`UnitTarget`: one output unit's own value: a regression output, or one unit of a
  multi-label sigmoid head (its logit, or its probability with ``score="probability"``), with
  no binary negation;
- :class:`RegionTarget`: a class's summed score over a region of a per-pixel (segmentation)
  output ``(N, H', W', K)``;
- any callable ``fn(outputs) -> scores``: TensorFlow code mapping the head output
  ``(N, ...)`` (float32; logits, or the model's own outputs with ``score="probability"``) to
  one score per image ``(N,)``. It must treat rows independently (methods score noisy copies,
  path points and masked images in arbitrary batches).

Every gradient and CAM method (and occlusion) explains the target's score; the explanation's
``targets`` hold the target's unit or class (``-1`` for a callable) and ``target`` describes it.
The metrics score classes only: evaluate class targets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from vizkit._tf import tf
from vizkit.errors import InputError
from vizkit.models import Head
from vizkit.scoring import Scoring, flatten


class Target:
    """Base of target objects: a score per image computed in TensorFlow from the head output."""

    #: the index recorded in ``Explanation.targets`` (a unit or class; -1 when none)
    index: int = -1

    def score(self, out: Any) -> Any:
        """``(N, ...)`` float32 head outputs -> ``(N,)`` scores."""
        raise NotImplementedError

    def check(self, shape: tuple[int | None, ...], head: Head) -> None:
        """Raise a clear error if the head output of ``shape`` (batch first) cannot be scored."""

    def describe(self) -> str:
        return type(self).__name__

    def key(self) -> Hashable:
        """Identifies the compiled functions built for this target."""
        return (type(self).__name__, id(self))


@dataclasses.dataclass(frozen=True, eq=False)
class UnitTarget(Target):
    """One output unit's value (a regression output, a unit of a multi-label sigmoid head).

    ``unit`` indexes the last axis of the head output (a per-pixel output is averaged over
    positions first).
    """

    unit: int = 0

    @property
    def index(self) -> int:  # type: ignore[override]
        return int(self.unit)

    def score(self, out: Any) -> Any:
        return flatten(out)[:, self.unit]

    def check(self, shape: tuple[int | None, ...], head: Head) -> None:
        if not 0 <= int(self.unit) < head.units:
            raise InputError(
                f"UnitTarget({self.unit}) is out of range: the head has {head.units} units "
                f"(0 to {head.units - 1})"
            )

    def describe(self) -> str:
        return f"unit {self.unit}"

    def key(self) -> Hashable:
        return ("unit", int(self.unit))


@dataclasses.dataclass(frozen=True, eq=False)
class RegionTarget(Target):
    """Class ``channel``'s score summed over a region of a per-pixel output ``(N, H', W', K)``
    (pytorch-grad-cam's ``SemanticSegmentationTarget``): ``sum(out[..., channel] * mask)``.

    ``mask`` is ``(H', W')`` (bool or weights), the same for every image; ``None`` is the
    whole output.
    """

    channel: int = 0
    mask: Any = None

    def __post_init__(self) -> None:
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=np.float32)
            if mask.ndim != 2 or not np.all(np.isfinite(mask)):
                raise InputError(
                    f"RegionTarget mask must be a finite 2-D (height, width) array, not shape "
                    f"{mask.shape}"
                )
            mask.setflags(write=False)
            object.__setattr__(self, "mask", mask)

    @property
    def index(self) -> int:  # type: ignore[override]
        return int(self.channel)

    def score(self, out: Any) -> Any:
        plane = out[..., self.channel]
        if self.mask is not None:
            plane = plane * tf.constant(self.mask)
        return tf.reduce_sum(plane, axis=(1, 2))

    def check(self, shape: tuple[int | None, ...], head: Head) -> None:
        if len(shape) != 4:
            raise InputError(
                f"RegionTarget needs a per-pixel output (batch, height, width, classes); this "
                f"head's output has shape {tuple(shape[1:])}: use UnitTarget or a class index"
            )
        if not 0 <= int(self.channel) < head.units:
            raise InputError(
                f"RegionTarget channel {self.channel} is out of range: the output has "
                f"{head.units} channels"
            )
        if self.mask is not None and tuple(self.mask.shape) != tuple(shape[1:3]):
            raise InputError(
                f"RegionTarget mask has shape {self.mask.shape} but the output is "
                f"{shape[1]}x{shape[2]}: give a mask of the output's size"
            )

    def describe(self) -> str:
        where = "the whole output" if self.mask is None else f"{int((self.mask != 0).sum())} px"
        return f"channel {self.channel} over {where}"

    def key(self) -> Hashable:
        mask = None if self.mask is None else (self.mask.shape, self.mask.tobytes())
        return ("region", int(self.channel), mask)


@dataclasses.dataclass(frozen=True, eq=False)
class CallableTarget(Target):
    """A function ``fn(outputs) -> (N,)`` scores, in TensorFlow."""

    fn: Callable[[Any], Any] = dataclasses.field(default=lambda out: out)

    def score(self, out: Any) -> Any:
        return tf.reshape(tf.cast(self.fn(out), tf.float32), [-1])

    def describe(self) -> str:
        return getattr(self.fn, "__name__", "custom target")

    def key(self) -> Hashable:
        return ("callable", id(self.fn))


def as_target(targets: Any) -> Target | None:
    """A target object for ``targets`` (an object or a callable), or None for class indices."""
    if isinstance(targets, Target):
        return targets
    if callable(targets) and not isinstance(targets, (np.ndarray, list, tuple)):
        return CallableTarget(targets)
    return None


@dataclasses.dataclass(frozen=True)
class TargetScoring(Scoring):
    """A :class:`~vizkit.scoring.Scoring` whose scores come from a target object.

    Predictions still follow the head's rule; the targets passed in are recorded unchanged, and
    every row's score is the target's.
    """

    target: Target = dataclasses.field(default_factory=UnitTarget)

    def key(self) -> Hashable:
        return self.target.key()

    def score(self, out: Any, targets: Any = None) -> Any:
        return self.target.score(tf.cast(out, tf.float32))

    def __call__(self, out: Any, targets: Any) -> tuple[Any, Any]:
        return tf.cast(targets, tf.int32), self.score(out)
