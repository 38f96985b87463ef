"""The sample networks: small classic architectures with readable layer names.

Each function returns a fresh, uncompiled functional ``keras.Model``.
"""

from __future__ import annotations

from vizkit._tf import keras

layers = keras.layers


def digits_cnn(input_shape: tuple[int, int, int] = (28, 28, 1), classes: int = 10) -> keras.Model:
    """The Keras MNIST tutorial CNN.

    ``Input 28x28x1 -> Conv2D(32, 5x5, relu) -> Conv2D(64, 5x5, relu) -> MaxPool(2) -> Flatten
    -> Dense(128, relu) -> Dense(10, softmax)``.
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Conv2D(32, 5, activation="relu", name="conv1")(inputs)
    x = layers.Conv2D(64, 5, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def digits_mlp(input_shape: tuple[int, int, int] = (28, 28, 1), classes: int = 10) -> keras.Model:
    """The 784-256-128-64-32-10 fully connected network.

    ``Input 28x28x1 -> Flatten -> Dense 256, 128, 64, 32 (relu) -> Dense(10, softmax)``.
    """
    inputs = keras.Input(input_shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate((256, 128, 64, 32), start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="digits_mlp")


def shapes_vgg(
    input_shape: tuple[int, int, int] = (64, 64, 3), classes: int = 3, dropout: float = 0.5
) -> keras.Model:
    """A small VGG-style CNN with batch normalization.

    Blocks of 3x3 ``same`` convolutions (``blockB_convK -> blockB_bnK -> blockB_reluK``) with
    32, 64 x2 and 128 x3 filters, each block ending in ``blockB_pool`` (2x2 max pooling), then
    ``global_pool (global max pooling) -> fc1 (Dense 512, relu) -> dropout -> predictions
    (Dense 3, softmax)``. Global max pooling instead of VGG's ``Flatten`` makes the head
    translation invariant and insensitive to how much clutter surrounds the object: it learns
    the shapes within the build budget where ``Flatten`` does not, and more steadily than global
    average pooling. Batch-norm momentum 0.9 lets the moving statistics settle within a few
    hundred steps.
    """
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for block, (filters, convs) in enumerate(((32, 1), (64, 2), (128, 3)), start=1):
        for k in range(1, convs + 1):
            x = layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{k}"
            )(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"block{block}_bn{k}")(x)
            x = layers.Activation("relu", name=f"block{block}_relu{k}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.GlobalMaxPooling2D(name="global_pool")(x)
    x = layers.Dense(512, activation="relu", name="fc1")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="shapes_vgg")
