"""Shared plumbing of the metrics: reading maps and explanations, batched scoring, similarity.

Maps may be given as an array ``(N, H, W)`` (or one ``(H, W)`` map, or ``(N, H, W, 1)``) or as an
:class:`~vizkit.methods` ``Explanation`` (anything with a ``.maps`` attribute; its ``.targets``,
``.method`` and ``.inputs`` are used when present).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage, stats

from vizkit.errors import InputError

# --------------------------------------------------------------------------------------------
# Maps and explanations
# --------------------------------------------------------------------------------------------


def is_explanation(value: Any) -> bool:
    return hasattr(value, "maps") and not isinstance(value, np.ndarray)


def as_maps(maps: Any, n: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Maps as float64 ``(N, H, W)``; checks the count and size when given."""
    if is_explanation(maps):
        maps = maps.maps
    if hasattr(maps, "numpy") and not isinstance(maps, np.ndarray):
        maps = maps.numpy()
    try:
        array = np.asarray(maps, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"maps must be an array (N, H, W) or an Explanation, not {type(maps).__name__}"
        ) from None
    if array.ndim == 2:
        array = array[None]
    elif array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(
            f"maps have shape {array.shape}: pass one map per image, shape (N, H, W) "
            "(sum or average channels first)"
        )
    if n is not None and len(array) != n:
        raise InputError(f"{len(array)} maps given for {n} images: give one map per image")
    if size is not None and tuple(array.shape[1:]) != tuple(size):
        raise InputError(
            f"maps are {array.shape[1]}x{array.shape[2]} but the images are "
            f"{size[0]}x{size[1]}: upsample the maps to the input size first"
        )
    return array


def method_name(maps: Any, default: str | None = None) -> str | None:
    """The attribution method's name, from an Explanation."""
    name = getattr(maps, "method", None) if is_explanation(maps) else None
    return str(name) if name is not None else default


def unpack(inputs: Any, maps: Any, targets: Any) -> tuple[Any, Any, Any]:
    """Let ``metric(model, explanation)`` stand for ``metric(model, x, maps, targets)``."""
    if maps is None and is_explanation(inputs):
        maps, inputs = inputs, getattr(inputs, "inputs", None)
        if inputs is None:
            raise InputError("this Explanation does not carry its inputs: pass inputs and maps")
    if maps is None:
        raise InputError("no maps given: pass maps=(N, H, W) array or an Explanation")
    if targets is None and is_explanation(maps):
        found = getattr(maps, "targets", None)
        targets = None if found is None else np.asarray(found)
    return inputs, maps, targets


def names_of(*sources: Any) -> tuple[str, ...]:
    """Image names from the first source that has them (ImageBatch or Explanation.inputs)."""
    for source in sources:
        for candidate in (source, getattr(source, "inputs", None)):
            names = getattr(candidate, "names", None)
            if names and not callable(names):
                return tuple(str(n) for n in names)
    return ()


def masks_of(*sources: Any) -> np.ndarray | None:
    """Ground-truth masks from the first source that has them (ImageBatch, Explanation)."""
    for source in sources:
        for candidate in (source, getattr(source, "inputs", None)):
            masks = getattr(candidate, "masks", None)
            if masks is not None and not callable(masks):
                return np.asarray(masks)
    return None


