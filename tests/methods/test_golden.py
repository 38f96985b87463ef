"""Golden tests: vizkit's maps against references written here with plain tf.GradientTape,
numpy, or closed forms on hand-set weights. No vizkit code computes a reference."""

from __future__ import annotations

import numpy as np
import pytest

import vizkit
from tests.methods import zoo
from vizkit._tf import keras, tf
from vizkit.metrics import deletion

L = keras.layers


# --------------------------------------------------------------------------------------------
# Independent references
# --------------------------------------------------------------------------------------------
def logit_fn(model):
    """x -> pre-softmax logits, built by hand from the model's last Dense layer."""
    head = model.layers[-1]
    features = keras.Model(model.inputs, head.input)
    kernel, bias = head.kernel, head.bias

    def logits(x):
        return tf.matmul(features(x, training=False), kernel) + bias

    return logits


def tape_gradients(fn, x, targets):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = fn(x)
        score = tf.reduce_sum(out * tf.one_hot(targets, out.shape[-1]), axis=1)
    return tape.gradient(score, x).numpy(), score.numpy()


def close(a, b, rtol=1e-4):
    scale = max(float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


TARGETS = np.array([0, 2, 1])


@pytest.fixture(scope="module")
def seq():
    return zoo.sequential()


# --------------------------------------------------------------------------------------------
# Gradient methods
# --------------------------------------------------------------------------------------------
def test_saliency_equals_tape_gradient(seq):
    x = zoo.images()
    grads, scores = tape_gradients(logit_fn(seq), x, TARGETS)
    e = vizkit.explain(seq, x, "saliency", targets=TARGETS)
    close(e.maps, grads.sum(axis=-1))
    close(e.scores, scores)
    e = vizkit.explain(seq, x, "saliency", targets=TARGETS, channels="max_abs")
    close(e.maps, np.abs(grads).max(axis=-1))


def test_probability_score_keeps_the_softmax(seq):
    x = zoo.images()
    grads, scores = tape_gradients(lambda v: seq(v, training=False), x, TARGETS)
    e = vizkit.explain(seq, x, "saliency", targets=TARGETS, score="probability")
    close(e.maps, grads.sum(axis=-1))
    close(e.scores, scores)


def test_single_linear_unit_is_a_binary_logit():
    """``Dense(1)`` without activation: target 1 explains the output itself (the README's advice
    for regression heads), target 0 its negation, as for a ``from_logits=True`` binary model."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [keras.Input(zoo.SIZE), L.Conv2D(4, 3, activation="relu"), L.Flatten(), L.Dense(1)]
    )
    x = zoo.images()
    grads, scores = tape_gradients(lambda v: model(v, training=False), x, np.zeros(3, int))
    for target, sign in [(1, 1.0), (0, -1.0)]:
        e = vizkit.explain(model, x, "saliency", targets=target)
        close(e.maps, sign * grads.sum(axis=-1))
        close(e.scores, sign * scores)
    e = vizkit.explain(model, x, "gradcam")  # predicted class: 1 where the logit is positive
    np.testing.assert_array_equal(e.targets, (scores > 0).astype(int))
    p1 = 1.0 / (1.0 + np.exp(-scores))
    np.testing.assert_allclose(e.predictions.top_probability, np.maximum(p1, 1 - p1), rtol=1e-5)
    # the metrics read it the same way: probability of class 1 is the sigmoid of the logit
    curve = deletion(model, x, e, steps=2)
    np.testing.assert_allclose(curve.scores[:, 0], np.maximum(p1, 1 - p1), rtol=1e-5)


def test_gradient_x_input(seq):
    x = zoo.images()
    grads, _ = tape_gradients(logit_fn(seq), x, TARGETS)
    e = vizkit.explain(seq, x, "gradient_x_input", targets=TARGETS)
    close(e.maps, (grads * x).sum(axis=-1))


def test_integrated_gradients_reference_and_completeness(seq):
    x = zoo.images()
    fn = logit_fn(seq)
    steps = 256
    e = vizkit.explain(seq, x, "integrated_gradients", targets=TARGETS, steps=steps)
    # completeness: maps sum to score(x) - score(baseline) within 1%
    _, at_x = tape_gradients(fn, x, TARGETS)
    _, at_zero = tape_gradients(fn, np.zeros_like(x), TARGETS)
    np.testing.assert_allclose(e.maps.sum(axis=(1, 2)), at_x - at_zero, rtol=0.01)
    # an independent Riemann (midpoint) sum with 16 steps
    e16 = vizkit.explain(seq, x, "integrated_gradients", targets=TARGETS, steps=16)
    total = np.zeros_like(x)
    for k in range(16):
        g, _ = tape_gradients(fn, x * (k + 0.5) / 16, TARGETS)
        total += g / 16
    close(e16.maps, (total * x).sum(axis=-1))


def test_integrated_gradients_custom_and_blurred_baselines(seq):
    x = zoo.images()
    fn = logit_fn(seq)
    base = np.full_like(x, 0.5)
    e = vizkit.explain(seq, x, "integrated_gradients", targets=TARGETS, steps=1024, baseline=0.5)
    _, at_x = tape_gradients(fn, x, TARGETS)
    _, at_b = tape_gradients(fn, base, TARGETS)
    tolerance = 0.01 * np.abs(at_x).max()  # the differences are small: 1% of the scores
    np.testing.assert_allclose(e.maps.sum(axis=(1, 2)), at_x - at_b, atol=tolerance)
    assert e.params["baseline"] == 0.5 or np.all(e.params["baseline"] == 0.5)
    blurred = vizkit.explain(
        seq,
        x,
        "integrated_gradients",
        targets=TARGETS,
        steps=1024,
        baseline="blurred",
        blur_sigma=2.0,
    )
    from scipy.ndimage import gaussian_filter

    b = np.stack([gaussian_filter(i, (2.0, 2.0, 0), mode="nearest") for i in x])
    _, at_blur = tape_gradients(fn, b, TARGETS)
    np.testing.assert_allclose(blurred.maps.sum(axis=(1, 2)), at_x - at_blur, atol=tolerance)


def test_smoothgrad_is_a_mean_of_noisy_gradients(seq):
    x = zoo.images()
    samples, noise, seed = 5, 0.2, 7
    e = vizkit.explain(
        seq, x, "smoothgrad", targets=TARGETS, samples=samples, noise=noise, seed=seed
    )
    # the documented noise: standard normal patterns from a stateless Philox generator keyed
    # by [seed, 0], drawn here directly from TensorFlow's random ops
    patterns = tf.random.stateless_normal(
        (samples, *x.shape[1:]), seed=[seed, 0], alg="philox"
    ).numpy()
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    total = np.zeros_like(x)
    for s in range(samples):
        noisy = (x + sigma[:, None, None, None] * patterns[s]).astype(np.float32)
        g, _ = tape_gradients(logit_fn(seq), noisy, TARGETS)
        total += g / samples
    close(e.maps, total.sum(axis=-1), rtol=1e-3)


@pytest.mark.parametrize("method", ["smoothgrad", "integrated_gradients"])
def test_averaging_does_not_depend_on_the_chunking(seq, method):
    """The n * k variants run in on-graph chunks of batch_size across images (uneven splits,
    a chunk larger than all of them, one variant per pass): every split gives the same maps."""
    x = zoo.images()
    params = {"samples": 7, "seed": 2} if method == "smoothgrad" else {"steps": 7}
    maps = [
        vizkit.explain(seq, x, method, targets=TARGETS, batch_size=size, **params).maps
        for size in (1, 5, 8, 64)
    ]
    for other in maps[1:]:
        close(other, maps[0], rtol=1e-5)


def batch_norm_net() -> keras.Model:
    """Convolutions (with and without bias, depthwise) each followed by a batch norm with
    random statistics, gamma and beta (one without center, one without scale)."""
    keras.utils.set_random_seed(11)
    inputs = keras.Input(zoo.SIZE)
    h = L.Conv2D(4, 3, use_bias=False, name="conv")(inputs)
    h = L.ReLU()(L.BatchNormalization(name="bn1")(h))
    h = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(h)
    h = L.ReLU()(L.BatchNormalization(center=False, name="bn2")(h))
    h = L.Conv2D(5, 1, bias_initializer=zoo.RANDOM_BIAS, name="pw")(h)
    h = L.ReLU()(L.BatchNormalization(scale=False, name="bn3")(h))
    y = L.Dense(3, activation="softmax", name="probs")(L.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, y, name="bn_net")
    rng = np.random.default_rng(11)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            if layer.center:
                layer.beta.assign(rng.normal(0, 0.5, n))
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.3, 2.0, n))
    return model


def branching_net() -> keras.Model:
    """The input also feeds a second branch: no linear prefix can be cut off."""
    keras.utils.set_random_seed(12)
    inputs = keras.Input(zoo.SIZE)
    h = L.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    h = L.Concatenate()([h, L.AveragePooling2D(1)(inputs)])
    y = L.Dense(3, activation="softmax", name="probs")(L.Flatten()(h))
    return keras.Model(inputs, y, name="branching")


@pytest.mark.parametrize("build", [batch_norm_net, branching_net])
def test_averaging_methods_on_batch_norms_and_branches(build):
    """SmoothGrad and IG run on a graph with the linear prefix cut off (when the model has one)
    and no batch norm folded; forward-only passes fold them: same maps as plain tape gradients
    on the caller's model."""
    model = build()
    x = zoo.images()
    fn = logit_fn(model)
    method = vizkit.get_method("smoothgrad").cls(model)
    prefix, suffix = method.averaging_graph()
    assert not any(layer.name.endswith("__folded") for layer in suffix.layers)
    from vizkit.methods.folding import forward_graph

    folded = forward_graph(model, method.prepared(), method.logits, None)
    if build is batch_norm_net:  # the rewrites ran (not dropped by their own check)
        assert prefix is not None
        assert sum(layer.name.endswith("__folded") for layer in folded.layers) == 3
    else:
        assert prefix is None
    steps = 8
    e = vizkit.explain(model, x, "integrated_gradients", targets=TARGETS, steps=steps)
    total = np.zeros_like(x)
    for k in range(steps):
        g, _ = tape_gradients(fn, x * (k + 0.5) / steps, TARGETS)
        total += g / steps
    close(e.maps, (total * x).sum(axis=-1))
    _, scores = tape_gradients(fn, x, TARGETS)
    close(e.scores, scores)
    samples, noise = 4, 0.1
    e = vizkit.explain(model, x, "smoothgrad", targets=TARGETS, samples=samples, noise=noise)
    patterns = tf.random.stateless_normal((samples, *x.shape[1:]), seed=[0, 0], alg="philox")
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    total = np.zeros_like(x)
    for s in range(samples):
        noisy = (x + sigma[:, None, None, None] * patterns[s].numpy()).astype(np.float32)
        g, _ = tape_gradients(fn, noisy, TARGETS)
        total += g / samples
    close(e.maps, total.sum(axis=-1), rtol=1e-3)


# --------------------------------------------------------------------------------------------
# Guided / rectified backprop: closed form on a hand-set network
# --------------------------------------------------------------------------------------------
W1 = np.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.5, 2.0], [2.0, -0.5, 1.0]])
B1 = np.array([0.1, -0.2, 0.3])
W2 = np.array([[1.0, -1.0, 0.5], [-2.0, 1.0, 1.0], [0.5, 2.0, -1.0]])
B2 = np.array([0.2, 0.1, -0.3])
W3 = np.array([[1.0, -1.0], [-1.0, 2.0], [0.5, 0.5]])
B3 = np.array([0.0, 0.1])


