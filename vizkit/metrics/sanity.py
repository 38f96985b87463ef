"""Sanity checks for saliency maps (Adebayo et al., 2018, NeurIPS).

A map that explains the *model* must change when the model's learned weights are destroyed.

- **Cascading model-parameter randomization**: re-initialize the weights layer by layer from the
  top (the head) down, cumulatively, and compare each step's maps with the original ones.
- **Data (label) randomization**: retrain the architecture on labels shuffled at random and compare
  its maps with the trained model's.

Similarity is the Spearman rank correlation (signed and on absolute values) and SSIM of ``|map|``
scaled to [0, 1] with a 7x7 uniform window (``skimage``'s defaults, implemented with scipy).
A method is flagged when, with the top half of the weighted layers randomized, its maps still
rank-correlate with the original ones at or above ``threshold`` in absolute value (see
:attr:`~vizkit.results.metrics.RandomizationResult.flagged`).

The caller's model is never changed: the checks work on a clone (``keras.models.clone_model``
plus the weights), built once per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vizkit.errors import InputError
from vizkit.inputs import as_batch, resolve_targets
from vizkit.metrics._common import as_maps, names_of, spearman, ssim_maps
from vizkit.results.metrics import RandomizationResult

MapFunction = Callable[[Any, np.ndarray, np.ndarray], Any]


# --------------------------------------------------------------------------------------------
# Explaining with a method name or a function
# --------------------------------------------------------------------------------------------
def map_function(method: str | MapFunction, params: dict[str, Any]) -> tuple[str, MapFunction]:
    """``(name, fn)`` where ``fn(model, x, targets)`` returns maps ``(N, H, W)``.

    ``method`` is a registered method name (run through :func:`vizkit.explain` with ``params``)
    or a function ``fn(model, x, targets) -> maps or Explanation``.
    """
    if callable(method):
        name = getattr(method, "__name__", "custom")

        def run_custom(model: Any, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
            return as_maps(method(model, x, targets), n=len(x))

        return name, run_custom
    if not isinstance(method, str):
        raise InputError(f"method must be a method name or a function, not {type(method).__name__}")

    def run(model: Any, x: np.ndarray, targets: np.ndarray) -> np.ndarray:
        from vizkit.checks import quiet
        from vizkit.methods import explain

        with quiet():  # randomized models are expected to look broken
            result = explain(model, x, method=method, targets=targets, **params)
        return as_maps(result, n=len(x))

    return method, run


def predicted_targets(model: Any, x: np.ndarray, targets: Any = None) -> np.ndarray:
    """``targets`` resolved to one class per image; None becomes the model's prediction."""
    from vizkit.models import head_info

    num_classes = head_info(model).num_classes
    if targets is not None:
        return resolve_targets(targets, len(x), num_classes)
    from vizkit.checks import quiet
    from vizkit.scoring import predict

    with quiet():  # the caller reports on its own inputs
        top = predict(model, x, k=1).top
    return resolve_targets(None, len(x), num_classes, top)


def _compare(
    original: np.ndarray, randomized: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        spearman(original, randomized),
        spearman(np.abs(original), np.abs(randomized)),
        ssim_maps(original, randomized),
    )


# --------------------------------------------------------------------------------------------
# Cloning and re-initializing without touching the caller's model
# --------------------------------------------------------------------------------------------
def _seed_initializers(config: Any, rng: np.random.Generator) -> Any:
    """Give every initializer in a layer config its own seed (so re-initialization is seeded)."""
    if isinstance(config, dict):
        inner = config.get("config")
        if "class_name" in config and isinstance(inner, dict) and "seed" in inner:
            inner["seed"] = int(rng.integers(0, 2**31 - 1))
        for value in config.values():
            _seed_initializers(value, rng)
    elif isinstance(config, list):
        for value in config:
            _seed_initializers(value, rng)
    return config


def _seeded_clone_function(rng: np.random.Generator) -> Callable[[Any], Any]:
    def clone_layer(layer: Any) -> Any:
        config = _seed_initializers(layer.get_config(), rng)
        return layer.__class__.from_config(config)

    return clone_layer


def clone_model(model: Any, *, weights: bool = True, seed: int = 0) -> Any:
    """A structurally identical model with its own variables (the caller's stays untouched).

    ``weights=True`` copies the trained weights; ``False`` keeps a fresh, seeded initialization.
    """
    from vizkit._tf import keras

    rng = np.random.default_rng(seed)
    try:
        clone = keras.models.clone_model(
            model, clone_function=_seeded_clone_function(rng), recursive=True
        )
    except Exception as err:  # subclassed models, custom layers without get_config, ...
        raise InputError(
            f"cannot clone model {model.name!r} for the sanity check ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}): it needs a Sequential or "
            "Functional model whose layers have get_config"
        ) from None
    if weights:
        clone.set_weights(model.get_weights())
    originals = {id(v) for v in model.weights}
    if any(id(v) in originals for v in clone.weights):
        raise InputError(f"the clone of model {model.name!r} shares variables with it")
    return clone


