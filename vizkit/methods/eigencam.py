"""EigenCAM: the first principal component of a layer's activations (Muhammad & Yeasin, 2020)."""

from __future__ import annotations

from typing import Any

from vizkit._tf import tf
from vizkit.methods.cam import ActivationCAM
from vizkit.methods.params import common_params
from vizkit.registry import register


@register
class EigenCAM(ActivationCAM):
    """The activations' first principal component: project the centred ``(h*w, C)`` activations
    on their first right singular vector, sign fixed so the largest magnitude is positive, ReLU.

    ``extras["weights"]`` holds that unit vector ``(N, C)`` per image.

    The sign of a singular vector is arbitrary. pytorch-grad-cam's ``get_2d_projection`` leaves
    it to the SVD routine; vizkit fixes it as its ``get_2d_projection_with_sign_correction``
    does (Seg-Eigen-CAM, Chung & Ying 2025, Eq. 13): the projection is negated when its most
    negative value is larger in magnitude than its most positive one.

    References
    ----------
    Muhammad & Yeasin (2020), arXiv:2008.00299.
    """

    name = "eigencam"
    label = "EigenCAM"
    reference = (
        "Muhammad & Yeasin (2020), Eigen-CAM: Class Activation Map using Principal Components, "
        "IJCNN, arXiv:2008.00299"
    )
    description = """
        The first principal component of a layer's activations, drawn over the image: the
        dominant spatial pattern the layer responds to. It uses no gradients and no class, so
        every target gets the same map: it shows what the layer finds salient, not why a class
        was chosen. Caveats: class-agnostic; a principal component has no natural sign (vizkit
        makes its largest values positive); where background dominates the activations, the
        map highlights the background.
    """
    hyperparameters = common_params()

    @staticmethod
    def project(acts: Any) -> tuple[Any, Any]:
        shape = tf.shape(acts)
        flat = tf.reshape(acts, (shape[0], shape[1] * shape[2], shape[3]))
        centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
        _, _, v = tf.linalg.svd(centred, full_matrices=False)
        direction = v[:, :, 0]  # (n, C): the first right singular vector
        projection = tf.einsum("npc,nc->np", centred, direction)
        flip = -tf.reduce_min(projection, axis=1) > tf.reduce_max(projection, axis=1)
        sign = tf.where(flip, -1.0, 1.0)
        projection = tf.reshape(projection * sign[:, None], shape[:3])
        return tf.nn.relu(projection), direction * sign[:, None]
