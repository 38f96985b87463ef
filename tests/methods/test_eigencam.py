"""EigenCAM against an independent numpy reference (SVD of the centred activations)."""

from __future__ import annotations

import numpy as np

import vizkit
from tests.methods import zoo
from vizkit._tf import tf


def reference(acts):
    """pytorch-grad-cam's get_2d_projection, with the sign fixed as its sign-corrected variant
    does (flip when the most negative value outweighs the most positive), then the ReLU."""
    cams = []
    for a in acts.astype(np.float64):
        flat = a.reshape(-1, a.shape[-1])
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=True)
        projection = (flat @ vt[0]).reshape(a.shape[:2])
        if abs(projection.min()) > abs(projection.max()):
            projection = -projection
        cams.append(np.maximum(projection, 0.0))
    return np.stack(cams)


def test_eigencam_is_the_first_principal_component_of_the_activations():
    model = zoo.nested()
    x = zoo.images(4)
    acts = model.get_layer("base")(tf.constant(x)).numpy()
    expected = reference(acts)
    e = vizkit.explain(model, x, "eigencam")
    assert e.layer == "base/inner_conv" and e.family == "activation-cam"
    scale = np.abs(expected).max()
    np.testing.assert_allclose(e.extras["cam"], expected, rtol=1e-4, atol=1e-4 * scale)
    up = tf.image.resize(expected[..., None].astype(np.float32), x.shape[1:3], "bilinear")
    np.testing.assert_allclose(e.maps, up[..., 0].numpy(), rtol=1e-4, atol=1e-4 * scale)
    weights = e.extras["weights"]
    np.testing.assert_allclose(np.linalg.norm(weights, axis=1), 1.0, rtol=1e-5)
    # class-agnostic: every target gets the same map; the targets and scores are still recorded
    other = vizkit.explain(model, x, "eigencam", targets=[2, 1, 0, 2])
    np.testing.assert_array_equal(other.maps, e.maps)
    np.testing.assert_array_equal(other.targets, [2, 1, 0, 2])
    assert not np.allclose(other.scores, e.scores)
