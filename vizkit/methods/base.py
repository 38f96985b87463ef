"""The attribution engine's base class: one call shape for every method.

``Method(model, **hyperparameters).explain(inputs, targets=None) -> Explanation``. The base does
the shared work once: images to a batch, the head and its :class:`~vizkit.scoring.Scoring`,
parameter validation (:mod:`vizkit.methods.params`), chunking by ``batch_size``
(:mod:`vizkit.methods.batching`), timing, and the per-model cache of rebuilt graphs and compiled
functions (:mod:`vizkit.methods.graphs`). A method declares its facts as class attributes (read
by :func:`vizkit.registry.register`) and overrides one hook, :meth:`Method._attribute`, which
maps a chunk of images and targets to a :class:`Chunk`: maps plus the head outputs, resolved
targets and target scores its compiled function computed in the same pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

from vizkit._tf import keras
from vizkit.classes import model_class_names
from vizkit.errors import InputError, LayerError
from vizkit.inputs import ImageBatch, as_batch, prepare_inputs, resolve_targets
from vizkit.methods.batching import (  # noqa: F401  (re-exported for method modules)
    CHUNKS_IN_FLIGHT,
    auto_batch_size,
    chunks,
)
from vizkit.methods.graphs import (  # noqa: F401  (re-exported for method modules)
    TARGETS,
    PreparedGraphs,
    first_output,
    input_signature,
    resize_maps,
)
from vizkit.methods.params import (  # noqa: F401  (re-exported for method modules)
    BATCH_SIZE,
    CHANNELS,
    ENGINE,
    SCORE,
    SEED,
    check_param,
    common_params,
    unknown_params,
)
from vizkit.models import (
    get_layer,
    head_info,
    is_spatial,
    layer_output_shape,
    spatial_layer_paths,
)
from vizkit.progress import Progress, ProgressArg
from vizkit.registry import Param, get_method
from vizkit.results.explanation import Explanation, FrozenParams
from vizkit.results.sweep import LayerSweep
from vizkit.scoring import TOP_K, Scoring
from vizkit.targets import TargetScoring, as_target


class Chunk(NamedTuple):
    """What :meth:`Method._attribute` returns for ``n`` images."""

    maps: Any  # (n, H, W)
    out: Any  # (n, units): head outputs (logits, or probabilities with score=probability)
    targets: Any  # (n,) int: the targets, ``-1`` resolved to the predicted class
    scores: Any  # (n,): each target's score (see Scoring.score)
    extras: dict[str, Any]  # per-image intermediates (first axis n), e.g. CAM channel weights


def reduce_channels(values: np.ndarray, how: str) -> np.ndarray:
    """``(N, H, W, C) -> (N, H, W)`` by signed sum, largest absolute value, or L2 norm."""
    if how == "sum":
        return values.sum(axis=-1)
    if how == "max_abs":
        return np.abs(values).max(axis=-1)
    if how == "l2":
        return np.sqrt((values.astype(np.float64) ** 2).sum(axis=-1))
    raise InputError(f"channels={how!r} is not one of sum, max_abs, l2")


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def numpy_chunk(chunk: Chunk) -> Chunk:
    """``chunk`` with its tensors as numpy arrays (maps as float32)."""
    return Chunk(
        maps=np.asarray(_numpy(chunk.maps), dtype=np.float32),
        out=_numpy(chunk.out),
        targets=_numpy(chunk.targets),
        scores=_numpy(chunk.scores),
        extras=chunk.extras,
    )


class Method(PreparedGraphs):
    """Base of every attribution method.

    Parameters
    ----------
    model : keras.Model
        A single-input image classifier (Sequential or Functional, nested models allowed). Never
        modified: methods run on a rebuilt graph that shares its layers.
    layer : str or int, optional
        For layer-based methods (CAMs): the layer to explain at, as ``"base/inner"``, a unique
        inner name, or an index. ``None`` picks the first of :func:`vizkit.candidate_layers`.
    output : int or str, optional
        Which output of a multi-output model to explain.
    **params
        The method's hyperparameters; see ``vizkit.get_method(name).params`` (every method takes
        ``score`` and ``batch_size``).

    Class attributes (the method's facts, read by :func:`vizkit.registry.register`): ``name``,
    ``label``, ``reference``, ``family``, ``description``, ``hyperparameters``,
    ``needs_layer``, ``one_pass_layers``.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    family: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hyperparameters: ClassVar[tuple[Param, ...]] = ()
    needs_layer: ClassVar[bool] = False
    one_pass_layers: ClassVar[bool] = False

    def __init__(
        self,
        model: keras.Model,
        *,
        layer: str | int | None = None,
        output: int | str | None = None,
        **params: Any,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise InputError(f"model must be a keras.Model, not {type(model).__name__}")
        self.model = model
        self.info = get_method(self.name)
        self.params = self._validate(params)
        self.head = head_info(model, output)
        self.output = output
        self.scoring = Scoring(self.head, self.params["score"])
        size = self.params["batch_size"]
        self.batch_size = auto_batch_size(model) if size is None else int(size)
        self.forward_batch_size = (
            auto_batch_size(model, forward_only=True) if size is None else int(size)
        )
        self.layer: str | None = self._resolve_layer(layer) if self.needs_layer else None
        if layer is not None and not self.needs_layer:
            raise InputError(f"method {self.name!r} does not use a layer: drop layer={layer!r}")
        self._sig = input_signature(model)
        self._rows: slice | None = None  # the rows of the batch being attributed

    # -- parameters ------------------------------------------------------------------------
    def _validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        known = {p.name: p for p in self.info.params}
        unknown_params(params, known, self.name)
        values = self.info.defaults()
        for key, value in params.items():
            values[key] = self._check(known[key], value)
        return values

    def _check(self, param: Param, value: Any) -> Any:
        """Validate one parameter; subclasses may accept extra forms (arrays, ...)."""
        return check_param(param, value, self.name)

    def _public_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def engine(self) -> str:
        """``"native"``, or ``"tf-keras-vis"`` for methods with an ``engine`` parameter."""
        return self.params.get("engine", "native")

    # -- layers ----------------------------------------------------------------------------
    def _resolve_layer(self, layer: str | int | None) -> str:
        if layer is None:
            from vizkit.layers import default_layer

            return default_layer(self.model)
        path, found = get_layer(self.model, layer)
        if isinstance(found, keras.Model) or not is_spatial(found):
            valid = spatial_layer_paths(self.model)
            shape = None
            try:
                shape = layer_output_shape(found)[1:]
            except LayerError:
                pass
            raise LayerError(
                f"layer {path!r} has output shape {shape}, not a spatial (height, width, "
                f"channels) map: {self.name} needs one of {', '.join(valid) or '(none)'}"
            )
        return path

    # -- the hook --------------------------------------------------------------------------
    def images_per_chunk(self) -> int:
        """How many images one call of :meth:`_attribute` gets (work per image may be large)."""
        return self.batch_size

    def _attribute(self, x: np.ndarray, targets: np.ndarray) -> Chunk:
        """Maps for a chunk of images.

        Parameters
        ----------
        x : ndarray, shape (n, H, W, C), float32
        targets : ndarray, shape (n,), int32
            Class per image; ``-1`` means the predicted class.

        Returns
        -------
        Chunk
            Maps ``(n, H, W)``, and from the same compiled pass the head outputs for the clean
            images, the resolved targets and their scores; plus per-image extras.
        """
        raise NotImplementedError

    # -- public ----------------------------------------------------------------------------
    def explain(
        self, inputs: Any, targets: Any = None, *, progress: ProgressArg = None
    ) -> Explanation:
        """Attribution maps for ``inputs``.

        Parameters
        ----------
        inputs : ndarray (N, H, W, C), ImageBatch, paths or PIL images
            Images on the model's input scale (see :func:`vizkit.load_images`).
        targets : int, sequence of int, None, or a target object
            Class to explain per image; ``None`` explains the predicted class. A target object
            (:mod:`vizkit.targets`: ``UnitTarget``, ``RegionTarget``, or a callable
            ``fn(outputs) -> scores``) explains that score for every image.
        progress : None, bool or callable
            Progress over the batches of images (see :mod:`vizkit.progress`): None shows a bar
            in notebooks when there is more than one batch; a callable gets ``(done, total)``.

        Returns
        -------
        Explanation
        """
        start = time.perf_counter()
        inputs, x = self._batch(inputs)
        wanted, target = self._wanted(x, targets)
        with self._scoring_for(target):
            parts = self._chunks(x, wanted, progress)
        return self._explanation(inputs, x, parts, start, target)

    def explain_layers(
        self, inputs: Any, targets: Any = None, layers: Any = None, *, progress: ProgressArg = None
    ) -> LayerSweep:
        """This method's maps at several layers (``None``: every candidate layer) for the same
        images and targets, as a :class:`~vizkit.results.sweep.LayerSweep`.

        The base explains layer by layer; gradient and activation CAMs override it with one
        forward and one backward pass for all layers.
        """
        if not self.needs_layer:
            raise InputError(f"method {self.name!r} does not use a layer: call explain instead")
        start = time.perf_counter()
        paths = self._sweep_layers(layers)
        inputs = prepare_inputs(inputs, self.model)
        per_layer = [
            type(self)(self.model, layer=path, output=self.output, **self.params).explain(
                inputs, targets, progress=progress
            )
            for path in paths
        ]
        template = dataclasses.replace(per_layer[0], seconds=time.perf_counter() - start)
        return LayerSweep(
            template,
            paths,
            tuple(e.maps for e in per_layer),
            tuple(e.extras for e in per_layer),
        )

    def _sweep_layers(self, layers: Any) -> tuple[str, ...]:
        if layers is None:
            from vizkit.layers import candidate_layers

            paths = tuple(c.path for c in candidate_layers(self.model))
            if not paths:
                self._resolve_layer(None)  # raises the no-spatial-layer error
        else:
            chosen = [layers] if isinstance(layers, (str, int)) else list(layers)
            paths = tuple(dict.fromkeys(self._resolve_layer(layer) for layer in chosen))
        if not paths:
            raise InputError("layers=[] names no layers: pass at least one, or None for all")
        return paths

    def _batch(self, inputs: Any) -> tuple[Any, np.ndarray]:
        """The prepared inputs (metadata kept) and their float32 batch."""
        inputs = prepare_inputs(inputs, self.model)  # paths, PIL images, uint8: keep metadata
        x = as_batch(inputs, self.model)
        if len(x) == 0:
            raise InputError("no images given: pass at least one image")
        return inputs, x

    def _wanted(self, x: np.ndarray, targets: Any) -> tuple[np.ndarray, Any]:
        """The class index per image (``-1`` = predicted) and the target object, if any."""
        target = as_target(targets)
        if target is not None:
            target.check(tuple(self.model.outputs[self.head.output].shape), self.head)
            return np.full(len(x), target.index, dtype=np.int32), target
        if targets is None:
            return np.full(len(x), -1, dtype=np.int32), None
        wanted = resolve_targets(targets, len(x), self.head.num_classes).astype(np.int32)
        return wanted, None

    @contextlib.contextmanager
    def _scoring_for(self, target: Any) -> Iterator[None]:
        """Score ``target`` (a target object, or None for classes) while the block runs."""
        base = self.scoring
        if target is not None:
            self.scoring = TargetScoring(self.head, base.kind, target)
        try:
            yield
        finally:
            self.scoring = base

    def _chunks(self, x: np.ndarray, wanted: np.ndarray, progress: ProgressArg) -> list[Chunk]:
        parts = []
        rows = list(chunks(len(x), max(1, self.images_per_chunk())))
        shown = progress if (len(rows) > 1 or progress is not None) else False
        with Progress(shown, len(rows), desc=self.name, unit="batch") as bar:
            for s in rows:
                self._rows = s
                parts.append(numpy_chunk(self._attribute(x[s], wanted[s])))
                bar.advance()
        return parts

    def _explanation(
        self, inputs: Any, x: np.ndarray, parts: list[Chunk], start: float, target: Any
    ) -> Explanation:
        extras = [p.extras for p in parts]
        merged = {k: np.concatenate([e[k] for e in extras]) for k in extras[0]} if extras else {}
        batch = inputs if isinstance(inputs, ImageBatch) else None
        names = batch.names if batch is not None else ()
        class_names = batch.class_names if batch is not None else None
        if class_names is None:
            class_names = model_class_names(self.model, self.head.output)
        out = np.concatenate([p.out for p in parts])
        return Explanation(
            method=self.name,
            maps=np.concatenate([p.maps for p in parts]),
            inputs=x,
            targets=np.concatenate([p.targets for p in parts]).astype(np.int64),
            scores=np.concatenate([p.scores for p in parts]).astype(np.float32),
            predictions=self.scoring.predictions(
                out, TOP_K, image_names=names, class_names=class_names
            ),
            layer=self.layer,
            params=FrozenParams(self._public_params()),
            seconds=time.perf_counter() - start,
            score_kind=self.params["score"],
            output=self.head.output,
            model_name=self.model.name,
            value_range=batch.value_range if batch is not None else None,
            class_names=class_names,
            input_spec=batch.input_spec if batch is not None else None,
            extras=FrozenParams(merged),
            label=self.info.label,
            image_names=names,
            family=self.info.family,
            target_description="" if target is None else target.describe(),
        )

    __call__ = explain

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._public_params().items())
        where = f", layer={self.layer!r}" if self.layer else ""
        return f"{type(self).__name__}({self.model.name!r}{where}, {shown})"
