"""MobileNetV3Small and MobileNetV3Large (Howard et al., ICCV 2019), one
builder, keras.applications.mobilenet_v3-style.

The graph is the official Keras one: weighted layers in the official
order with the official shapes, every BatchNormalization with epsilon
1e-3 and momentum 0.999, stride-2 depthwise convolutions padded
explicitly (TensorFlow's ``same`` windows on every backend).

Layer names are tf.keras' with ``/`` replaced by ``_``, since Keras 3
forbids ``/`` in layer names: ``Conv/BatchNorm`` is ``Conv_BatchNorm``,
``expanded_conv/depthwise`` is ``expanded_conv_depthwise``,
``expanded_conv_3/squeeze_excite/Conv_1`` is
``expanded_conv_3_squeeze_excite_Conv_1``. The official weight files carry
the tf.keras names and the loader normalises ``/`` to ``_``, so they load
by name. (keras.applications in Keras 3 renamed these layers, e.g.
``conv_bn``, and loads the files by order only.) The layers tf.keras leaves
unnamed are ``rescaling``, ``{layer}_activation`` after the stem, each
expansion, each depthwise convolution, ``Conv_1`` and ``Conv_2`` (ReLU, or
hard-swish unless ``minimalistic``: the same name in every variant),
``{block}_squeeze_excite_HardSigmoid``, and in the top ``avg_pool``,
``dropout`` and ``flatten``.

Hard-swish is one ``Activation("hard_silu")`` layer right after its
BatchNormalization (tf.keras spells it out as ``x * relu6(x + 3) / 6`` in
four ops; the function is the same), so on torch the conv -> BN ->
activation chains can run fused (:mod:`keras_zoo_plus.fusion`); the
squeeze-and-excite gate is ``Activation("hard_sigmoid")``, Keras'
``relu6(x + 3) / 6``. The depthwise convolutions are
:class:`keras_zoo_plus.layers.DepthwiseConv2D` (the backend's fastest
formulation). The squeeze-and-excite pooling keeps its dims and the
gate broadcasts over the spatial axes of either data format.
"""

from __future__ import annotations

import warnings

from keras import layers

from keras_zoo_plus import imagenet, model_table
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.applications.mobilenet import _is_real
from keras_zoo_plus.applications.mobilenet_v2 import (  # noqa: F401
    check_width_multiplier,
    make_divisible,
)

# The official graph's BatchNormalization settings.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.999
SE_RATIO = 0.25

#: Official ``(alpha, minimalistic)`` pairs (the model table's weight-file
#: variants; the same for both models).
IMAGENET_VARIANTS = tuple(
    (v["alpha"], v["minimalistic"])
    for v in (dict(wf.variant) for wf in model_table.get("mobilenet_v3_small").weights
              if wf.include_top)
)
IMAGENET_ROWS = 224

# The inverted residual blocks, in order: (expansion, output channels at
# alpha=1, kernel size, stride, squeeze-and-excite, hard-swish). A
# minimalistic model makes every 5x5 kernel 3x3, drops squeeze-and-excite
# and uses ReLU everywhere. Expansions are the official fractions.
SMALL_BLOCKS = (
    (1, 16, 3, 2, True, False),
    (72 / 16, 24, 3, 2, False, False),
    (88 / 24, 24, 3, 1, False, False),
    (4, 40, 5, 2, True, True),
    (6, 40, 5, 1, True, True),
    (6, 40, 5, 1, True, True),
    (3, 48, 5, 1, True, True),
    (3, 48, 5, 1, True, True),
    (6, 96, 5, 2, True, True),
    (6, 96, 5, 1, True, True),
    (6, 96, 5, 1, True, True),
)
LARGE_BLOCKS = (
    (1, 16, 3, 1, False, False),
    (4, 24, 3, 2, False, False),
    (3, 24, 3, 1, False, False),
    (3, 40, 5, 2, True, False),
    (3, 40, 5, 1, True, False),
    (3, 40, 5, 1, True, False),
    (6, 80, 3, 2, False, True),
    (2.5, 80, 3, 1, False, True),
    (2.3, 80, 3, 1, False, True),
    (2.3, 80, 3, 1, False, True),
    (6, 112, 3, 1, True, True),
    (6, 112, 3, 1, True, True),
    (6, 160, 5, 2, True, True),
    (6, 160, 5, 1, True, True),
    (6, 160, 5, 1, True, True),
)
STEM_FILTERS = 16
#: Channels of ``Conv_2``, the top's 1x1 convolution (widened only with
#: ``alpha > 1``).
SMALL_LAST_POINT = 1024
LARGE_LAST_POINT = 1280


