"""EfficientNetB0 to B7 (Tan & Le, ICML 2019), one builder, in both data
formats.

The graph is keras.applications' (layer names, order, shapes and
initializers): in-graph preprocessing (``Rescaling`` to [0, 1] and a
``Normalization`` whose ImageNet mean and variance the official files
hold, so ``preprocess_input`` is the identity), a stride-2 stem, mobile
inverted bottleneck blocks (1x1 expansion, depthwise convolution,
squeeze-and-excite, 1x1 projection, swish activations) with stochastic
depth on the residual branch (a ``Dropout`` that drops whole samples, in
training only), and a 1x1 ``top_conv`` before the pooled classifier.

With ``weights="imagenet"`` Keras adds a third preprocessing layer: the
official weights expect ``(x - mean) / variance`` where ``Normalization``
computes ``(x - mean) / sqrt(variance)`` (tensorflow#49930), so a
``Rescaling`` by ``1 / sqrt(stddev)`` follows. Here it is ``rescaling_1``
and scales the channel axis of either data format (keras.applications'
broadcasts a 3-vector over the last axis, which is the width under
``channels_first``). The layer sets with and without ``"imagenet"``
differ by this weightless layer only; files load by name.

The depthwise convolutions are :class:`keras_zoo_plus.layers.DepthwiseConv2D`
(the backend's fastest formulation); on torch, inference runs each
convolution -> BatchNormalization -> swish as one fused op
(:mod:`keras_zoo_plus.fusion`).

Beyond keras.applications' signature, ``drop_connect_rate`` (the
stochastic depth rate of the last block, rising linearly from 0; Keras'
private builder fixes it at 0.2) and ``depth_divisor`` (channels are
multiples of it; 8) come last.
"""

from __future__ import annotations

import math

import numpy as np
from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.model_table import efficientnet as table

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
ACTIVATION = "swish"
#: keras.applications' initializers (``CONV_KERNEL_INITIALIZER``,
#: ``DENSE_KERNEL_INITIALIZER``).
CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
DENSE_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 1.0 / 3.0, "mode": "fan_out", "distribution": "uniform"},
}
#: The ImageNet standard deviations behind the extra ``rescaling_1``.
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def channel_rescaling(scales, data_format, name):
    """``Rescaling`` by one factor per channel, on the channel axis of
    ``data_format`` (a ``(C,)`` scale for channels_last, ``(C, 1, 1)``
    for channels_first)."""
    scale = [float(s) for s in scales]
    if data_format == "channels_first":
        scale = [[[s]] for s in scale]
    return layers.Rescaling(scale, name=name)


def stddev_factors(channels):
    """The ``rescaling_1`` factors, ``1 / sqrt(stddev)`` per channel; for
    other than 3 input channels mapped as the loader maps the
    Normalization's statistics (``weights.adapt_statistics``: 1 channel,
    the mean; 2, R and G; more, R, G, B repeated)."""
    from keras_zoo_plus.weights import adapt_statistics

    factors = np.array([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB])
    return adapt_statistics(factors, channels) if channels != 3 else factors


def conv_bn(x, filters, kernel_size, *, data_format, conv_name, bn_name, act_name=None,
            strides=1, padding="same", bn_momentum=BN_MOMENTUM, activation=ACTIVATION):
    """Bias-free convolution -> BatchNormalization (-> activation when
    ``act_name``), keras.applications' names and initializer."""
    return _common.apply_conv_bn(
        x, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
        bn_epsilon=BN_EPSILON, bn_momentum=bn_momentum, bn_name=bn_name, name=conv_name,
        activation=activation if act_name else None, act_name=act_name,
        kernel_initializer=CONV_INITIALIZER,
    )


def apply_squeeze_excite(x, filters, filters_se, *, data_format, prefix, activation=ACTIVATION):
    """Pooled (``se_squeeze``), reshaped to a 1x1 map (``se_reshape``),
    1x1 convolution with ``activation`` (``se_reduce``), 1x1 convolution
    with sigmoid (``se_expand``), multiplied into ``x`` (``se_excite``)."""
    shape = (filters, 1, 1) if data_format == "channels_first" else (1, 1, filters)
    se = layers.GlobalAveragePooling2D(data_format=data_format, name=f"{prefix}se_squeeze")(x)
    se = layers.Reshape(shape, name=f"{prefix}se_reshape")(se)
    se = zoo_layers.Conv2D(
        filters_se, 1, padding="same", activation=activation, data_format=data_format,
        kernel_initializer=CONV_INITIALIZER, name=f"{prefix}se_reduce",
    )(se)
    se = zoo_layers.Conv2D(
        filters, 1, padding="same", activation="sigmoid", data_format=data_format,
        kernel_initializer=CONV_INITIALIZER, name=f"{prefix}se_expand",
    )(se)
    return layers.Multiply(name=f"{prefix}se_excite")([x, se])


