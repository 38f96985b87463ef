"""Results of looking inside a network: filters, feature maps, top examples, synthesized images.

Numpy and pandas only (no TensorFlow). Each result keeps raw values; colour scales, ordering of
what is drawn and normalization are display options of ``plot``, which draws on a
``matplotlib.figure.Figure`` (a new one when ``fig`` is None) through
:mod:`vizkit.plotting.inspection` and returns it.

(Over 500 lines: five result types whose attribute documentation is most of it.)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.results.base import Result

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FilterBank", "FeatureMaps", "FeatureMapSet", "UnitExamples", "ActivationImages"]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _to_display(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return np.clip((np.asarray(images, np.float32) - low) / (high - low), 0.0, 1.0)


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FilterBank(Result):
    """Kernel weights of a convolutional layer, one entry per output filter.

    Attributes
    ----------
    kernels : ndarray, shape (F, kh, kw, C_in), float32
        Filter ``f``'s kernel, in display order (sorted, capped). For ``DepthwiseConv2D`` each
        output channel sees one input channel (``C_in == 1``, see ``input_channels``); for
        ``SeparableConv2D`` the kernels are the *effective* full kernels (depthwise kernel times
        pointwise weights summed over the depth multiplier), i.e. the equivalent ``Conv2D``.
    indices : ndarray of int, shape (F,)
        The filters' indices (output channels) in the layer.
    bias : ndarray, shape (F,), optional
    layer : str
        Layer path.
    layer_type : str
        ``"Conv2D"``, ``"DepthwiseConv2D"`` or ``"SeparableConv2D"``.
    order : {"norm", "index"}
        How filters were sorted: by decreasing L2 norm, or as stored.
    total_filters : int
        Filters in the layer (``kernels`` may hold fewer: ``max_filters``).
    input_channels : ndarray of int, shape (F,), optional
        For depthwise layers, the input channel each filter reads.
    first_layer : bool
        True when the layer reads the model's input directly (its RGB kernels are images).
    """

    kernels: np.ndarray
    indices: np.ndarray
    layer: str
    layer_type: str
    order: str = "norm"
    total_filters: int = 0
    bias: np.ndarray | None = None
    input_channels: np.ndarray | None = None
    first_layer: bool = False

    def __len__(self) -> int:
        return int(self.kernels.shape[0])

    @property
    def norms(self) -> np.ndarray:
        """L2 norm of each kernel, shape (F,)."""
        flat = self.kernels.reshape(len(self), -1).astype(np.float64)
        return np.sqrt((flat**2).sum(axis=1)).astype(np.float32)

    @property
    def rgb(self) -> bool:
        """True when the kernels are colour tiles (a first layer on RGB input)."""
        return self.first_layer and self.kernels.shape[-1] == 3

    def to_frame(self) -> pd.DataFrame:
        """One row per filter: index, rank, L2 norm, mean, min, max (and bias)."""
        flat = self.kernels.reshape(len(self), -1)
        norms = self.norms
        rows = []
        for rank, index in enumerate(self.indices):
            row = {
                "filter": int(index),
                "rank": rank,
                "norm": float(norms[rank]),
                "mean": float(flat[rank].mean()),
                "min": float(flat[rank].min()),
                "max": float(flat[rank].max()),
                "bias": None if self.bias is None else float(self.bias[rank]),
            }
            rows.append(row)
        return _frame(rows, ["filter", "rank", "norm", "mean", "min", "max", "bias"])

    def plot(self, fig: Figure | None = None, **kwargs: Any) -> Figure:
        """Draw the filters on ``fig`` (a new Figure when None) and return the figure.

        Keyword arguments go to :func:`vizkit.plotting.inspection.plot_filter_bank`: ``mode``
        (``"auto"``, ``"rgb"``, ``"channels"``, ``"mean"``), ``scale`` (``"shared"`` or
        ``"filter"``), ``max_channels``, ``cmap``, ``colorbar``.
        """
        from vizkit.plotting.inspection import plot_filter_bank

        return plot_filter_bank(self, fig=fig, **kwargs)


# --------------------------------------------------------------------------------------------
# Feature maps
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FeatureMaps(Result):
    """Activations of one layer for a batch of images.

    Attributes
    ----------
    activations : ndarray, float32
        ``(N, h, w, C)`` for spatial layers (at the layer's resolution, or the input's when
        ``upsampled``), ``(N, C)`` for vector layers (dense units).
    layer : str
        Layer path.
    layer_shape : tuple of int
        The layer's own output shape without the batch dimension.
    images : ndarray, shape (N, H, W, C), float32, optional
        The inputs in [0, 1] for display and overlays.
    upsampled : bool
        True when ``activations`` were resampled (bilinear) onto the input's pixel grid.
    names : tuple of str
        Image names.
    origin, stride : (float, float), optional
        Where the maps sit on the input: unit ``(0, 0)`` is centred on input pixel ``origin``
        (row, col) and neighbouring units are ``stride`` pixels apart (the receptive field's
        start and jump). Spatial layers only.
    """

    activations: np.ndarray
    layer: str
    layer_shape: tuple[int, ...] = ()
    images: np.ndarray | None = None
    upsampled: bool = False
    names: tuple[str, ...] = ()
    origin: tuple[float, float] | None = None
    stride: tuple[float, float] | None = None

    def __len__(self) -> int:
        return int(self.activations.shape[0])

    @property
    def spatial(self) -> bool:
        return self.activations.ndim == 4

    @property
    def channels(self) -> int:
        return int(self.activations.shape[-1])

    def channel_stats(self, index: int | None = None) -> dict[str, np.ndarray]:
        """Per-channel ``mean``, ``max`` and ``active`` (fraction > 0), each ``(C,)``.

        ``index`` picks one image; None pools all images.
        """
        acts = self.activations if index is None else self.activations[index : index + 1]
        flat = acts.reshape(-1, self.channels).astype(np.float64)
        return {
            "mean": flat.mean(axis=0).astype(np.float32),
            "max": flat.max(axis=0).astype(np.float32),
            "active": (flat > 0).mean(axis=0).astype(np.float32),
        }

    def order_channels(self, index: int = 0, order: str = "mean") -> np.ndarray:
        """Channel indices sorted for display: by decreasing mean or max, or by index."""
        if order == "index":
            return np.arange(self.channels)
        if order not in ("mean", "max"):
            from vizkit.errors import InputError

            raise InputError(f"order {order!r} is not one of 'mean', 'max', 'index'")
        values = self.channel_stats(index)[order]
        return np.argsort(-values, kind="stable")

    def to_frame(self) -> pd.DataFrame:
        """One row per image and channel: mean, max and fraction active (> 0)."""
        rows = []
        for i in range(len(self)):
            stats = self.channel_stats(i)
            name = self.names[i] if i < len(self.names) else f"image {i}"
            for c in range(self.channels):
                rows.append(
                    {
                        "image": i,
                        "name": name,
                        "channel": c,
                        "mean": float(stats["mean"][c]),
                        "max": float(stats["max"][c]),
                        "active": float(stats["active"][c]),
                    }
                )
        return _frame(rows, ["image", "name", "channel", "mean", "max", "active"])

    def plot(
        self,
        index: int = 0,
        fig: Figure | None = None,
        channels: Any = None,
        top_k: int | None = 16,
        order: str = "mean",
        **kwargs: Any,
    ) -> Figure:
        """Draw image ``index``'s feature maps as a grid titled with channel numbers.

        ``channels`` picks channels explicitly; otherwise the ``top_k`` first in ``order``
        (``"mean"``, ``"max"`` or ``"index"``). Other keyword arguments (``overlay``, ``cmap``,
        ``scale``) go to :func:`vizkit.plotting.inspection.plot_feature_maps`.
        """
        from vizkit.plotting.inspection import plot_feature_maps

        return plot_feature_maps(
            self, index=index, fig=fig, channels=channels, top_k=top_k, order=order, **kwargs
        )


@dataclasses.dataclass(frozen=True, repr=False)
class FeatureMapSet(Result):
    """Feature maps of several layers for the same images (what ``feature_maps`` returns for a
    list of layers): a read-only mapping from layer path to :class:`FeatureMaps`, in the order
    asked, with ``plot()`` (one row per layer) and ``to_frame()``.

    Attributes
    ----------
    maps : tuple of FeatureMaps
        One per layer.
    """

    maps: tuple[FeatureMaps, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "maps", tuple(self.maps))

    @property
    def layers(self) -> list[str]:
        """The layer paths, in order."""
        return [m.layer for m in self.maps]

    def __len__(self) -> int:
        return len(self.maps)

    def __iter__(self) -> Any:
        return iter(self.layers)

    def __contains__(self, layer: object) -> bool:
        return layer in self.layers

    def __getitem__(self, key: str | int) -> FeatureMaps:
        if isinstance(key, str):
            for m in self.maps:
                if m.layer == key:
                    return m
            raise KeyError(f"no feature maps for layer {key!r}: have {', '.join(self.layers)}")
        return self.maps[key]

    def keys(self) -> list[str]:
        return self.layers

    def values(self) -> list[FeatureMaps]:
        return list(self.maps)

    def items(self) -> list[tuple[str, FeatureMaps]]:
        return [(m.layer, m) for m in self.maps]

    def __repr__(self) -> str:
        images = len(self.maps[0]) if self.maps else 0
        return f"FeatureMapSet({self.layers}, {images} images)"

    def to_frame(self) -> pd.DataFrame:
        """Every layer's per-channel rows (see :meth:`FeatureMaps.to_frame`) with a ``layer``
        column."""
        import pandas as pd

        frames = []
        for m in self.maps:
            frame = m.to_frame()
            frame.insert(0, "layer", m.layer)
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def plot(self, index: int = 0, fig: Figure | None = None, **kwargs: Any) -> Figure:
        """One row per layer: the input, then the ``top_k`` (default 6) most active channels,
        each row with its colour bar. Keyword arguments go to
        :func:`vizkit.plotting.inspection.plot_feature_map_set`."""
        from vizkit.plotting.inspection import plot_feature_map_set

        return plot_feature_map_set(self, index=index, fig=fig, **kwargs)


# --------------------------------------------------------------------------------------------
# Dataset examples
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class UnitExamples(Result):
    """The images (and receptive-field patches) that activate each unit most.

    Attributes
    ----------
    layer : str
        Layer path.
    kind : {"channel", "unit"}
        Convolutional channels (spatial layer) or dense units.
    units : ndarray of int, shape (U,)
    scores : ndarray, shape (U, k), float32
        Activation of each top example, best first: the channel's spatial maximum (or mean,
        see ``reduce``) or the unit's value. Fewer than ``k`` examples leave ``-inf``.
    sample_indices : ndarray of int, shape (U, k)
        Position of each example in the stream of images searched (-1 where missing).
    image_ids : ndarray of int, shape (U, k)
        Row of ``images`` holding each example (-1 where missing).
    images : ndarray of uint8, shape (M, H, W, C)
        The distinct top images, displayable.
    positions : ndarray of int, shape (U, k, 2), optional
        Feature-map ``(row, col)`` of the maximum, for channels.
    boxes : ndarray, shape (U, k, 4), optional
        Receptive field ``(top, left, bottom, right)`` of that position in input pixels,
        inclusive and clipped to the image.
    patches : ndarray of uint8, shape (U, k, ph, pw, C), optional
        The receptive-field crops (out-of-image parts filled with mid-grey).
    reduce : {"max", "mean"}
        How a channel's map was reduced to one score per image.
    searched : int
        Number of images searched.
    filters : FilterBank, optional
        The units' kernels (convolutional layers).
    maximization : ActivationImages, optional
        The units' activation-maximization images, when computed.
    names : tuple of str
        Names of ``images`` rows.
    """

    layer: str
    kind: str
    units: np.ndarray
    scores: np.ndarray
    sample_indices: np.ndarray
    image_ids: np.ndarray
    images: np.ndarray
    positions: np.ndarray | None = None
    boxes: np.ndarray | None = None
    patches: np.ndarray | None = None
    reduce: str = "max"
    searched: int = 0
    filters: FilterBank | None = None
    maximization: ActivationImages | None = None
    names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.units.shape[0])

    @property
    def k(self) -> int:
        return int(self.scores.shape[1])

    def to_frame(self) -> pd.DataFrame:
        """One row per unit and rank: score, sample index, feature-map position and box."""
        rows = []
        for u, unit in enumerate(self.units):
            for r in range(self.k):
                if self.sample_indices[u, r] < 0:
                    continue
                row: dict[str, Any] = {
                    "unit": int(unit),
                    "rank": r,
                    "score": float(self.scores[u, r]),
                    "sample": int(self.sample_indices[u, r]),
                }
                if self.positions is not None:
                    row["row"], row["col"] = (int(v) for v in self.positions[u, r])
                if self.boxes is not None:
                    row["top"], row["left"], row["bottom"], row["right"] = (
                        float(v) for v in self.boxes[u, r]
                    )
                rows.append(row)
        columns = ["unit", "rank", "score", "sample"]
        if self.positions is not None:
            columns += ["row", "col"]
        if self.boxes is not None:
            columns += ["top", "left", "bottom", "right"]
        return _frame(rows, columns)

    def with_maximization(self, images: ActivationImages) -> UnitExamples:
        """A copy with activation-maximization images attached (same layer and units)."""
        return dataclasses.replace(self, maximization=images)

    def plot(self, fig: Figure | None = None, **kwargs: Any) -> Figure:
        """Draw one row per unit: its maximization image, its filter and its top examples.

        Keyword arguments go to :func:`vizkit.plotting.units.plot_unit_examples`
        (``max_examples``, ``patches``).
        """
        from vizkit.plotting.units import plot_unit_examples

        return plot_unit_examples(self, fig=fig, **kwargs)


# --------------------------------------------------------------------------------------------
# Activation maximization
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ActivationImages(Result):
    """Synthesized inputs that maximize classes, channels or units.

    Attributes
    ----------
    images : ndarray, shape (B, H, W, C), float32
        One image per target in the model's input range ``value_range``
        (``display`` gives them in [0, 1]).
    units : ndarray of int, shape (B,)
        The targets: class, channel or unit indices.
    labels : tuple of str
        ``"class 3"``, ``"channel 5"``, ...
    layer : str
        Layer path (the head's path for classes).
    kind : {"class", "channel", "unit"}
    objective : {"mean", "center", "value"}
        What was maximized: a channel's spatial mean or centre neuron, or a logit / unit value.
    activation : ndarray, shape (B,), float32
        The achieved objective on the final image (no augmentation).
    noise_activation, mean_activation : ndarray, shape (B,), float32
        The objective on uniform random noise in ``value_range`` (mean over the noise images of
        :func:`vizkit.activation_max.noise_images`) and on a mid-grey image, for comparison.
    noise_spread : ndarray, shape (B,), float32, optional
        Standard deviation of the objective over those noise images: the unit of
        :attr:`gain_over_noise`.
    loss_history, score_history : ndarray, shape (steps, B), float32
        Loss (negated objective plus penalties) and objective (on the augmented image) per step.
    value_range : (float, float)
    predicted : ndarray of int, shape (B,), optional
        For classes: the class the model predicts for each image.
    class_names : tuple of str, optional
    steps : int
    params : dict
        The recipe used (see :class:`vizkit.activation_max.Recipe`).
    backend : str
    model_name : str
    """

    images: np.ndarray
    units: np.ndarray
    labels: tuple[str, ...]
    layer: str
    kind: str
    objective: str
    activation: np.ndarray
    noise_activation: np.ndarray
    mean_activation: np.ndarray
    loss_history: np.ndarray
    score_history: np.ndarray
    value_range: tuple[float, float] = (0.0, 1.0)
    predicted: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None
    steps: int = 0
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    backend: str = "vizkit"
    model_name: str = ""
    noise_spread: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def above_noise(self) -> np.ndarray:
        """Achieved objective minus its mean on noise, shape (B,): meaningful whatever the sign
        of the noise baseline (a ratio is not when the baseline is negative or near zero)."""
        return (self.activation - self.noise_activation).astype(np.float32)

    @property
    def gain_over_noise(self) -> np.ndarray:
        """:attr:`above_noise` in units of the noise images' spread (a z-score), shape (B,);
        NaN when the spread is unknown or zero."""
        if self.noise_spread is None:
            return np.full(len(self), np.nan, dtype=np.float32)
        spread = np.asarray(self.noise_spread, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(spread > 0, self.above_noise / spread, np.nan)
        return gain.astype(np.float32)

    @property
    def display(self) -> np.ndarray:
        """The images in [0, 1] for ``imshow``, shape (B, H, W, C)."""
        return _to_display(self.images, self.value_range)

    def to_frame(self) -> pd.DataFrame:
        """One row per target: achieved activation, its mean and spread on noise, on mid-grey,
        the gain over noise (``above_noise``, and ``gain_over_noise`` in noise spreads) and the
        prediction."""
        above, gain = self.above_noise, self.gain_over_noise
        spread = self.noise_spread
        rows = []
        for i, unit in enumerate(self.units):
            rows.append(
                {
                    "unit": int(unit),
                    "label": self.labels[i],
                    "activation": float(self.activation[i]),
                    "noise": float(self.noise_activation[i]),
                    "noise_spread": np.nan if spread is None else float(spread[i]),
                    "mean_input": float(self.mean_activation[i]),
                    "above_noise": float(above[i]),
                    "gain_over_noise": float(gain[i]),
                    "predicted": None if self.predicted is None else int(self.predicted[i]),
                }
            )
        columns = ["unit", "label", "activation", "noise", "noise_spread", "mean_input"]
        return _frame(rows, columns + ["above_noise", "gain_over_noise", "predicted"])

    def plot(self, fig: Figure | None = None, **kwargs: Any) -> Figure:
        """Draw the images as a titled grid (label and achieved activation).

        Keyword arguments go to :func:`vizkit.plotting.units.plot_activation_images`
        (``cols``, ``cmap``, ``title``).
        """
        from vizkit.plotting.units import plot_activation_images

        return plot_activation_images(self, fig=fig, **kwargs)

    def plot_history(self, ax: Axes | None = None) -> Axes:
        """Objective per step for each target on ``ax`` (pyplot axes when None)."""
        from vizkit.plotting.units import plot_activation_history

        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(7, 3.5), layout="constrained")
        return plot_activation_history(self, ax)
