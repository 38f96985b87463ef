"""Which layers make sense for class activation maps, ranked, with what users need to choose.

:func:`candidate_layers` lists the layers with a spatial ``(N, H, W, C)`` output larger than
1x1 (zero-padding layers left out: their border is not evidence), nested models included,
deepest first: deep layers carry the class-specific evidence
Grad-CAM needs (Selvaraju et al. 2017 use the last convolutional layer), shallow ones give
finer but less class-specific maps. Each entry carries the spatial size, channels and
receptive field, so a user (or the dashboard's layer picker) can trade resolution for
semantics knowingly. The default layer for CAMs is the first entry. :func:`model_info` gives
the rest of what a front end offers (input shape, classes, layers with feature maps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vizkit._tf import keras
from vizkit.errors import LayerError
from vizkit.models import (
    head_info,
    input_shape,
    is_image_model,
    iter_layers,
    layer_output_shape,
    model_cache,
    spatial_layer_paths,
)

__all__ = ["CandidateLayer", "candidate_layers", "default_layer"]


@dataclasses.dataclass(frozen=True)
class CandidateLayer:
    """One layer a CAM can explain at.

    Attributes
    ----------
    path : str
        Layer path (``"base/block_16_project"``), usable as ``layer=``.
    kind : str
        The layer's class name.
    height, width, channels : int or None
        Output size (None where the model accepts any input size).
    receptive_field : (float, float) or None
        Input window one unit sees, in pixels (None when unknown).
    jump : (float, float) or None
        Input pixels between neighbouring units (the map's effective stride).
    rank : int
        0 for the recommended (default) layer, then in order of preference.
    depth : int
        Position in the model's layer order (nested layers counted in place).
    """

    path: str
    kind: str
    height: int | None
    width: int | None
    channels: int | None
    receptive_field: tuple[float, float] | None
    jump: tuple[float, float] | None
    rank: int
    depth: int

    @property
    def label(self) -> str:
        """A one-line description for menus: ``"conv2 (Conv2D) 12x12x64, RF 9 px"``."""
        size = f"{self.height}x{self.width}x{self.channels}"
        rf = f", RF {self.receptive_field[0]:g} px" if self.receptive_field else ""
        return f"{self.path} ({self.kind}) {size}{rf}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: layers that only add a border (zeros) around their input's grid
_PADDING = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)


def _receptive_fields(model: keras.Model) -> dict[str, Any]:
    from vizkit.receptive import receptive_fields

    try:
        return receptive_fields(model)
    except Exception:  # noqa: BLE001 - guidance only: a model it cannot walk still gets layers
        return {}


def candidate_layers(model: keras.Model) -> list[CandidateLayer]:
    """Layers suited to CAMs, best first (the first is the default ``layer``).

    Parameters
    ----------
    model : keras.Model
        Sequential or Functional; nested models are searched (their layers listed as
        ``"outer/inner"``). Never modified.

    Returns
    -------
    list of CandidateLayer
        Spatial layers larger than 1x1, deepest first. If every spatial layer is 1x1 they are
        listed anyway; an empty list means the model has no spatial layer.
    """
    cache = model_cache(model)
    key = ("vizkit.layers.candidate_layers",)
    if key not in cache:
        cache[key] = tuple(_candidates(model))
    return list(cache[key])


def _candidates(model: keras.Model) -> list[CandidateLayer]:
    fields = _receptive_fields(model)
    found: list[tuple[int, str, keras.layers.Layer, tuple]] = []
    for depth, (path, layer) in enumerate(iter_layers(model)):
        if isinstance(layer, (keras.Model, keras.layers.InputLayer, *_PADDING)):
            continue  # a padding layer's border is not image evidence: its input is listed
        try:
            shape = layer_output_shape(layer)
        except LayerError:
            continue
        if len(shape) == 4:
            found.append((depth, path, layer, shape))
    if not found:
        return []
    larger = [f for f in found if not (f[3][1] == 1 and f[3][2] == 1)]
    chosen = larger or found
    chosen.sort(key=lambda f: -f[0])
    result = []
    for rank, (depth, path, layer, shape) in enumerate(chosen):
        rf = fields.get(path)
        result.append(
            CandidateLayer(
                path=path,
                kind=type(layer).__name__,
                height=shape[1],
                width=shape[2],
                channels=shape[3],
                receptive_field=tuple(rf.size) if rf is not None else None,
                jump=tuple(rf.jump) if rf is not None else None,
                rank=rank,
                depth=depth,
            )
        )
    return result


def default_layer(model: keras.Model) -> str:
    """The default CAM layer: the first of :func:`candidate_layers`."""
    candidates = candidate_layers(model)
    if not candidates:
        raise LayerError(
            f"model {model.name!r} has no layer with a spatial (height, width, channels) output: "
            "class activation maps need one; use a gradient method (saliency, "
            "integrated_gradients) instead"
        )
    return candidates[0].path


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a front end needs to offer a model's choices: plain Python values only.

    ``head_error`` is the one-line reason the model cannot be explained per class (then
    ``num_classes`` is 0); ``input_shape`` and ``spatial_layers`` are empty for non-image models.
    """

    name: str
    image_model: bool
    input_shape: tuple[int | None, ...] | None
    num_classes: int
    head_error: str | None
    spatial_layers: tuple[str, ...]


def model_info(model: keras.Model) -> ModelInfo:
    """Describe ``model`` (input, head, layers with feature maps) without running it."""
    from vizkit.errors import VizkitError, one_line

    image_model = is_image_model(model)
    try:
        num_classes, head_error = head_info(model).num_classes, None
    except VizkitError as err:
        num_classes, head_error = 0, one_line(str(err))
    return ModelInfo(
        name=str(model.name),
        image_model=image_model,
        input_shape=tuple(input_shape(model)) if image_model else None,
        num_classes=int(num_classes),
        head_error=head_error,
        spatial_layers=tuple(spatial_layer_paths(model)) if image_model else (),
    )
