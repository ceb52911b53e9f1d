"""DenseNet121/169/201 (Huang et al., CVPR 2017), one builder.

The graph is the official Keras one. The official weight files name some
layers ``conv1/conv`` and ``conv1/bn``; Keras 3 forbids ``/`` in layer
names, so ours are ``conv1_conv`` and ``conv1_bn`` and the loader
normalises ``/`` to ``_`` when matching. Unlike keras.applications,
``channels_first`` is supported: every BatchNormalization and
Concatenate takes its axis from ``data_format``.
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common

BN_EPSILON = 1.001e-5
GROWTH_RATE = 32
REDUCTION = 0.5

def _bn(x, data_format, name):
    return zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=BN_EPSILON, name=name
    )(x)


def apply_conv_block(x, growth_rate, *, data_format, name):
    """One dense layer: BN-ReLU-1x1 conv (4k) -> BN-ReLU-3x3 conv (k),
    concatenated to its input on the channel axis."""
    y = _bn(x, data_format, f"{name}_0_bn")
    y = layers.Activation("relu", name=f"{name}_0_relu")(y)
    y = zoo_layers.Conv2D(
        4 * growth_rate, 1, use_bias=False, data_format=data_format, name=f"{name}_1_conv"
    )(y)
    y = _bn(y, data_format, f"{name}_1_bn")
    y = layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = zoo_layers.Conv2D(
        growth_rate, 3, padding="same", use_bias=False,
        data_format=data_format, name=f"{name}_2_conv",
    )(y)
    return layers.Concatenate(axis=imagenet.channel_axis(data_format), name=f"{name}_concat")(
        [x, y]
    )


def apply_dense_block(x, blocks, *, data_format, name):
    for i in range(1, blocks + 1):
        x = apply_conv_block(x, GROWTH_RATE, data_format=data_format, name=f"{name}_block{i}")
    return x


def apply_transition_block(x, reduction, *, data_format, name):
    """BN-ReLU-1x1 conv compressing the channels by ``reduction``, then a
    2x2 average pool."""
    channels = x.shape[imagenet.channel_axis(data_format)]
    x = _bn(x, data_format, f"{name}_bn")
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = zoo_layers.Conv2D(
        int(channels * reduction), 1, use_bias=False,
        data_format=data_format, name=f"{name}_conv",
    )(x)
    return zoo_layers.AveragePooling2D(2, strides=2, data_format=data_format, name=f"{name}_pool")(x)


def apply_stem(x, *, data_format):
    x = layers.ZeroPadding2D(3, data_format=data_format, name="conv1_pad")(x)
    x = _common.apply_conv_bn(
        x, 64, 7, strides=2, bn_epsilon=BN_EPSILON, activation="relu", conv_suffix="_conv",
        data_format=data_format, name="conv1",
    )
    x = layers.ZeroPadding2D(1, data_format=data_format, name="pool1_pad")(x)
    return zoo_layers.MaxPooling2D(3, strides=2, data_format=data_format, name="pool1")(x)


def _densenet(spec, blocks):
    df = spec.data_format
    x = apply_stem(spec.inputs, data_format=df)
    for stage, n in enumerate(blocks, 2):
        x = apply_dense_block(x, n, data_format=df, name=f"conv{stage}")
        if stage < 5:
            x = apply_transition_block(x, REDUCTION, data_format=df, name=f"pool{stage}")
    x = _bn(x, df, "bn")
    x = layers.Activation("relu", name="relu")(x)
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


_DOC = """Instantiate the {title} architecture.

    Reference: [Densely Connected Convolutional Networks](
    https://arxiv.org/abs/1608.06993) (CVPR 2017). Unlike
    keras.applications, both data formats are supported.

    Args:
        include_top: whether to include the global-average-pool + Dense top.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise (224, 224, 3), or (3, 224, 224) with channels_first);
            at least 32 pixels high and wide.
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
        name: model name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

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
def DenseNet121(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="densenet121",
    data_format=None,
):
    spec = _common.prepare(
        "densenet121", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _densenet(spec, (6, 12, 24, 16))


@_common.constructor
def DenseNet169(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="densenet169",
    data_format=None,
):
    spec = _common.prepare(
        "densenet169", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _densenet(spec, (6, 12, 32, 32))


@_common.constructor
def DenseNet201(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="densenet201",
    data_format=None,
):
    spec = _common.prepare(
        "densenet201", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _densenet(spec, (6, 12, 48, 32))


for _fn, _features in ((DenseNet121, 1024), (DenseNet169, 1664), (DenseNet201, 1920)):
    _fn.__doc__ = _DOC.format(title=_fn.__name__, features=_features)


preprocess_input = _common.make_preprocess_input("densenet")


decode_predictions = imagenet.decode_predictions

__all__ = [
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "decode_predictions",
    "preprocess_input",
]
