"""Every feature on the ``keras.applications`` families, against independent references.

Models are built with ``weights=None`` at the smallest input each accepts, once per module
(cached), and their batch norms are calibrated on the test images (moving statistics set to one
batch's statistics, with ``momentum=0``): randomly initialized statistics (mean 0, variance 1)
make deep networks shrink or blow their activations up, so their gradients would be numerically
meaningless. Three variants: the model itself (``standalone``, logits out), the keras.io
transfer-learning pattern with the model as a nested base behind ``RandomFlip`` and
``Rescaling`` (``nested``, softmax head), and the model built under ``mixed_float16``
(``mixed``; the global policy is restored after).

References are written here, on the caller's model: plain ``tf.GradientTape`` gradients of the
logit for saliency, gradient x input, integrated gradients (midpoint rule, the same float32
path points) and SmoothGrad (the same stateless Philox noise), a hand-written Grad-CAM at the
same layer, a sub-model for feature maps. Every method's maps must be finite and non-constant.

Budget (about 2 minutes on 2 idle cores): the cheap checks (summary, receptive fields,
diagram) run on every family, safe-mode loading on two; the full sweep (the tape references,
CAMs, every method, activation maximization, evaluation, report) runs on a few variants chosen
to cover the failure modes found (``keras.ops`` nodes and hard-swish in MobileNetV3, the
fold/ReLU6 problem in MobileNetV2, the nested and mixed-precision variants), with every method
on standalone models and one method per code path not checked otherwise on the other variants;
``VIZKIT_REAL_ARCH=all`` sweeps every family (about 20 minutes on 2 cores).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

import vizkit
from vizkit import metrics
from vizkit._tf import keras, tf

A = keras.applications
FAMILIES = {
    "MobileNetV2": (A.MobileNetV2, 32),
    "MobileNetV3Small": (A.MobileNetV3Small, 32),
    "MobileNetV3Large": (A.MobileNetV3Large, 32),
    "ResNet50V2": (A.ResNet50V2, 32),
    "EfficientNetB0": (A.EfficientNetB0, 32),
    "EfficientNetV2B0": (A.EfficientNetV2B0, 32),
    "DenseNet121": (A.DenseNet121, 32),
    "ConvNeXtTiny": (A.ConvNeXtTiny, 32),
    "Xception": (A.Xception, 71),
    "InceptionV3": (A.InceptionV3, 75),
    "NASNetMobile": (A.NASNetMobile, 32),
    "VGG16": (A.VGG16, 32),
}  # Keras 3 has no RegNet in keras.applications
ALL = os.environ.get("VIZKIT_REAL_ARCH", "") == "all"
SWEEP = [
    ("MobileNetV3Small", "standalone"),
    ("MobileNetV2", "nested"),
    ("MobileNetV2", "mixed"),
]
if ALL:
    SWEEP = [(f, v) for f in FAMILIES for v in ("standalone", "nested", "mixed")]
#: families whose eager tape gradient no compiled computation reproduces (checked by hand;
#: only run with VIZKIT_REAL_ARCH=all)
UNSTABLE = {
    # a one-ulp change of the input moves the input gradient by up to 44% of its maximum
    # along the integration path (random-init EfficientNets are chaotic, swish or not)
    "EfficientNetB0": "chaotic random-init EfficientNet",
    "EfficientNetV2B0": "chaotic random-init EfficientNet",
}


def sweep(chaotic_xfail: bool = False) -> list:
    def marks(family: str) -> tuple:
        if not (chaotic_xfail and family in UNSTABLE):
            return ()
        return (pytest.mark.xfail(reason=UNSTABLE[family], strict=False),)

    return [pytest.param(f, v, id=f"{f}-{v}", marks=marks(f)) for f, v in SWEEP]


CLASSES = 5
N = 2  # images explained
TOL = 1e-4  # of the reference map's maximum
#: under mixed_float16 every layer rounds to float16 (relative step 9.8e-4), so two valid
#: evaluation orders (vizkit's compiled graph, the reference's) differ by about ten float16
#: steps at the map's maximum (measured: 5.8e-3 for IG on MobileNetV3Small); 1e-4 is below
#: the precision of the computation itself
TOL_MIXED = 1e-2


def images(n: int, size: int) -> np.ndarray:
    """Smooth colour waves with a disk and a little noise, 0-255 float32 (seeded)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        freq, phase = rng.uniform(1, 4, 3), rng.uniform(0, 6, 3)
        img = np.stack(
            [
                0.5 + 0.5 * np.sin(2 * np.pi * (freq[c] * xx + (c + 1) * yy) + phase[c])
                for c in range(3)
            ],
            axis=-1,
        )
        cy, cx, r = *rng.uniform(0.3, 0.7, 2), rng.uniform(0.1, 0.25)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
        img += rng.normal(0, 0.05, img.shape)
        out.append(np.clip(img, 0, 1) * 255)
    return np.asarray(out, np.float32)


