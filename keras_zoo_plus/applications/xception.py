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
from keras_zoo_plus.registry import register

# Keras' BatchNormalization default; the official weights were trained with it.
BN_EPSILON = 1e-3

# One stage per block, in network order; the official layer names are all
# ``block<N>_...``, and so are the residual layers we name explicitly.
XCEPTION_STAGES = tuple((f"block{b}", rf"^block{b}_") for b in range(1, 15)) + (
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)


def apply_conv_bn(x, filters, kernel_size, *, strides=1, padding="valid", data_format, name):
    """Bias-free convolution followed by BatchNormalization.

    Layer names: ``name`` (convolution), ``{name}_bn``.
    """
    x = zoo_layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False,
        data_format=data_format, name=name,
    )(x)
    return zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)


def apply_sepconv_bn(x, filters, *, data_format, name):
    """3x3 bias-free separable convolution ("same") and BatchNormalization.

    Layer names: ``name`` (separable convolution), ``{name}_bn``.
    """
    x = zoo_layers.SeparableConv2D(
        filters, 3, padding="same", use_bias=False, data_format=data_format, name=name
    )(x)
    return zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)


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
    x = layers.MaxPooling2D(
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


def _xception(*, name, args):
    spec = _common.prepare(**args, default_size=299, min_size=71)
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
    return _common.finish(x, spec, name=name, key="xception")


@register(
    "xception", family="xception", default_size=299, min_size=71, preprocess="tf",
    weights_key="xception", params=22_910_480, top1=0.790, top5=0.945, size_mb=88,
    depth=126, stages=XCEPTION_STAGES,
)
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
    args = dict(locals())
    args.pop("name")
    return _xception(name=name, args=args)


def preprocess_input(x, data_format=None):
    """"tf"-mode preprocessing: pixels in [0, 255] scaled to [-1, 1].

    Args:
        x: NumPy array or backend tensor (one image or a batch, RGB).
        data_format: None (global default), "channels_last" or
            "channels_first".

    Returns:
        A new array/tensor; NumPy inputs are never modified in place.

    Example:
        >>> preprocess_input(np.full((1, 2, 2, 3), 255.0))[0, 0, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    return imagenet.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet.decode_predictions
