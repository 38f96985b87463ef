"""The attribution engine's base class: one call shape for every method.

``Method(model, **hyperparameters).explain(inputs, targets=None) -> Explanation``. The base does
the shared work once: images to a batch, the head and its logit (or probability) score, target
resolution (``None`` = predicted class), predictions, chunking by ``batch_size``, timing, and the
per-model cache of rebuilt graphs and compiled functions. A method overrides one hook,
:meth:`Method._attribute`, which maps a chunk of images and targets to maps.

Compiled functions live in :func:`vizkit.models.model_cache` (keyed by model identity and what
the graph depends on) and take a batch of any size through a fixed ``input_signature``, so the
dashboard's repeated calls on one model never clone, rebuild or retrace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from vizkit._tf import keras, tf
from vizkit.errors import InputError, LayerError
from vizkit.inputs import ImageBatch, as_batch, load_images, resolve_targets
from vizkit.models import (
    Head,
    class_probabilities,
    get_layer,
    head_info,
    is_spatial,
    iter_layers,
    layer_output_shape,
    model_cache,
    rebuild,
    require_image_model,
    spatial_layer_paths,
)
from vizkit.progress import Progress, ProgressArg
from vizkit.registry import Param, get_method
from vizkit.results.explanation import Explanation, FrozenParams, Predictions

SCORE = Param(
    "score",
    str,
    "logit",
    label="Score",
    help="Explain the pre-activation score (logit) of a softmax/sigmoid head, or its probability",
    choices=("logit", "probability"),
)
BATCH_SIZE = Param(
    "batch_size",
    int,
    None,
    label="Batch size",
    help="Images (or noisy copies, path points, masked images) per pass: memory versus speed; "
    "None sizes it to the model (see vizkit.methods.base.auto_batch_size)",
    min=1,
    max=4096,
    step=1,
)
SEED = Param(
    "seed", int, 0, label="Seed", help="Random seed: same seed, same map", min=0, max=2**31 - 1
)
CHANNELS = Param(
    "channels",
    str,
    "sum",
    label="Channel reduction",
    help="How colour channels become one map: signed sum, largest absolute value, or L2 norm",
    choices=("sum", "max_abs", "l2"),
)
TOP_K = 5


def common_params(score: str = "logit") -> tuple[Param, ...]:
    """The ``score`` and ``batch_size`` parameters every method takes."""
    if score == SCORE.default:
        return (SCORE, BATCH_SIZE)
    return (Param(**{**SCORE.__dict__, "default": score}), BATCH_SIZE)


# --------------------------------------------------------------------------------------------
# Small TF helpers shared by the method families
# --------------------------------------------------------------------------------------------
def input_signature(model: keras.Model) -> tf.TensorSpec:
    shape = require_image_model(model, "attribution")
    return tf.TensorSpec((None, *shape[1:]), tf.float32)


def first_output(outputs: Any) -> Any:
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def tf_predicted(out: Any, head: Head, logits: bool) -> Any:
    """Predicted class per row of head outputs, in graph (see :func:`predicted_classes`)."""
    out = tf.reshape(out, (tf.shape(out)[0], -1))
    if head.binary:
        threshold = 0.5 if (not logits and head.squashed) else 0.0
        return tf.cast(out[:, 0] > threshold, tf.int32)
    return tf.cast(tf.argmax(out, axis=-1), tf.int32)


def tf_resolve(targets: Any, out: Any, head: Head, logits: bool) -> Any:
    """Replace the ``-1`` sentinel (predicted class) by the prediction."""
    return tf.where(targets < 0, tf_predicted(out, head, logits), targets)


def tf_select(out: Any, targets: Any, head: Head, logits: bool) -> Any:
    """Score of each row's target, ``(N, K) -> (N,)`` (class 0 of a single unit negated)."""
    out = tf.reshape(out, (tf.shape(out)[0], -1))
    targets = tf.cast(targets, tf.int32)
    if head.binary:
        value = out[:, 0]
        as_logit = logits or not head.squashed
        return tf.where(targets == 1, value, -value if as_logit else 1.0 - value)
    return tf.gather(out, targets, axis=1, batch_dims=1)


