"""Sample models for vizkit: real networks from classic tutorials, trained offline and seeded.

- ``digits_cnn``: the Keras MNIST tutorial CNN, trained on scikit-learn's bundled handwritten
  digits upsampled to 28x28 (``--mnist`` trains on real MNIST where it can be downloaded).
- ``digits_mlp``: the 784-256-128-64-32-10 dense network on the same digits.
- ``shapes_vgg``: a small VGG-style CNN with batch normalization on generated 64x64 images of
  circles, squares and triangles on cluttered backgrounds, shipped with exact object masks.

Build them with ``python -m sample_models build [--force] [--mnist] [names...]`` (``make
samples``); list them with ``python -m sample_models list``. Builds go to
``sample_models/build/<name>/`` or ``$VIZKIT_SAMPLES_DIR/<name>/`` and are redone only when
missing or stale (see :mod:`sample_models.catalog`). Use them from Python through
:mod:`vizkit.samples`. Importing this package does not import TensorFlow.
"""

from sample_models.catalog import SAMPLE_NAMES, build_root, check_name, is_stale, sample_dir, status

__all__ = ["SAMPLE_NAMES", "build_root", "check_name", "is_stale", "sample_dir", "status"]