def fresh_weights(layer: Any, rng: np.random.Generator) -> list[np.ndarray]:
    """New weights for ``layer`` from its own initializers (seeded); shapes unchanged.

    Layers that cannot be rebuilt from their config get their weights randomly permuted instead
    (same distribution, structure destroyed).
    """
    from vizkit.models import layer_input_shape

    current = layer.get_weights()
    try:
        config = _seed_initializers(layer.get_config(), rng)
        fresh = layer.__class__.from_config(config)
        fresh.build(layer_input_shape(layer))
        new = fresh.get_weights()
        if [w.shape for w in new] == [w.shape for w in current]:
            return new
    except Exception:  # noqa: BLE001 - any failure falls back to permutation
        pass
    return [rng.permutation(w.reshape(-1)).reshape(w.shape) for w in current]


def _is_normalization(layer: Any) -> bool:
    return "Normalization" in type(layer).__name__


def weighted_layers(
    model: Any, layers: Sequence[Any] | None = None
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The cascade's steps, top (output side) first: ``[(label, [(path, layer), ...]), ...]``.

    By default every layer with weights takes part, and a normalization layer (batch norm, ...)
    is randomized together with the layer that feeds it, as Adebayo et al. randomize a
    convolution's block of variables at once; a step is labelled by its main layer. ``layers``
    names the layers to randomize instead, one step each (kept in top-down order).
    """
    from vizkit._tf import keras
    from vizkit.models import get_layer, iter_layers

    pairs = [
        (path, layer)
        for path, layer in iter_layers(model)
        if not isinstance(layer, keras.Model) and layer.weights
    ]
    if layers is not None:
        chosen = {get_layer(model, name)[0] for name in layers}
        unweighted = sorted(chosen - {path for path, _ in pairs})
        if unweighted:
            raise InputError(f"layers {', '.join(unweighted)} have no weights to randomize")
        return [(p, [(p, lyr)]) for p, lyr in pairs[::-1] if p in chosen]
    if not pairs:
        raise InputError("the model has no layers with weights to randomize")
    steps: list[tuple[str, list[tuple[str, Any]]]] = []
    pending: list[tuple[str, Any]] = []
    for path, layer in pairs[::-1]:
        if _is_normalization(layer):
            pending.append((path, layer))
            continue
        steps.append((path, [*pending, (path, layer)]))
        pending = []
    if pending:  # normalization layers below every other weighted layer
        steps.append((pending[-1][0], pending))
    return steps


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------
def cascading_randomization(
    model: Any,
    inputs: Any,
    method: str | MapFunction = "gradcam",
    targets: Any = None,
    *,
    layers: Sequence[Any] | None = None,
    threshold: float = 0.5,
    seed: int = 0,
    **params: Any,
) -> RandomizationResult:
    """Cascading model-parameter randomization (Adebayo et al., 2018).

    Re-initializes the weights of a *clone* of ``model`` layer by layer from the top down
    (cumulatively: step ``k`` has the top ``k`` weighted layers randomized) and explains the
    same images for the same targets at every step.

    Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps",
    NeurIPS.

    Parameters
    ----------
    model : keras.Model
        Sequential or Functional; never modified.
    inputs : ImageBatch or ndarray (N, H, W, C)
    method : str or callable
        A registered method name, run through :func:`vizkit.explain` with ``**params`` (for
        example ``layer=``), or ``fn(model, x, targets) -> maps``.
    targets : int, sequence of int, or None
        None explains each image's class predicted by the original model.
    layers : sequence of str, optional
        Randomize only these layers, one step each (still top-down, cumulatively). Default:
        every layer with weights, a batch normalization layer together with the layer feeding
        it (see :func:`weighted_layers`).
    threshold : float
        Flag the method when, with the top half of the weighted layers randomized, the mean
        Spearman correlation with the original maps is still at or above this in absolute
        value.
    seed : int
        Seeds the re-initialization.

    Returns
    -------
    RandomizationResult
        ``.to_frame()`` per step, ``.plot()`` the cascade, ``.flagged`` and ``.warning``.

    Cost: one explanation of ``inputs`` per randomized layer, plus one for the original model.
    """
    from vizkit.models import model_cache

    name, explain_fn = map_function(method, params)
    x = as_batch(inputs, model)
    resolved = predicted_targets(model, x, targets)
    original = explain_fn(model, x, resolved)
    clone = clone_model(model, weights=True, seed=seed)
    rng = np.random.default_rng(seed)
    steps, maps = [], []
    for label, group in weighted_layers(clone, layers):
        for _, layer in group:
            layer.set_weights(fresh_weights(layer, rng))
        model_cache(clone).clear()  # cached graphs may hold copies of the old head weights
        steps.append(label)
        maps.append(explain_fn(clone, x, resolved))
    randomized = np.stack(maps)
    sims = [_compare(original, m) for m in randomized]
    return RandomizationResult(
        kind="cascading",
        steps=tuple(steps),
        spearman=np.stack([s[0] for s in sims]),
        spearman_abs=np.stack([s[1] for s in sims]),
        ssim=np.stack([s[2] for s in sims]),
        original_maps=original.astype(np.float32),
        randomized_maps=randomized.astype(np.float32),
        targets=resolved,
        method=name,
        threshold=float(threshold),
        names=names_of(inputs),
    )


#: Alias: the model-parameter randomization test of Adebayo et al.
randomization_sanity = cascading_randomization


def _labels(y: Any, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    y = y.reshape(-1)
    if len(y) != n:
        raise InputError(f"train has {n} images but {len(y)} labels")
    if y.dtype.kind not in "iub":
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise InputError("train labels must be class indices or one-hot rows")
    return y.astype(np.int64)


def _loss(head: Any) -> Any:
    from vizkit._tf import keras

    if head.binary:
        return keras.losses.BinaryCrossentropy(from_logits=head.activation != "sigmoid")
    return keras.losses.SparseCategoricalCrossentropy(from_logits=head.activation != "softmax")


def _accuracy(head: Any) -> Any:
    """Training accuracy metric named ``"accuracy"``: a binary unit is right when its
    probability is above 0.5 (a logit unit: its logit above 0)."""
    from vizkit._tf import keras

    if head.binary:
        threshold = 0.5 if head.activation == "sigmoid" else 0.0
        return keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold)
    return keras.metrics.SparseCategoricalAccuracy(name="accuracy")


def data_randomization(
    model: Any,
    inputs: Any,
    method: str | MapFunction = "gradcam",
    targets: Any = None,
    *,
    train: tuple[Any, Any],
    epochs: int = 5,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    threshold: float = 0.5,
    seed: int = 0,
    **params: Any,
) -> RandomizationResult:
    """Data randomization test (Adebayo et al., 2018): retrain on shuffled labels and compare.

    A fresh copy of the architecture (seeded initialization) is trained with Adam on
    ``train=(x, y)`` whose labels are randomly permuted; maps from it are compared with maps
    from ``model`` for the same images and targets. Cost: ``epochs`` passes of training over
    ``x`` (a few seconds for a few hundred small images on a CPU); the original model is never
    modified. Training is seeded, up to TensorFlow's nondeterminism (dropout, threads).

    Parameters
    ----------
    train : (ndarray (M, H, W, C), ndarray (M,) or (M, K))
        Training images and labels (class indices or one-hot rows).
    epochs, batch_size, learning_rate
        Training of the random-label model (``train_accuracy`` on the result tells how well it
        memorized the shuffled labels; Adebayo et al. train to near 100%).
    Other parameters as :func:`cascading_randomization`.
    """
    from vizkit._tf import keras
    from vizkit.models import head_info

    if not isinstance(train, (tuple, list)) or len(train) != 2:
        raise InputError("train must be a pair (images, labels)")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise InputError(f"epochs must be a positive integer, not {epochs!r}")
    if len(model.outputs) != 1:
        raise InputError("the data randomization test retrains single-output models only")
    name, explain_fn = map_function(method, params)
    x = as_batch(inputs, model)
    resolved = predicted_targets(model, x, targets)
    original = explain_fn(model, x, resolved)

    x_train = as_batch(train[0], model)
    y_train = _labels(train[1], len(x_train))
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(y_train)
    head = head_info(model)
    clone = clone_model(model, weights=False, seed=seed)
    clone.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
        loss=_loss(head),
        metrics=[_accuracy(head)],
    )
    target = shuffled.astype(np.float32)[:, None] if head.binary else shuffled
    history = clone.fit(
        x_train, target, epochs=int(epochs), batch_size=int(batch_size), shuffle=False, verbose=0
    )
    accuracy = float(history.history.get("accuracy", [float("nan")])[-1])
    randomized = explain_fn(clone, x, resolved)
    s, s_abs, ssim_values = _compare(original, randomized)
    return RandomizationResult(
        kind="data",
        steps=("random labels",),
        spearman=s[None],
        spearman_abs=s_abs[None],
        ssim=ssim_values[None],
        original_maps=original.astype(np.float32),
        randomized_maps=randomized[None].astype(np.float32),
        targets=resolved,
        method=name,
        threshold=float(threshold),
        train_accuracy=accuracy,
        names=names_of(inputs),
    )
