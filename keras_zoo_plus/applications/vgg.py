"""VGG16 and VGG19 (Simonyan & Zisserman, ICLR 2015), one builder."""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.registry import register

VGG_STAGES = tuple((f"block{b}", rf"^block{b}_") for b in range(1, 6)) + (
    ("top", r"^(flatten|fc1|fc2|predictions)$"),
)


def apply_vgg_block(x, filters, convs, *, data_format, name):
    """``convs`` 3x3 ReLU convolutions then a 2x2 max pool."""
    for i in range(1, convs + 1):
        x = zoo_layers.Conv2D(
            filters, 3, padding="same", activation="relu",
            data_format=data_format, name=f"{name}_conv{i}",
        )(x)
    return layers.MaxPooling2D(2, strides=2, data_format=data_format, name=f"{name}_pool")(x)


def _vgg(convs_per_block, *, name, key, args):
    spec = _common.prepare(**args, default_size=224, min_size=32)
    x = spec.inputs
    for b, (filters, convs) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), 1):
        x = apply_vgg_block(x, filters, convs, data_format=spec.data_format, name=f"block{b}")
    if spec.include_top:
        # Flatten in channels_last order whatever the data format, so the
        # same fc1 weights serve both formats.
        x = layers.Flatten(data_format=spec.data_format, name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = _common.classifier(x, spec)
    else:
        x = _common.global_pool(x, spec)
    return _common.finish(x, spec, name=name, key=key)


_DOC = """Instantiate the {title} architecture.

    Args:
        include_top: whether to include the 3 fully-connected layers.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`) to use
            as the image input.
        input_shape: optional shape tuple, only to be specified if
            `include_top` is False (otherwise it must be (224, 224, 3) with
            channels_last or (3, 224, 224) with channels_first). At least 32
            pixels high and wide.
        pooling: None, "avg" or "max": global pooling when `include_top` is
            False.
        classes: number of classes, only with `include_top=True` and no
            `weights="imagenet"`.
        classifier_activation: activation of the top layer (None returns
            logits). With imagenet weights only None and "softmax".
        name: model name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = {title}(weights=None, include_top=False, input_shape=(64, 64, 3))
        >>> model.output_shape
        (None, 2, 2, 512)
    """


@register(
    "vgg16", family="vgg", default_size=224, min_size=32, preprocess="caffe",
    weights_key="vgg16", params=138_357_544, top1=0.715, top5=0.901, size_mb=528,
    depth=23, stages=VGG_STAGES,
)
def VGG16(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="vgg16",
    data_format=None,
):
    args = dict(locals())
    args.pop("name")
    return _vgg((2, 2, 3, 3, 3), name=name, key="vgg16", args=args)


@register(
    "vgg19", family="vgg", default_size=224, min_size=32, preprocess="caffe",
    weights_key="vgg19", params=143_667_240, top1=0.727, top5=0.910, size_mb=549,
    depth=26, stages=VGG_STAGES,
)
def VGG19(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="vgg19",
    data_format=None,
):
    args = dict(locals())
    args.pop("name")
    return _vgg((2, 2, 4, 4, 4), name=name, key="vgg19", args=args)


VGG16.__doc__ = _DOC.format(title="VGG16")
VGG19.__doc__ = _DOC.format(title="VGG19")


def preprocess_input(x, data_format=None):
    """Caffe-mode preprocessing (RGB->BGR, ImageNet mean subtracted)."""
    return imagenet.preprocess_input(x, data_format=data_format, mode="caffe")


decode_predictions = imagenet.decode_predictions
