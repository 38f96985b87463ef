"""HiResCAM: activations times their gradients, location by location (Draelos & Carin, 2020)."""

from __future__ import annotations

from typing import Any

from vizkit._tf import tf
from vizkit.methods.cam import READ_CAM, CamMethod
from vizkit.methods.params import common_params
from vizkit.registry import register


@register
class HiResCAM(CamMethod):
    """Activations times their gradients, summed over channels, ReLU (no spatial averaging).

    References
    ----------
    Draelos & Carin (2020), arXiv:2011.08891.
    """

    name = "hirescam"
    label = "HiResCAM"
    reference = (
        "Draelos & Carin (2020), Use HiResCAM instead of Grad-CAM for faithful explanations of "
        "convolutional neural networks, arXiv:2011.08891"
    )
    description = (
        """
        Multiplies every activation by its gradient, location by location, and sums the
        channels. Grad-CAM averages the gradients over the image first, which can highlight
        places the model did not use; HiResCAM does not, so for a head that is linear in the
        layer (global pooling then Dense) its map is exactly each location's contribution to
        the score.
        """
        + READ_CAM
        + "Caveat: negative evidence is dropped by the ReLU."
    )
    hyperparameters = common_params()

    @staticmethod
    def weigh(acts: Any, grads: Any) -> tuple[Any, Any]:
        return tf.nn.relu(tf.reduce_sum(grads * acts, axis=-1)), None
