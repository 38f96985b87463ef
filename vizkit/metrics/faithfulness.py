"""Faithfulness: deletion and insertion curves (Petsiuk et al., 2018, RISE).

Deletion removes pixels in decreasing order of attribution and tracks the target's probability: a
faithful map makes it fall fast (small area under the curve). Insertion starts from a blank
canvas and adds pixels back in the same order: a faithful map makes it rise fast (large area).
Both are compared with the same procedure along a random pixel order.

Cost: every image needs ``steps + 1`` perturbed copies; all of them, for all images, stream
through one compiled forward function in batches of ``batch_size`` (by default N, between 16 and
128), so 20 steps on N images cost about 21 forward passes of the N-image batch, not 21 * N
calls; the random-order baseline adds 19 more (the endpoints are shared).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from vizkit.errors import InputError
from vizkit.inputs import as_batch, resolve_targets
from vizkit.metrics._common import as_maps, method_name, names_of, scorer, unpack
from vizkit.results.metrics import PerturbationCurve

FILLS = ("zero", "blur", "mean")
MIN_BATCH, MAX_BATCH = 16, 128  # default batch: the number of images, within these bounds
KINDS = ("deletion", "insertion")


def fill_images(
    images: np.ndarray, fill: Any = "zero", *, blur_sigma: float | None = None
) -> tuple[np.ndarray, str]:
    """What removed pixels become: ``(N, H, W, C)`` and a short name of the fill.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, C)
    fill : {"zero", "blur", "mean"}, float, or array broadcastable to ``images``
        ``"zero"``: 0 on the model's scale; ``"blur"``: a Gaussian blur of the image (sigma
        ``blur_sigma``, default a tenth of the larger side); ``"mean"``: each image's per-channel
        mean; a number: that constant; an array: given values.
    """
    images = np.asarray(images, np.float32)
    if isinstance(fill, str):
        if fill == "zero":
            return np.zeros_like(images), "zero"
        if fill == "mean":
            means = images.mean(axis=(1, 2), keepdims=True)
            return np.broadcast_to(means, images.shape).astype(np.float32), "mean"
        if fill == "blur":
            sigma = 0.1 * max(images.shape[1:3]) if blur_sigma is None else float(blur_sigma)
            if sigma < 0:
                raise InputError(f"blur_sigma must be >= 0, not {blur_sigma}")
            blurred = ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest")
            return blurred.astype(np.float32), "blur"
        raise InputError(
            f"fill={fill!r} is not known: choose {', '.join(FILLS)}, a number or array"
        )
    if isinstance(fill, (int, float, np.number)) and not isinstance(fill, bool):
        return np.full_like(images, float(fill)), "value"
    try:
        array = np.broadcast_to(np.asarray(fill, np.float32), images.shape)
    except ValueError:
        raise InputError(
            f"fill array of shape {np.shape(fill)} does not broadcast to the images' shape "
            f"{images.shape}"
        ) from None
    return np.array(array), "array"


def pixel_ranks(maps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rank of each pixel in decreasing order of attribution, ``(N, H, W)`` int64.

    Rank 0 is the most attributed pixel. Ties are broken at random (seeded), NaN ranks last.
    """
    n = len(maps)
    flat = np.asarray(maps, np.float64).reshape(n, -1)
    flat = np.where(np.isnan(flat), -np.inf, flat)
    order = np.lexsort((rng.random(flat.shape), -flat), axis=-1)
    ranks = np.empty(flat.shape, np.int64)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(n, 0), axis=-1)
    return ranks.reshape(maps.shape)


