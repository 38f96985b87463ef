"""The input contract: what raw pixels a model expects, said once and recorded everywhere.

No TensorFlow here: :class:`InputSpec` is plain data that image loading (``vizkit.inputs``),
results, the dashboard and reports share. How vizkit *decides* a model's spec (sample metadata,
preprocessing layers inside the model, or the default) is :func:`vizkit.detection.input_spec`.

Conventions
-----------
A spec turns an image with values in [0, 1] (8-bit 0..255 divided by 255, channels RGB or gray)
into model-ready values:

- ``"0-1"``, ``"0-255"``, ``"-1-1"`` (also any ``value_range=(low, high)``): linear, black maps
  to ``low`` and white to ``high``. ``"tf"`` is an alias of ``"-1-1"`` (Keras' name).
- ``"caffe"``: 0..255, RGB to BGR, the ImageNet mean (BGR 103.939, 116.779, 123.68) subtracted
  (``keras.applications`` VGG and ResNet v1).
- ``"torch"``: 0..1, ImageNet mean (0.485, 0.456, 0.406) subtracted, divided by the std
  (0.229, 0.224, 0.225) (``keras.applications`` DenseNet).
- a callable ``fn(x)`` on float32 ``(N, H, W, C)`` RGB in 0..255 returning model-ready values,
  such as ``keras.applications.resnet50.preprocess_input``.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.results.base import Result

__all__ = [
    "CAFFE_MEAN_BGR",
    "CONVENTIONS",
    "DEFAULT_RANGE",
    "RESIZE_MODES",
    "SOURCES",
    "TORCH_MEAN",
    "TORCH_STD",
    "InputSpec",
    "default_spec",
    "user_spec",
]

#: Named conventions ``preprocess=`` (and ``value_range=`` for the linear ones) accepts.
CONVENTIONS = ("0-1", "0-255", "-1-1", "caffe", "torch")
_ALIASES = {"tf": "-1-1"}
_LINEAR = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}
#: How an image of another aspect ratio becomes the model's size (Keras' loaders stretch).
RESIZE_MODES = ("stretch", "crop", "pad")
#: Who decided a spec, most authoritative first.
SOURCES = ("user", "sample", "detected", "default")
#: Used when neither the user, a sample's metadata nor a preprocessing layer says otherwise.
DEFAULT_RANGE = (0.0, 1.0)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def _range_name(low: float, high: float) -> str:
    return f"{low:g}-{high:g}"


@dataclasses.dataclass(frozen=True)
class InputSpec(Result):
    """What raw pixels a model expects, and who decided it.

    Attributes
    ----------
    preprocess : str
        ``"0-1"``, ``"0-255"``, ``"-1-1"`` (or another linear ``"low-high"``), ``"caffe"``,
        ``"torch"`` or ``"custom"`` (a callable).
    value_range : (float, float)
        The span of model-ready values: what black and white map to for linear specs, the
        smallest and largest channel value otherwise (used for display and optimization bounds).
    source : {"user", "sample", "detected", "default"}
        The user said so, a sample model's metadata, a preprocessing layer found inside the
        model, or vizkit's default (``"0-1"``, a guess, not a detection).
    reason : str
        One line on how it was decided (the layers found, or why none was).
    function : callable, optional
        The user's preprocessing function (``preprocess="custom"``); dropped when the spec is
        pickled and the function cannot be.
    """

    preprocess: str
    value_range: tuple[float, float]
    source: str = "default"
    reason: str = ""
    function: Callable[[np.ndarray], Any] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        low, high = (float(v) for v in self.value_range)
        if not high > low:
            raise InputError(f"value_range {self.value_range} must be (low, high) with high > low")
        object.__setattr__(self, "value_range", (low, high))
        if self.source not in SOURCES:
            raise InputError(f"source {self.source!r} is not one of {', '.join(SOURCES)}")

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def linear(cls, value_range: Any, source: str = "user", reason: str = "") -> InputSpec:
        """A linear spec: black maps to ``value_range[0]``, white to ``value_range[1]``."""
        try:
            low, high = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise InputError(
                f"value_range={value_range!r}: pass (low, high) such as (0, 255), or one of "
                "'0-1', '0-255', '-1-1'"
            ) from None
        return cls(_range_name(low, high), (low, high), source, reason)

    @classmethod
    def named(cls, name: str, source: str = "user", reason: str = "") -> InputSpec:
        """The spec of a named convention (see :data:`CONVENTIONS`)."""
        key = _ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
        if key in _LINEAR:
            return cls(key, _LINEAR[key], source, reason)
        if key == "caffe":
            high = tuple(255.0 - m for m in CAFFE_MEAN_BGR)
            return cls("caffe", (-max(CAFFE_MEAN_BGR), max(high)), source, reason)
        if key == "torch":
            lows = [-m / s for m, s in zip(TORCH_MEAN, TORCH_STD)]
            highs = [(1 - m) / s for m, s in zip(TORCH_MEAN, TORCH_STD)]
            return cls("torch", (min(lows), max(highs)), source, reason)
        raise InputError(
            f"preprocess={name!r} is not known: choose one of {', '.join(CONVENTIONS)} "
            "(or 'tf' for -1-1), or pass a function"
        )

    @classmethod
    def custom(
        cls, function: Callable[[np.ndarray], Any], source: str = "user", reason: str = ""
    ) -> InputSpec:
        """A spec that runs ``function`` on float32 ``(N, H, W, C)`` RGB values in 0..255."""
        if not callable(function):
            raise InputError(f"preprocess must be a name or a function, not {function!r}")
        low, high = _probe(function)
        name = getattr(function, "__qualname__", None) or type(function).__name__
        module = getattr(function, "__module__", "") or ""
        where = f"{module}.{name}" if module and not module.startswith("__") else name
        return cls("custom", (low, high), source, reason or f"your function {where}", function)

    # -- what it says --------------------------------------------------------------------------
    @property
    def linear_map(self) -> bool:
        """True when every channel is scaled the same way (``value_range`` says it all)."""
        return self.preprocess not in ("caffe", "torch", "custom")

    @property
    def label(self) -> str:
        """The convention's short name (``"0-255"``, ``"caffe"``, ``"custom"``)."""
        return self.preprocess

    def describe(self) -> str:
        """One line: the convention and how it was decided."""
        how = {
            "user": "you chose it",
            "sample": "",
            "detected": "detected",
            "default": "default, not detected",
        }[self.source]
        detail = ": ".join(part for part in (how, self.reason) if part)
        return f"{self.label} ({detail})" if detail else self.label

    def __repr__(self) -> str:
        return f"InputSpec({self.label!r}, source={self.source!r}, reason={self.reason!r})"

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(self.describe())}</code>"

    def same_as(self, other: InputSpec | None) -> bool:
        """Both specs make the same model-ready values (who decided does not matter)."""
        if other is None:
            return False
        if self.preprocess == "custom" or other.preprocess == "custom":
            return self.function is not None and self.function is other.function
        return self.preprocess == other.preprocess and np.allclose(
            self.value_range, other.value_range
        )

    # -- applying ------------------------------------------------------------------------------
    def apply(self, unit: np.ndarray) -> np.ndarray:
        """Model-ready float32 values from images in [0, 1], shape ``(..., H, W, C)``."""
        unit = np.asarray(unit, dtype=np.float32)
        if self.linear_map:
            low, high = self.value_range
            return (low + unit * (high - low)).astype(np.float32)
        if self.preprocess == "custom":
            if self.function is None:
                raise InputError(
                    "this input spec's preprocessing function was not kept (it could not be "
                    "pickled): pass preprocess=your_function again"
                )
            batch = unit if unit.ndim == 4 else unit[None]
            out = np.asarray(self.function(batch * 255.0), dtype=np.float32)
            if out.shape != batch.shape:
                raise InputError(
                    f"the preprocessing function returned shape {out.shape} for images of shape "
                    f"{batch.shape}: it must keep the shape"
                )
            return out if unit.ndim == 4 else out[0]
        self._need_rgb(unit)
        if self.preprocess == "caffe":
            return (unit[..., ::-1] * 255.0 - np.float32(CAFFE_MEAN_BGR)).astype(np.float32)
        return ((unit - np.float32(TORCH_MEAN)) / np.float32(TORCH_STD)).astype(np.float32)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Model-ready values back to [0, 1] RGB for display (per-image min-max for
        ``"custom"``, whose inverse is unknown)."""
        x = np.asarray(x, dtype=np.float32)
        if self.linear_map:
            low, high = self.value_range
            unit = (x - low) / (high - low)
        elif self.preprocess == "caffe" and x.shape[-1] == 3:
            unit = ((x + np.float32(CAFFE_MEAN_BGR)) / 255.0)[..., ::-1]
        elif self.preprocess == "torch" and x.shape[-1] == 3:
            unit = x * np.float32(TORCH_STD) + np.float32(TORCH_MEAN)
        else:
            axes = tuple(range(x.ndim - 3, x.ndim))
            low = x.min(axis=axes, keepdims=True)
            high = x.max(axis=axes, keepdims=True)
            unit = (x - low) / np.where(high > low, high - low, 1.0)
        return np.clip(unit, 0.0, 1.0).astype(np.float32)

    def _need_rgb(self, unit: np.ndarray) -> None:
        if unit.shape[-1] != 3:
            raise InputError(
                f"preprocess={self.preprocess!r} needs RGB images, but the model takes "
                f"{unit.shape[-1]} channel(s): use value_range= instead"
            )

    # -- pickling ------------------------------------------------------------------------------
    def __reduce__(self) -> tuple:
        function = self.function
        if function is not None:
            try:
                pickle.dumps(function)
            except Exception:  # noqa: BLE001 - lambdas, closures: keep the record, drop the code
                function = None
        args = (self.preprocess, self.value_range, self.source, self.reason, function)
        return (InputSpec, args)


def _probe(function: Callable[[np.ndarray], Any]) -> tuple[float, float]:
    """The smallest and largest value ``function`` makes of black and white RGB pixels."""
    probe = np.zeros((2, 1, 1, 3), np.float32)
    probe[1] = 255.0
    try:
        out = np.asarray(function(probe.copy()), dtype=np.float32)
    except Exception as err:  # noqa: BLE001 - any failure of the user's function
        raise InputError(
            f"the preprocessing function failed on a 2-pixel test batch (float32 (N, H, W, 3) "
            f"in 0..255): {type(err).__name__}: {err}"
        ) from None
    if out.shape != probe.shape or not np.all(np.isfinite(out)):
        raise InputError(
            "the preprocessing function must return finite values of the shape it is given "
            f"(got {out.shape} for {probe.shape})"
        )
    low, high = float(out.min()), float(out.max())
    return (low, high) if high > low else (low, low + 1.0)


def user_spec(value_range: Any = None, preprocess: Any = None) -> InputSpec | None:
    """The spec the user stated (``value_range=`` and/or ``preprocess=``), or None.

    ``value_range`` is ``(low, high)`` or a linear name (``"0-255"``); ``preprocess`` a name of
    :data:`CONVENTIONS`, a callable or an :class:`InputSpec`. Giving both is an error unless
    they say the same thing.
    """
    from_range = None
    if value_range is not None:
        if isinstance(value_range, InputSpec):
            from_range = value_range
        elif isinstance(value_range, str):
            from_range = InputSpec.named(value_range)
            if not from_range.linear_map:
                raise InputError(
                    f"value_range={value_range!r} is not a range: pass preprocess="
                    f"{value_range!r} instead"
                )
        else:
            from_range = InputSpec.linear(value_range)
    from_preprocess = None
    if preprocess is not None:
        if isinstance(preprocess, InputSpec):
            from_preprocess = preprocess
        elif isinstance(preprocess, str):
            from_preprocess = InputSpec.named(preprocess)
        else:
            from_preprocess = InputSpec.custom(preprocess)
    if from_range is not None and from_preprocess is not None:
        if not from_range.same_as(from_preprocess):
            raise InputError(
                f"value_range={value_range!r} and preprocess={preprocess!r} disagree: pass one"
            )
    return from_preprocess or from_range


def default_spec(reason: str = "") -> InputSpec:
    """vizkit's default (0-1), labelled as a default, not a detection."""
    return InputSpec.linear(DEFAULT_RANGE, source="default", reason=reason)


def check_resize(resize: str) -> str:
    """``resize`` if it is one of :data:`RESIZE_MODES`, else a one-line error."""
    mode = str(resize).strip().lower() if isinstance(resize, str) else resize
    if mode not in RESIZE_MODES:
        raise InputError(
            f"resize={resize!r} is not known: choose 'stretch' (Keras' default), 'crop' "
            "(centre crop to the model's aspect ratio) or 'pad' (black borders)"
        )
    return mode
