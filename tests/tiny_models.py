"""Tiny functional models in the zoo's style, for weight-loading tests
that must not pay for a real architecture."""

from __future__ import annotations

import keras

from keras_zoo_plus import layers as zoo_layers


def tiny(include_top=True, *, filters=4, classes=5, name="tiny"):
    """conv(3x3) -> BN -> conv(1x1) [-> GAP -> Dense]; 8x8x3 input."""
    inputs = keras.Input((8, 8, 3), name="input")
    x = zoo_layers.Conv2D(filters, 3, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = zoo_layers.Conv2D(6, 1, name="conv2")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, name="predictions")(x)
    return keras.Model(inputs, x, name=name)


def other_architecture():
    """Same number of weighted layers as ``tiny(False)``, other shapes and names."""
    inputs = keras.Input((8, 8, 3))
    x = zoo_layers.Conv2D(7, 5, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = zoo_layers.Conv2D(6, 1, name="head")(x)
    return keras.Model(inputs, x, name="other")


def weights_of(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.get_weights()]