def apply_residual(x, shortcut, drop_rate, *, prefix):
    """``x + shortcut``, with ``x`` dropped per sample at ``drop_rate`` in
    training (keras.applications' ``Dropout`` with noise shape
    ``(None, 1, 1, 1)``: stochastic depth; the identity in inference)."""
    if drop_rate > 0:
        x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{prefix}drop")(x)
    return layers.Add(name=f"{prefix}add")([x, shortcut])


def apply_block(x, *, prefix, kernel_size, strides, filters_in, filters_out, expansion,
                drop_rate, data_format):
    """One inverted residual block (keras.applications' ``block``)."""
    shortcut = x
    filters = filters_in * expansion
    if expansion != 1:
        x = conv_bn(x, filters, 1, data_format=data_format, conv_name=f"{prefix}expand_conv",
                    bn_name=f"{prefix}expand_bn", act_name=f"{prefix}expand_activation")
    if strides == 2:
        x = layers.ZeroPadding2D(
            _common.correct_pad(x, kernel_size, data_format), data_format=data_format,
            name=f"{prefix}dwconv_pad",
        )(x)
    x = zoo_layers.DepthwiseConv2D(
        kernel_size, strides=strides, padding="valid" if strides == 2 else "same",
        use_bias=False, depthwise_initializer=CONV_INITIALIZER, data_format=data_format,
        name=f"{prefix}dwconv",
    )(x)
    x = zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
        name=f"{prefix}bn",
    )(x)
    x = layers.Activation(ACTIVATION, name=f"{prefix}activation")(x)
    x = apply_squeeze_excite(x, filters, max(1, int(filters_in * table.SE_RATIO)),
                             data_format=data_format, prefix=prefix)
    x = conv_bn(x, filters_out, 1, data_format=data_format, conv_name=f"{prefix}project_conv",
                bn_name=f"{prefix}project_bn")
    if strides == 1 and filters_in == filters_out:
        x = apply_residual(x, shortcut, drop_rate, prefix=prefix)
    return x


def apply_top(x, spec, *, filters, dropout_rate, bn_momentum=BN_MOMENTUM, dense_kwargs=None):
    """``top_conv`` -> ``top_bn`` -> ``top_activation``, then the pooled
    classifier (dropout before it) or the pooling."""
    df = spec.data_format
    x = conv_bn(x, filters, 1, data_format=df, conv_name="top_conv", bn_name="top_bn",
                act_name="top_activation", bn_momentum=bn_momentum)
    if not spec.include_top:
        return _common.global_pool(x, spec)
    x = _common.global_pool(x, spec, top=True)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    return _common.classifier(x, spec, kernel_initializer=DENSE_INITIALIZER,
                              **(dense_kwargs or {}))


def _efficientnet(spec, variant, *, drop_connect_rate, depth_divisor):
    df = spec.data_format
    width, depth, _, dropout_rate = table.CONFIGS[variant]
    axis = imagenet.channel_axis(df)
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(spec.inputs)
    x = zoo_layers.Normalization(axis=axis, name="normalization")(x)
    if spec.weights == "imagenet":
        channels = spec.input_shape[0 if df == "channels_first" else -1]
        x = channel_rescaling(stddev_factors(channels), df, "rescaling_1")(x)
    x = layers.ZeroPadding2D(_common.correct_pad(x, 3, df), data_format=df,
                             name="stem_conv_pad")(x)
    x = conv_bn(x, table.round_filters(table.STEM_FILTERS, width, depth_divisor), 3,
                strides=2, padding="valid", data_format=df, conv_name="stem_conv",
                bn_name="stem_bn", act_name="stem_activation")
    stages = table.stage_blocks(width, depth, depth_divisor)
    total = float(sum(len(blocks) for _, blocks in stages))
    done = 0
    for _, blocks in stages:
        for prefix, kernel, strides, f_in, f_out, expansion in blocks:
            x = apply_block(x, prefix=prefix, kernel_size=kernel, strides=strides,
                            filters_in=f_in, filters_out=f_out, expansion=expansion,
                            drop_rate=drop_connect_rate * done / total, data_format=df)
            done += 1
    x = apply_top(x, spec, filters=table.round_filters(table.TOP_FILTERS, width, depth_divisor),
                  dropout_rate=dropout_rate)
    return _common.finish(x, spec)