def hand_set(style: str, nested: bool = False) -> keras.Model:
    """Input 2x2x1 -> Dense(3) ReLU -> Dense(3) ReLU -> Dense(2) softmax, hand-set weights."""
    inputs = keras.Input((2, 2, 1))
    x = L.Flatten()(inputs)

    def block(x, units, name):
        if style == "fused":
            return L.Dense(units, activation="relu", name=name)(x)
        act = L.ReLU() if style == "layer" else L.Activation("relu")
        return act(L.Dense(units, name=name)(x))

    if nested:
        inner_in = keras.Input((4,))
        inner = keras.Model(inner_in, block(block(inner_in, 3, "d1"), 3, "d2"), name="inner")
        h = inner(x)
    else:
        h = block(block(x, 3, "d1"), 3, "d2")
    out = L.Dense(2, activation="softmax", name="d3")(h)
    model = keras.Model(inputs, out)
    for name, w, b in (("d1", W1, B1), ("d2", W2, B2), ("d3", W3, B3)):
        layer = (
            model.get_layer("inner").get_layer(name)
            if nested and name != "d3"
            else model.get_layer(name)
        )
        layer.set_weights([w.astype(np.float32), b.astype(np.float32)])
    return model


def closed_form(x: np.ndarray, target: int, rule: str) -> np.ndarray:
    v = x.reshape(-1).astype(np.float64)
    z1 = v @ W1 + B1
    z2 = np.maximum(z1, 0) @ W2 + B2
    d_h2 = W3[:, target]
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    if rule == "guided":
        d_z2 = relu(d_h2) * (z2 > 0)
        d_z1 = relu(d_z2 @ W2.T) * (z1 > 0)
    elif rule == "rectified":
        d_z2 = relu(d_h2)
        d_z1 = relu(d_z2 @ W2.T)
    else:
        d_z2 = d_h2 * (z2 > 0)
        d_z1 = (d_z2 @ W2.T) * (z1 > 0)
    return (d_z1 @ W1.T).reshape(2, 2)


