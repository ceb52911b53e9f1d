"""ResNet50V2/101V2/152V2 (He et al., "Identity Mappings in Deep Residual
Networks", ECCV 2016), keras.applications.resnet_v2-style, one builder.

Pre-activation blocks: BatchNormalization -> ReLU come *before* each
convolution, the block output is the bare sum, and a final ``post_bn`` /
``post_relu`` closes the network. The Keras layout (which the official
files follow) strides in the last block of stages 2-4, where the identity
shortcut becomes a 1x1 max pooling with the same stride.
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common, resnet

BN_EPSILON = resnet.BN_EPSILON


def _preact(x, *, data_format, name):
    """BatchNormalization -> ReLU: ``{name}_bn``, ``{name}_relu``."""
    x = zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=BN_EPSILON, name=f"{name}_bn"
    )(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def apply_preact_bottleneck(x, filters, *, strides=1, conv_shortcut=False, data_format, name):
    """A pre-activation bottleneck: BN-ReLU, then 1x1 -> 3x3 (strided) ->
    1x1 (4x filters), plus the shortcut.

    The shortcut is a 1x1 convolution of the pre-activation
    (``conv_shortcut``), or the block input itself, subsampled by a 1x1 max
    pooling (``{name}_0_pool``) when the block strides. Weighted layers are
    created in the official order: ``preact_bn``, ``0_conv``, ``1_conv``,
    ``1_bn``, ``2_conv``, ``2_bn``, ``3_conv``.
    """
    preact = _preact(x, data_format=data_format, name=f"{name}_preact")
    if conv_shortcut:
        shortcut = zoo_layers.Conv2D(
            4 * filters, 1, strides=strides, data_format=data_format, name=f"{name}_0_conv"
        )(preact)
    elif strides > 1:
        shortcut = zoo_layers.MaxPooling2D(
            1, strides=strides, data_format=data_format, name=f"{name}_0_pool"
        )(x)
    else:
        shortcut = x
    x = _common.apply_conv_bn(
        preact, filters, 1, bn_epsilon=BN_EPSILON, activation="relu", conv_suffix="_conv",
        data_format=data_format, name=f"{name}_1",
    )
    # Explicit padding, as the official graph: "same" with stride 2 would
    # pad only after on TensorFlow.
    x = layers.ZeroPadding2D(1, data_format=data_format, name=f"{name}_2_pad")(x)
    x = _common.apply_conv_bn(
        x, filters, 3, strides=strides, bn_epsilon=BN_EPSILON, activation="relu",
        conv_suffix="_conv", data_format=data_format, name=f"{name}_2",
    )
    x = zoo_layers.Conv2D(4 * filters, 1, data_format=data_format, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def apply_stack(x, filters, blocks, *, strides=2, data_format, name):
    """``blocks`` bottlenecks; the first has the convolution shortcut, the
    last strides (Keras' layout)."""
    for i in range(1, blocks + 1):
        x = apply_preact_bottleneck(
            x, filters, strides=strides if i == blocks else 1, conv_shortcut=i == 1,
            data_format=data_format, name=f"{name}_block{i}",
        )
    return x


def _resnet_v2(spec, blocks):
    df = spec.data_format
    x = resnet.apply_stem(spec.inputs, data_format=df, preact=True)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), 2):
        x = apply_stack(x, filters, n, strides=1 if stage == 5 else 2, data_format=df,
                        name=f"conv{stage}")
    x = _preact(x, data_format=df, name="post")
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


# resnet's docstring, with the pre-activation reference and preprocessing.
_ABOUT = """
    A pre-activation ResNet: [Identity Mappings in Deep Residual Networks](
    https://arxiv.org/abs/1603.05027) (ECCV 2016). Inputs are preprocessed
    with `keras_zoo_plus.applications.resnet_v2.preprocess_input` (pixels
    scaled to [-1, 1]).
"""


@_common.constructor
def ResNet50V2(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet50v2",
    data_format=None,
):
    spec = _common.prepare(
        "resnet50v2", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _resnet_v2(spec, (3, 4, 6, 3))


@_common.constructor
def ResNet101V2(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet101v2",
    data_format=None,
):
    spec = _common.prepare(
        "resnet101v2", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _resnet_v2(spec, (3, 4, 23, 3))


@_common.constructor
def ResNet152V2(
    include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="resnet152v2",
    data_format=None,
):
    spec = _common.prepare(
        "resnet152v2", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _resnet_v2(spec, (3, 8, 36, 3))


for _fn in (ResNet50V2, ResNet101V2, ResNet152V2):
    _fn.__doc__ = resnet._DOC.format(title=_fn.__name__, about=_ABOUT)


preprocess_input = _common.make_preprocess_input("resnet_v2")

decode_predictions = imagenet.decode_predictions