def calibrate(model: keras.Model, x: np.ndarray) -> None:
    """Set every batch norm's moving statistics to the batch statistics of ``x`` (one pass in
    training mode with ``momentum=0`` and dropout off)."""
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    norms = [lyr for lyr in layers if isinstance(lyr, keras.layers.BatchNormalization)]
    drops = [lyr for lyr in layers if isinstance(lyr, keras.layers.Dropout)]
    saved = [lyr.momentum for lyr in norms], [lyr.rate for lyr in drops]
    for lyr in norms:
        lyr.momentum = 0.0
    for lyr in drops:
        lyr.rate = 0.0
    model(x, training=True)
    for lyr, value in zip(norms, saved[0]):
        lyr.momentum = value
    for lyr, value in zip(drops, saved[1]):
        lyr.rate = value


@functools.cache
def plain(family: str) -> keras.Model:
    """The family's model, standalone, logits out, batch norms as initialized."""
    fn, size = FAMILIES[family]
    keras.utils.set_random_seed(0)
    return fn(
        weights=None, input_shape=(size, size, 3), classes=CLASSES, classifier_activation=None
    )


@functools.cache
def built(family: str, variant: str) -> tuple[keras.Model, np.ndarray]:
    """``(model, images)`` with calibrated batch norms; built once per module run."""
    fn, size = FAMILIES[family]
    x = images(8, size)
    if variant == "standalone":
        model = plain(family)
        calibrate(model, x)
        return model, x[:N]
    keras.utils.set_random_seed(0)
    policy = keras.config.dtype_policy()
    try:
        if variant == "mixed":
            keras.config.set_dtype_policy("mixed_float16")
            model = fn(
                weights=None,
                input_shape=(size, size, 3),
                classes=CLASSES,
                classifier_activation=None,
            )
        else:
            base = fn(weights=None, include_top=False, input_shape=(size, size, 3))
            inputs = keras.Input((size, size, 3))
            h = keras.layers.RandomFlip("horizontal")(inputs)
            h = keras.layers.Rescaling(1 / 127.5, offset=-1)(h)
            h = base(h, training=False)
            h = keras.layers.GlobalAveragePooling2D()(h)
            h = keras.layers.Dropout(0.2)(h)
            outputs = keras.layers.Dense(CLASSES, activation="softmax", name="head")(h)
            model = keras.Model(inputs, outputs, name=f"transfer_{family}")
    finally:
        keras.config.set_dtype_policy(policy)
    calibrate(model, x)
    return model, x[:N]