HAND_X = np.array(
    [[[[0.5], [-1.0]], [[1.5], [0.25]]], [[[1.0], [1.0]], [[-0.5], [0.75]]]], dtype=np.float32
)


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("style", ["fused", "layer", "activation"])
@pytest.mark.parametrize(
    "method,rule",
    [("guided_backprop", "guided"), ("rectified_backprop", "rectified"), ("saliency", "plain")],
)
def test_backprop_rules_closed_form(style, nested, method, rule):
    model = hand_set(style, nested)
    for target in (0, 1):
        e = vizkit.explain(model, HAND_X, method, targets=target)
        expected = np.stack([closed_form(img, target, rule) for img in HAND_X])
        np.testing.assert_allclose(e.maps, expected, rtol=1e-5, atol=1e-6)
    # the rules differ on this network (so the test can tell them apart)
    assert not np.allclose(closed_form(HAND_X[0], 0, "guided"), closed_form(HAND_X[0], 0, "plain"))
    assert not np.allclose(
        closed_form(HAND_X[1], 1, "rectified"), closed_form(HAND_X[1], 1, "guided")
    )


def test_guided_backprop_without_relu_is_a_clear_error():
    inputs = keras.Input((4, 4, 1))
    h = L.Conv2D(2, 3, activation="tanh")(inputs)
    model = keras.Model(inputs, L.Dense(2, activation="softmax")(L.Flatten()(h)))
    for method in ("guided_backprop", "rectified_backprop", "guided_gradcam"):
        with pytest.raises(vizkit.LayerError, match="no ReLU"):
            vizkit.explain(model, np.zeros((1, 4, 4, 1), np.float32), method)


