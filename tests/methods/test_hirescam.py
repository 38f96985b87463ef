"""HiResCAM against a plain tf.GradientTape reference, and its exactness on a pooled linear head."""

from __future__ import annotations

import numpy as np

import vizkit
from tests.methods import zoo
from vizkit._tf import tf

TARGETS = np.array([0, 2, 1])


def close(a, b, rtol=1e-4):
    scale = max(float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale)


def acts_and_grads(model, x, targets):
    """The nested zoo model by hand: base -> global average pool -> Dense logits."""
    base, head = model.get_layer("base"), model.layers[-1]
    acts = tf.constant(base(tf.constant(x)).numpy())
    with tf.GradientTape() as tape:
        tape.watch(acts)
        logits = tf.matmul(tf.reduce_mean(acts, axis=(1, 2)), head.kernel) + head.bias
        score = tf.reduce_sum(logits * tf.one_hot(targets, 3), axis=1)
    grads = tape.gradient(score, acts).numpy().astype(np.float64)
    return acts.numpy().astype(np.float64), grads, logits.numpy(), head.bias.numpy()


def test_hirescam_equals_tape_reference_and_sums_to_the_logit():
    model = zoo.nested()
    x = zoo.images()
    acts, grads, logits, bias = acts_and_grads(model, x, TARGETS)
    signed = (grads * acts).sum(axis=-1)
    e = vizkit.explain(model, x, "hirescam", targets=TARGETS)
    assert e.layer == "base/inner_conv" and e.family == "cam"
    close(e.extras["cam"], np.maximum(signed, 0))
    up = tf.image.resize(np.maximum(signed, 0)[..., None].astype(np.float32), (16, 16))
    close(e.maps, up[..., 0].numpy())
    # global pooling then Dense: the signed map adds up to the logit minus its bias
    rows = np.arange(3)
    np.testing.assert_allclose(signed.sum(axis=(1, 2)), logits[rows, TARGETS] - bias[TARGETS], 1e-4)
    np.testing.assert_allclose(e.scores, logits[rows, TARGETS], rtol=1e-5)
    assert "weights" not in e.extras
