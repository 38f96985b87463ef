"""Adapters to tf-keras-vis: the only modules in vizkit that import ``tf_keras_vis``.

vizkit hands tf-keras-vis models it has already prepared with :func:`vizkit.models.rebuild`
(nested models inlined, softmax/sigmoid head swapped for its logit without touching the caller's
model), so tf-keras-vis's ``model_modifier`` machinery (``ReplaceToLinear``, which crashes on
``keras.Sequential`` under Keras 3 and mutates layers) is never used.
"""
