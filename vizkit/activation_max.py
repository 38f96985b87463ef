"""Activation maximization: synthesize the input that most excites a class, channel or unit.

Starting from faint noise, gradient ascent changes an image until the chosen target (a class
*logit*, the mean or centre neuron of a convolutional channel, or a dense unit) is as large as
possible. Raw gradient ascent gives high-frequency noise that the network responds to but a person
cannot read; the recipe that makes readable images follows Olah et al., "Feature Visualization",
Distill 2017 (https://distill.pub/2017/feature-visualization/) and Mordvintsev et al.,
"Differentiable Image Parameterizations", Distill 2018:

- the image is parameterized in **Fourier space** with a ``1/f**decay_power`` spectrum (low
  frequencies first) and, for RGB, **decorrelated colour**, then squashed into the model's value
  range with a sigmoid (or, with ``parameterization="pixel"``, one sigmoid per pixel);
- every step sees a **randomly jittered, scaled and rotated** copy (transformation robustness);
- optional **total-variation** and **L2** penalties;
- a final **polish** (``Recipe.polish``, the last 10% of the steps): the image as it will be
  shown, without augmentation and with a lighter L2 penalty.

Defaults adapt to the input size (:meth:`Recipe.for_input`): 28x28x1 digits get 1-2 pixel jitter
and no colour decorrelation, 64x64x3 images a few pixels. ImageNet-size RGB inputs get
:meth:`Recipe.for_large_rgb`: each step averages 4 augmented views (random crops of 25-100% of
the side, after MaCo, Fel et al. 2023), the spectrum goes coarse to fine, the contrast is fixed
instead of penalized, and class targets maximize the logit minus the mean logit.

Why vizkit runs its own optimizer instead of tf-keras-vis
--------------------------------------------------------
tf-keras-vis 0.8.7's ``ActivationMaximization`` runs each step eagerly in Python and applies its
rotation and scaling with scipy on host numpy arrays, so a step costs several forward+backward
passes (4 to 6x on the sample models, see ``bench/bench_activation_max.py``); it returns a
``tf.Tensor``, does nothing on ``mixed_float16`` models, optimizes unconstrained pixels (clipping
only the returned copy) and has no Fourier parameterization. Here the *whole* step (parameterization, augmentation, forward, backward,
regularizers, Adam update) runs inside one compiled ``tf.function``, and chunks of steps run in a
``tf.while_loop`` between progress reports, so 200 steps cost about as much as 200 bare
forward+backward passes per view; several targets are optimized together as one batch. The
tf-keras-vis-backed path (``backend="tf-keras-vis"``, in :mod:`vizkit.methods._tfkv`) is kept as a
reference implementation for comparison and benchmarking.

Dead units: when the target layer ends in a plain ReLU, the optimization sees its input ``z`` and
scores ``relu(z)`` with a small gradient also where ``z < 0`` (Lucid's "redirected ReLU"), so a
channel that is zero on the grey start image can still be reached; reported values are exact.

Mixed precision: the optimization always runs in float32. Layers with a ``mixed_float16`` /
``mixed_bfloat16`` policy are replaced by float32 copies (same weights, copied when the graph is
first built and cached per model object: after changing such a model's weights in place, pass a
new model object) in a rebuilt graph; the caller's model is never modified.

Tests and CI cap the number of steps with the environment variable ``VIZKIT_MAX_STEPS``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vizkit._tf import keras, tf
from vizkit.activation_engine import Engine, feature_model, hyper, is_relu
from vizkit.activation_recipe import Recipe
from vizkit.errors import InputError, LayerError
from vizkit.models import (
    get_layer,
    head_info,
    layer_output_shape,
    model_cache,
    require_image_model,
)
from vizkit.progress import Progress
from vizkit.results.inspection import ActivationImages
from vizkit.scoring import Scoring

__all__ = ["maximize_activation", "Recipe", "max_steps", "ENV_MAX_STEPS"]

ENV_MAX_STEPS = "VIZKIT_MAX_STEPS"
OBJECTIVES = ("mean", "center")
MAX_IMAGES_PER_STEP = 32  # targets x views per forward pass; more targets run in groups
BACKENDS = ("vizkit", "tf-keras-vis")
MAX_DEFAULT_UNITS = 16
NOISE_SAMPLES = 64  # uniform-noise images averaged for the noise baseline (shared by targets)
NOISE_SEED = 20170707  # fixed: the noise baseline does not depend on the run's seed

ProgressHook = Callable[[int, int], Any]


def max_steps(steps: int) -> int:
    """``steps`` capped by the environment variable ``VIZKIT_MAX_STEPS`` (for fast tests)."""
    cap = os.environ.get(ENV_MAX_STEPS, "").strip()
    if cap:
        try:
            return max(1, min(int(steps), int(cap)))
        except ValueError:
            raise InputError(
                f"environment variable {ENV_MAX_STEPS}={cap!r} must be a whole number of steps"
            ) from None
    return int(steps)


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Target:
    path: str  # layer path ("" for the head)
    kind: str  # "class", "channel" or "unit"
    output: int  # the model output the head belongs to
    chosen: np.ndarray  # (B,) int64: the classes, channels or units asked for
    units: np.ndarray  # (B,) int32 index into the last axis
    signs: np.ndarray  # (B,) float32: -1 scores the negated logit (class 0 of a single-unit head)
    labels: tuple[str, ...]
    layer_units: int
    class_names: tuple[str, ...] | None


def resolve_units(units: Any, available: int, noun: str) -> np.ndarray:
    if units is None:
        return np.arange(min(available, MAX_DEFAULT_UNITS), dtype=np.int64)
    if isinstance(units, (bool, np.bool_)):
        raise InputError(f"{noun} must be an index, not {units!r}")
    values = np.atleast_1d(np.asarray(units))
    if values.size == 0:
        raise InputError(f"no {noun}s given: pass at least one index")
    if values.dtype.kind not in "iu":
        raise InputError(f"{noun}s must be integer indices, got {values.tolist()!r}")
    values = values.astype(np.int64).reshape(-1)
    bad = values[(values < -available) | (values >= available)]
    if bad.size:
        raise InputError(
            f"{noun} {int(bad[0])} is out of range: the layer has {available} "
            f"{noun}s (0 to {available - 1})"
        )
    return values % available


def _resolve_target(
    model: keras.Model,
    layer: Any,
    units: Any,
    output: int | str | None,
    class_names: Sequence[str] | None,
) -> _Target:
    path = None if layer is None else get_layer(model, layer)[0]
    try:
        head = head_info(model, output)
    except InputError:
        if path is None:
            raise
        head = head_info(model, 0)  # an inner layer of a multi-output model
    if path is None or path == head.path:
        count = head.num_classes
        chosen = resolve_units(units, count, "class")
        indices, signs = (np.asarray(v) for v in Scoring(head, "logit").units(chosen))
        names = tuple(class_names) if class_names is not None else None
        if names is not None and len(names) != count:
            raise InputError(f"{len(names)} class names given for {count} classes")
        labels = tuple(
            f"class {u}" + (f" ({names[u]})" if names is not None else "") for u in chosen
        )
        return _Target(
            path=head.path,
            kind="class",
            output=head.output,
            chosen=chosen,
            units=indices,
            signs=signs,
            labels=labels,
            layer_units=count,
            class_names=names,
        )
    _, lyr = get_layer(model, path)
    if isinstance(lyr, keras.Model):
        raise LayerError(
            f"layer {path!r} is a nested model: pick one of its layers, e.g. {path}/<name>"
        )
    shape = layer_output_shape(lyr)
    if shape[-1] is None:
        raise LayerError(f"layer {path!r} has no fixed number of channels: pick another layer")
    count = int(shape[-1])
    spatial = len(shape) >= 4
    noun = "channel" if spatial else "unit"
    chosen = resolve_units(units, count, noun)
    return _Target(
        path=path,
        kind=noun,
        output=head.output,
        chosen=chosen,
        units=chosen.astype(np.int32),
        signs=np.ones(len(chosen), dtype=np.float32),
        labels=tuple(f"{noun} {u}" for u in chosen),
        layer_units=count,
        class_names=None,
    )


def _engine(
    model: keras.Model,
    target: _Target,
    objective: str,
    recipe: Recipe,
    shape: tuple[int, int, int],
) -> Engine:
    cache = model_cache(model)
    decorrelate = bool(recipe.decorrelate) and shape[2] == 3
    rectify = target.kind != "class" and is_relu(get_layer(model, target.path)[1])
    key = (
        "vizkit.activation_max.engine",
        target.path,
        target.output,
        objective,
        recipe.parameterization,
        decorrelate,
        rectify,
    )
    if key not in cache:
        features = feature_model(model, target.path, pre_relu=rectify, output=target.output)
        rule = Scoring(head_info(model, target.output), "logit") if target.kind == "class" else None
        cache[key] = Engine(
            features, objective, shape, recipe.parameterization, decorrelate, rectify, rule
        )
    return cache[key]


def _hyper(recipe: Recipe, value_range: tuple[float, float], steps: int) -> np.ndarray:
    start = recipe.decay_power if recipe.decay_start is None else recipe.decay_start
    return hyper(
        lr=recipe.learning_rate,
        decay=recipe.decay_power,
        decay_start=start,
        anneal_steps=round(recipe.anneal * steps) if recipe.decay_start is not None else 0,
        jitter=recipe.jitter,
        zoom_lo=recipe.scale[0],
        zoom_hi=recipe.scale[1],
        rotation=math.radians(recipe.rotation),
        tv=recipe.tv_weight,
        l2=recipe.l2_weight,
        lo=value_range[0],
        hi=value_range[1],
        crop_lo=recipe.crop[0],
        crop_hi=recipe.crop[1],
        noise=recipe.noise,
        contrast=recipe.contrast,
        views=int(recipe.views),
        centre=1.0 if recipe.class_objective == "logit_minus_mean" else 0.0,
    )


def noise_images(image_shape: tuple[int, ...], value_range: tuple[float, float]) -> np.ndarray:
    """The ``NOISE_SAMPLES`` uniform-noise images of the noise baseline (fixed seed)."""
    rng = np.random.default_rng(NOISE_SEED)
    low, high = value_range
    return rng.uniform(low, high, (NOISE_SAMPLES, *image_shape)).astype(np.float32)


def target_groups(count: int, views: int) -> list[slice]:
    """Targets optimized together: at most ``MAX_IMAGES_PER_STEP`` views per forward pass (memory
    grows with targets x views; time per target barely depends on the grouping)."""
    groups = max(1, math.ceil(count * int(views) / MAX_IMAGES_PER_STEP))
    size = math.ceil(count / groups)
    return [slice(i, min(i + size, count)) for i in range(0, count, size)]


def _optimize_native(
    engine: Engine,
    target: _Target,
    recipe: Recipe,
    steps: int,
    value_range: tuple[float, float],
    seed: int,
    progress: Progress,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every group of targets (:func:`target_groups`) through the compiled loop, in chunks of
    steps between progress reports; the augmented phase, then the polish."""
    rng = np.random.default_rng(seed)
    start = rng.normal(0.0, recipe.init_std, engine.param_shape(len(target.units)))
    start = start.astype(np.float32)
    augmented = tf.constant(_hyper(recipe, value_range, steps))
    polish = recipe.replace(
        jitter=0,
        rotation=0.0,
        scale=(1.0, 1.0),
        crop=(1.0, 1.0),
        views=1,
        noise=0.0,
        l2_weight=recipe.l2_weight * recipe.polish_l2,
    )
    polished = tf.constant(_hyper(polish, value_range, steps))
    main = steps - round(recipe.polish * steps)
    chunk = max(1, min(50, math.ceil(steps / 20)))
    seed_t = tf.constant(int(seed) % (2**31 - 1), tf.int32)
    images, losses, scores = [], [], []
    for number, group in enumerate(target_groups(len(target.units), recipe.views)):
        axis = 0 if engine.parameterization == "pixel" else 1
        params = tf.constant(start[group] if axis == 0 else start[:, group])
        m = tf.zeros_like(params)
        v = tf.zeros_like(params)
        units = tf.constant(target.units[group], tf.int32)
        signs = tf.constant(target.signs[group], tf.float32)
        done, image = 0, None
        group_losses, group_scores = [], []
        while done < steps:
            # chunks never straddle the switch to the polish phase
            end = main if done < main else steps
            count = min(chunk, end - done)
            params, m, v, loss, score, image = engine.run(
                params,
                m,
                v,
                tf.constant(done, tf.int32),
                tf.constant(count, tf.int32),
                units,
                signs,
                augmented if done < main else polished,
                seed_t,
            )
            group_losses.append(loss.numpy())
            group_scores.append(score.numpy())
            done += count
            progress.update(number * steps + done)
        assert image is not None
        images.append(image.numpy())
        losses.append(np.concatenate(group_losses))
        scores.append(np.concatenate(group_scores))
    return np.concatenate(images), np.concatenate(losses, axis=1), np.concatenate(scores, axis=1)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------
