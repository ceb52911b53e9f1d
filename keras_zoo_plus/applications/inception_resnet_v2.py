"""Inception-ResNet-v2 (Szegedy et al., AAAI 2017) in the
keras.applications layout: stem, ``mixed_5b``, 10 x ``block35``,
``mixed_6a``, 20 x ``block17``, ``mixed_7a``, 10 x ``block8``, ``conv_7b``.

Each residual block adds ``scale * residual`` to its input with
:class:`keras_zoo_plus.layers.ScaledResidual` (serialisable, weightless,
named ``block35_1`` like the tf_keras ``Lambda`` it replaces).
keras.applications leaves the branch layers auto-named, so the official
weight files are matched by the order of weighted layers; ours get stable
names such as ``block17_3_branch_1_2`` (conv), ``..._bn``, ``..._ac``.
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common

BN_EPSILON = 1e-3


# (block type, repeats, residual scale) in network order.
_BLOCKS = {"block35": (10, 0.17), "block17": (20, 0.1), "block8": (10, 0.2)}


def apply_conv_bn(
    x, filters, kernel_size, *, strides=1, padding="same", activation="relu", data_format, name,
):
    """Bias-free convolution, BatchNormalization without scale, then
    ``activation``. Layer names follow keras.applications: ``name``
    (convolution), ``{name}_bn``, ``{name}_ac``."""
    return _common.apply_conv_bn(
        x, filters, kernel_size, strides=strides, padding=padding, bn_epsilon=BN_EPSILON,
        bn_scale=False, activation=activation, act_suffix="_ac",
        data_format=data_format, name=name,
    )


def _concat(branches, *, data_format, name):
    return layers.Concatenate(axis=imagenet.channel_axis(data_format), name=name)(branches)


# Branch layouts of the residual blocks: per branch, (filters, kernel) of
# each convolution.
_BRANCHES = {
    "block35": (((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3))),
    "block17": (((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1)))),
    "block8": (((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1)))),
}


def apply_residual_block(x, block_type, block_idx, *, scale, activation="relu", data_format):
    """One Inception-ResNet block: parallel branches, concatenation, a 1x1
    projection (with bias) back to the input width, ``x + scale * up``."""
    df = data_format
    name = f"{block_type}_{block_idx}"
    branches = []
    for b, convs in enumerate(_BRANCHES[block_type]):
        y = x
        for j, (filters, kernel) in enumerate(convs, 1):
            y = apply_conv_bn(y, filters, kernel, data_format=df, name=f"{name}_branch_{b}_{j}")
        branches.append(y)
    mixed = _concat(branches, data_format=df, name=f"{name}_mixed")
    width = x.shape[imagenet.channel_axis(df)]
    # The projection has a bias and no BatchNormalization (as the official graph).
    up = zoo_layers.Conv2D(width, 1, padding="same", data_format=df, name=f"{name}_conv")(mixed)
    x = zoo_layers.ScaledResidual(scale, name=name)([x, up])
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_ac")(x)
    return x


def apply_stem(x, *, data_format):
    df = data_format
    x = apply_conv_bn(x, 32, 3, strides=2, padding="valid", data_format=df, name="stem_conv1")
    x = apply_conv_bn(x, 32, 3, padding="valid", data_format=df, name="stem_conv2")
    x = apply_conv_bn(x, 64, 3, data_format=df, name="stem_conv3")
    x = zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name="stem_pool1")(x)
    x = apply_conv_bn(x, 80, 1, padding="valid", data_format=df, name="stem_conv4")
    x = apply_conv_bn(x, 192, 3, padding="valid", data_format=df, name="stem_conv5")
    return zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name="stem_pool2")(x)


def apply_mixed_5b(x, *, data_format):
    df, n = data_format, "mixed_5b"
    b0 = apply_conv_bn(x, 96, 1, data_format=df, name=f"{n}_branch_0")
    b1 = apply_conv_bn(x, 48, 1, data_format=df, name=f"{n}_branch_1_1")
    b1 = apply_conv_bn(b1, 64, 5, data_format=df, name=f"{n}_branch_1_2")
    b2 = apply_conv_bn(x, 64, 1, data_format=df, name=f"{n}_branch_2_1")
    b2 = apply_conv_bn(b2, 96, 3, data_format=df, name=f"{n}_branch_2_2")
    b2 = apply_conv_bn(b2, 96, 3, data_format=df, name=f"{n}_branch_2_3")
    bp = zoo_layers.AveragePooling2D(
        3, strides=1, padding="same", data_format=df, name=f"{n}_pool"
    )(x)
    bp = apply_conv_bn(bp, 64, 1, data_format=df, name=f"{n}_branch_pool")
    return _concat([b0, b1, b2, bp], data_format=df, name=n)


def apply_mixed_6a(x, *, data_format):
    df, n = data_format, "mixed_6a"
    b0 = apply_conv_bn(x, 384, 3, strides=2, padding="valid", data_format=df, name=f"{n}_branch_0")
    b1 = apply_conv_bn(x, 256, 1, data_format=df, name=f"{n}_branch_1_1")
    b1 = apply_conv_bn(b1, 256, 3, data_format=df, name=f"{n}_branch_1_2")
    b1 = apply_conv_bn(
        b1, 384, 3, strides=2, padding="valid", data_format=df, name=f"{n}_branch_1_3"
    )
    bp = zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name=f"{n}_pool")(x)
    return _concat([b0, b1, bp], data_format=df, name=n)


def apply_mixed_7a(x, *, data_format):
    df, n = data_format, "mixed_7a"
    b0 = apply_conv_bn(x, 256, 1, data_format=df, name=f"{n}_branch_0_1")
    b0 = apply_conv_bn(
        b0, 384, 3, strides=2, padding="valid", data_format=df, name=f"{n}_branch_0_2"
    )
    b1 = apply_conv_bn(x, 256, 1, data_format=df, name=f"{n}_branch_1_1")
    b1 = apply_conv_bn(
        b1, 288, 3, strides=2, padding="valid", data_format=df, name=f"{n}_branch_1_2"
    )
    b2 = apply_conv_bn(x, 256, 1, data_format=df, name=f"{n}_branch_2_1")
    b2 = apply_conv_bn(b2, 288, 3, data_format=df, name=f"{n}_branch_2_2")
    b2 = apply_conv_bn(
        b2, 320, 3, strides=2, padding="valid", data_format=df, name=f"{n}_branch_2_3"
    )
    bp = zoo_layers.MaxPooling2D(3, strides=2, data_format=df, name=f"{n}_pool")(x)
    return _concat([b0, b1, b2, bp], data_format=df, name=n)


def _repeat(x, block_type, *, data_format, last_linear=False):
    repeats, scale = _BLOCKS[block_type]
    for idx in range(1, repeats + 1):
        # The very last block8 is linear with scale 1 (keras.applications).
        linear = last_linear and idx == repeats
        x = apply_residual_block(
            x, block_type, idx, scale=1.0 if linear else scale,
            activation=None if linear else "relu", data_format=data_format,
        )
    return x


def _inception_resnet_v2(spec):
    df = spec.data_format
    x = apply_stem(spec.inputs, data_format=df)
    x = apply_mixed_5b(x, data_format=df)
    x = _repeat(x, "block35", data_format=df)
    x = apply_mixed_6a(x, data_format=df)
    x = _repeat(x, "block17", data_format=df)
    x = apply_mixed_7a(x, data_format=df)
    x = _repeat(x, "block8", data_format=df, last_linear=True)
    x = apply_conv_bn(x, 1536, 1, data_format=df, name="conv_7b")
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


@_common.constructor
def InceptionResNetV2(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax",
    name="inception_resnet_v2", data_format=None,
):
    """Instantiate the Inception-ResNet-v2 architecture.

    Explicit keras.applications names are kept (``mixed_5b``,
    ``block35_1_mixed``, ``block35_1_conv``, ``block35_1_ac``, ``conv_7b``,
    ``conv_7b_ac``, ...); the residual sum of each block is ``block35_1``
    etc., the stem is ``stem_*``.

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
        >>> model = InceptionResNetV2(weights=None, include_top=False, input_shape=(75, 75, 3))
        >>> model.output_shape
        (None, 1, 1, 1536)
    """
    spec = _common.prepare(
        "inception_resnet_v2", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _inception_resnet_v2(spec)


preprocess_input = _common.make_preprocess_input("inception_resnet_v2")


decode_predictions = imagenet.decode_predictions
