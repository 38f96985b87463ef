"""One layer method (a CAM) at many layers of a model, for the same images and targets.

A :class:`LayerSweep` keeps each layer's maps at the resolution they were computed at (a CAM's
coarse map: a 7x7 layer keeps 7x7 maps), so a sweep over every layer of an ImageNet network
stays small; ``sweep[layer]`` upsamples one layer's maps to the input (bilinear, half-pixel
centres, as :func:`tf.image.resize` does) and returns an ordinary
:class:`~vizkit.results.explanation.Explanation`. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit.errors import InputError, LayerError
from vizkit.results.base import Result, frozen_array
from vizkit.results.explanation import Comparison, Explanation, FrozenParams

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def bilinear_matrix(size_out: int, size_in: int) -> np.ndarray:
    """``(size_out, size_in)`` weights of 1-D bilinear resampling with half-pixel centres
    (TensorFlow's ``resize(method="bilinear")`` without antialiasing)."""
    source = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    source = np.clip(source, 0.0, size_in - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    frac = source - low
    weights = np.zeros((size_out, size_in))
    rows = np.arange(size_out)
    np.add.at(weights, (rows, low), 1.0 - frac)
    np.add.at(weights, (rows, high), frac)
    return weights


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(N, h, w)`` maps resized to ``size`` = (H, W), bilinear with half-pixel centres."""
    n, h, w = maps.shape
    if (h, w) == tuple(size):
        return np.asarray(maps, np.float32)
    rows = bilinear_matrix(size[0], h).astype(np.float32)
    cols = bilinear_matrix(size[1], w).astype(np.float32)
    return np.einsum("Hh,nhw,Ww->nHW", rows, np.asarray(maps, np.float32), cols)


@dataclasses.dataclass(frozen=True)
class LayerSweep(Result):
    """One method's maps at several layers, for the same images and targets.

    Made by :func:`vizkit.explain_layers`. ``sweep["block5_conv3"]`` (or ``sweep[0]``) is that
    layer's :class:`Explanation`; ``sweep.plot(layers=[...])`` puts layers side by side.

    Attributes
    ----------
    template : Explanation
        What every layer shares (images, targets, scores, predictions, parameters, names); its
        ``maps`` and ``layer`` are the first layer's. ``template.seconds`` is the whole sweep's
        wall time.
    layers : tuple of str
        The layer paths, in the order asked for.
    maps : tuple of ndarray
        Per layer, ``(N, h, w)`` float32 at the resolution computed (upsampled on access).
    extras : tuple of dict
        Per layer, the explanation's extras (``"cam"`` and ``"weights"`` for CAMs).
    """

    template: Explanation
    layers: tuple[str, ...]
    maps: tuple[np.ndarray, ...]
    extras: tuple[Mapping[str, Any], ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        layers = tuple(str(layer) for layer in self.layers)
        maps = tuple(frozen_array(m, np.float32) for m in self.maps)
        extras = tuple(e if isinstance(e, FrozenParams) else FrozenParams(e) for e in self.extras)
        if not layers or not (len(layers) == len(maps) == len(extras)):
            raise InputError("a layer sweep needs one maps array and one extras dict per layer")
        n = len(self.template)
        for layer, m in zip(layers, maps):
            if m.ndim != 3 or len(m) != n:
                raise InputError(f"maps of layer {layer!r} have shape {m.shape}, not ({n}, h, w)")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "maps", maps)
        object.__setattr__(self, "extras", extras)

    @property
    def method(self) -> str:
        return self.template.method

    @property
    def num_images(self) -> int:
        return len(self.template)

    @property
    def seconds(self) -> float:
        return self.template.seconds

    def __len__(self) -> int:
        return len(self.layers)

    def __contains__(self, layer: object) -> bool:
        return layer in self.layers

    def index(self, layer: str | int) -> int:
        """The position of ``layer`` (a path of :attr:`layers`, or an index)."""
        if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            if -len(self.layers) <= layer < len(self.layers):
                return int(layer) % len(self.layers)
            raise LayerError(f"layer index {layer} is out of range: the sweep has {len(self)}")
        if layer in self.layers:
            return self.layers.index(str(layer))
        inner = [i for i, path in enumerate(self.layers) if path.split("/")[-1] == layer]
        if len(inner) == 1:
            return inner[0]
        shown = ", ".join(self.layers[:6]) + (", ..." if len(self.layers) > 6 else "")
        raise LayerError(f"layer {layer!r} is not in this sweep: choose one of {shown}")

    def __getitem__(self, layer: str | int) -> Explanation:
        """The :class:`Explanation` at ``layer``, maps upsampled to the input size."""
        i = self.index(layer)
        size = self.template.inputs.shape[1:3]
        return dataclasses.replace(
            self.template,
            maps=upsample(self.maps[i], (int(size[0]), int(size[1]))),
            layer=self.layers[i],
            extras=self.extras[i],
        )

    def __iter__(self) -> Iterator[Explanation]:
        return (self[i] for i in range(len(self)))

    def compare(self, layers: Sequence[str | int] | None = None) -> Comparison:
        """The chosen layers (default: all) as a :class:`Comparison`, one column per layer."""
        chosen = range(len(self)) if layers is None else [self.index(layer) for layer in layers]
        return Comparison(tuple(self[i] for i in chosen))

    def __repr__(self) -> str:
        return (
            f"LayerSweep({self.method!r}, {len(self)} layers, {self.num_images} images, "
            f"{self.seconds:.3f}s)"
        )

    def to_frame(self) -> pd.DataFrame:
        """Every layer's per-image rows (:meth:`Explanation.to_frame`), layer by layer."""
        import pandas as pd

        return pd.concat([e.to_frame() for e in self], ignore_index=True)

    def plot(
        self,
        fig: Figure | None = None,
        *,
        layers: Sequence[str | int] | None = None,
        images: Sequence[int] | None = None,
        max_layers: int = 6,
        **kwargs: Any,
    ) -> Figure:
        """A grid: one row per image, the input and one column per layer; returns the figure.

        ``layers`` picks the columns (default: up to ``max_layers`` spread evenly from the
        deepest to the shallowest); other keywords go to :meth:`Comparison.plot`.
        """
        return self.compare(self.spread(max_layers) if layers is None else layers).plot(
            fig, images=images, **kwargs
        )

    def spread(self, most: int = 6) -> list[int]:
        """Up to ``most`` layer indices spread evenly from the first (deepest) to the last."""
        count = min(len(self), max(1, most))
        picks = np.linspace(0, len(self) - 1, count).round().astype(int)
        return [int(i) for i in dict.fromkeys(picks.tolist())]