# --------------------------------------------------------------------------------------------
# Batched scoring
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Scorer:
    """Compiled ``images -> head outputs`` functions that count their batched calls.

    ``function(images)`` runs the model; ``perturbed(...)`` builds perturbed images inside the
    graph (gather + where, fused with the forward pass) so deletion/insertion never materialize
    every perturbed image in Python. Predicted classes and target scores come from
    :class:`vizkit.scoring.Scoring` (``rule``), the one implementation of the head's rule.
    """

    function: Callable[[Any], Any]
    perturbed_function: Callable[..., Any]
    rule: Any  # vizkit.scoring.Scoring
    batch_size: int
    calls: int = 0
    images: int = 0

    @property
    def head(self) -> Any:
        return self.rule.head

    @property
    def score(self) -> str:
        return self.rule.kind

    def outputs(self, images: np.ndarray) -> np.ndarray:
        """Head outputs ``(N, K)`` (logits, or the model's own outputs), in batches."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            chunk = np.ascontiguousarray(images[start : start + self.batch_size], np.float32)
            chunks.append(np.asarray(self.function(chunk)))
            self.calls += 1
            self.images += len(chunk)
        if not chunks:
            return np.zeros((0, self.head.units), np.float32)
        return np.concatenate(chunks).reshape(len(images), -1)

    def perturbed(
        self,
        images: np.ndarray,
        canvas: np.ndarray,
        ranks: np.ndarray,
        jobs: tuple[np.ndarray, np.ndarray, np.ndarray],
        *,
        insert: bool,
    ) -> np.ndarray:
        """Head outputs for perturbed images, ``(M, K)``, in batches of ``batch_size``.

        Job ``j`` is image ``i = jobs[1][j]`` with the pixels whose rank (in order
        ``jobs[0][j]``) is below ``jobs[2][j]`` taken from ``canvas`` (deletion) or, with
        ``insert``, the pixels of ``images`` placed on ``canvas`` (insertion).
        """
        from vizkit._tf import tf

        x_t = tf.convert_to_tensor(np.asarray(images, np.float32))
        canvas_t = tf.convert_to_tensor(np.asarray(canvas, np.float32))
        ranks_t = tf.convert_to_tensor(np.asarray(ranks, np.int32))
        insert_t = tf.constant(bool(insert))
        order, image, count = (np.asarray(j, np.int32) for j in jobs)
        chunks = []
        for start in range(0, len(image), self.batch_size):
            sl = slice(start, start + self.batch_size)
            out = self.perturbed_function(
                x_t, canvas_t, ranks_t, order[sl], image[sl], count[sl], insert_t
            )
            chunks.append(np.asarray(out))
            self.calls += 1
            self.images += len(image[sl])
        if not chunks:
            return np.zeros((0, self.head.units), np.float32)
        return np.concatenate(chunks).reshape(len(image), -1)

    def predicted(self, outputs: np.ndarray) -> np.ndarray:
        """Predicted class per row of ``(N, K)`` outputs, int64."""
        return np.asarray(self.rule.predicted(outputs), dtype=np.int64)

    def target_scores(self, outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``(M, K)`` outputs and ``(M,)`` targets -> ``(M,)`` scores (logit or probability)."""
        return np.asarray(self.rule.score(outputs, np.asarray(targets, np.int32)), np.float64)


def scorer(
    model: Any, *, score: str = "probability", batch_size: int = 64, output: Any = None
) -> Scorer:
    """A :class:`Scorer` for ``model``, its compiled functions cached per model.

    ``score="probability"`` scores the head's softmax/sigmoid output (a linear multi-unit head
    gets a softmax, a single logit unit a sigmoid); ``"logit"`` the pre-activation.
    """
    from vizkit._tf import tf
    from vizkit.models import model_cache, rebuild, require_image_model
    from vizkit.scoring import KINDS, scoring

    if score not in KINDS:
        raise InputError(f"score={score!r} is not known: choose one of {', '.join(KINDS)}")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InputError(f"batch_size must be a positive integer, not {batch_size!r}")
    shape = require_image_model(model, "this metric")
    rule = scoring(model, output, score)
    key = ("vizkit.metrics.scorer", rule.logits, rule.head.output)
    cache = model_cache(model)
    functions = cache.get(key)
    if functions is None:
        flat = rebuild(model, (), logits=rule.logits, output=output)
        image_spec = tf.TensorSpec((None, *shape[1:]), tf.float32)
        index_spec = tf.TensorSpec((None,), tf.int32)

        def forward(images: Any) -> Any:
            out = flat(images, training=False)
            return rule.flat(out[0] if isinstance(out, (list, tuple)) else out)

        @tf.function(input_signature=[image_spec], reduce_retracing=True)
        def function(images: Any) -> Any:
            return forward(images)

        @tf.function(
            input_signature=[
                image_spec,
                image_spec,
                tf.TensorSpec((None, None, *shape[1:3]), tf.int32),
                index_spec,
                index_spec,
                index_spec,
                tf.TensorSpec((), tf.bool),
            ],
            reduce_retracing=True,
        )
        def perturbed_function(
            images: Any, canvas: Any, ranks: Any, order: Any, image: Any, count: Any, insert: Any
        ) -> Any:
            pixel_ranks = tf.gather_nd(ranks, tf.stack([order, image], axis=1))  # (B, H, W)
            changed = pixel_ranks < count[:, None, None]
            changed = tf.math.logical_xor(changed, insert)[..., None]
            batch = tf.where(changed, tf.gather(canvas, image), tf.gather(images, image))
            return forward(batch)

        functions = cache[key] = (function, perturbed_function)
    return Scorer(
        function=functions[0],
        perturbed_function=functions[1],
        rule=rule,
        batch_size=int(batch_size),
    )