def tf_probabilities(out: Any, head: Head, logits: bool) -> Any:
    """Head outputs to probabilities ``(N, K)`` (a single unit gives ``(N, 1)`` = P(class 1))."""
    out = tf.reshape(out, (tf.shape(out)[0], -1))
    if not logits and head.squashed:
        return out
    if head.binary:
        return tf.sigmoid(out)
    if head.activation == "sigmoid":
        return tf.sigmoid(out)
    return tf.nn.softmax(out, axis=-1)


def tf_select_probability(out: Any, targets: Any, head: Head, logits: bool) -> Any:
    """Probability of each row's target class."""
    probs = tf_probabilities(out, head, logits)
    if head.binary:
        p = probs[:, 0]
        return tf.where(tf.cast(targets, tf.int32) == 1, p, 1.0 - p)
    return tf.gather(probs, tf.cast(targets, tf.int32), axis=1, batch_dims=1)


def tf_score(out: Any, targets: Any, head: Head, logits: bool) -> Any:
    """The explained score: the logit, or the probability (softmax/sigmoid applied in graph
    when the head itself has no activation, e.g. a logits model with score="probability")."""
    if not logits and not head.squashed:
        return tf_select_probability(out, targets, head, logits=True)
    return tf_select(out, targets, head, logits)


def resize_maps(maps: Any, size: Any) -> Any:
    """Bilinear resize of ``(N, h, w)`` maps to ``size`` = (H, W) (half-pixel centres)."""
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]


def reduce_channels(values: np.ndarray, how: str) -> np.ndarray:
    """``(N, H, W, C) -> (N, H, W)`` by signed sum, largest absolute value, or L2 norm."""
    if how == "sum":
        return values.sum(axis=-1)
    if how == "max_abs":
        return np.abs(values).max(axis=-1)
    if how == "l2":
        return np.sqrt((values.astype(np.float64) ** 2).sum(axis=-1))
    raise InputError(f"channels={how!r} is not one of sum, max_abs, l2")


AUTO_BATCH_BYTES = 256 * 2**20  # float32 activations of one pass
AUTO_BATCH_RANGE = (32, 128)  # passes that backpropagate
AUTO_FORWARD_RANGE = (32, 256)  # forward-only passes (occlusion, Score-CAM, predictions)
CHUNKS_IN_FLIGHT = 2  # on-graph chunk loops overlap one chunk's small ops with the next's convs


def auto_batch_size(model: keras.Model, *, forward_only: bool = False) -> int:
    """Images per pass when ``batch_size=None``: the largest power of two within 32-128 whose
    layer outputs (one float32 copy of each, all kept for the backward pass) fit in 256 MiB;
    for forward-only passes, which keep only a few layer outputs alive, within 32-256 with
    three copies of the largest layer output in the budget.

    Small models run faster per image in larger passes: on the 2-core bench machine,
    integrated gradients on the 28x28 digits CNN costs about 10% less at 128 than at 32, and
    occlusion on the 64x64 VGG about 15% less at 128. The caps bound memory; the floor keeps
    large models at the batch of 32 they ran at before.
    """
    key = ("vizkit.methods", "auto_batch_size", forward_only)
    cache = model_cache(model)
    if key in cache:
        return cache[key]
    sizes = []
    for _, layer in iter_layers(model):
        if isinstance(layer, keras.Model):
            continue
        try:
            shape = layer_output_shape(layer)
        except LayerError:
            continue
        sizes.append(int(np.prod([d or 1 for d in shape[1:]])))
    per_image = 4 * (3 * max(sizes, default=1) if forward_only else sum(sizes) or 1)
    fits = AUTO_BATCH_BYTES // per_image
    size = 1 << max(int(fits).bit_length() - 1, 0)
    cache[key] = int(np.clip(size, *(AUTO_FORWARD_RANGE if forward_only else AUTO_BATCH_RANGE)))
    return cache[key]


def chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


# --------------------------------------------------------------------------------------------
# Parameter validation (the registry's Params are the single source of truth)
# --------------------------------------------------------------------------------------------
def _check_param(param: Param, value: Any, method: str) -> Any:
    where = f"{method}: parameter {param.name!r}"
    if value is None and param.default is None:
        return None
    if param.choices is not None and param.type is str:
        if value not in param.choices:
            choices = ", ".join(repr(c) for c in param.choices)
            raise InputError(f"{where} is {value!r}: choose one of {choices}")
        return value
    if param.type is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise InputError(f"{where} must be True or False, not {value!r}")
        return bool(value)
    if param.type is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise InputError(f"{where} must be an integer, not {value!r}")
        value = int(value)
    elif param.type is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise InputError(f"{where} must be a number, not {value!r}")
        value = float(value)
        if not np.isfinite(value):
            raise InputError(f"{where} must be finite, not {value!r}")
    if param.min is not None and value < param.min:
        raise InputError(f"{where} is {value}: it must be at least {param.min}")
    if param.max is not None and value > param.max:
        raise InputError(f"{where} is {value}: it must be at most {param.max}")
    return value


