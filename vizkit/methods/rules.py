"""Backpropagation rules for ReLUs (guided, rectified) as substitute layers for
:func:`vizkit.models.rebuild`: the caller's model is never modified."""

from __future__ import annotations

from typing import Any

from vizkit._tf import keras, tf
from vizkit.models import activation_name, iter_layers, linear_clone

_RELU_NAMES = ("relu", "relu6")


@tf.custom_gradient
def _positive_gate(y: Any) -> Any:
    """Identity forward; passes only positive gradients backward (guided backprop's gate)."""

    def grad(dy: Any) -> Any:
        return tf.nn.relu(dy)

    return tf.identity(y), grad


class _RuleLayer(keras.layers.Layer):
    """A ReLU (fused or standalone) whose backward pass follows a modified rule.

    ``guided``: forward unchanged; backward ``dy * (dy > 0) * relu'(z)`` (Springenberg et al.).
    ``rectified``: forward unchanged; backward ``relu(dy)``, ignoring the forward mask (the
    DeconvNet rule of Zeiler & Fergus).
    """

    def __init__(self, pre: Any, act: Any, rule: str, name: str) -> None:
        super().__init__(name=name)
        self._pre = lambda x, kw: pre(x, **kw)  # closures keep the source layer untracked
        self._act = lambda z: act(z)
        self._rule = rule

    def call(self, inputs: Any, **kwargs: Any) -> Any:
        z = self._pre(inputs, kwargs)
        if self._rule == "guided":
            return _positive_gate(self._act(z))
        act = self._act

        @tf.custom_gradient
        def rectified(z: Any) -> Any:
            def grad(dy: Any) -> Any:
                return tf.nn.relu(dy)

            return act(z), grad

        return rectified(z)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self._shape(input_shape)


def _no_kwargs(fn: Any) -> Any:
    return lambda x, **kw: fn(x)


def is_relu(layer: keras.layers.Layer) -> bool:
    """True for ``activation="relu"`` (or relu6) layers, ``Activation("relu")`` and ``ReLU()``."""
    if isinstance(layer, keras.Model):
        return False
    if isinstance(layer, keras.layers.ReLU):
        return float(getattr(layer, "negative_slope", 0.0) or 0.0) == 0.0
    return activation_name(layer) in _RELU_NAMES


def relu_substitute(rule: str) -> Any:
    """A :func:`vizkit.models.rebuild` substitute hook applying ``rule`` to every ReLU."""

    def substitute(path: str, layer: keras.layers.Layer) -> Any:
        if not is_relu(layer):
            return None
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation)):
            pre, act = (lambda x, **kw: x), layer
        else:  # fused activation: the pre-activation from the layer's own weights
            pre, act = _no_kwargs(linear_clone(layer)), layer.activation
        replacement = _RuleLayer(pre, act, rule, name=f"{layer.name}__{rule}")
        replacement._shape = lambda shape, layer=layer: layer.compute_output_shape(shape)
        return replacement

    return substitute


def relu_paths(model: keras.Model) -> list[str]:
    """Paths of the model's ReLUs (fused, ``Activation("relu")`` or ``ReLU()``)."""
    return [path for path, layer in iter_layers(model) if is_relu(layer)]