def test_guided_backprop_follows_in_place_weight_changes():
    model = hand_set("fused")
    before = vizkit.explain(model, HAND_X, "guided_backprop", targets=0).maps
    layer = model.get_layer("d1")
    layer.set_weights([-W1.astype(np.float32), B1.astype(np.float32)])
    after = vizkit.explain(model, HAND_X, "guided_backprop", targets=0).maps
    assert not np.allclose(before, after)
    layer.set_weights([W1.astype(np.float32), B1.astype(np.float32)])
    np.testing.assert_allclose(
        vizkit.explain(model, HAND_X, "guided_backprop", targets=0).maps, before, rtol=1e-6
    )


# --------------------------------------------------------------------------------------------
# CAMs
# --------------------------------------------------------------------------------------------
def split_sequential(model, layer_name):
    """(x -> activations, activations -> logits) by calling the layers by hand."""
    layers = [lyr for lyr in model.layers]
    index = [lyr.name for lyr in layers].index(layer_name)
    head = layers[-1]

    def lower(x):
        for lyr in layers[: index + 1]:
            x = lyr(x)
        return x

    def upper(a):
        for lyr in layers[index + 1 : -1]:
            a = lyr(a)
        return tf.matmul(a, head.kernel) + head.bias

    return lower, upper


def cam_reference(model, x, targets, layer_name):
    lower, upper = split_sequential(model, layer_name)
    acts = lower(tf.constant(x))
    with tf.GradientTape() as tape:
        tape.watch(acts)
        out = upper(acts)
        score = tf.reduce_sum(out * tf.one_hot(targets, out.shape[-1]), axis=1)
    return acts.numpy().astype(np.float64), tape.gradient(score, acts).numpy().astype(np.float64)