def validate_rates_and_divisor(drop_connect_rate, depth_divisor, weights):
    """Check ``drop_connect_rate`` and ``depth_divisor`` (before any layer).

    Raises:
        TypeError, ValueError: naming the argument, the value received and
            what is allowed.
    """
    if (isinstance(drop_connect_rate, bool) or not isinstance(drop_connect_rate, (int, float))
            or not 0.0 <= drop_connect_rate < 1.0):
        raise ValueError(
            "`drop_connect_rate` must be a float in [0, 1) (the stochastic depth rate of "
            f"the last block). Received: drop_connect_rate={drop_connect_rate!r}"
        )
    if isinstance(depth_divisor, bool) or not isinstance(depth_divisor, (int, np.integer)):
        raise TypeError(
            "`depth_divisor` must be a positive int (channels are rounded to multiples "
            f"of it). Received: depth_divisor={depth_divisor!r}"
        )
    if depth_divisor < 1:
        raise ValueError(
            "`depth_divisor` must be a positive int (channels are rounded to multiples "
            f"of it). Received: depth_divisor={depth_divisor!r}"
        )
    if weights == "imagenet" and depth_divisor != 8:
        raise ValueError(
            '`depth_divisor` must be 8 with `weights="imagenet"` (the official files\' '
            f"channel counts). Received: depth_divisor={depth_divisor!r}"
        )


def _build(model, variant, *, include_top, weights, input_tensor, input_shape, pooling,
           classes, classifier_activation, name, data_format, drop_connect_rate,
           depth_divisor):
    validate_rates_and_divisor(drop_connect_rate, depth_divisor, weights)
    spec = _common.prepare(
        model, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _efficientnet(spec, variant, drop_connect_rate=float(drop_connect_rate),
                         depth_divisor=int(depth_divisor))


_DOC = """Instantiate the {title} architecture.

    Reference: [EfficientNet: Rethinking Model Scaling for Convolutional
    Neural Networks](https://arxiv.org/abs/1905.11946) (ICML 2019). Unlike
    keras.applications, both data formats are supported.

    The model preprocesses its input itself (rescaling and ImageNet
    normalisation layers): give it RGB pixels in [0, 255];
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
def EfficientNetB0(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb0", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b0", "b0", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB1(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb1", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b1", "b1", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB2(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb2", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b2", "b2", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB3(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb3", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b3", "b3", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB4(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb4", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b4", "b4", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB5(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb5", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b5", "b5", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB6(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb6", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b6", "b6", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


@_common.constructor
def EfficientNetB7(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None,
    classes=1000, classifier_activation="softmax", name="efficientnetb7", data_format=None,
    drop_connect_rate=0.2, depth_divisor=8,
):
    return _build(
        "efficientnet_b7", "b7", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_connect_rate=drop_connect_rate, depth_divisor=depth_divisor,
    )


for _variant, _ctor in (("b0", EfficientNetB0), ("b1", EfficientNetB1), ("b2", EfficientNetB2),
                        ("b3", EfficientNetB3), ("b4", EfficientNetB4), ("b5", EfficientNetB5),
                        ("b6", EfficientNetB6), ("b7", EfficientNetB7)):
    _width, _, _size, _ = table.CONFIGS[_variant]
    _ctor.__doc__ = _DOC.format(title=_ctor.__name__, size=_size,
                                features=table.round_filters(table.TOP_FILTERS, _width))
del _variant, _ctor, _width, _size

preprocess_input = _common.make_preprocess_input("efficientnet")
decode_predictions = imagenet.decode_predictions

__all__ = [
    "EfficientNetB0",
    "EfficientNetB1",
    "EfficientNetB2",
    "EfficientNetB3",
    "EfficientNetB4",
    "EfficientNetB5",
    "EfficientNetB6",
    "EfficientNetB7",
    "preprocess_input",
    "decode_predictions",
]