# --------------------------------------------------------------------------------------------
# The base class
# --------------------------------------------------------------------------------------------
class Method:
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
    """

    name: ClassVar[str] = ""  # set by vizkit.registry.register
    needs_layer: ClassVar[bool] = False

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
        self.logits = self.params["score"] == "logit"
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
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise InputError(
                f"method {self.name!r} has no parameter {unknown[0]!r}: its parameters are "
                f"{', '.join(known)}"
            )
        values = self.info.defaults()
        for key, value in params.items():
            values[key] = self._check(known[key], value)
        return values

    def _check(self, param: Param, value: Any) -> Any:
        """Validate one parameter; subclasses may accept extra forms (arrays, ...)."""
        return _check_param(param, value, self.name)

    def _public_params(self) -> dict[str, Any]:
        return dict(self.params)

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

    # -- caching ---------------------------------------------------------------------------
    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """Get or build an entry of the model's cache (key prefixed with the head settings)."""
        cache = model_cache(self.model)
        full = ("vizkit.methods", self.head.output, self.logits, *key)
        if full not in cache:
            cache[full] = build()
        return cache[full]

    def prepared(
        self, layers: tuple[str, ...] = (), rule: str | None = None, substitute: Any = None
    ) -> keras.Model:
        """The rebuilt model ``input -> [head, *layers]`` (logit head unless score=probability)."""
        return self.cached(
            ("rebuild", tuple(layers), rule),
            lambda: rebuild(
                self.model,
                list(layers),
                logits=self.logits,
                output=self.head.output,
                substitute=substitute,
            ),
        )

    def averaging_graph(self) -> tuple[keras.Model | None, keras.Model]:
        """The prepared head as ``(prefix, suffix)``, batch norms folded (see
        :func:`vizkit.methods.folding.averaging_graph`)."""
        from vizkit.methods.folding import averaging_graph

        return self.cached(
            ("averaging_graph",),
            lambda: averaging_graph(self.model, self.prepared(), self.logits, self.head.output),
        )

    def head_graph(self) -> Callable[[Any], Any]:
        """``x -> head outputs`` for forward-only work: the prepared head with batch norms
        folded into their convolutions (same values up to float rounding)."""
        prefix, suffix = self.averaging_graph()
        if prefix is None:
            return lambda x: suffix(x, training=False)
        return lambda x: suffix(prefix(x, training=False), training=False)

    def forward_fn(self) -> Callable[[Any], Any]:
        """Compiled ``x -> head output`` (:meth:`head_graph`)."""

        def build() -> Callable[[Any], Any]:
            model = self.head_graph()

            @tf.function(input_signature=[self._sig], reduce_retracing=True)
            def forward(x: Any) -> Any:
                return tf.cast(first_output(model(x)), tf.float32)

            return forward

        return self.cached(("forward",), build)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Head outputs for a batch, in chunks of ``batch_size``."""
        fn = self.forward_fn()
        parts = [fn(tf.constant(x[s])).numpy() for s in chunks(len(x), self.forward_batch_size)]
        return np.concatenate(parts).reshape(len(x), -1)

    def resolve(self, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Replace ``-1`` (predicted class) using head outputs ``out``."""
        predicted = self.predicted(out)
        return np.where(targets < 0, predicted, targets).astype(np.int32)

    def predicted(self, out: np.ndarray) -> np.ndarray:
        out = out.reshape(len(out), -1)
        if self.head.binary:
            threshold = 0.5 if (not self.logits and self.head.squashed) else 0.0
            return (out[:, 0] > threshold).astype(np.int32)
        return out.argmax(axis=-1).astype(np.int32)

    # -- the hook --------------------------------------------------------------------------
    def images_per_chunk(self) -> int:
        """How many images one call of :meth:`_attribute` gets (work per image may be large)."""
        return self.batch_size

    def _attribute(
        self, x: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Maps for a chunk of images.

        Parameters
        ----------
        x : ndarray, shape (n, H, W, C), float32
        targets : ndarray, shape (n,), int32
            Class per image; ``-1`` means the predicted class.

        Returns
        -------
        maps : ndarray, shape (n, H, W)
        out : ndarray, shape (n, K)
            Head outputs for the clean images (logits, or probabilities with score=probability).
        extras : dict of str to ndarray
            Per-image intermediate arrays (first axis n), e.g. CAM channel weights.
        """
        raise NotImplementedError

    # -- public ----------------------------------------------------------------------------
    def explain(
        self, inputs: Any, targets: int | Any | None = None, *, progress: ProgressArg = None
    ) -> Explanation:
        """Attribution maps for ``inputs``.

        Parameters
        ----------
        inputs : ndarray (N, H, W, C), ImageBatch, paths or PIL images
            Images on the model's input scale (see :func:`vizkit.load_images`).
        targets : int, sequence of int, or None
            Class to explain per image; ``None`` explains the predicted class.
        progress : None, bool or callable
            Progress over the batches of images (see :mod:`vizkit.progress`): None shows a bar
            in notebooks when there is more than one batch; a callable gets ``(done, total)``.

        Returns
        -------
        Explanation
        """
        start = time.perf_counter()
        if not isinstance(inputs, (np.ndarray, ImageBatch)) and not hasattr(inputs, "numpy"):
            inputs = load_images(inputs, self.model)  # paths, PIL images, lists: keep metadata
        x = as_batch(inputs, self.model)
        n = len(x)
        if n == 0:
            raise InputError("no images given: pass at least one image")
        if targets is None:
            wanted = np.full(n, -1, dtype=np.int32)
        else:
            wanted = resolve_targets(targets, n, self.head.num_classes).astype(np.int32)
        maps, outs, extras = [], [], []
        parts = list(chunks(n, max(1, self.images_per_chunk())))
        shown = progress if (len(parts) > 1 or progress is not None) else False
        with Progress(shown, len(parts), desc=self.name, unit="batch") as bar:
            for s in parts:
                self._rows = s
                m, o, e = self._attribute(x[s], wanted[s])
                maps.append(np.asarray(m, dtype=np.float32))
                outs.append(np.asarray(o, dtype=np.float32).reshape(len(m), -1))
                extras.append(e)
                bar.advance()
        out = np.concatenate(outs)
        resolved = self.resolve(wanted, out)
        merged = {k: np.concatenate([e[k] for e in extras]) for k in extras[0]} if extras else {}
        return Explanation(
            method=self.name,
            maps=np.concatenate(maps).astype(np.float32),
            inputs=x,
            targets=resolved.astype(np.int64),
            scores=self._scores(out, resolved),
            predictions=self._predictions(out),
            layer=self.layer,
            params=FrozenParams(self._public_params()),
            seconds=time.perf_counter() - start,
            score_kind=self.params["score"],
            output=self.head.output,
            model_name=self.model.name,
            value_range=inputs.value_range if isinstance(inputs, ImageBatch) else None,
            class_names=inputs.class_names if isinstance(inputs, ImageBatch) else None,
            extras=FrozenParams(merged),
            label=self.info.label,
            image_names=inputs.names if isinstance(inputs, ImageBatch) else (),
        )

    __call__ = explain

    def _scores(self, out: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Score of each image's target (numpy twin of :func:`tf_score`)."""
        if not self.logits and not self.head.squashed:
            probs = class_probabilities(out, self.head, logits=True)
            return probs[np.arange(len(out)), targets].astype(np.float32)
        out = out.reshape(len(out), -1)
        if self.head.binary:
            value = out[:, 0]
            as_logit = self.logits or not self.head.squashed
            other = -value if as_logit else 1.0 - value
            return np.where(targets == 1, value, other).astype(np.float32)
        return out[np.arange(len(out)), targets].astype(np.float32)

    def _predictions(self, out: np.ndarray) -> Predictions:
        probs = class_probabilities(out, self.head, logits=self.logits)
        k = min(TOP_K, probs.shape[1])
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return Predictions(
            classes=order.astype(np.int64),
            probabilities=np.take_along_axis(probs, order, axis=1),
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._public_params().items())
        where = f", layer={self.layer!r}" if self.layer else ""
        return f"{type(self).__name__}({self.model.name!r}{where}, {shown})"