def random_ranks(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A random pixel order per image (the baseline), ``(N, H, W)`` int64."""
    n, pixels = shape[0], int(np.prod(shape[1:]))
    ranks = np.stack([rng.permutation(pixels) for _ in range(n)])
    return ranks.reshape(shape)


def step_counts(pixels: int, steps: int) -> np.ndarray:
    """Pixels changed after each of ``steps + 1`` steps: ``round(k * pixels / steps)``."""
    return np.round(np.arange(steps + 1) * pixels / steps).astype(np.int64)


def perturbation_curve(
    model: Any,
    inputs: Any,
    maps: Any = None,
    targets: Any = None,
    *,
    kind: str = "deletion",
    steps: int = 20,
    fill: Any = None,
    baseline: bool = True,
    score: str = "probability",
    batch_size: int | None = None,
    seed: int = 0,
    blur_sigma: float | None = None,
    output: int | str | None = None,
) -> PerturbationCurve:
    """Deletion or insertion curve; see :func:`deletion` and :func:`insertion`."""
    if kind not in KINDS:
        raise InputError(f"kind={kind!r} is not known: choose deletion or insertion")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps must be a positive integer, not {steps!r}")
    inputs, maps, targets = unpack(inputs, maps, targets)
    x = as_batch(inputs, model)
    n, height, width = x.shape[:3]
    saliency = as_maps(maps, n=n, size=(height, width))
    fill = ("mean" if kind == "deletion" else "blur") if fill is None else fill
    canvas, fill_name = fill_images(x, fill, blur_sigma=blur_sigma)
    rng = np.random.default_rng(seed)
    orders = [pixel_ranks(saliency, rng)]
    if baseline:
        orders.append(random_ranks(saliency.shape, rng))
    ranks = np.stack(orders)  # (O, N, H, W)
    counts = step_counts(height * width, int(steps))

    # Every (order, image, step) to evaluate; both endpoints are shared by all orders.
    o_idx, i_idx, k_idx = np.meshgrid(
        np.arange(len(orders)), np.arange(n), np.arange(1, steps), indexing="ij"
    )
    jobs_o = np.concatenate([np.zeros(2 * n, np.int64), o_idx.ravel()])
    jobs_i = np.concatenate([np.arange(n), np.arange(n), i_idx.ravel()])
    jobs_k = np.concatenate([np.zeros(n, np.int64), np.full(n, steps), k_idx.ravel()])

    if batch_size is None:  # as many images per call as the caller's batch (within limits)
        batch_size = int(np.clip(n, MIN_BATCH, MAX_BATCH))
    run = scorer(model, score=score, batch_size=batch_size, output=output)
    outputs = run.perturbed(
        x, canvas, ranks, (jobs_o, jobs_i, counts[jobs_k]), insert=kind == "insertion"
    )

    clean = outputs[:n] if kind == "deletion" else outputs[n : 2 * n]
    predicted = run.predicted(clean) if targets is None else None
    resolved = resolve_targets(targets, n, run.head.num_classes, predicted)
    values = run.target_scores(outputs, resolved[jobs_i])

    curves = np.empty((len(orders), n, steps + 1), np.float64)
    for o in range(len(orders)):
        curves[o, :, 0] = values[:n]
        curves[o, :, steps] = values[n : 2 * n]
    curves[jobs_o[2 * n :], jobs_i[2 * n :], jobs_k[2 * n :]] = values[2 * n :]
    return PerturbationCurve(
        kind=kind,
        fractions=counts / float(height * width),
        scores=curves[0],
        baseline=curves[1] if baseline else None,
        targets=resolved,
        method=method_name(maps),
        fill=fill_name,
        score=score,
        names=names_of(inputs, maps),
        forward_passes=run.calls,
        images_evaluated=run.images,
    )


def deletion(
    model: Any,
    inputs: Any,
    maps: Any = None,
    targets: Any = None,
    *,
    steps: int = 20,
    fill: Any = "mean",
    baseline: bool = True,
    score: str = "probability",
    batch_size: int | None = None,
    seed: int = 0,
    blur_sigma: float | None = None,
    output: int | str | None = None,
) -> PerturbationCurve:
    """Deletion curve: remove the most-attributed pixels first; lower area is better.

    Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation of Black-box
    Models", BMVC.

    Parameters
    ----------
    model : keras.Model
        An image classifier; never modified.
    inputs : ImageBatch, ndarray (N, H, W, C), or an Explanation
        ``deletion(model, explanation)`` takes the images, maps and targets from it.
    maps : ndarray (N, H, W) or Explanation
        Signed attributions at input resolution; pixels are removed in decreasing order of value
        (most positive first). Pass ``abs(maps)`` to order by magnitude.
    targets : int, sequence of int, or None
        Class whose score is tracked; None takes the Explanation's targets, else the prediction.
    steps : int
        Curve points after the start; step ``k`` removes ``round(k * H * W / steps)`` pixels.
    fill : {"mean", "zero", "blur"}, float or array
        What removed pixels become (all channels of a pixel together). The default, each
        image's per-channel mean, is RISE's zero in mean-subtracted input space and stays
        neutral whatever the model's value scale; ``"zero"`` is black on a [0, 1] scale.
    baseline : bool
        Also compute the curve along a random pixel order.
    score : {"probability", "logit"}
    batch_size : int, optional
        Perturbed images per model call. Default: the number of images, between 16 and 128,
        so the cost is about ``steps + 1`` forward passes of the caller's batch.
    seed : int
        Seeds tie-breaking and the random order.

    Returns
    -------
    PerturbationCurve
        ``.auc`` per image, ``.baseline_auc``, ``.plot()``, ``.to_frame()``.
    """
    return perturbation_curve(
        model,
        inputs,
        maps,
        targets,
        kind="deletion",
        steps=steps,
        fill=fill,
        baseline=baseline,
        score=score,
        batch_size=batch_size,
        seed=seed,
        blur_sigma=blur_sigma,
        output=output,
    )


def insertion(
    model: Any,
    inputs: Any,
    maps: Any = None,
    targets: Any = None,
    *,
    steps: int = 20,
    fill: Any = "blur",
    baseline: bool = True,
    score: str = "probability",
    batch_size: int | None = None,
    seed: int = 0,
    blur_sigma: float | None = None,
    output: int | str | None = None,
) -> PerturbationCurve:
    """Insertion curve: add the most-attributed pixels first to a blurred canvas; higher is better.

    Petsiuk, Das & Saenko (2018), "RISE", BMVC. Parameters as :func:`deletion`; ``fill`` is the
    starting canvas (a blur of the image by default, as in the paper).
    """
    return perturbation_curve(
        model,
        inputs,
        maps,
        targets,
        kind="insertion",
        steps=steps,
        fill=fill,
        baseline=baseline,
        score=score,
        batch_size=batch_size,
        seed=seed,
        blur_sigma=blur_sigma,
        output=output,
    )
