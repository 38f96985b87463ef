"""Result objects built from numpy alone (no model, no TensorFlow), for figure tests.

Names are long on purpose (nested layer paths, the longest method label), since those are
what used to run off the figure or into a neighbour.
"""

from __future__ import annotations

import numpy as np

from vizkit.results.explanation import Comparison, Explanation, Predictions
from vizkit.results.inspection import (
    ActivationImages,
    FeatureMaps,
    FeatureMapSet,
    FilterBank,
    UnitExamples,
)
from vizkit.results.metrics import (
    EvaluationResult,
    HealthReport,
    HealthResult,
    PerturbationCurve,
    PointingGameResult,
    RandomizationResult,
    RelevanceMassResult,
)
from vizkit.results.summary import LayerInfo, ModelSummary, ReceptiveField

CLASSES = ("circle", "square", "triangle")
LONG_LAYER = "feature_extractor_backbone/block5_conv3_with_a_long_name"


def smooth(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth non-negative maps (like an upsampled CAM)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, 4, 4))
    return np.kron(coarse, np.ones((size // 4, size // 4))).astype(np.float32)


def explanation(
    method: str = "saliency",
    label: str = "Saliency (vanilla gradient)",
    *,
    n: int = 3,
    size: int = 16,
    signed: bool = True,
    fine: bool = True,
    scale: float = 1.0,
    targets: int | list[int] = 1,
    layer: str | None = None,
    seed: int = 0,
) -> Explanation:
    """Top-3 predictions are always (triangle 70%, square 20%, circle 10%)."""
    rng = np.random.default_rng(seed)
    if fine:
        maps = rng.normal(size=(n, size, size))
    else:
        maps = smooth(n, size, seed) - (0.3 if signed else 0.0)
    if not signed:
        maps = np.abs(maps)
    inputs = np.random.default_rng(99).random((n, size, size, 3), dtype=np.float32)
    return Explanation(
        method=method,
        maps=(maps * scale).astype(np.float32),
        inputs=inputs,
        targets=np.broadcast_to(np.asarray(targets), (n,)).astype(np.int64),
        scores=np.zeros(n, np.float32),
        predictions=Predictions(
            classes=np.tile([[2, 1, 0]], (n, 1)),
            probabilities=np.tile([[0.7, 0.2, 0.1]], (n, 1)).astype(np.float32),
        ),
        layer=layer,
        label=label,
        class_names=CLASSES,
        value_range=(0.0, 1.0),
        image_names=tuple(f"test {i} (circle)" for i in range(n)),
    )


def comparison(n: int = 3) -> Comparison:
    """A gradient map, a CAM on a nested layer 1000x smaller, occlusion, and DeconvNet."""
    return Comparison(
        (
            explanation(n=n),
            explanation(
                "gradcam", "Grad-CAM", n=n, signed=False, fine=False, scale=1e-3, layer=LONG_LAYER
            ),
            explanation("occlusion", "Occlusion", n=n, fine=False, scale=0.5, seed=2),
            explanation("rectified_backprop", "Rectified backpropagation (DeconvNet)", n=n),
        )
    )


def filter_bank() -> FilterBank:
    rng = np.random.default_rng(1)
    return FilterBank(
        kernels=rng.normal(size=(12, 3, 3, 4)).astype(np.float32),
        indices=np.arange(12),
        layer=LONG_LAYER,
        layer_type="Conv2D",
        total_filters=64,
    )


def feature_maps(layer: str = LONG_LAYER, channels: int = 10, size: int = 8) -> FeatureMaps:
    rng = np.random.default_rng(2)
    return FeatureMaps(
        activations=np.maximum(rng.normal(size=(2, size, size, channels)), 0).astype(np.float32),
        layer=layer,
        images=rng.random((2, 16, 16, 3), dtype=np.float32),
        names=("a photograph with a long file name.jpg", "b.png"),
        origin=(0.5, 0.5),
        stride=(16 / size, 16 / size),
    )


def feature_map_set() -> FeatureMapSet:
    dense = FeatureMaps(
        activations=np.random.default_rng(3).random((2, 20), dtype=np.float32),
        layer="fc",
        names=("a", "b"),
    )
    return FeatureMapSet((feature_maps("conv1", 6, 8), feature_maps(LONG_LAYER, 12, 4), dense))


def activation_images(count: int = 10, negative_noise: bool = False) -> ActivationImages:
    rng = np.random.default_rng(4)
    noise = rng.normal(-3.0 if negative_noise else 1.0, 0.1, count).astype(np.float32)
    return ActivationImages(
        images=rng.random((count, 12, 12, 1), dtype=np.float32),
        units=np.arange(count),
        labels=tuple(f"class {i}" for i in range(count)),
        layer="predictions",
        kind="class",
        objective="value",
        activation=np.linspace(5, 20, count).astype(np.float32),
        noise_activation=noise,
        mean_activation=np.zeros(count, np.float32),
        loss_history=rng.random((8, count), dtype=np.float32),
        score_history=rng.random((8, count), dtype=np.float32),
        predicted=np.arange(count),
        class_names=tuple(f"digit {i}" for i in range(count)),
        steps=8,
        noise_spread=np.full(count, 0.5, np.float32),
    )


def unit_examples(padded: bool = False) -> UnitExamples:
    """Two channels, three examples each; with ``padded`` the second example of channel 0 has
    a receptive field that is mostly outside its 16x16 image."""
    rng = np.random.default_rng(5)
    boxes = np.tile(np.array([2.0, 2.0, 11.0, 11.0]), (2, 3, 1))  # 10x10 fields inside
    if padded:
        boxes[0, 1] = [0.0, 0.0, 3.0, 3.0]  # 4x4 of 10x10 inside: 16% of the patch
    return UnitExamples(
        layer=LONG_LAYER,
        kind="channel",
        units=np.array([0, 7]),
        scores=np.array([[3.0, 2.0, 1.0], [5.0, 4.0, 0.5]], np.float32),
        sample_indices=np.array([[0, 1, 2], [2, 1, 0]]),
        image_ids=np.array([[0, 1, 2], [2, 1, 0]]),
        images=(rng.random((3, 16, 16, 3)) * 255).astype(np.uint8),
        positions=np.zeros((2, 3, 2), np.int64),
        boxes=boxes,
        patches=(rng.random((2, 3, 10, 10, 3)) * 255).astype(np.uint8),
        searched=3,
        filters=filter_bank().replace(
            kernels=rng.normal(size=(2, 3, 3, 4)).astype(np.float32), indices=np.array([0, 7])
        ),  # fmt: skip
    )


def _layer(path, type_, shape, params=0, depth=None, container=False, rf=None, inbound=()):
    return LayerInfo(
        path=path,
        name=path.rpartition("/")[2],
        type=type_,
        depth=path.count("/") if depth is None else depth,
        output_shape=shape,
        params=params,
        trainable_params=params,
        receptive_field=rf,
        macs=params * 10,
        container=container,
        inbound=inbound,
    )


def model_summary(expand_nested: bool = False, extra: int = 0) -> ModelSummary:
    """A transfer model: Rescaling, a nested base with long layer names, a head; ``extra``
    more conv layers make the diagram crowded."""
    rf = ReceptiveField((3.0, 3.0), (1.0, 1.0), (1.0, 1.0))
    base = "feature_extractor_backbone"
    layers = [
        _layer("rescaling", "Rescaling", (None, 64, 64, 3)),
        _layer(base, "Functional", (None, 8, 8, 128), 3000, container=True, inbound=("rescaling",)),
        _layer(f"{base}/block1_conv1_with_a_long_name", "Conv2D", (None, 64, 64, 32), 896, rf=rf),
        _layer(
            f"{base}/block1_pool",
            "MaxPooling2D",
            (None, 32, 32, 32),
            inbound=(f"{base}/block1_conv1_with_a_long_name",),
        ),  # fmt: skip
        _layer(
            f"{base}/block5_conv3_with_a_long_name",
            "Conv2D",
            (None, 8, 8, 128),
            2104,
            inbound=(f"{base}/block1_pool",),
        ),  # fmt: skip
    ]
    previous = base
    for i in range(extra):
        name = f"extra_conv_{i}"
        layers.append(_layer(name, "Conv2D", (None, 8, 8, 64), 100, inbound=(previous,)))
        previous = name
    layers += [
        _layer(
            "global_average_pooling2d", "GlobalAveragePooling2D", (None, 128), inbound=(previous,)
        ),  # fmt: skip
        _layer("predictions", "Dense", (None, 10), 1290, inbound=("global_average_pooling2d",)),
    ]
    total = sum(info.params for info in layers if info.depth == 0)
    return ModelSummary(
        name="a_transfer_model_with_a_long_name",
        input_shapes=((None, 64, 64, 3),),
        output_shapes=((None, 10),),
        layers=tuple(layers),
        total_params=total,
        trainable_params=total,
        non_trainable_params=0,
        total_macs=total * 10,
        expand_nested=expand_nested,
    )


def deletion_curve(score: str = "probability") -> PerturbationCurve:
    fractions = np.linspace(0, 1, 11)
    scores = np.stack([np.clip(1 - fractions * k, 0, 1) for k in (0.5, 1.0, 4.0)])
    return PerturbationCurve(
        kind="deletion",
        fractions=fractions,
        scores=scores,
        baseline=np.stack([1 - fractions * 0.8] * 3),
        targets=np.zeros(3, np.int64),
        method="integrated_gradients",
        score=score,
    )


def pointing_game() -> PointingGameResult:
    return PointingGameResult(
        hits=np.array([True, False, True]),
        points=np.zeros((3, 2), np.int64),
        area_share=np.array([0.1, 0.2, 0.1]),
        valid=np.array([True, True, True]),
        method="gradcam",
    )


def relevance_mass() -> RelevanceMassResult:
    return RelevanceMassResult(mass=np.array([0.4, 0.6, 0.2]), area_share=np.array([0.1] * 3))


def randomization(flagged: bool = True) -> RandomizationResult:
    steps = tuple(f"{LONG_LAYER}_{i}" for i in range(4))
    value = 0.9 if flagged else 0.1
    spearman = np.full((4, 3), value)
    return RandomizationResult(
        kind="cascading",
        steps=steps,
        spearman=spearman,
        spearman_abs=spearman,
        ssim=spearman,
        original_maps=np.random.default_rng(6).random((3, 8, 8)),
        randomized_maps=np.random.default_rng(7).random((4, 3, 8, 8)),
        targets=np.zeros(3, np.int64),
        method="guided_backprop",
    )


def health() -> HealthResult:
    return HealthResult(
        reports=(
            HealthReport(index=0, status="ok"),
            HealthReport(index=1, status="blank", reason="all zero"),
        ),
        method="scorecam",
    )


def evaluation() -> EvaluationResult:
    curve = deletion_curve()
    return EvaluationResult(
        methods=("saliency", "integrated_gradients"),
        metrics=("deletion",),
        results={
            "saliency": {"deletion": curve.replace(method="saliency")},
            "integrated_gradients": {"deletion": curve},
        },
    )
