"""ResNet50/101/152 v1 (He et al., CVPR 2016) in the Keras layout
(stride on the first 1x1 convolution, biases on convolutions), one builder."""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common

BN_EPSILON = 1.001e-5


def apply_conv_bn(x, filters, kernel_size, *, strides=1, padding="valid", activation=None,
                  data_format, name):
    """Convolution (with bias), BatchNormalization (and ReLU):
    ``{name}_conv``, ``{name}_bn``, ``{name}_relu``."""
    return _common.apply_conv_bn(
        x, filters, kernel_size, strides=strides, padding=padding, use_bias=True,
        bn_epsilon=BN_EPSILON, activation=activation, conv_suffix="_conv",
        data_format=data_format, name=name,
    )


def apply_bottleneck(x, filters, *, strides=1, conv_shortcut=True, data_format, name):
    """A residual bottleneck: 1x1 -> 3x3 -> 1x1 (4x filters) plus shortcut.

    Layer creation order is the official one (shortcut first), which the
    order-matched official weight files rely on.
    """
    if conv_shortcut:
        shortcut = apply_conv_bn(
            x, 4 * filters, 1, strides=strides, data_format=data_format, name=f"{name}_0"
        )
    else:
        shortcut = x
    x = apply_conv_bn(
        x, filters, 1, strides=strides, activation="relu", data_format=data_format,
        name=f"{name}_1",
    )
    x = apply_conv_bn(
        x, filters, 3, padding="same", activation="relu", data_format=data_format,
        name=f"{name}_2",
    )
    x = apply_conv_bn(x, 4 * filters, 1, data_format=data_format, name=f"{name}_3")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def apply_stack(x, filters, blocks, *, strides=2, data_format, name):
    x = apply_bottleneck(x, filters, strides=strides, data_format=data_format, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = apply_bottleneck(
            x, filters, conv_shortcut=False, data_format=data_format, name=f"{name}_block{i}"
        )
    return x


def apply_stem(x, *, data_format, preact=False):
    """7x7/2 convolution (with bias), then 3x3/2 max pooling. v1 normalises
    and activates the convolution; pre-activation nets (``preact``, v2)
    leave that to the first block."""
    x = layers.ZeroPadding2D(3, data_format=data_format, name="conv1_pad")(x)
    if preact:
        x = zoo_layers.Conv2D(64, 7, strides=2, data_format=data_format, name="conv1_conv")(x)
    else:
        x = apply_conv_bn(x, 64, 7, strides=2, activation="relu", data_format=data_format,
                          name="conv1")
    x = layers.ZeroPadding2D(1, data_format=data_format, name="pool1_pad")(x)
    return zoo_layers.MaxPooling2D(3, strides=2, data_format=data_format, name="pool1_pool")(x)


def _resnet(spec, blocks):
    x = apply_stem(spec.inputs, data_format=spec.data_format)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), 2):
        x = apply_stack(
            x, filters, n, strides=1 if stage == 2 else 2,
            data_format=spec.data_format, name=f"conv{stage}",
        )
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


_DOC = """Instantiate the {title} architecture.
{about}
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
        >>> model = {title}(weights=None, include_top=False, pooling="avg")
        >>> model.output_shape
        (None, 2048)
    """

@_common.constructor
def ResNet50(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet50",
    data_format=None,
):
    spec = _common.prepare(
        "resnet50", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _resnet(spec, (3, 4, 6, 3))


@_common.constructor
def ResNet101(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet101",
    data_format=None,
):
    spec = _common.prepare(
        "resnet101", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _resnet(spec, (3, 4, 23, 3))


@_common.constructor
def ResNet152(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet152",
    data_format=None,
):
    spec = _common.prepare(
        "resnet152", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _resnet(spec, (3, 8, 36, 3))


for _fn in (ResNet50, ResNet101, ResNet152):
    _fn.__doc__ = _DOC.format(title=_fn.__name__, about="")


preprocess_input = _common.make_preprocess_input("resnet")

decode_predictions = imagenet.decode_predictions