# --------------------------------------------------------------------------------------------
# References on the caller's model
# --------------------------------------------------------------------------------------------
def logits_and_acts(model: keras.Model, layer: str | None):
    """``x -> (logits float32, activations of layer or None)`` on the caller's layers."""
    if model.name.startswith("transfer_"):
        base = next(lyr for lyr in model.layers if isinstance(lyr, keras.Model))
        rescale = next(lyr for lyr in model.layers if isinstance(lyr, keras.layers.Rescaling))
        head = model.get_layer("head")
        inner = layer.split("/", 1)[1] if layer else None
        sub = keras.Model(
            base.inputs, [base.output] + ([base.get_layer(inner).output] if inner else [])
        )

        def run(x):
            outs = sub(rescale(x), training=False)
            feats, acts = (outs[0], outs[1]) if inner else (outs, None)
            pooled = tf.reduce_mean(tf.cast(feats, tf.float32), axis=(1, 2))
            logits = tf.matmul(pooled, tf.cast(head.kernel, tf.float32)) + tf.cast(
                head.bias, tf.float32
            )
            return logits, acts

        return run
    sub = keras.Model(
        model.inputs, [model.output] + ([model.get_layer(layer).output] if layer else [])
    )

    def run(x):
        outs = sub(x, training=False)
        return (
            (tf.cast(outs[0], tf.float32), outs[1]) if layer else (tf.cast(outs, tf.float32), None)
        )

    return run


_COMPILED: dict[int, object] = {}


