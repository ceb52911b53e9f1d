"""Xception (Chollet, CVPR 2017): depthwise-separable convolutions with
residual connections, in the keras.applications layout.

The entry flow (block1..block4) downsamples with strided 1x1 residual
convolutions, the middle flow (block5..block12) repeats eight identity
residual blocks at 728 channels, and the exit flow (block13, block14)
widens to 2048 channels.
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common

# Keras' BatchNormalization default; the official weights were trained with it.
BN_EPSILON = 1e-3

# One stage per block, in network order; the official layer names are all
# ``block<N>_...``, and so are the residual layers we name explicitly.
def apply_conv_bn(x, filters, kernel_size, *, strides=1, padding="valid", separable=False,
                  data_format, name):
    """Bias-free (separable) convolution followed by BatchNormalization.

    Layer names: ``name`` (convolution), ``{name}_bn``.
    """
    return _common.apply_conv_bn(
        x, filters, kernel_size, strides=strides, padding=padding, separable=separable,
        bn_epsilon=BN_EPSILON, data_format=data_format, name=name,
    )


def apply_sepconv_bn(x, filters, *, data_format, name):
    """3x3 bias-free separable convolution ("same") and BatchNormalization."""
    return apply_conv_bn(x, filters, 3, padding="same", separable=True,
                         data_format=data_format, name=name)


def apply_downsampling_block(x, filters, *, relu_first=True, data_format, name):
    """Entry/exit-flow block: two separable convolutions and a strided max
    pool, added to a strided 1x1 convolution of the input.

    ``filters`` is ``(first, second)``. The residual convolution is created
    first, as in keras.applications, because the official weight files are
    matched by the order of weighted layers.
    """
    residual = apply_conv_bn(
        x, filters[1], 1, strides=2, padding="same", data_format=data_format,
        name=f"{name}_residual_conv",
    )
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_sepconv1_act")(x)
    x = apply_sepconv_bn(x, filters[0], data_format=data_format, name=f"{name}_sepconv1")
    x = layers.Activation("relu", name=f"{name}_sepconv2_act")(x)
    x = apply_sepconv_bn(x, filters[1], data_format=data_format, name=f"{name}_sepconv2")
    x = zoo_layers.MaxPooling2D(
        3, strides=2, padding="same", data_format=data_format, name=f"{name}_pool"
    )(x)
    return layers.Add(name=f"{name}_add")([x, residual])


def apply_middle_block(x, *, data_format, name):
    """Middle-flow block: three ReLU + separable convolutions (728) added to
    the block input."""
    residual = x
    for i in (1, 2, 3):
        x = layers.Activation("relu", name=f"{name}_sepconv{i}_act")(x)
        x = apply_sepconv_bn(x, 728, data_format=data_format, name=f"{name}_sepconv{i}")
    return layers.Add(name=f"{name}_add")([x, residual])


def _xception(spec):
    df = spec.data_format
    x = apply_conv_bn(spec.inputs, 32, 3, strides=2, data_format=df, name="block1_conv1")
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = apply_conv_bn(x, 64, 3, data_format=df, name="block1_conv2")
    x = layers.Activation("relu", name="block1_conv2_act")(x)
    # Entry flow: block2 follows a ReLU already, so it starts with the conv.
    x = apply_downsampling_block(x, (128, 128), relu_first=False, data_format=df, name="block2")
    x = apply_downsampling_block(x, (256, 256), data_format=df, name="block3")
    x = apply_downsampling_block(x, (728, 728), data_format=df, name="block4")
    for b in range(5, 13):
        x = apply_middle_block(x, data_format=df, name=f"block{b}")
    x = apply_downsampling_block(x, (728, 1024), data_format=df, name="block13")
    x = apply_sepconv_bn(x, 1536, data_format=df, name="block14_sepconv1")
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = apply_sepconv_bn(x, 2048, data_format=df, name="block14_sepconv2")
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


@_common.constructor
def Xception(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="xception",
    data_format=None,
):
    """Instantiate the Xception architecture.

    Layer names follow keras.applications (``block1_conv1``,
    ``block4_sepconv2_bn``, ...); the layers Keras leaves auto-named get
    stable names: ``block{N}_residual_conv``, ``block{N}_residual_conv_bn``
    and ``block{N}_add``.

    Args:
        include_top: whether to include the global-average-pool + Dense top.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise (299, 299, 3), or (3, 299, 299) with channels_first);
            at least 71 pixels high and wide.
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
            With imagenet weights only None and "softmax".
        name: model name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = Xception(weights=None, include_top=False, input_shape=(71, 71, 3))
        >>> model.output_shape
        (None, 3, 3, 2048)
    """
    spec = _common.prepare(
        "xception", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _xception(spec)


preprocess_input = _common.make_preprocess_input("xception")


decode_predictions = imagenet.decode_predictions
