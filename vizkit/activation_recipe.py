"""The recipe of activation maximization: every setting that makes its images readable.

:class:`Recipe` holds them (parameterization, spectrum, augmentation, regularizers, polish),
adapted to the input size by :meth:`Recipe.for_input`; :func:`vizkit.maximize_activation`
(:mod:`vizkit.activation_max`) runs it. The reasons for each default are in that module's
docstring and the README's activation-maximization section.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from vizkit.errors import InputError

__all__ = ["Recipe", "LARGE_SIDE"]

PARAMETERIZATIONS = ("fourier", "pixel")
CLASS_OBJECTIVES = ("logit", "logit_minus_mean")
LARGE_SIDE = 128  # RGB inputs this large get Recipe.for_large_rgb


# --------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that shapes an activation-maximization image.

    Attributes
    ----------
    steps : int
        Gradient-ascent steps (capped by ``VIZKIT_MAX_STEPS``).
    learning_rate : float
        Adam step size on the parameters (Fourier coefficients or pixel logits).
    parameterization : {"fourier", "pixel"}
        Fourier: the image is the inverse FFT of a spectrum scaled by ``1 / f**decay_power``
        (Mordvintsev et al. 2018); pixel: one free value per pixel. Both pass through a sigmoid
        into the model's value range.
    decay_power : float
        Spectrum decay; larger favours smoother images. Fourier only.
    decorrelate : bool
        Optimize RGB in a decorrelated colour basis (natural-image statistics). 3-channel only.
    jitter : int
        Largest random shift per step, in pixels.
    scale : (float, float)
        Range of the random zoom factor per step.
    rotation : float
        Largest random rotation per step, in degrees.
    tv_weight : float
        Weight of the total-variation penalty (mean absolute neighbour difference, on the
        0..1 scale), relative to the objective's current magnitude.
    l2_weight : float
        Weight of the L2 penalty (mean squared distance from mid-range, on the 0..1 scale),
        relative to the objective's current magnitude.
    init_std : float
        Standard deviation of the random starting parameters.
    polish : float
        Fraction of the steps, at the end, that optimize the image as it will be shown (no
        jitter, zoom or rotation) with the L2 weight times ``polish_l2``. The augmented phase
        finds a robust, readable structure; the polish raises contrast within it (on the digits
        CNN, +9% on the weakest class logit with images that look the same). 0 turns it off.
    polish_l2 : float
        Factor on ``l2_weight`` during the polish.
    views : int
        Augmented views of each image per step; the objective is their mean (MaCo, Fel et al.
        2023, averages a batch of random crops). Each view costs one forward+backward pass.
    crop : (float, float)
        Range of the side of the random square crop each view shows (a fraction of the image
        side, placed anywhere inside it), enlarged to the full input size before the zoom:
        ``(1, 1)`` shows the whole image. Small crops make every part of the image carry the
        class at a larger scale.
    noise : float
        Standard deviation of Gaussian noise added to each view (on the 0..1 scale).
    contrast : float
        If positive, the image before the sigmoid is centred per colour channel and scaled to
        this standard deviation at every step (a fixed contrast, as MaCo fixes the spectrum's
        magnitude): the optimization can only rearrange structure, not saturate colours. 0
        leaves the contrast free (Lucid).
    decay_start : float or None
        Coarse to fine: the spectrum decay at the first step, moving linearly to
        ``decay_power`` over the first ``anneal`` fraction of the steps (a steep decay first
        lays out large shapes, details come later). None keeps ``decay_power`` throughout.
        Fourier only.
    anneal : float
        Fraction of the steps over which ``decay_start`` moves to ``decay_power``.
    class_objective : {"logit", "logit_minus_mean"}
        For class targets: maximize the class logit, or the logit minus the mean of all logits
        (evidence shared with other classes does not count). The reported activation is the
        logit either way. Single-unit heads always use the logit.
    """

    steps: int = 200
    learning_rate: float = 0.05
    parameterization: str = "fourier"
    decay_power: float = 1.0
    decorrelate: bool = True
    jitter: int = 2
    scale: tuple[float, float] = (0.9, 1.1)
    rotation: float = 8.0
    tv_weight: float = 0.3
    l2_weight: float = 5.0
    init_std: float = 0.01
    polish: float = 0.1
    polish_l2: float = 0.5
    views: int = 1
    crop: tuple[float, float] = (1.0, 1.0)
    noise: float = 0.0
    contrast: float = 0.0
    decay_start: float | None = None
    anneal: float = 0.5
    class_objective: str = "logit"

    @classmethod
    def for_input(cls, shape: Sequence[int | None], **overrides: Any) -> Recipe:
        """Defaults for an input of shape ``(H, W, C)`` (or ``(N, H, W, C)``), then overrides.

        Jitter is about 1/16 of the smaller side (1 pixel at minimum), so 28x28 digits move by
        2 pixels and 64x64 images by 4; rotation and zoom stay moderate on small inputs, where
        a few degrees already move the border pixels by a large fraction of a stroke. Small
        inputs (32 pixels or less) take a larger step size (0.1 instead of 0.05): their spectrum
        has few coefficients, and 40 steps already give readable digits.

        RGB inputs of 128 pixels or more (ImageNet networks) get :meth:`for_large_rgb`.
        """
        dims = [int(d) for d in tuple(shape)[-3:] if d is not None]
        if len(dims) != 3:
            raise InputError(
                f"activation maximization needs a fixed input size (height, width, channels); "
                f"got {tuple(shape)}"
            )
        height, width, channels = dims
        side = min(height, width)
        if side >= LARGE_SIDE and channels == 3:
            return cls.for_large_rgb(side, **overrides)
        small = side <= 32
        base = cls(
            learning_rate=0.1 if small else 0.05,
            jitter=max(1, round(side / 16)),
            rotation=6.0 if small else 10.0,
            scale=(0.92, 1.08) if small else (0.9, 1.1),
            decorrelate=channels == 3,
            decay_power=1.0 if side < LARGE_SIDE else 1.5,
        )
        return base.replace(**overrides)

    @classmethod
    def for_large_rgb(cls, side: int = 224, **overrides: Any) -> Recipe:
        """The recipe for ImageNet-size RGB networks (``side`` = the smaller input side).

        Tuned on EfficientNet-Lite0 (``imagenet_lite0``), where Lucid's settings (1/f spectrum,
        one jittered view per step, free contrast) give a saturated texture collage. Each step
        averages ``views=4`` random crops (side 25-100% of the image, placed anywhere, rotated
        by up to 5 degrees, with noise) as MaCo does; the spectrum goes coarse to fine
        (``1/f**2.5`` to ``1/f**1.5`` over the first half); the contrast is fixed (``contrast``)
        so colours cannot saturate; class targets maximize the logit minus the mean logit; no
        TV or L2 penalty (the fixed contrast replaces them). 200 steps cost 800
        forward+backward passes per target (``bench/bench_activation_max.py``).
        """
        base = cls(
            steps=200,
            learning_rate=0.05,
            decay_power=1.5,
            decay_start=2.5,
            anneal=0.5,
            decorrelate=True,
            views=4,
            crop=(0.25, 1.0),
            scale=(1.0, 1.0),
            jitter=max(1, round(side * 0.05)),
            rotation=5.0,
            noise=0.02,
            contrast=2.0,
            tv_weight=0.0,
            l2_weight=0.0,
            polish=0.0,
            class_objective="logit_minus_mean",
        )
        return base.replace(**overrides)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed; unknown names raise :class:`InputError`."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise InputError(
                f"unknown activation-maximization parameter(s) {', '.join(unknown)}: "
                f"choose from {', '.join(sorted(names))}"
            )
        recipe = dataclasses.replace(self, **changes)
        recipe.validate()
        return recipe

    def validate(self) -> None:
        """Raise :class:`InputError` on a value that cannot work."""
        if self.parameterization not in PARAMETERIZATIONS:
            raise InputError(
                f"parameterization {self.parameterization!r} is not one of "
                f"{', '.join(PARAMETERIZATIONS)}"
            )
        if int(self.steps) < 1:
            raise InputError(f"steps must be at least 1, not {self.steps}")
        if not self.learning_rate > 0:
            raise InputError(f"learning_rate must be positive, not {self.learning_rate}")
        low, high = self.scale
        if not 0 < low <= high:
            raise InputError(f"scale {self.scale} must be (low, high) with 0 < low <= high")
        if not 0 <= self.polish <= 1:
            raise InputError(f"polish must be a fraction between 0 and 1, not {self.polish}")
        if not 0 <= self.anneal <= 1:
            raise InputError(f"anneal must be a fraction between 0 and 1, not {self.anneal}")
        low, high = self.crop
        if not 0 < low <= high <= 1:
            raise InputError(f"crop {self.crop} must be (low, high) with 0 < low <= high <= 1")
        if int(self.views) < 1 or int(self.views) != self.views:
            raise InputError(f"views must be a whole number of at least 1, not {self.views}")
        if self.class_objective not in CLASS_OBJECTIVES:
            raise InputError(
                f"class_objective {self.class_objective!r} is not one of "
                f"{', '.join(CLASS_OBJECTIVES)}"
            )
        for name in (
            "jitter",
            "rotation",
            "tv_weight",
            "l2_weight",
            "init_std",
            "decay_power",
            "polish_l2",
            "noise",
            "contrast",
        ):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.decay_start is not None and self.decay_start < 0:
            raise InputError(f"decay_start must not be negative, not {self.decay_start}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