def _score_images(
    engine: Engine,
    target: _Target,
    images: np.ndarray,
    image_shape: tuple[int, ...],
    value_range: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """Exact scores of the final images and of mid-grey, the predicted classes, and the noise
    baseline: the mean (and spread) over NOISE_SAMPLES uniform-noise images (one noise image is
    a poor baseline, its logits vary a lot), the same images for every target and every run."""
    low, high = value_range
    batch = len(target.units)
    units = tf.constant(target.units, tf.int32)
    signs = tf.constant(target.signs, tf.float32)
    grey = np.full((batch, *image_shape), (low + high) / 2.0, dtype=np.float32)
    values, classes = engine.evaluate(
        tf.constant(np.concatenate([images.astype(np.float32), grey])),
        tf.concat([units, units], axis=0),
        tf.concat([signs, signs], axis=0),
    )
    achieved, mean_activation = values.numpy().reshape(2, batch)
    predicted = classes.numpy()[:batch].astype(np.int64) if target.kind == "class" else None
    noise = noise_images(image_shape, (low, high))
    on_noise = engine.evaluate_all(tf.constant(noise), units, signs).numpy()
    noise_activation, noise_spread = on_noise.mean(axis=0), on_noise.std(axis=0)
    return achieved, mean_activation, predicted, noise_activation, noise_spread


def maximize_activation(
    model: keras.Model,
    layer: str | int | None = None,
    units: int | Sequence[int] | None = None,
    *,
    objective: str = "mean",
    steps: int | None = None,
    recipe: Recipe | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    progress: bool | ProgressHook | None = None,
    output: int | str | None = None,
    class_names: Sequence[str] | None = None,
    backend: str = "vizkit",
    **params: Any,
) -> ActivationImages:
    """Synthesize, for each target, the input that maximizes it.

    Parameters
    ----------
    model : keras.Model
        An image model (Sequential or Functional, nested models allowed). Never modified;
        mixed-precision models are optimized in float32.
    layer : str or int, optional
        The layer whose units to maximize (path such as ``"base/conv2"``, or index). None means
        the output classes, scored on the **logit** (a softmax/sigmoid head is bypassed).
    units : int or sequence of int, optional
        Classes, channels or units to maximize, all in one batched optimization. None means the
        first 16 (all classes of a small classifier).
    objective : {"mean", "center"}
        For a channel of a convolutional layer: maximize its spatial mean, or the single neuron
        at the centre of the feature map. Ignored for classes and dense units.
    steps : int, optional
        Gradient-ascent steps (default from the recipe); capped by ``VIZKIT_MAX_STEPS``.
    recipe : Recipe, optional
        The full recipe; default :meth:`Recipe.for_input` for the model's input size.
    value_range : (float, float)
        The model's input scale (what black and white map to); images are produced in it.
    seed : int
        Seeds the starting noise and the random augmentation: equal seeds give equal images.
    progress : None, bool or callable
        None shows a tqdm bar in notebooks, True everywhere (stderr), False never; a callable
        is called as ``progress(done_steps, total_steps)`` after each chunk of steps (the
        dashboard's bar). See :mod:`vizkit.progress`.
    output : int or str, optional
        Which output of a multi-output model holds the classes.
    class_names : sequence of str, optional
        Names of the classes, for titles.
    backend : {"vizkit", "tf-keras-vis"}
        ``"vizkit"``: the compiled optimizer described in the module docstring.
        ``"tf-keras-vis"``: tf-keras-vis' ``ActivationMaximization`` on the same float32 logit
        graph, with vizkit's recipe translated to its regularizers and input modifiers (pixel
        parameterization only; slower; for comparison).
    **params
        Overrides of single :class:`Recipe` fields (``jitter=1``, ``tv_weight=0.1``,
        ``parameterization="pixel"``, ...).

    Returns
    -------
    ActivationImages
        Images ``(B, H, W, C)`` in ``value_range`` (``display`` gives them in [0, 1]), the
        achieved activation per target, its value on random noise and on a mid-grey input, and
        the loss and objective history ``(steps, B)``.

    References
    ----------
    Erhan et al., "Visualizing Higher-Layer Features of a Deep Network", 2009; Simonyan et al.,
    "Deep Inside Convolutional Networks", 2014; Olah et al., "Feature Visualization", Distill
    2017; Mordvintsev et al., "Differentiable Image Parameterizations", Distill 2018.
    """
    shape = require_image_model(model, "activation maximization")
    image_shape = tuple(int(d) if d is not None else -1 for d in shape[1:])
    if -1 in image_shape:
        raise InputError(
            f"activation maximization needs a fixed input size; model {model.name!r} accepts "
            f"{tuple(shape[1:])}: wrap it in a model with a fixed Input shape"
        )
    if objective not in OBJECTIVES:
        raise InputError(f"objective {objective!r} is not one of {', '.join(OBJECTIVES)}")
    if backend not in BACKENDS:
        raise InputError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise InputError(f"value_range {value_range} must be (low, high) with high > low")
    base = recipe if recipe is not None else Recipe.for_input(image_shape)
    if steps is not None:
        params["steps"] = int(steps)
    recipe = base.replace(**params)
    total = max_steps(recipe.steps)
    target = _resolve_target(model, layer, units, output, class_names)

    groups = len(target_groups(len(target.units), recipe.views)) if backend == "vizkit" else 1
    progress_bar = Progress(progress, total * groups, desc="activation maximization", unit="step")
    try:
        if backend == "vizkit":
            engine = _engine(model, target, objective, recipe, image_shape)
            images, losses, scores = _optimize_native(
                engine, target, recipe, total, (low, high), seed, progress_bar
            )
        else:
            from vizkit.methods._tfkv.activation_max import run_activation_maximization

            engine = _engine(model, target, objective, recipe, image_shape)
            images, losses, scores = run_activation_maximization(
                engine.features,
                units=target.units,
                signs=target.signs,
                objective=objective,
                recipe=recipe,
                steps=total,
                value_range=(low, high),
                seed=seed,
                progress=progress_bar.update,
                rectify=engine.rectify,
            )
    finally:
        progress_bar.close()

    achieved, mean_activation, predicted, noise_activation, noise_spread = _score_images(
        engine, target, images, image_shape, (low, high)
    )
    return ActivationImages(
        images=images.astype(np.float32),
        units=target.chosen,
        labels=target.labels,
        layer=target.path,
        kind=target.kind,
        objective=objective if target.kind == "channel" else "value",
        activation=achieved.astype(np.float32),
        noise_activation=noise_activation.astype(np.float32),
        mean_activation=mean_activation.astype(np.float32),
        loss_history=losses.astype(np.float32),
        score_history=scores.astype(np.float32),
        value_range=(low, high),
        predicted=predicted,
        class_names=target.class_names,
        steps=total,
        params=recipe.as_dict(),
        backend=backend,
        model_name=model.name,
        noise_spread=noise_spread.astype(np.float32),
    )