def _variants_text():
    pairs = [f"({a}, {m})" for a, m in IMAGENET_VARIANTS]
    return f"{', '.join(pairs[:-1])} or {pairs[-1]}"


def validate_mobilenet_v3_args(alpha, minimalistic, dropout_rate, include_preprocessing,
                               weights):
    """Check MobileNetV3's own arguments (before any layer is built).

    Raises:
        TypeError, ValueError: naming the argument, the value received and
            what is allowed.
    """
    check_width_multiplier(alpha)
    imagenet.validate_bool("minimalistic", minimalistic)
    imagenet.validate_bool("include_preprocessing", include_preprocessing)
    if not _is_real(dropout_rate) or not 0 <= dropout_rate < 1:
        raise ValueError(
            "`dropout_rate` must be a float in [0, 1) (the dropout rate before the "
            f"classifier). Received: dropout_rate={dropout_rate!r}"
        )
    if weights == "imagenet" and (alpha, minimalistic) not in IMAGENET_VARIANTS:
        raise ValueError(
            'With `weights="imagenet"`, (`alpha`, `minimalistic`) must be one of '
            f"{_variants_text()} (the variants with official weights). "
            f"Received: alpha={alpha!r}, minimalistic={minimalistic!r}"
        )


def _activate(x, hard_swish, *, name):
    """Hard-swish as one ``Activation("hard_silu")``, or a ReLU layer."""
    if hard_swish:
        return layers.Activation("hard_silu", name=name)(x)
    return layers.ReLU(name=name)(x)


def apply_squeeze_excite(x, filters, *, data_format, prefix):
    """Channel gate: pooled (dims kept) -> 1x1 conv -> ReLU -> 1x1 conv ->
    hard sigmoid, multiplied into ``x`` (broadcast over the spatial axes)."""
    p = f"{prefix}squeeze_excite_"
    s = layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True, name=f"{p}AvgPool")(x)
    s = zoo_layers.Conv2D(
        make_divisible(filters * SE_RATIO), 1, padding="same", data_format=data_format,
        name=f"{p}Conv",
    )(s)
    s = layers.ReLU(name=f"{p}Relu")(s)
    s = zoo_layers.Conv2D(filters, 1, padding="same", data_format=data_format, name=f"{p}Conv_1")(s)
    s = layers.Activation("hard_sigmoid", name=f"{p}HardSigmoid")(s)
    return layers.Multiply(name=f"{p}Mul")([x, s])