# --------------------------------------------------------------------------------------------
# Similarity of maps
# --------------------------------------------------------------------------------------------
def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each pair of maps, ``(N, H, W)`` x2 -> ``(N,)``.

    Equal to :func:`scipy.stats.spearmanr` per pair (average ranks for ties). Where one map is
    constant the correlation is undefined; it is reported as 0 (no ordering survived) when only
    the second map is constant and NaN when the first (reference) map is.
    """
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    ra = stats.rankdata(a, axis=1)
    rb = stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    na = np.sqrt((ra * ra).sum(axis=1))
    nb = np.sqrt((rb * rb).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / (na * nb)
    rho = np.where(nb == 0, 0.0, rho)
    rho = np.where(na == 0, np.nan, rho)
    return np.clip(rho, -1.0, 1.0)


def unit_scale(maps: np.ndarray) -> np.ndarray:
    """``|map|`` scaled to [0, 1] per map (a constant map becomes all zeros)."""
    maps = np.abs(np.asarray(maps, np.float64))
    flat = maps.reshape(len(maps), -1)
    lo = flat.min(axis=1)[:, None, None]
    hi = flat.max(axis=1)[:, None, None]
    span = hi - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1.0), 0.0)


def ssim(
    a: np.ndarray,
    b: np.ndarray,
    *,
    win_size: int = 7,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Mean structural similarity of two 2-D images (Wang et al., 2004).

    Matches ``skimage.metrics.structural_similarity`` defaults: a ``win_size`` x ``win_size``
    uniform window (shrunk to the largest odd size that fits small images), sample covariances,
    ``K1 = 0.01``, ``K2 = 0.03``, reflected borders, and the mean taken over pixels at least
    ``win_size // 2`` from the border.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise InputError(f"ssim needs two 2-D maps of one shape, got {a.shape} and {b.shape}")
    win = min(int(win_size), *a.shape)
    win = win if win % 2 == 1 else win - 1
    if win < 1:
        raise InputError(f"maps of shape {a.shape} are too small for ssim")
    npts = win * win
    cov_norm = npts / (npts - 1) if npts > 1 else 1.0

    def mean(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=win, mode="reflect")

    ux, uy = mean(a), mean(b)
    vx = cov_norm * (mean(a * a) - ux * ux)
    vy = cov_norm * (mean(b * b) - uy * uy)
    vxy = cov_norm * (mean(a * b) - ux * uy)
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    pad = (win - 1) // 2
    inner = s[pad : s.shape[0] - pad, pad : s.shape[1] - pad] if pad else s
    return float(inner.mean())


def ssim_maps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM of each pair of maps after :func:`unit_scale` (``|map|`` in [0, 1])."""
    ua, ub = unit_scale(a), unit_scale(b)
    return np.array([ssim(x, y, data_range=1.0) for x, y in zip(ua, ub)])
