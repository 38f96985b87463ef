"""The averaging graph's folding rule: a batch norm is folded only when no kink lies downstream
of it and a probe agrees; the maps then still equal plain tape gradients to 1e-4."""

from __future__ import annotations

import numpy as np

import vizkit
from tests.methods import zoo
from tests.methods.test_golden import close, logit_fn, tape_gradients
from vizkit._tf import keras, tf
from vizkit.methods import folding

L = keras.layers
TARGETS = np.array([0, 2, 1])


def _randomize_norms(model: keras.Model, seed: int) -> keras.Model:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0, 0.5, n))
            layer.moving_mean.assign(rng.normal(0, 0.5, n))
            layer.moving_variance.assign(rng.uniform(0.3, 2.0, n))
    return model


def net(first: str, second: str, pool: str = "avg") -> keras.Model:
    """conv-BN-``first``, depthwise-BN-``second``, conv-BN-tanh, pooling, softmax head."""
    keras.utils.set_random_seed(21)
    inputs = keras.Input(zoo.SIZE)
    h = L.Conv2D(6, 3, use_bias=False, name="conv")(inputs)
    h = L.Activation(first, name="act1")(L.BatchNormalization(name="bn1")(h))
    h = L.DepthwiseConv2D(3, padding="same", name="dw")(h)
    h = L.Activation(second, name="act2")(L.BatchNormalization(name="bn2")(h))
    h = L.Conv2D(5, 1, bias_initializer=zoo.RANDOM_BIAS, name="pw")(h)
    h = L.Activation("tanh", name="act3")(L.BatchNormalization(name="bn3")(h))
    h = (L.GlobalAveragePooling2D() if pool == "avg" else L.GlobalMaxPooling2D(name="gmp"))(h)
    y = L.Dense(3, activation="softmax", name="probs")(h)
    return _randomize_norms(keras.Model(inputs, y, name=f"{first}_{second}_{pool}"), 21)


def decision(model: keras.Model) -> folding.FoldDecision:
    graph = vizkit.get_method("integrated_gradients").cls(model).averaging_graph()
    folded = sum(layer.name.endswith("__folded") for layer in graph.suffix.layers)
    if graph.prefix is not None:
        folded += sum(layer.name.endswith("__folded") for layer in graph.prefix.layers)
    assert folded == len(graph.fold.folded)  # the decision describes the graph that runs
    return graph.fold


def check_against_tape(model: keras.Model) -> None:
    """Integrated gradients and SmoothGrad equal plain tape gradients on the caller's model."""
    x, fn = zoo.images(), logit_fn(model)
    steps = 8
    e = vizkit.explain(model, x, "integrated_gradients", targets=TARGETS, steps=steps)
    total = np.zeros_like(x)
    for k in range(steps):
        total += tape_gradients(fn, x * np.float32((k + 0.5) / steps), TARGETS)[0] / steps
    close(e.maps, (total * x).sum(axis=-1))
    samples, noise = 4, 0.1
    e = vizkit.explain(model, x, "smoothgrad", targets=TARGETS, samples=samples, noise=noise)
    patterns = tf.random.stateless_normal((samples, *x.shape[1:]), seed=[0, 0], alg="philox")
    sigma = noise * (x.max(axis=(1, 2, 3)) - x.min(axis=(1, 2, 3)))
    total = np.zeros_like(x)
    for s in range(samples):
        noisy = (x + sigma[:, None, None, None] * patterns[s].numpy()).astype(np.float32)
        total += tape_gradients(fn, noisy, TARGETS)[0] / samples
    close(e.maps, total.sum(axis=-1))


def test_smooth_network_is_folded_and_still_equals_the_tape():
    model = net("swish", "gelu")
    fold = decision(model)
    assert sorted(fold.folded) == ["bn1", "bn2", "bn3"] and fold.kept == ()
    assert fold.probe_error is not None and fold.probe_error <= folding.PROBE_TOL
    assert "3 of 3 batch norms folded" in str(fold)
    check_against_tape(model)


def test_norm_before_a_kink_is_kept_with_its_reason():
    model = net("relu", "swish")  # bn1 feeds a ReLU; bn2 and bn3 only smooth layers
    fold = decision(model)
    assert sorted(fold.folded) == ["bn2", "bn3"]
    assert fold.kept == (("bn1", "Activation 'act1' (activation relu) is downstream"),)
    check_against_tape(model)


def test_kink_far_downstream_refuses_every_fold():
    fold = decision(net("swish", "tanh", pool="max"))
    assert fold.folded == () and fold.probe_error is None
    assert dict(fold.kept) == {
        f"bn{i}": "GlobalMaxPooling2D 'gmp' is downstream" for i in (1, 2, 3)
    }


def test_relu_network_folds_nothing():
    from tests.methods.test_golden import batch_norm_net

    fold = decision(batch_norm_net())
    assert fold.folded == () and len(fold.kept) == 3
    assert all("ReLU" in reason and reason.endswith("is downstream") for _, reason in fold.kept)
    assert str(fold).startswith("0 of 3 batch norms folded; kept 'bn1': ReLU")


def test_probe_disagreement_refuses_the_fold(monkeypatch):
    monkeypatch.setattr(folding, "PROBE_TOL", -1.0)  # no difference is small enough
    model = net("swish", "gelu")
    fold = decision(model)
    assert fold.folded == () and len(fold.kept) == 3
    assert all(reason.startswith("the probe's gradients differ") for _, reason in fold.kept)
    assert fold.probe_error is not None and fold.probe_error >= 0


def test_kink_names_what_is_not_known_to_be_smooth():
    assert folding.kink(L.Activation("gelu")) is None
    assert folding.kink(L.Dense(3, activation="tanh")) is None
    assert folding.kink(L.BatchNormalization()) is None
    assert "relu6" in folding.kink(L.Activation("relu6"))
    assert folding.kink(L.MaxPooling2D(name="mp")) == "MaxPooling2D 'mp'"
    assert folding.kink(L.ReLU(name="r")) == "ReLU 'r'"
    assert folding.kink(L.Lambda(lambda t: t, name="lam")) == "Lambda 'lam'"  # unknown: a kink