def tape_grads(model, x, targets, compiled=False):
    """Input gradients of the target logits and the logits, by a plain ``tf.GradientTape``:
    eager, or the same code under ``tf.function`` (``compiled``)."""
    run = logits_and_acts(model, None)

    def grads(x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits, _ = run(x)
            score = tf.gather(logits, targets, axis=1, batch_dims=1)
        return tape.gradient(score, x), logits

    if compiled:
        grads = _COMPILED.setdefault(id(model), tf.function(grads))
    g, logits = grads(tf.constant(x), tf.constant(np.asarray(targets, np.int32)))
    return g.numpy().astype(np.float64), logits.numpy()


def stacked(model, variants, targets):
    """The compiled tape's gradients summed over ``variants`` run as one batch (as vizkit runs
    them): under mixed_float16 the batch's composition alone moves a plain tape's gradients
    (measured: 4.1% of IG's maximum on VGG16 between one batch per path point and one batch
    of all points), so both batchings are references."""
    n = len(targets)
    grads = tape_grads(model, np.concatenate(variants), np.tile(targets, len(variants)), True)[0]
    return sum(grads[i * n : (i + 1) * n] for i in range(len(variants)))


def relative_error(got, ref, what):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = np.abs(ref).max()
    assert scale > 0, f"{what}: reference is all zeros"
    return np.abs(got - ref).max() / scale


def close(got, ref, what):
    err = relative_error(got, ref, what)
    assert err <= TOL, f"{what}: differs from the reference by {err:.2e} of its maximum"


def close_to_a_tape(got, refs, what, tol=TOL):
    """Within ``tol`` of one of the plain tape references (eager; compiled; compiled with every
    variant in one batch, for the averaging methods). Where a path point or noisy copy
    lies within rounding of a ReLU kink, the two plain references themselves differ (measured:
    4.5% of IG's maximum on MobileNetV2, from one of four path points whose gradient moves by
    5% when grappler rewrites the graph), and float32 cannot say which side is right."""
    errs = [relative_error(got, ref, what) for ref in refs]
    names = ("eager tape", "compiled tape", "compiled tape over all variants in one batch")
    assert min(errs) <= tol, (
        f"{what}: differs from the "
        + ", ".join(f"{name} by {err:.2e}" for name, err in zip(names, errs))
        + " of its maximum"
    )


def healthy(maps, what):
    maps = np.asarray(maps)
    assert np.isfinite(maps).all(), f"{what}: non-finite values"
    for i, m in enumerate(maps):
        assert np.ptp(m) > 0, f"{what}: image {i}'s map is constant"


# --------------------------------------------------------------------------------------------
# Cheap checks on every family
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_summary_receptive_fields_and_diagram(family):
    from matplotlib.figure import Figure

    model = plain(family)
    summary = vizkit.summarize(model)
    assert summary.total_params == model.count_params()
    frame = summary.to_frame(expand_nested=True)
    assert len(frame) == len(vizkit.layer_paths(model))
    assert str(summary)
    layer = vizkit.candidate_layers(model)[0]
    assert layer.receptive_field is not None and layer.receptive_field[0] > 1
    # every layer's inbound names are rows of the table (keras.ops nodes are looked through)
    paths = set(frame["path"]) if "path" in frame else {r.path for r in summary.layers}
    for row in summary.layers:
        assert set(row.inbound) <= paths, (row.path, row.inbound)
    ax = summary.plot(ax=Figure().add_subplot())
    assert ax.patches or ax.texts


@pytest.mark.slow
@pytest.mark.parametrize("family", ["MobileNetV3Small", "ConvNeXtTiny"])
def test_load_round_trip(family, tmp_path):
    """``keras.ops`` nodes and hard-swish (MobileNetV3), a registered Keras custom layer
    (ConvNeXt's ``LayerScale``) through safe-mode loading."""
    model, (_, size) = plain(family), FAMILIES[family]
    x = images(N, size)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = vizkit.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# The full sweep
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("family,variant", sweep(chaotic_xfail=True))
def test_gradient_methods_equal_tape_references(family, variant):
    model, x = built(family, variant)
    logits = tape_grads(model, x, np.zeros(N, np.int32))[1]
    targets = logits.argmax(axis=1).astype(np.int32)
    modes = (False, True)  # eager, compiled
    tol = TOL_MIXED if variant == "mixed" else TOL
    tapes = [tape_grads(model, x, targets, compiled) for compiled in modes]
    grads = [g for g, _ in tapes]
    e = vizkit.explain(model, x, "saliency", targets=targets)
    close_to_a_tape(e.maps, [g.sum(-1) for g in grads], "saliency", tol)
    scores = [out[np.arange(N), targets] for _, out in tapes]
    close_to_a_tape(e.scores, scores, "saliency scores", tol)
    e = vizkit.explain(model, x, "gradient_x_input", targets=targets)
    close_to_a_tape(e.maps, [(g * x).sum(-1) for g in grads], "gradient_x_input", tol)

    steps = 4
    totals = [np.zeros_like(grads[0]) for _ in modes]
    points = [np.float32((k + 0.5) / steps) * x for k in range(steps)]  # black baseline
    for point in points:
        for total, compiled in zip(totals, modes):
            total += tape_grads(model, point, targets, compiled)[0]
    totals.append(stacked(model, points, targets))
    e = vizkit.explain(model, x, "integrated_gradients", targets=targets, steps=steps)
    close_to_a_tape(e.maps, [(t / steps * x).sum(-1) for t in totals], "integrated_gradients", tol)
    healthy(e.maps, "integrated_gradients")

    samples, noise = 3, 0.15
    patterns = tf.random.stateless_normal((samples, *x.shape[1:]), seed=[0, 0], alg="philox")
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    totals = [np.zeros_like(grads[0]) for _ in modes]
    copies = [
        (tf.constant(x) + tf.constant(sigma, tf.float32)[:, None, None, None] * patterns[s]).numpy()
        for s in range(samples)
    ]
    for noisy in copies:
        for total, compiled in zip(totals, modes):
            total += tape_grads(model, noisy, targets, compiled)[0]
    totals.append(stacked(model, copies, targets))
    e = vizkit.explain(model, x, "smoothgrad", targets=targets, samples=samples, seed=0)
    close_to_a_tape(e.maps, [(t / samples).sum(-1) for t in totals], "smoothgrad", tol)


@pytest.mark.slow
@pytest.mark.parametrize("family,variant", sweep())
def test_cams_feature_maps_and_units(family, variant):
    model, x = built(family, variant)
    layer = vizkit.candidate_layers(model)[0].path
    run = logits_and_acts(model, layer)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        logits, acts = run(xt)
        score = tf.gather(
            logits, tf.argmax(logits, axis=1, output_type=tf.int32), axis=1, batch_dims=1
        )
    grads = tape.gradient(score, acts)
    acts64, grads64 = np.asarray(acts, np.float64), np.asarray(grads, np.float64)
    weights = grads64.mean(axis=(1, 2))
    coarse = np.maximum(np.einsum("nhwc,nc->nhw", acts64, weights), 0)
    ref = tf.image.resize(coarse[..., None], x.shape[1:3], method="bilinear")[..., 0].numpy()
    e = vizkit.explain(model, x, "gradcam", layer=layer)
    if np.abs(ref).max() > 0:
        close(e.maps, ref, "gradcam")

    fm = vizkit.feature_maps(model, x, layer)
    close(getattr(fm, "activations", fm), acts64, "feature_maps")
    units = vizkit.top_activations(
        model, layer, units=[0, 1], images=x, k=2, progress=False, filters=False
    )
    np.testing.assert_allclose(
        units.scores,
        np.sort(acts64[..., :2].max(axis=(1, 2)).T, axis=1)[:, ::-1],
        rtol=1e-5,
        atol=1e-6,
    )


#: methods whose code the variants after the first also run elsewhere (the tape and CAM tests
#: above check saliency, gradient x input, IG, SmoothGrad and Grad-CAM on every variant) or
#: share with a method that stays (rectified with guided backprop: one rule machinery; LayerCAM
#: with Grad-CAM++: the same gradients, another weighting; Score-CAM with Faster Score-CAM;
#: guided Grad-CAM is the product of guided backprop and Grad-CAM)
SHARED = {
    "guided_gradcam",
    "saliency",
    "gradient_x_input",
    "integrated_gradients",
    "smoothgrad",
    "gradcam",
    "rectified_backprop",
    "layercam",
    "scorecam",
}


@pytest.mark.slow
@pytest.mark.parametrize("family,variant", sweep())
def test_every_method_gives_healthy_maps(family, variant):
    """Every registered method on standalone models; on the nested and mixed-precision variants,
    one method per code path not already checked there (:data:`SHARED` is skipped)."""
    model, x = built(family, variant)
    names = vizkit.available_methods()
    if variant != "standalone":
        names = [name for name in names if name not in SHARED]
    for name in names:
        info = vizkit.get_method(name)
        options = {}
        params = {p.name for p in info.params}
        if "steps" in params:
            options["steps"] = 2
        if "samples" in params:
            options["samples"] = 2
        if "max_n" in params:
            options["max_n"] = 4
        if "patch_size" in params:
            options["patch_size"] = 8
            options["stride"] = 8
        try:
            e = vizkit.explain(model, x, name, **options)
        except vizkit.LayerError as err:  # guided rules on a model without ReLUs
            assert "ReLU" in str(err), (name, err)
            continue
        blank = [i for i, m in enumerate(e.maps) if np.ptp(m) == 0]
        if info.family == "cam" and blank:
            # a CAM is relu(sum_c w_c A_c): all zeros when the layer holds no positive evidence
            # for the class (MobileNetV2's 2x2 layer at 32 px); then it must be exactly zero
            # and flagged by map_health, never silently
            badges = metrics.map_health(e).badges
            for i in blank:
                assert not e.maps[i].any() and badges[i], (name, i, badges)
        healthy(np.delete(e.maps, blank if info.family == "cam" else [], axis=0), name)


@pytest.mark.slow
@pytest.mark.parametrize("family,variant", sweep()[:1])
def test_filters_maximization_evaluation_and_report(family, variant, tmp_path, monkeypatch):
    monkeypatch.setenv("VIZKIT_MAX_STEPS", "3")
    model, x = built(family, variant)
    first_conv = vizkit.first_conv_layer(model)
    bank = vizkit.conv_filters(model, first_conv)
    assert np.isfinite(bank.weights).all() if hasattr(bank, "weights") else True
    act = vizkit.maximize_activation(model, units=[0, 1], progress=False)
    assert np.isfinite(act.images).all()
    frame = vizkit.evaluate(model, x, methods=["gradcam"])  # every method: the same code
    assert np.isfinite(frame.select_dtypes("number").to_numpy(dtype=float)).all()
    # HTML only, two classes maximized: figure files and more classes test nothing here that
    # tests/test_report.py does not
    path = vizkit.build_report(
        model, x, methods="gradcam", out_dir=tmp_path / "report", formats=["html"], max_classes=2
    )
    assert os.path.exists(path)
