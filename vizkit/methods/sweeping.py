"""Every layer of a CAM in one pass: the part of :class:`~vizkit.methods.cam.CamMethod` behind
:func:`vizkit.explain_layers`.

One compiled function per model, head and layer tuple runs the rebuilt model with every layer's
output exposed, takes the gradient of the target scores with respect to all of them in one
backward pass, and applies the method's ``weigh`` hook to each layer. The coarse CAMs come back
at each layer's own resolution (:class:`~vizkit.results.sweep.LayerSweep` upsamples on access).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import numpy as np

from vizkit._tf import tf
from vizkit.methods.base import TARGETS, Chunk, Method, chunks, numpy_chunk, resize_maps
from vizkit.progress import Progress
from vizkit.results.explanation import FrozenParams
from vizkit.results.sweep import LayerSweep


class OnePassLayers(Method):
    """A method whose map at a layer is ``weigh(activations, gradients)`` of that layer alone
    (the base of :class:`~vizkit.methods.cam.CamMethod`), so all layers share one pass."""

    layer: str
    #: the hook needs the score's gradient with respect to the layer's activations
    uses_gradients: ClassVar[bool] = True
    #: :meth:`explain_layers` runs :meth:`weigh` on every layer of one pass (a registry fact)
    one_pass_layers: ClassVar[bool] = True

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        """``(n, h, w, C)`` activations and gradients -> coarse CAM ``(n, h, w)``, weights
        ``(n, C)`` (or None)."""
        raise NotImplementedError

    def sweep_fn(self, layers: tuple[str, ...]) -> Any:
        """Compiled ``(x, targets) -> (out, resolved, scores, coarse CAMs, weights)``, one CAM
        and weights per layer of ``layers`` from one forward and one backward pass."""

        def build() -> Any:
            model, scoring, weigh = self.prepared(layers), self.scoring, self.weigh
            gradients = self.uses_gradients

            @tf.function(
                input_signature=[self._sig, TARGETS], reduce_retracing=True, autograph=False
            )
            def sweep(x: Any, targets: Any) -> Any:
                with tf.GradientTape(watch_accessed_variables=False) as tape:
                    tape.watch(x)
                    out, *raw = model(x, training=False)
                    out = tf.cast(out, tf.float32)
                    resolved, scores = scoring(out, targets)
                grads = tape.gradient(scores, raw) if gradients else [None] * len(raw)
                coarse, weights = [], []
                for acts, grad in zip(raw, grads):
                    if gradients:
                        grad = tf.cast(tf.zeros_like(acts) if grad is None else grad, tf.float32)
                    cam, weight = weigh(tf.cast(acts, tf.float32), grad)
                    coarse.append(cam)
                    weights.append(weight)
                return out, resolved, scores, coarse, weights

            return sweep

        return self.cached(("sweep", self.name, layers), build)

    @property
    def sweeps_in_one_pass(self) -> bool:
        """:meth:`explain_layers` computes every layer in one forward and backward pass."""
        return self.one_pass_layers and self.engine == "native"

    def explain_layers(
        self, inputs: Any, targets: Any = None, layers: Any = None, *, progress: Any = None
    ) -> LayerSweep:
        if not self.sweeps_in_one_pass:
            return super().explain_layers(inputs, targets, layers, progress=progress)
        start = time.perf_counter()
        paths = self._sweep_layers(layers)
        inputs, x = self._batch(inputs)
        wanted, target = self._wanted(x, targets)
        parts, cams, weights = [], [], []
        rows = list(chunks(len(x), max(1, self.images_per_chunk())))
        shown = progress if (len(rows) > 1 or progress is not None) else False
        with (
            self._scoring_for(target),
            Progress(shown, len(rows), desc=self.name, unit="batch") as bar,
        ):
            fn = self.sweep_fn(paths)
            for s in rows:
                out, resolved, scores, coarse, weight = fn(
                    tf.constant(x[s]), tf.constant(wanted[s])
                )
                cams.append([c.numpy() for c in coarse])
                weights.append([None if w is None else w.numpy() for w in weight])
                first = resize_maps(coarse[0], x.shape[1:3])
                parts.append(Chunk(first, out, resolved, scores, {}))
                bar.advance()
            template = self._explanation(inputs, x, [numpy_chunk(p) for p in parts], start, target)
        per_layer = [np.concatenate([c[i] for c in cams]) for i in range(len(paths))]
        extras = []
        for i, coarse_maps in enumerate(per_layer):
            found = {"cam": coarse_maps}
            if weights[0][i] is not None:
                found["weights"] = np.concatenate([w[i] for w in weights])
            extras.append(found)
        return LayerSweep(
            dataclasses.replace(template, layer=paths[0], extras=FrozenParams(extras[0])),
            paths,
            tuple(per_layer),
            tuple(extras),
        )