def apply_inverted_res_block(
    x, filters, *, expansion, kernel_size, stride, squeeze_excite, hard_swish, data_format,
    block_id,
):
    """Expand (1x1 conv, BN, activation; not in block 0), depthwise conv,
    BN, activation, optional squeeze-and-excite, project (1x1 conv, BN,
    linear), and the residual add when the shape is kept.

    Names: ``expanded_conv_`` (block 0) or ``expanded_conv_{id}_`` followed
    by ``expand``, ``depthwise_pad``, ``depthwise``, ``squeeze_excite_*``,
    ``project`` (``_BatchNorm``, ``_activation``) and ``Add``.
    """
    axis = imagenet.channel_axis(data_format)
    prefix = f"expanded_conv_{block_id}_" if block_id else "expanded_conv_"
    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM, data_format=data_format)
    shortcut = x
    in_channels = x.shape[axis]
    expanded = make_divisible(in_channels * expansion)
    if block_id:
        x = _common.apply_conv_bn(
            x, expanded, 1, padding="same", bn_name=f"{prefix}expand_BatchNorm",
            name=f"{prefix}expand", **bn,
        )
        x = _activate(x, hard_swish, name=f"{prefix}expand_activation")
    if stride == 2:
        x = layers.ZeroPadding2D(
            _common.correct_pad(x, kernel_size, data_format), data_format=data_format,
            name=f"{prefix}depthwise_pad",
        )(x)
    x = zoo_layers.DepthwiseConv2D(
        kernel_size, strides=stride, padding="same" if stride == 1 else "valid",
        use_bias=False, data_format=data_format, name=f"{prefix}depthwise",
    )(x)
    x = zoo_layers.BatchNormalization(
        axis=axis, epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
        name=f"{prefix}depthwise_BatchNorm",
    )(x)
    x = _activate(x, hard_swish, name=f"{prefix}depthwise_activation")
    if squeeze_excite:
        x = apply_squeeze_excite(x, expanded, data_format=data_format, prefix=prefix)
    x = _common.apply_conv_bn(
        x, filters, 1, padding="same", bn_name=f"{prefix}project_BatchNorm",
        name=f"{prefix}project", **bn,
    )
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{prefix}Add")([shortcut, x])
    return x


def apply_top(x, spec, *, last_point, hard_swish, dropout_rate):
    """The official top: pooled (dims kept) 1x1 conv ``Conv_2`` with bias
    and activation, dropout, 1x1 conv ``Logits``, flattened."""
    df = spec.data_format
    x = layers.GlobalAveragePooling2D(data_format=df, keepdims=True, name="avg_pool")(x)
    x = zoo_layers.Conv2D(last_point, 1, padding="same", data_format=df, name="Conv_2")(x)
    x = _activate(x, hard_swish, name="Conv_2_activation")
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="dropout")(x)
    x = zoo_layers.Conv2D(spec.classes, 1, padding="same", data_format=df, name="Logits")(x)
    x = layers.Flatten(data_format=df, name="flatten")(x)
    return layers.Activation(spec.classifier_activation, name="Predictions")(x)


def _mobilenet_v3(spec, blocks, last_point, *, alpha, minimalistic, dropout_rate,
                  include_preprocessing):
    df = spec.data_format
    rows, cols = _common.spatial(spec.input_shape, df)
    if spec.weights == "imagenet" and not rows == cols == IMAGENET_ROWS:
        warnings.warn(
            "`input_shape` is undefined or non-square, or `rows` is not 224. "
            "Weights for input shape (224, 224) will be loaded as the default.",
            stacklevel=3,
        )
    hard_swish = not minimalistic
    x = spec.inputs
    if include_preprocessing:
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0, name="rescaling")(x)
    x = _common.apply_conv_bn(
        x, STEM_FILTERS, 3, strides=2, padding="same", bn_epsilon=BN_EPSILON,
        bn_momentum=BN_MOMENTUM, bn_name="Conv_BatchNorm", data_format=df, name="Conv",
    )
    x = _activate(x, hard_swish, name="Conv_activation")
    for block_id, (expansion, filters, kernel, stride, se, hs) in enumerate(blocks):
        x = apply_inverted_res_block(
            x, make_divisible(filters * alpha), expansion=expansion,
            kernel_size=3 if minimalistic else kernel, stride=stride,
            squeeze_excite=se and not minimalistic, hard_swish=hs and not minimalistic,
            data_format=df, block_id=block_id,
        )
    channels = x.shape[imagenet.channel_axis(df)]
    x = _common.apply_conv_bn(
        x, make_divisible(channels * 6), 1, padding="same", bn_epsilon=BN_EPSILON,
        bn_momentum=BN_MOMENTUM, bn_name="Conv_1_BatchNorm", data_format=df, name="Conv_1",
    )
    x = _activate(x, hard_swish, name="Conv_1_activation")
    if spec.include_top:
        if alpha > 1.0:
            last_point = make_divisible(last_point * alpha)
        x = apply_top(x, spec, last_point=last_point, hard_swish=hard_swish,
                      dropout_rate=dropout_rate)
    else:
        x = _common.global_pool(x, spec)
    return _common.finish(x, spec, alpha=alpha, minimalistic=minimalistic)