def upsample(cams, size):
    return tf.image.resize(cams[..., None].astype(np.float32), size, "bilinear")[..., 0].numpy()


@pytest.mark.parametrize("layer", ["conv2", "pool1"])
def test_gradcam_weights_are_averaged_gradients(seq, layer):
    x = zoo.images()
    acts, grads = cam_reference(seq, x, TARGETS, layer)
    e = vizkit.explain(seq, x, "gradcam", targets=TARGETS, layer=layer)
    weights = grads.mean(axis=(1, 2))
    close(e.extras["weights"], weights)
    cam = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0)
    close(e.extras["cam"], cam)
    close(e.maps, upsample(cam, x.shape[1:3]))


def test_gradcam_pp_and_layercam_formulas(seq):
    x = zoo.images()
    acts, g = cam_reference(seq, x, TARGETS, "conv2")
    total = acts.sum(axis=(1, 2), keepdims=True)
    denom = 2 * g**2 + total * g**3
    alphas = g**2 / np.where(denom != 0, denom, 1.0)
    weights = (alphas * np.maximum(g, 0)).sum(axis=(1, 2))
    cam = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0)
    e = vizkit.explain(seq, x, "gradcam_pp", targets=TARGETS, layer="conv2")
    close(e.extras["weights"], weights)
    close(e.maps, upsample(cam, x.shape[1:3]), rtol=1e-3)
    layercam = np.maximum((np.maximum(g, 0) * acts).sum(axis=-1), 0)
    e = vizkit.explain(seq, x, "layercam", targets=TARGETS, layer="conv2")
    close(e.extras["cam"], layercam)


def test_scorecam_brute_force(seq):
    x = zoo.images(2)
    targets = np.array([1, 2])
    lower, _ = split_sequential(seq, "conv2")
    acts = lower(tf.constant(x)).numpy()
    weights = np.zeros((2, acts.shape[-1]))
    for i in range(2):
        for c in range(acts.shape[-1]):
            mask = upsample(acts[i : i + 1, ..., c], x.shape[1:3])[0]
            mask = (mask - mask.min()) / (mask.max() - mask.min() + keras.config.epsilon())
            prob = seq((x[i] * mask[..., None])[None], training=False).numpy()[0]
            weights[i, c] = prob[targets[i]]
    cam = np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0)
    e = vizkit.explain(seq, x, "scorecam", targets=targets, layer="conv2", batch_size=5)
    close(e.extras["weights"], weights, rtol=1e-4)
    close(e.maps, upsample(cam, x.shape[1:3]), rtol=1e-4)
    # Faster Score-CAM scores only the channels with the largest spatial spread
    fast = vizkit.explain(seq, x, "faster_scorecam", targets=targets, layer="conv2", max_n=2)
    spread = acts.std(axis=(1, 2))
    for i in range(2):
        kept = set(np.argsort(-spread[i])[:2])
        for c in range(acts.shape[-1]):
            expected = weights[i, c] if c in kept else 0.0
            np.testing.assert_allclose(fast.extras["weights"][i, c], expected, rtol=1e-4)


