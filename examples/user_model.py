"""A user's own model, checked across backends by `keras-zoo-plus check`.

A zoo backbone (MobileNet, alpha 0.25) under a custom head with a custom
layer, the kind of model a project keeps in its own package. From the
repository root:

    keras-zoo-plus check --model examples.user_model:build --input-shape 64,80,3

builds it in every backend worker, in both data formats, with the same
synthetic weights, and compares the logits. `build` takes `data_format`
and `input_shape`, which `check` passes (the input shape in the cell's
order); a builder that takes neither is called without them, Keras'
default data format set to the cell's while it runs.

A saved copy is checked the same way, with its own weights:

    keras-zoo-plus check my_model.keras --custom-objects examples.user_model:CUSTOM_OBJECTS
"""

import keras

import keras_zoo_plus as kzp


@keras.saving.register_keras_serializable(package="user_model")
class ChannelScale(keras.layers.Layer):
    """A learned scale and shift per channel (a custom layer with weights)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format or keras.config.image_data_format()

    def build(self, input_shape):
        axis = 1 if self.data_format == "channels_first" else -1
        channels = input_shape[axis]
        self.gamma = self.add_weight(name="gamma", shape=(channels,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros")

    def call(self, x):
        shape = (1, -1, 1, 1) if self.data_format == "channels_first" else (1, 1, 1, -1)
        return x * keras.ops.reshape(self.gamma, shape) + keras.ops.reshape(self.beta, shape)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


CUSTOM_OBJECTS = {"ChannelScale": ChannelScale}


def build(input_shape=None, data_format=None, classes=10):
    """MobileNet (alpha 0.25, no top) -> ChannelScale -> pooling -> a small
    classifier returning logits. ``input_shape`` follows ``data_format``
    (default 64x80 pixels, 3 channels)."""
    data_format = data_format or keras.config.image_data_format()
    if input_shape is None:
        input_shape = (64, 80, 3) if data_format == "channels_last" else (3, 64, 80)
    base = kzp.create_model("mobilenet", weights=None, include_top=False, alpha=0.25,
                            input_shape=input_shape, data_format=data_format)
    x = ChannelScale(data_format=data_format, name="features_scale")(base.output)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, name="pool")(x)
    x = keras.layers.Dense(64, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(0.2, name="head_dropout")(x)
    logits = keras.layers.Dense(classes, name="logits")(x)
    return keras.Model(base.input, logits, name="user_model")
