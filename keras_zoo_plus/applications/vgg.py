"""VGG16 and VGG19 (Simonyan & Zisserman, ICLR 2015), one builder."""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common


def apply_vgg_block(x, filters, convs, *, data_format, name):
    """``convs`` 3x3 ReLU convolutions then a 2x2 max pool."""
    for i in range(1, convs + 1):
        x = zoo_layers.Conv2D(
            filters, 3, padding="same", activation="relu",
            data_format=data_format, name=f"{name}_conv{i}",
        )(x)
    return zoo_layers.MaxPooling2D(2, strides=2, data_format=data_format, name=f"{name}_pool")(x)


def _vgg(spec, convs_per_block):
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
    return _common.finish(x, spec)


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


@_common.constructor
def VGG16(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="vgg16",
    data_format=None,
):
    spec = _common.prepare(
        "vgg16", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _vgg(spec, (2, 2, 3, 3, 3))


@_common.constructor
def VGG19(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="vgg19",
    data_format=None,
):
    spec = _common.prepare(
        "vgg19", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _vgg(spec, (2, 2, 4, 4, 4))


VGG16.__doc__ = _DOC.format(title="VGG16")
VGG19.__doc__ = _DOC.format(title="VGG19")


preprocess_input = _common.make_preprocess_input("vgg")


decode_predictions = imagenet.decode_predictions
