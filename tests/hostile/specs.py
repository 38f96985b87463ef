"""How to build and call every Keras layer class a model config may name (for the audits).

``LAYERS[name] = (kwargs, inputs)``: ``kwargs()`` gives constructor arguments, ``inputs()`` an
array or a list of arrays to call the layer on. Classes not listed are built with no arguments
and called on a ``(2, 8, 8, 3)`` image batch; ``CONSTRUCT_ONLY`` are built but not called (they
need inputs no model passes through a plain call).
"""

from __future__ import annotations

import numpy as np

from vizkit._tf import keras

L = keras.layers
_RNG = np.random.default_rng(0)


def image(*shape: int) -> np.ndarray:
    return _RNG.uniform(0, 1, shape or (2, 8, 8, 3)).astype("float32")


def pixels() -> np.ndarray:
    return (image() * 255).astype("float32")


def seq() -> np.ndarray:
    return image(2, 5, 4)


def ints(*shape: int) -> np.ndarray:
    return _RNG.integers(0, 5, shape or (2, 5)).astype("int32")


def _by_rank(rank: int):
    return {1: lambda: image(2, 8, 3), 2: image, 3: lambda: image(2, 6, 6, 6, 3)}[rank]


LAYERS: dict[str, tuple] = {
    "Activation": (lambda: {"activation": "relu"}, image),
    "Add": (dict, lambda: [image(), image()]),
    "Average": (dict, lambda: [image(), image()]),
    "Maximum": (dict, lambda: [image(), image()]),
    "Minimum": (dict, lambda: [image(), image()]),
    "Multiply": (dict, lambda: [image(), image()]),
    "Subtract": (dict, lambda: [image(), image()]),
    "Concatenate": (dict, lambda: [image(), image()]),
    "Dot": (lambda: {"axes": 1}, lambda: [image(2, 4), image(2, 4)]),
    "Attention": (dict, lambda: [seq(), image(2, 6, 4)]),
    "AdditiveAttention": (dict, lambda: [seq(), image(2, 6, 4)]),
    "MultiHeadAttention": (
        lambda: {"num_heads": 2, "key_dim": 3, "value_dim": 2},
        lambda: [seq(), image(2, 6, 5)],
    ),
    "GroupedQueryAttention": (
        lambda: {"head_dim": 2, "num_query_heads": 2, "num_key_value_heads": 1},
        lambda: [seq(), image(2, 6, 4)],
    ),
    "AlphaDropout": (lambda: {"rate": 0.1}, image),
    "Dropout": (lambda: {"rate": 0.1}, image),
    "GaussianDropout": (lambda: {"rate": 0.1}, image),
    "GaussianNoise": (lambda: {"stddev": 0.1}, image),
    "SpatialDropout1D": (lambda: {"rate": 0.1}, seq),
    "SpatialDropout2D": (lambda: {"rate": 0.1}, image),
    "SpatialDropout3D": (lambda: {"rate": 0.1}, lambda: image(2, 4, 4, 4, 3)),
    "BatchNormalization": (dict, image),
    "LayerNormalization": (dict, image),
    "RMSNormalization": (dict, image),
    "GroupNormalization": (lambda: {"groups": 3}, image),
    "UnitNormalization": (dict, image),
    "Normalization": (dict, image),
    "Bidirectional": (lambda: {"layer": L.LSTM(3, return_sequences=True)}, seq),
    "TimeDistributed": (lambda: {"layer": L.Dense(2)}, seq),
    "SpectralNormalization": (lambda: {"layer": L.Dense(2)}, lambda: image(2, 4)),
    "Pipeline": (lambda: {"layers": [L.ReLU()]}, image),
    "RNN": (lambda: {"cell": L.LSTMCell(3)}, seq),
    "StackedRNNCells": (lambda: {"cells": [L.LSTMCell(3), L.GRUCell(2)]}, None),
    "SimpleRNN": (lambda: {"units": 3}, seq),
    "LSTM": (lambda: {"units": 3}, seq),
    "GRU": (lambda: {"units": 3}, seq),
    "SimpleRNNCell": (lambda: {"units": 3}, None),
    "LSTMCell": (lambda: {"units": 3}, None),
    "GRUCell": (lambda: {"units": 3}, None),
    "ConvLSTM1D": (lambda: {"filters": 2, "kernel_size": 3}, lambda: image(2, 3, 8, 3)),
    "ConvLSTM2D": (lambda: {"filters": 2, "kernel_size": 3}, lambda: image(2, 3, 6, 6, 3)),
    "ConvLSTM3D": (lambda: {"filters": 2, "kernel_size": 2}, lambda: image(2, 2, 4, 4, 4, 3)),
    "Dense": (lambda: {"units": 5}, image),
    "EinsumDense": (
        lambda: {"equation": "abc,cd->abd", "output_shape": (None, 5), "bias_axes": "d"},
        seq,
    ),
    "Embedding": (lambda: {"input_dim": 10, "output_dim": 4}, ints),
    "ReversibleEmbedding": (
        lambda: {"input_dim": 10, "output_dim": 4, "tie_weights": False},
        ints,
    ),
    "PReLU": (lambda: {"shared_axes": [1]}, image),
    "CategoryEncoding": (lambda: {"num_tokens": 5, "output_mode": "one_hot"}, lambda: ints(2)),
    "Discretization": (lambda: {"bin_boundaries": [0.25, 0.5]}, image),
    "Hashing": (lambda: {"num_bins": 5}, ints),
    "HashedCrossing": (lambda: {"num_bins": 5}, lambda: [ints(2), ints(2)]),
    "IntegerLookup": (lambda: {"vocabulary": [1, 2, 3]}, ints),
    "StringLookup": (lambda: {"vocabulary": ["a", "b"]}, lambda: np.array([["a", "c"]])),
    "TextVectorization": (lambda: {"vocabulary": ["a", "b"]}, lambda: np.array(["a b c"])),
    "CenterCrop": (lambda: {"height": 4, "width": 4}, image),
    "Resizing": (lambda: {"height": 4, "width": 5}, image),
    "RandomCrop": (lambda: {"height": 4, "width": 4}, image),
    "RepeatVector": (lambda: {"n": 2}, lambda: image(2, 4)),
    "Reshape": (lambda: {"target_shape": (64, 3)}, image),
    "Permute": (lambda: {"dims": (2, 1, 3)}, image),
    "Rescaling": (lambda: {"scale": 0.5, "offset": 0.1}, image),
    "Flatten": (dict, image),
    "MaxNumBoundingBoxes": (lambda: {"max_number": 2}, None),
    "MelSpectrogram": (lambda: {"fft_length": 64, "sequence_stride": 16}, lambda: image(2, 256)),
    "STFTSpectrogram": (lambda: {"frame_length": 8, "fft_length": 16}, lambda: image(2, 64, 1)),
    "RandomBrightness": (lambda: {"factor": 0.1}, pixels),
    "RandomColorDegeneration": (lambda: {"factor": 0.1}, pixels),
    "RandomContrast": (lambda: {"factor": 0.1}, pixels),
    "RandomHue": (lambda: {"factor": 0.1}, pixels),
    "RandomPosterization": (lambda: {"factor": (4, 6)}, pixels),
    "RandomRotation": (lambda: {"factor": 0.1}, pixels),
    "RandomSaturation": (lambda: {"factor": 0.1}, pixels),
    "RandomSharpness": (lambda: {"factor": 0.1}, pixels),
    "RandomTranslation": (lambda: {"height_factor": 0.1, "width_factor": 0.1}, pixels),
    "RandomZoom": (lambda: {"height_factor": 0.1}, pixels),
    "InputLayer": (lambda: {"shape": (4,)}, None),
}
for _rank in (1, 2, 3):
    for _name in ("Conv{}D", "Conv{}DTranspose", "SeparableConv{}D", "DepthwiseConv{}D"):
        _kwargs = (
            {"kernel_size": 3}
            if _name.startswith("Depthwise")
            else {"filters": 2, "kernel_size": 3}
        )
        LAYERS[_name.format(_rank)] = (lambda kw=_kwargs: dict(kw), _by_rank(_rank))
    for _name in ("MaxPooling{}D", "AveragePooling{}D"):
        LAYERS[_name.format(_rank)] = (lambda: {"pool_size": 2}, _by_rank(_rank))
    for _name in ("AdaptiveAveragePooling{}D", "AdaptiveMaxPooling{}D"):
        LAYERS[_name.format(_rank)] = (lambda: {"output_size": 2}, _by_rank(_rank))
    for _name in (
        "GlobalAveragePooling{}D",
        "GlobalMaxPooling{}D",
        "Cropping{}D",
        "ZeroPadding{}D",
        "UpSampling{}D",
    ):
        LAYERS[_name.format(_rank)] = (dict, _by_rank(_rank))

CONSTRUCT_ONLY = frozenset(name for name, (_, inputs) in LAYERS.items() if inputs is None)


def application_layers() -> dict[str, tuple]:
    """Layers defined in keras.src.applications, which their models save."""
    return {
        "LayerScale": (lambda: {"init_values": 1e-6, "projection_dim": 3}, image),
        "StochasticDepth": (lambda: {"drop_path_rate": 0.1}, image),
        "CustomScaleLayer": (lambda: {"scale": 0.5}, lambda: [image(), image()]),
    }


def spec(name: str) -> tuple:
    """``(kwargs, inputs)`` for a layer class name (the default for unlisted classes)."""
    return {**LAYERS, **application_layers()}.get(name, (dict, image))
