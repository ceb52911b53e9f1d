"""Inception-v3 (Szegedy et al., CVPR 2016) in the keras.applications
layout: a convolutional stem and eleven Inception modules ``mixed0`` ..
``mixed10``.

keras.applications leaves almost every layer auto-named (``conv2d_12``,
``batch_normalization_12``), so the official weight files are matched by
the order of weighted layers; our names are stable and say where a layer
sits: ``mixed4_branch7x7dbl_3_conv`` is the third convolution of the
double-7x7 branch of ``mixed4``.
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common

BN_EPSILON = 1e-3



def apply_conv_bn(x, filters, kernel_size, *, strides=1, padding="same", data_format, name):
    """Bias-free convolution, BatchNormalization without scale, ReLU.

    Layer names: ``{name}_conv``, ``{name}_bn``, ``{name}_relu``.
    """
    return _common.apply_conv_bn(
        x, filters, kernel_size, strides=strides, padding=padding, bn_epsilon=BN_EPSILON,
        bn_scale=False, activation="relu", conv_suffix="_conv",
        data_format=data_format, name=name,
    )


def _concat(branches, *, data_format, name):
    return layers.Concatenate(axis=imagenet.channel_axis(data_format), name=name)(branches)


def _avg_pool_branch(x, filters, *, data_format, name):
    """3x3/1 average pool ("same") then a 1x1 convolution."""
    p = zoo_layers.AveragePooling2D(
        3, strides=1, padding="same", data_format=data_format, name=f"{name}_pool"
    )(x)
    return apply_conv_bn(p, filters, 1, data_format=data_format, name=f"{name}_branch_pool")


def apply_block_a(x, pool_filters, *, data_format, name):
    """35x35 module (mixed0-2): 1x1, 5x5, double 3x3 and pool branches."""
    df = data_format
    b1 = apply_conv_bn(x, 64, 1, data_format=df, name=f"{name}_branch1x1")
    b5 = apply_conv_bn(x, 48, 1, data_format=df, name=f"{name}_branch5x5_1")
    b5 = apply_conv_bn(b5, 64, 5, data_format=df, name=f"{name}_branch5x5_2")
    b3 = apply_conv_bn(x, 64, 1, data_format=df, name=f"{name}_branch3x3dbl_1")
    b3 = apply_conv_bn(b3, 96, 3, data_format=df, name=f"{name}_branch3x3dbl_2")
    b3 = apply_conv_bn(b3, 96, 3, data_format=df, name=f"{name}_branch3x3dbl_3")
    bp = _avg_pool_branch(x, pool_filters, data_format=df, name=name)
    return _concat([b1, b5, b3, bp], data_format=df, name=name)


def apply_reduction_a(x, *, data_format, name):
    """35x35 -> 17x17 (mixed3)."""
    df = data_format
    b3 = apply_conv_bn(x, 384, 3, strides=2, padding="valid", data_format=df, name=f"{name}_branch3x3")
    bd = apply_conv_bn(x, 64, 1, data_format=df, name=f"{name}_branch3x3dbl_1")
    bd = apply_conv_bn(bd, 96, 3, data_format=df, name=f"{name}_branch3x3dbl_2")
    bd = apply_conv_bn(
        bd, 96, 3, strides=2, padding="valid", data_format=df, name=f"{name}_branch3x3dbl_3"
    )
    bp = zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name=f"{name}_pool")(x)
    return _concat([b3, bd, bp], data_format=df, name=name)


def apply_block_b(x, mid, *, data_format, name):
    """17x17 module (mixed4-7) with factorised 7x7 branches of ``mid``
    intermediate channels."""
    df = data_format
    b1 = apply_conv_bn(x, 192, 1, data_format=df, name=f"{name}_branch1x1")
    b7 = apply_conv_bn(x, mid, 1, data_format=df, name=f"{name}_branch7x7_1")
    b7 = apply_conv_bn(b7, mid, (1, 7), data_format=df, name=f"{name}_branch7x7_2")
    b7 = apply_conv_bn(b7, 192, (7, 1), data_format=df, name=f"{name}_branch7x7_3")
    bd = apply_conv_bn(x, mid, 1, data_format=df, name=f"{name}_branch7x7dbl_1")
    bd = apply_conv_bn(bd, mid, (7, 1), data_format=df, name=f"{name}_branch7x7dbl_2")
    bd = apply_conv_bn(bd, mid, (1, 7), data_format=df, name=f"{name}_branch7x7dbl_3")
    bd = apply_conv_bn(bd, mid, (7, 1), data_format=df, name=f"{name}_branch7x7dbl_4")
    bd = apply_conv_bn(bd, 192, (1, 7), data_format=df, name=f"{name}_branch7x7dbl_5")
    bp = _avg_pool_branch(x, 192, data_format=df, name=name)
    return _concat([b1, b7, bd, bp], data_format=df, name=name)


def apply_reduction_b(x, *, data_format, name):
    """17x17 -> 8x8 (mixed8)."""
    df = data_format
    b3 = apply_conv_bn(x, 192, 1, data_format=df, name=f"{name}_branch3x3_1")
    b3 = apply_conv_bn(
        b3, 320, 3, strides=2, padding="valid", data_format=df, name=f"{name}_branch3x3_2"
    )
    b7 = apply_conv_bn(x, 192, 1, data_format=df, name=f"{name}_branch7x7x3_1")
    b7 = apply_conv_bn(b7, 192, (1, 7), data_format=df, name=f"{name}_branch7x7x3_2")
    b7 = apply_conv_bn(b7, 192, (7, 1), data_format=df, name=f"{name}_branch7x7x3_3")
    b7 = apply_conv_bn(
        b7, 192, 3, strides=2, padding="valid", data_format=df, name=f"{name}_branch7x7x3_4"
    )
    bp = zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name=f"{name}_pool")(x)
    return _concat([b3, b7, bp], data_format=df, name=name)


def apply_block_c(x, *, data_format, name):
    """8x8 module (mixed9, mixed10) with split 1x3/3x1 branches.

    keras.applications names the inner concatenations ``mixed9_0`` and
    ``mixed9_1`` (the latter inside mixed10); ours are
    ``{name}_branch3x3`` and ``{name}_branch3x3dbl`` so every layer of a
    module carries its module's prefix.
    """
    df = data_format
    b1 = apply_conv_bn(x, 320, 1, data_format=df, name=f"{name}_branch1x1")
    b3 = apply_conv_bn(x, 384, 1, data_format=df, name=f"{name}_branch3x3_1")
    b3a = apply_conv_bn(b3, 384, (1, 3), data_format=df, name=f"{name}_branch3x3_2a")
    b3b = apply_conv_bn(b3, 384, (3, 1), data_format=df, name=f"{name}_branch3x3_2b")
    b3 = _concat([b3a, b3b], data_format=df, name=f"{name}_branch3x3")
    bd = apply_conv_bn(x, 448, 1, data_format=df, name=f"{name}_branch3x3dbl_1")
    bd = apply_conv_bn(bd, 384, 3, data_format=df, name=f"{name}_branch3x3dbl_2")
    bda = apply_conv_bn(bd, 384, (1, 3), data_format=df, name=f"{name}_branch3x3dbl_3a")
    bdb = apply_conv_bn(bd, 384, (3, 1), data_format=df, name=f"{name}_branch3x3dbl_3b")
    bd = _concat([bda, bdb], data_format=df, name=f"{name}_branch3x3dbl")
    bp = _avg_pool_branch(x, 192, data_format=df, name=name)
    return _concat([b1, b3, bd, bp], data_format=df, name=name)


def apply_stem(x, *, data_format):
    df = data_format
    x = apply_conv_bn(x, 32, 3, strides=2, padding="valid", data_format=df, name="stem_conv1")
    x = apply_conv_bn(x, 32, 3, padding="valid", data_format=df, name="stem_conv2")
    x = apply_conv_bn(x, 64, 3, data_format=df, name="stem_conv3")
    x = zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name="stem_pool1")(x)
    x = apply_conv_bn(x, 80, 1, padding="valid", data_format=df, name="stem_conv4")
    x = apply_conv_bn(x, 192, 3, padding="valid", data_format=df, name="stem_conv5")
    return zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name="stem_pool2")(x)


def _inception_v3(spec):
    df = spec.data_format
    x = apply_stem(spec.inputs, data_format=df)
    for i, pool_filters in enumerate((32, 64, 64)):
        x = apply_block_a(x, pool_filters, data_format=df, name=f"mixed{i}")
    x = apply_reduction_a(x, data_format=df, name="mixed3")
    for i, mid in zip(range(4, 8), (128, 160, 160, 192)):
        x = apply_block_b(x, mid, data_format=df, name=f"mixed{i}")
    x = apply_reduction_b(x, data_format=df, name="mixed8")
    for i in (9, 10):
        x = apply_block_c(x, data_format=df, name=f"mixed{i}")
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


@_common.constructor
def InceptionV3(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="inception_v3",
    data_format=None,
):
    """Instantiate the Inception-v3 architecture.

    The module outputs keep the keras.applications names ``mixed0`` ..
    ``mixed10``; the stem layers are ``stem_*`` and every layer of a module
    starts with the module's name.

    Args:
        include_top: whether to include the global-average-pool + Dense top.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise (299, 299, 3), or (3, 299, 299) with channels_first);
            at least 75 pixels high and wide.
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
        >>> model = InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
        >>> model.output_shape
        (None, 1, 1, 2048)
    """
    spec = _common.prepare(
        "inception_v3", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _inception_v3(spec)


preprocess_input = _common.make_preprocess_input("inception_v3")


decode_predictions = imagenet.decode_predictions
