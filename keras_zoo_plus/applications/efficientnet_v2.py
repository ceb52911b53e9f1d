"""EfficientNetV2 B0 to B3, S, M and L (Tan & Le, ICML 2021), one builder,
in both data formats.

The graph is keras.applications' (layer names, order, shapes and
initializers): in-graph preprocessing with ``include_preprocessing=True``
(B0-B3: ``Rescaling`` to [0, 1] and a ``Normalization`` with the ImageNet
mean and variance as constants; S, M, L: ``Rescaling`` to [-1, 1)), so
``preprocess_input`` is the identity; a stride-2 stem; fused MBConv
blocks (a full 3x3 convolution in place of expansion and depthwise) in
the first stages and MBConv blocks with squeeze-and-excite after, all
with "same" padding (TensorFlow's windows on every backend), swish,
BatchNormalization momentum 0.9, and stochastic depth on the residual
branch (training only); then ``top_conv`` and the pooled classifier.

keras.applications picks the block table and the preprocessing from the
model's ``name`` (``EfficientNetV2B0(name="x")`` fails there); here they
follow the constructor, whatever ``name`` is.

Beyond keras.applications' signature, ``drop_connect_rate`` (0.2) and
``depth_divisor`` (8), the arguments Keras' private builder fixes, come
last.
"""

from __future__ import annotations

from keras import initializers, layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.applications.efficientnet import (
    ACTIVATION,
    BN_EPSILON,
    CONV_INITIALIZER,
    apply_residual,
    apply_squeeze_excite,
    apply_top,
    conv_bn,
    validate_rates_and_divisor,
)
from keras_zoo_plus.model_table import efficientnet_v2 as table

BN_MOMENTUM = 0.9
DROPOUT_RATE = 0.2
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_VARIANCE = (0.229**2, 0.224**2, 0.225**2)


def apply_mbconv(x, *, prefix, kernel_size, strides, filters_in, filters_out, expansion,
                 se_ratio, drop_rate, data_format):
    """MBConv: 1x1 expansion, depthwise ``dwconv2``, squeeze-and-excite,
    1x1 projection, residual (keras.applications' ``MBConvBlock``)."""
    shortcut = x
    filters = filters_in * expansion
    bn = dict(data_format=data_format, bn_momentum=BN_MOMENTUM)
    if expansion != 1:
        x = conv_bn(x, filters, 1, conv_name=f"{prefix}expand_conv", bn_name=f"{prefix}expand_bn",
                    act_name=f"{prefix}expand_activation", **bn)
    x = zoo_layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="same", use_bias=False,
        depthwise_initializer=CONV_INITIALIZER, data_format=data_format,
        name=f"{prefix}dwconv2",
    )(x)
    x = zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
        name=f"{prefix}bn",
    )(x)
    x = layers.Activation(ACTIVATION, name=f"{prefix}activation")(x)
    if 0 < se_ratio <= 1:
        x = apply_squeeze_excite(x, filters, max(1, int(filters_in * se_ratio)),
                                 data_format=data_format, prefix=prefix)
    x = conv_bn(x, filters_out, 1, conv_name=f"{prefix}project_conv",
                bn_name=f"{prefix}project_bn", **bn)
    if strides == 1 and filters_in == filters_out:
        x = apply_residual(x, shortcut, drop_rate, prefix=prefix)
    return x


def apply_fused_mbconv(x, *, prefix, kernel_size, strides, filters_in, filters_out, expansion,
                       se_ratio, drop_rate, data_format):
    """Fused MBConv: a full ``kernel_size`` expansion convolution (or, at
    expansion 1, the projection itself with the kernel and stride),
    squeeze-and-excite, 1x1 projection, residual
    (keras.applications' ``FusedMBConvBlock``)."""
    shortcut = x
    filters = filters_in * expansion
    bn = dict(data_format=data_format, bn_momentum=BN_MOMENTUM)
    if expansion != 1:
        x = conv_bn(x, filters, kernel_size, strides=strides, conv_name=f"{prefix}expand_conv",
                    bn_name=f"{prefix}expand_bn", act_name=f"{prefix}expand_activation", **bn)
    if 0 < se_ratio <= 1:
        x = apply_squeeze_excite(x, filters, max(1, int(filters_in * se_ratio)),
                                 data_format=data_format, prefix=prefix)
    expanded = expansion != 1
    x = conv_bn(x, filters_out, 1 if expanded else kernel_size, strides=1 if expanded else strides,
                conv_name=f"{prefix}project_conv", bn_name=f"{prefix}project_bn",
                act_name=None if expanded else f"{prefix}project_activation", **bn)
    if strides == 1 and filters_in == filters_out:
        x = apply_residual(x, shortcut, drop_rate, prefix=prefix)
    return x