def test_gradcam_in_nested_base_model():
    model = zoo.nested()
    x = zoo.images()
    base = model.get_layer("base")
    acts = base(tf.constant(x)).numpy()  # inner_conv is the base's output
    head = model.layers[-1]
    a = tf.constant(acts)
    with tf.GradientTape() as tape:
        tape.watch(a)
        out = tf.matmul(tf.reduce_mean(a, axis=(1, 2)), head.kernel) + head.bias
        score = tf.reduce_sum(out * tf.one_hot(TARGETS, 3), axis=1)
    weights = tape.gradient(score, a).numpy().mean(axis=(1, 2))
    for layer in ("base/inner_conv", "inner_conv", None):
        e = vizkit.explain(model, x, "gradcam", targets=TARGETS, layer=layer)
        assert e.layer == "base/inner_conv"
        close(e.extras["weights"], weights)


# --------------------------------------------------------------------------------------------
# Occlusion: brute force
# --------------------------------------------------------------------------------------------
def brute_occlusion(model, x, target, patch, stride, fill_image):
    height, width = x.shape[:2]
    base = model(x[None], training=False).numpy()[0, target]
    heat = np.zeros((height, width))
    count = np.zeros((height, width))
    tops = list(range(0, height - patch + 1, stride))
    if tops[-1] + patch < height:
        tops.append(height - patch)
    lefts = list(range(0, width - patch + 1, stride))
    if lefts[-1] + patch < width:
        lefts.append(width - patch)
    for t in tops:
        for left in lefts:
            occluded = x.copy()
            occluded[t : t + patch, left : left + patch] = fill_image[
                t : t + patch, left : left + patch
            ]
            prob = model(occluded[None], training=False).numpy()[0, target]
            heat[t : t + patch, left : left + patch] += base - prob
            count[t : t + patch, left : left + patch] += 1
    return np.where(count > 0, heat / np.maximum(count, 1), 0.0)


@pytest.mark.parametrize("fill", ["zero", "mean", "blur"])
def test_occlusion_equals_brute_force(seq, fill):
    x = zoo.images(2)
    targets = np.array([2, 0])
    patch, stride = 5, 3  # overlapping patches, and an extra edge row/column
    e = vizkit.explain(
        seq,
        x,
        "occlusion",
        targets=targets,
        patch_size=patch,
        stride=stride,
        fill=fill,
        batch_size=7,
    )
    for i in range(2):
        img = np.array(x[i])
        if fill == "zero":
            fill_image = np.zeros_like(img)
        elif fill == "mean":
            fill_image = np.broadcast_to(img.mean(axis=(0, 1)), img.shape)
        else:
            from scipy.ndimage import gaussian_filter

            fill_image = gaussian_filter(img, (patch / 2, patch / 2, 0), mode="nearest")
        expected = brute_occlusion(seq, img, targets[i], patch, stride, fill_image)
        np.testing.assert_allclose(e.maps[i], expected, rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------------
# tf-keras-vis engines agree with the native ones (where tf-keras-vis has the method)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("builder", [zoo.sequential, zoo.nested], ids=["sequential", "nested"])
@pytest.mark.parametrize("method", ["saliency", "gradcam", "layercam"])
def test_tf_keras_vis_engine_agrees(builder, method):
    model = builder()
    x = zoo.images()
    native = vizkit.explain(model, x, method, targets=TARGETS)
    other = vizkit.explain(model, x, method, targets=TARGETS, engine="tf-keras-vis")
    close(other.maps, native.maps)