_DOC = """Instantiate the {title} architecture.

    Reference: [Searching for MobileNetV3](https://arxiv.org/abs/1905.02244)
    (ICCV 2019).

    The model preprocesses its input itself (``include_preprocessing``, a
    ``Rescaling`` from [0, 255] to [-1, 1]), so ``preprocess_input`` is the
    identity, as in keras.applications. Official imagenet weights exist for
    224x224 inputs, with ``(alpha, minimalistic)`` one of (1.0, False),
    (0.75, False) or (1.0, True); without the top any other input size
    warns and loads them. Unlike keras.applications, an omitted
    ``input_shape`` means 224x224 (pass ``(None, None, 3)`` for any size
    without the top), and with the top the size must be static (and
    224x224 with imagenet weights), as for every model of the zoo. Layer
    names are tf.keras' with ``/`` replaced by ``_`` (module docstring).

    Args:
        input_shape: optional shape tuple, e.g. ``(224, 224, 3)`` (or
            ``(3, 224, 224)`` with channels_first); at least 32 pixels high
            and wide.
        alpha: width multiplier, a positive number (channels are rounded to
            multiples of 8); with imagenet weights 0.75 or 1.0, or 1.0 when
            minimalistic.
        minimalistic: no squeeze-and-excite, no hard-swish (ReLU instead)
            and no 5x5 kernels (3x3 instead).
        include_top: whether to include the pooled 1x1-convolution
            classifier.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        classes: number of classes (1000 with imagenet weights and a top).
        pooling: None, "avg" or "max" when `include_top` is False.
        dropout_rate: dropout rate before the classifier, a float in [0, 1)
            (0: no dropout layer).
        classifier_activation: activation of the top layer (None: logits).
        include_preprocessing: whether the model starts with the
            ``Rescaling`` that maps [0, 255] to [-1, 1]; without it the
            model expects inputs in [-1, 1].
        name: model name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = {title}(weights=None, include_top=False, pooling="avg",
        ...                 input_shape=(3, 96, 96), data_format="channels_first")
        >>> model.output_shape
        (None, {features})
    """


@_common.constructor
def MobileNetV3Small(
    input_shape=None,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name="MobileNetV3Small",
    data_format=None,
):
    validate_mobilenet_v3_args(alpha, minimalistic, dropout_rate, include_preprocessing, weights)
    spec = _common.prepare(
        "mobilenet_v3_small", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _mobilenet_v3(
        spec, SMALL_BLOCKS, SMALL_LAST_POINT, alpha=alpha, minimalistic=minimalistic,
        dropout_rate=dropout_rate, include_preprocessing=include_preprocessing,
    )


@_common.constructor
def MobileNetV3Large(
    input_shape=None,
    alpha=1.0,
    minimalistic=False,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    classes=1000,
    pooling=None,
    dropout_rate=0.2,
    classifier_activation="softmax",
    include_preprocessing=True,
    name="MobileNetV3Large",
    data_format=None,
):
    validate_mobilenet_v3_args(alpha, minimalistic, dropout_rate, include_preprocessing, weights)
    spec = _common.prepare(
        "mobilenet_v3_large", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _mobilenet_v3(
        spec, LARGE_BLOCKS, LARGE_LAST_POINT, alpha=alpha, minimalistic=minimalistic,
        dropout_rate=dropout_rate, include_preprocessing=include_preprocessing,
    )


MobileNetV3Small.__doc__ = _DOC.format(title="MobileNetV3Small", features=576)
MobileNetV3Large.__doc__ = _DOC.format(title="MobileNetV3Large", features=960)

preprocess_input = _common.make_preprocess_input("mobilenet_v3")


decode_predictions = imagenet.decode_predictions

__all__ = [
    "MobileNetV3Large",
    "MobileNetV3Small",
    "decode_predictions",
    "preprocess_input",
]