def _efficientnet_v2(spec, variant, *, include_preprocessing, drop_connect_rate, depth_divisor):
    df = spec.data_format
    width = table.CONFIGS[variant][0]
    axis = imagenet.channel_axis(df)
    x = spec.inputs
    channels = spec.input_shape[0 if df == "channels_first" else -1]
    if include_preprocessing:
        if variant.startswith("b") and channels == 3:
            x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
            x = zoo_layers.Normalization(axis=axis, mean=IMAGENET_MEAN,
                                         variance=IMAGENET_VARIANCE, name="normalization")(x)
        else:
            x = layers.Rescaling(1.0 / 128.0, offset=-1, name="rescaling")(x)
    stages = table.stage_blocks(variant, depth_divisor)
    first_in = stages[0][1][0][3]
    x = conv_bn(x, first_in, 3, strides=2, data_format=df, conv_name="stem_conv",
                bn_name="stem_bn", act_name="stem_activation", bn_momentum=BN_MOMENTUM)
    # keras.applications divides by the table's repeats before rounding.
    total = float(sum(row[1] for row in table.BLOCKS[variant]))
    done = 0
    for _, blocks in stages:
        for prefix, kernel, strides, f_in, f_out, expansion, se_ratio, fused in blocks:
            apply = apply_fused_mbconv if fused else apply_mbconv
            x = apply(x, prefix=prefix, kernel_size=kernel, strides=strides, filters_in=f_in,
                      filters_out=f_out, expansion=expansion, se_ratio=se_ratio,
                      drop_rate=drop_connect_rate * done / total, data_format=df)
            done += 1
    x = apply_top(x, spec, filters=table.round_filters(table.TOP_FILTERS, width, depth_divisor),
                  dropout_rate=DROPOUT_RATE, bn_momentum=BN_MOMENTUM,
                  dense_kwargs={"bias_initializer": initializers.Constant(0.0)})
    return _common.finish(x, spec)


def _build(model, variant, *, include_top, weights, input_tensor, input_shape, pooling,
           classes, classifier_activation, include_preprocessing, name, data_format,
           drop_connect_rate, depth_divisor):
    imagenet.validate_bool("include_preprocessing", include_preprocessing)
    validate_rates_and_divisor(drop_connect_rate, depth_divisor, weights)
    spec = _common.prepare(
        model, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _efficientnet_v2(spec, variant, include_preprocessing=include_preprocessing,
                            drop_connect_rate=float(drop_connect_rate),
                            depth_divisor=int(depth_divisor))


_DOC = """Instantiate the {title} architecture.

    Reference: [EfficientNetV2: Smaller Models and Faster Training](
    https://arxiv.org/abs/2104.00298) (ICML 2021). Unlike
    keras.applications, both data formats are supported.

    With `include_preprocessing=True` (the default) the model preprocesses
    its input itself ({preprocessing}): give it RGB pixels in [0, 255];
    `preprocess_input` is the identity. The default input size is
    {size}x{size}.

    Args:
        include_top: whether to include the pooled, dropout and Dense top.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise ({size}, {size}, 3), or (3, {size}, {size}) with
            channels_first); at least 32 pixels high and wide.
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
        include_preprocessing: whether the model starts with its
            preprocessing layers.
        name: model name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.
        drop_connect_rate: stochastic depth rate of the last block, rising
            linearly from 0 over the blocks (0.2, keras.applications'
            value). Drops only in training.
        depth_divisor: channels are rounded to multiples of it (8; 8 with
            imagenet weights).

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = {title}(weights=None, include_top=False, pooling="avg",
        ...                 input_shape=(3, 64, 64), data_format="channels_first")
        >>> model.output_shape
        (None, {features})
    """


@_common.constructor
def EfficientNetV2B0(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-b0", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_b0", "b0", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetV2B1(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-b1", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_b1", "b1", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetV2B2(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-b2", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_b2", "b2", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetV2B3(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-b3", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_b3", "b3", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetV2S(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-s", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_s", "s", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetV2M(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-m", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_m", "m", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetV2L(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", include_preprocessing=True,
    name="efficientnetv2-l", data_format=None, drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_v2_l", "l", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, include_preprocessing=include_preprocessing,
        name=name, data_format=data_format, drop_connect_rate=drop_connect_rate,
        depth_divisor=depth_divisor,
    )


for _variant, _ctor in (("b0", EfficientNetV2B0), ("b1", EfficientNetV2B1),
                        ("b2", EfficientNetV2B2), ("b3", EfficientNetV2B3),
                        ("s", EfficientNetV2S), ("m", EfficientNetV2M), ("l", EfficientNetV2L)):
    _ctor.__doc__ = _DOC.format(
        title=_ctor.__name__, size=table.CONFIGS[_variant][2],
        features=table.round_filters(table.TOP_FILTERS, table.CONFIGS[_variant][0]),
        preprocessing=("rescaling to [0, 1] and ImageNet normalisation"
                       if _variant.startswith("b") else "rescaling to [-1, 1)"),
    )
del _variant, _ctor

preprocess_input = _common.make_preprocess_input("efficientnet_v2")
decode_predictions = imagenet.decode_predictions

__all__ = [
    "EfficientNetV2B0",
    "EfficientNetV2B1",
    "EfficientNetV2B2",
    "EfficientNetV2B3",
    "EfficientNetV2S",
    "EfficientNetV2M",
    "EfficientNetV2L",
    "preprocess_input",
    "decode_predictions",
]
