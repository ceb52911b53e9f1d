"""ResNet50/101/152 v1 (He et al., CVPR 2016) in the Keras layout
(stride on the first 1x1 convolution, biases on convolutions), one builder."""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.registry import register

BN_EPSILON = 1.001e-5

RESNET_STAGES = (
    ("conv1", r"^(conv1_|pool1_)"),
    ("conv2", r"^conv2_"),
    ("conv3", r"^conv3_"),
    ("conv4", r"^conv4_"),
    ("conv5", r"^conv5_"),
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)


def apply_conv_bn(x, filters, kernel_size, *, strides=1, padding="valid", data_format, name):
    """Convolution (with bias) followed by BatchNormalization."""
    x = zoo_layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding,
        data_format=data_format, name=f"{name}_conv",
    )(x)
    axis = imagenet.channel_axis(data_format)
    return zoo_layers.BatchNormalization(axis=axis, epsilon=BN_EPSILON, name=f"{name}_bn")(x)


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
    x = apply_conv_bn(x, filters, 1, strides=strides, data_format=data_format, name=f"{name}_1")
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = apply_conv_bn(
        x, filters, 3, padding="same", data_format=data_format, name=f"{name}_2"
    )
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
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


def apply_stem(x, *, data_format):
    x = layers.ZeroPadding2D(3, data_format=data_format, name="conv1_pad")(x)
    x = apply_conv_bn(x, 64, 7, strides=2, data_format=data_format, name="conv1")
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(1, data_format=data_format, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, data_format=data_format, name="pool1_pool")(x)


def _resnet(blocks, *, name, key, args):
    spec = _common.prepare(**args, default_size=224, min_size=32)
    x = apply_stem(spec.inputs, data_format=spec.data_format)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), 2):
        x = apply_stack(
            x, filters, n, strides=1 if stage == 2 else 2,
            data_format=spec.data_format, name=f"conv{stage}",
        )
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec, name=name, key=key)


_DOC = """Instantiate the {title} architecture.

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

_COMMON = dict(family="resnet", default_size=224, min_size=32, preprocess="caffe", stages=RESNET_STAGES)


@register("resnet50", weights_key="resnet50", params=25_636_712, top1=0.759, top5=0.929,
          size_mb=99, depth=168, **_COMMON)
def ResNet50(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet50",
    data_format=None,
):
    args = dict(locals())
    args.pop("name")
    return _resnet((3, 4, 6, 3), name=name, key="resnet50", args=args)


@register("resnet101", weights_key="resnet101", params=44_707_176, top1=0.764, top5=0.928,
          size_mb=171, depth=None, **_COMMON)
def ResNet101(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet101",
    data_format=None,
):
    args = dict(locals())
    args.pop("name")
    return _resnet((3, 4, 23, 3), name=name, key="resnet101", args=args)


@register("resnet152", weights_key="resnet152", params=60_419_944, top1=0.766, top5=0.931,
          size_mb=232, depth=None, **_COMMON)
def ResNet152(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet152",
    data_format=None,
):
    args = dict(locals())
    args.pop("name")
    return _resnet((3, 8, 36, 3), name=name, key="resnet152", args=args)


for _fn in (ResNet50, ResNet101, ResNet152):
    _fn.__doc__ = _DOC.format(title=_fn.__name__)


def preprocess_input(x, data_format=None):
    """Caffe-mode preprocessing (RGB->BGR, ImageNet mean subtracted)."""
    return imagenet.preprocess_input(x, data_format=data_format, mode="caffe")


decode_predictions = imagenet.decode_predictions
