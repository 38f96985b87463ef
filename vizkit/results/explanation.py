"""Attribution results: :class:`Explanation` (one method on a batch) and :class:`Comparison`.

Plain numpy data plus metadata, immutable and picklable; no TensorFlow here. Maps keep their raw
signed values at input resolution: normalization, clipping and absolute values are display
options (:meth:`Explanation.normalized`, :meth:`Explanation.plot`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.contract import InputSpec
from vizkit.errors import InputError
from vizkit.results.base import Result, frozen_array

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class FrozenParams(dict):
    """A read-only dict (hyperparameters, extras) that pickles and prints like a dict."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("explanation parameters are read-only: use Explanation.replace(...)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key, value in dict.items(self):
            if isinstance(value, np.ndarray) and value.flags.writeable:
                dict.__setitem__(self, key, frozen_array(value))

    def __reduce__(self) -> tuple:
        return (FrozenParams, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def __or__(self, other: Any) -> dict:
        return {**self, **other}


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions(Result):
    """Top-k classes and their probabilities per image (from :func:`vizkit.predict` or
    :attr:`Explanation.predictions`).

    Attributes
    ----------
    classes : ndarray, shape (N, k), int64
        Class indices, most probable first.
    probabilities : ndarray, shape (N, k), float32
    all_probabilities : ndarray, shape (N, K), float32, optional
        Every class's probability (:func:`vizkit.predict` keeps them; explanations do not).
    image_names : tuple of str
    class_names : tuple of str, optional
    input_spec : InputSpec, optional
        The input scale the images were on (see :func:`vizkit.input_spec`).
    """

    classes: np.ndarray
    probabilities: np.ndarray
    all_probabilities: np.ndarray | None = None
    image_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None
    input_spec: InputSpec | None = None

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    @property
    def top(self) -> np.ndarray:
        """Predicted class per image, shape (N,)."""
        return self.classes[:, 0]

    @property
    def top_probability(self) -> np.ndarray:
        """Probability of the predicted class per image, shape (N,)."""
        return self.probabilities[:, 0]

    def probability_of(self, targets: Any) -> np.ndarray:
        """Probability of each image's ``targets`` class, shape (N,); NaN where it is not
        known (outside the top k and no ``all_probabilities``)."""
        targets = np.broadcast_to(np.asarray(targets, np.int64).reshape(-1), (len(self),))
        if self.all_probabilities is not None:
            return self.all_probabilities[np.arange(len(self)), targets].astype(np.float64)
        found = self.classes == targets[:, None]
        values = np.where(found, self.probabilities, 0.0).sum(axis=1)
        return np.where(found.any(axis=1), values, np.nan)

    def __getitem__(self, index: Any) -> Predictions:
        rows = _rows(index, len(self))
        return dataclasses.replace(
            self,
            classes=self.classes[rows],
            probabilities=self.probabilities[rows],
            all_probabilities=None
            if self.all_probabilities is None
            else self.all_probabilities[rows],
            image_names=tuple(self.image_names[i] for i in rows) if self.image_names else (),
        )

    def to_frame(self, class_names: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per image and rank: ``image``, ``rank`` (1 = predicted), ``class``,
        ``class_name`` (when names are known: ``class_names`` or the images'),
        ``probability``; plus ``image_name`` when the images have names (pandas)."""
        import pandas as pd

        names = self.class_names if class_names is None else tuple(class_names)
        n, k = self.classes.shape
        columns: dict[str, Any] = {"image": np.repeat(np.arange(n), k)}
        if self.image_names:
            columns["image_name"] = [self.image_names[i] for i in columns["image"]]
        columns["rank"] = np.tile(np.arange(1, k + 1), n)
        classes = self.classes.reshape(-1)
        columns["class"] = classes
        if names:
            columns["class_name"] = [
                str(names[c]) if 0 <= c < len(names) else str(int(c)) for c in classes
            ]
        columns["probability"] = self.probabilities.reshape(-1)
        return pd.DataFrame(columns)


def _rows(index: Any, n: int) -> np.ndarray:
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        if not -n <= index < n:
            raise IndexError(f"image index {index} is out of range for {n} images")
        return np.array([index % n])
    return np.arange(n)[index]


@dataclasses.dataclass(frozen=True, eq=False)
class Explanation(Result):
    """Attribution maps from one method for a batch of images.

    Attributes
    ----------
    method : str
        Registry name (``"gradcam"``, ...); ``label`` is its human name.
    maps : ndarray, shape (N, H, W), float32
        Raw signed attribution values at input resolution.
    inputs : ndarray, shape (N, H, W, C), float32
        The images as the model saw them.
    targets : ndarray, shape (N,), int64
        The class each map explains.
    scores : ndarray, shape (N,), float32
        The model's score for the target (logit or probability, see ``score_kind``).
    predictions : Predictions
        Top-k classes and probabilities.
    layer : str or None
        The layer path for layer-based methods.
    params : dict
        The hyperparameters used (read-only).
    seconds : float
        Wall time of the computation.
    extras : dict of str to ndarray
        Per-image intermediates (e.g. ``"weights"`` and ``"cam"`` for CAMs).
    image_names : tuple of str
        Names of the images (file names when they came from an ImageBatch).
    family : str
        The method's family (``"gradient"``, ``"cam"``, ... see ``vizkit.registry.FAMILIES``).
    target_description : str
        What a target object explained (``"unit 3"``, ``"channel 1 over 120 px"``); empty for
        class targets.
    input_spec : InputSpec, optional
        How the images' pixels were put on the model's scale (None for arrays given as
        model-ready); ``value_range`` is the span of its values.
    """

    method: str
    maps: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    scores: np.ndarray
    predictions: Predictions
    layer: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=FrozenParams)
    seconds: float = 0.0
    score_kind: str = "logit"
    output: int = 0
    model_name: str = ""
    value_range: tuple[float, float] | None = None
    class_names: tuple[str, ...] | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=FrozenParams)
    label: str = ""
    image_names: tuple[str, ...] = ()
    family: str = ""
    target_description: str = ""
    input_spec: InputSpec | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.params, FrozenParams):
            object.__setattr__(self, "params", FrozenParams(self.params))
        if not isinstance(self.extras, FrozenParams):
            object.__setattr__(self, "extras", FrozenParams(self.extras))
        if self.maps.ndim != 3:
            raise InputError(f"maps must have shape (N, H, W), not {self.maps.shape}")

    # -- container behaviour ----------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.maps.shape[0])

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Explanation:
        """The explanation of a subset of the images (an int keeps a batch of one)."""
        rows = _rows(index, len(self))
        n = len(self)
        extras = {
            k: (v[rows] if isinstance(v, np.ndarray) and v.ndim and len(v) == n else v)
            for k, v in self.extras.items()
        }
        return dataclasses.replace(
            self,
            maps=self.maps[rows],
            inputs=self.inputs[rows],
            targets=self.targets[rows],
            scores=self.scores[rows],
            predictions=self.predictions[rows],
            extras=FrozenParams(extras),
            image_names=tuple(self.image_names[i] for i in rows) if self.image_names else (),
        )

    def __iter__(self) -> Iterable[Explanation]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        where = f", layer={self.layer!r}" if self.layer else ""
        return (
            f"Explanation({self.method!r}, {len(self)} images, maps {self.maps.shape[1:]}"
            f"{where}, {self.seconds:.3f}s)"
        )

    # -- display helpers --------------------------------------------------------------------
    @property
    def display_inputs(self) -> np.ndarray:
        """Images scaled to [0, 1] for ``imshow``, shape (N, H, W, C)."""
        x = self.inputs.astype(np.float32)
        if self.input_spec is not None:
            return self.input_spec.to_unit(x)
        if self.value_range is not None:
            lo, hi = self.value_range
            return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        hi = x.max(axis=(1, 2, 3), keepdims=True)
        return (x - lo) / np.where(hi > lo, hi - lo, 1.0)

    def image_name(self, index: int) -> str:
        """The name of image ``index`` (its file name, or ``"image 3"``)."""
        if self.image_names and 0 <= index < len(self.image_names):
            return str(self.image_names[index])
        return f"image {index}"

    def class_name(self, index: int) -> str:
        """A readable name for class ``index``."""
        if self.class_names and 0 <= index < len(self.class_names):
            return str(self.class_names[index])
        return str(int(index))

    def normalized(
        self,
        *,
        absolute: bool = False,
        clip_percentile: float | None = 99.5,
        per_image: bool = True,
    ) -> np.ndarray:
        """Maps scaled for display, shape (N, H, W) float32.

        Parameters
        ----------
        absolute : bool
            Use magnitudes: values in [0, 1]. Otherwise signs are kept: values in [-1, 1].
        clip_percentile : float, optional
            Divide by this percentile of the absolute values (and clip), so a few extreme pixels
            do not wash out the map; ``None`` or 100 uses the maximum.
        per_image : bool
            Scale each image on its own, or the whole batch on one scale.
        """
        values = self.maps.astype(np.float32)
        if absolute:
            values = np.abs(values)
        return _scale(values, clip_percentile, per_image)

    def to_frame(self) -> pd.DataFrame:
        """One row per image: target, score, prediction, and map statistics (pandas)."""
        import pandas as pd

        maps = self.maps.reshape(len(self), -1)
        return pd.DataFrame(
            {
                "image": np.arange(len(self)),
                "method": self.method,
                "layer": self.layer,
                "target": self.targets,
                "target_name": [self.class_name(t) for t in self.targets],
                f"score_{self.score_kind}": self.scores,
                "predicted": self.predictions.top,
                "probability": self.predictions.top_probability,
                "map_min": maps.min(axis=1),
                "map_max": maps.max(axis=1),
                "map_mean": maps.mean(axis=1),
                "map_abs_sum": np.abs(maps).sum(axis=1),
            }
        )

    def plot(
        self,
        index: int = 0,
        ax: Axes | None = None,
        *,
        kind: str = "auto",
        cmap: str | None = None,
        alpha: float = 0.85,
        clip_percentile: float | None = 99.5,
        absolute: bool | None = None,
        title: str | bool = True,
        colorbar: bool = True,
    ) -> Axes:
        """Draw map ``index`` on ``ax`` (a new pyplot figure when None) and return the axes.

        ``kind`` is ``"overlay"`` (map over the photo in grey, each pixel as opaque as it is
        strong, ``alpha`` at the strongest), ``"heatmap"`` (map alone), ``"masked"`` (the
        image with low-attribution pixels dimmed) or ``"auto"`` (heatmap for pixel-level
        gradient maps, overlay for smooth maps such as CAMs and occlusion). The title names the explained class and the
        prediction with their probabilities; the colour bar reads in the map's units. See
        :func:`vizkit.plotting.attribution.plot_explanation`.
        """
        from vizkit.plotting.attribution import plot_explanation

        return plot_explanation(
            self,
            index,
            ax,
            kind=kind,
            cmap=cmap,
            alpha=alpha,
            clip_percentile=clip_percentile,
            absolute=absolute,
            title=title,
            colorbar=colorbar,
        )

    @property
    def signed(self) -> bool:
        """True when the maps have meaningful negative values (so a diverging colour map fits)."""
        return bool((self.maps < 0).any())


def _scale(values: np.ndarray, clip_percentile: float | None, per_image: bool) -> np.ndarray:
    magnitude = np.abs(values)
    axes = (1, 2) if per_image else (0, 1, 2)
    if clip_percentile is None or clip_percentile >= 100:
        top = magnitude.max(axis=axes, keepdims=True)
    else:
        top = np.percentile(magnitude, clip_percentile, axis=axes, keepdims=True)
        # a map that is zero almost everywhere: fall back to its maximum
        top = np.where(top > 0, top, magnitude.max(axis=axes, keepdims=True))
    scaled = values / np.where(top > 0, top, 1.0)
    low = 0.0 if (values >= 0).all() else -1.0
    return np.clip(scaled, low, 1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Comparison(Result):
    """Several explanations of the same images, side by side.

    Attributes
    ----------
    explanations : tuple of Explanation
        One per method, all on the same images.
    """

    explanations: tuple[Explanation, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        explanations = tuple(self.explanations)
        if not explanations:
            raise InputError("compare needs at least one explanation")
        for e in explanations:
            if not isinstance(e, Explanation):
                raise InputError(f"compare takes Explanation objects, not {type(e).__name__}")
        first = explanations[0]
        for e in explanations[1:]:
            if e.inputs.shape != first.inputs.shape or not np.array_equal(e.inputs, first.inputs):
                raise InputError(
                    f"explanations {first.method!r} and {e.method!r} are on different images: "
                    "compare explanations of the same inputs"
                )
        object.__setattr__(self, "explanations", explanations)

    def __len__(self) -> int:
        return len(self.explanations)

    def __iter__(self) -> Iterable[Explanation]:
        return iter(self.explanations)

    def __getitem__(self, key: int | str) -> Explanation:
        if isinstance(key, str):
            for e in self.explanations:
                if e.method == key:
                    return e
            raise KeyError(f"no explanation by method {key!r}: have {self.methods}")
        return self.explanations[key]

    @property
    def methods(self) -> list[str]:
        return [e.method for e in self.explanations]

    @property
    def num_images(self) -> int:
        return len(self.explanations[0])

    def __repr__(self) -> str:
        return f"Comparison({self.methods}, {self.num_images} images)"

    def to_frame(self) -> pd.DataFrame:
        """All explanations' per-image rows in one pandas DataFrame."""
        import pandas as pd

        return pd.concat([e.to_frame() for e in self.explanations], ignore_index=True)

    def plot(
        self,
        fig: Figure | None = None,
        *,
        images: Sequence[int] | None = None,
        kind: str = "auto",
        shared_scale: bool | str | None = "panel",
        absolute: bool | None = None,
        clip_percentile: float | None = 99.5,
        cmap: str | None = None,
        alpha: float = 0.85,
        panel_size: float = 2.2,
        colorbar: bool = True,
        legend: bool = True,
    ) -> Figure:
        """A grid: one row per image, columns input + one per method; returns the figure.

        ``fig`` is a matplotlib Figure to draw on (a new ``matplotlib.figure.Figure`` with
        constrained layout when None). ``kind`` as in :meth:`Explanation.plot`, decided per
        method for ``"auto"``. ``shared_scale``: ``"panel"`` (each panel its own
        scale), ``"method"`` (one scale per method across images, colour bars in the map's
        units; ``True`` means this) or ``"image"`` (per image, across the columns of one
        method); different methods never share a scale. Each method column gets a colour bar
        and the grid a legend of what the colours and the row titles mean. See
        :func:`vizkit.plotting.comparison.plot_comparison`.
        """
        from vizkit.plotting.comparison import plot_comparison

        return plot_comparison(
            self,
            fig,
            images=images,
            kind=kind,
            shared_scale=shared_scale,
            absolute=absolute,
            clip_percentile=clip_percentile,
            cmap=cmap,
            alpha=alpha,
            panel_size=panel_size,
            colorbar=colorbar,
            legend=legend,
        )
