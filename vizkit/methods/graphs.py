"""Rebuilt graphs and compiled functions, cached per model: what every method runs.

:class:`PreparedGraphs` is the part of :class:`~vizkit.methods.base.Method` that owns graphs.
Entries live in :func:`vizkit.models.model_cache` (keyed by model identity, the head settings
and what the graph depends on) and take a batch of any size through a fixed
``input_signature``, so the dashboard's repeated calls on one model never clone, rebuild or
retrace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.methods.batching import chunks
from vizkit.models import Head, model_cache, rebuild, require_image_model
from vizkit.scoring import Scoring

if TYPE_CHECKING:
    from vizkit.methods.folding import AveragingGraph

#: Signature of a batch of class targets (``-1`` = the predicted class).
TARGETS = tf.TensorSpec([None], tf.int32)


def input_signature(model: keras.Model) -> tf.TensorSpec:
    """``TensorSpec`` of a batch of images of any size for ``model``."""
    shape = require_image_model(model, "attribution")
    return tf.TensorSpec((None, *shape[1:]), tf.float32)


def first_output(outputs: Any) -> Any:
    """The head tensor of a rebuilt graph's outputs (Keras unwraps one-item lists)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def resize_maps(maps: Any, size: Any) -> Any:
    """Bilinear resize of ``(N, h, w)`` maps to ``size`` = (H, W) (half-pixel centres)."""
    return tf.image.resize(maps[..., None], size, method="bilinear")[..., 0]


class PreparedGraphs:
    """Cached graphs of one method object's model and head (mixed into ``Method``)."""

    model: keras.Model
    head: Head
    scoring: Scoring
    forward_batch_size: int
    _sig: tf.TensorSpec

    @property
    def logits(self) -> bool:
        """The graphs end in the head's pre-activation (``score="logit"``)."""
        return self.scoring.logits

    def cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        """Get or build an entry of the model's cache (key prefixed with the head settings
        and, for a target object, the target's key)."""
        extra = self.scoring.key()
        return self._cached(key if extra is None else (*key, ("target", extra)), build)

    def _cached(self, key: tuple, build: Callable[[], Any]) -> Any:
        cache = model_cache(self.model)
        full = ("vizkit.methods", self.head.output, self.logits, *key)
        if full not in cache:
            cache[full] = build()
        return cache[full]

    def prepared(
        self, layers: tuple[str, ...] = (), rule: str | None = None, substitute: Any = None
    ) -> keras.Model:
        """The rebuilt model ``input -> [head, *layers]`` (logit head unless score=probability)."""
        return self._cached(
            ("rebuild", tuple(layers), rule),
            lambda: rebuild(
                self.model,
                list(layers),
                logits=self.logits,
                output=self.head.output,
                substitute=substitute,
            ),
        )

    def averaging_graph(self) -> AveragingGraph:
        """The prepared head as ``(prefix, suffix)``, the input's linear prefix cut off and batch
        norms folded where the folding rule allows (see
        :func:`vizkit.methods.folding.averaging_graph`; ``.fold`` holds the decision). Built and
        probed once per model and head."""
        from vizkit.methods.folding import averaging_graph

        return self._cached(
            ("averaging_graph",),
            lambda: averaging_graph(self.model, self.prepared(), self.logits, self.head.output),
        )

    def head_graph(self) -> Callable[[Any], Any]:
        """``x -> head outputs`` for forward-only work: the prepared head with batch norms
        folded into their convolutions (same values up to float rounding)."""
        from vizkit.methods.folding import forward_graph

        model = self._cached(
            ("forward_graph",),
            lambda: forward_graph(self.model, self.prepared(), self.logits, self.head.output),
        )
        return lambda x: model(x, training=False)

    def forward_fn(self) -> Callable[[Any, Any], Any]:
        """Compiled ``(x, targets) -> (head output, resolved targets, scores)``."""

        def build() -> Callable[[Any, Any], Any]:
            model, rule = self.head_graph(), self.scoring

            @tf.function(input_signature=[self._sig, TARGETS], reduce_retracing=True)
            def forward(x: Any, targets: Any) -> Any:
                out = tf.cast(first_output(model(x)), tf.float32)
                return (out, *rule(out, targets))

            return forward

        return self.cached(("forward",), build)

    def forward(
        self, x: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Head outputs ``(N, ...)``, resolved targets and their scores, in chunks."""
        fn = self.forward_fn()
        parts = [
            [t.numpy() for t in fn(tf.constant(x[s]), tf.constant(targets[s], tf.int32))]
            for s in chunks(len(x), self.forward_batch_size)
        ]
        out, resolved, scores = (np.concatenate(p) for p in zip(*parts))
        return out, resolved, scores
