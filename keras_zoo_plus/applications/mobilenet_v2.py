"""MobileNetV2 (Sandler et al., 2018), keras.applications.mobilenet_v2-style.

The graph is the official Keras one (layer order, names and shapes), so
the official ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_
{rows}[_no_top].h5`` files load by name. Every convolution is followed by
a BatchNormalization (and a ReLU6 except after the linear projections),
so on torch the whole network body runs as fused convolutions
(:mod:`keras_zoo_plus.fusion`); the depthwise convolutions are
:class:`keras_zoo_plus.layers.DepthwiseConv2D` (the backend's fastest
formulation, :func:`keras_zoo_plus.ops.depthwise_conv2d`).
"""

from __future__ import annotations

import math

from keras import layers

from keras_zoo_plus import imagenet, model_table
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.applications.mobilenet import _is_real, prepare_with_official_rows

# The official graph's BatchNormalization settings.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.999

_ENTRY = model_table.get("mobilenet_v2")

#: ``alpha`` values with official imagenet weights, and the square input
#: sizes they exist for (the model table's weight-file variants).
IMAGENET_ALPHAS = tuple(sorted({dict(wf.variant)["alpha"] for wf in _ENTRY.weights}))
IMAGENET_ROWS = tuple(sorted({dict(wf.variant)["rows"] for wf in _ENTRY.weights}))

# (output channels at alpha=1, stride, expansion) of the inverted residual
# blocks 0 (``expanded_conv``) to 16 (``block_16``).
BLOCKS = (
    (16, 1, 1),
    (24, 2, 6), (24, 1, 6),
    (32, 2, 6), (32, 1, 6), (32, 1, 6),
    (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6),
    (96, 1, 6), (96, 1, 6), (96, 1, 6),
    (160, 2, 6), (160, 1, 6), (160, 1, 6),
    (320, 1, 6),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280


def make_divisible(value, divisor=8):
    """``value`` rounded to the nearest multiple of ``divisor`` (ties up),
    at least ``divisor`` and never more than 10% below ``value``: the
    channel rule of the official MobileNetV2 (``alpha=0.35``: the stem's
    11.2 channels become 16, not 8)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def check_width_multiplier(alpha):
    """``alpha`` must be a positive finite number (MobileNetV2 and V3).

    Raises:
        TypeError: ``alpha`` is not a number.
        ValueError: ``alpha`` is not positive and finite.
    """
    if not _is_real(alpha):
        raise TypeError(f"`alpha` must be a number. Received: alpha={alpha!r}")
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(
            "`alpha` must be a positive finite number (the width multiplier). "
            f"Received: alpha={alpha!r}"
        )


def validate_alpha(alpha, weights):
    """Check ``alpha`` before any layer is built.

    Raises:
        TypeError: ``alpha`` is not a number.
        ValueError: ``alpha`` is not a positive finite number, or has no
            official weights while ``weights="imagenet"``.
    """
    check_width_multiplier(alpha)
    if weights == "imagenet" and alpha not in IMAGENET_ALPHAS:
        raise ValueError(
            'With `weights="imagenet"`, `alpha` must be one of '
            f"{', '.join(str(a) for a in IMAGENET_ALPHAS[:-1])} or {IMAGENET_ALPHAS[-1]} "
            f"(the values with official weights). Received: alpha={alpha!r}"
        )


def apply_inverted_res_block(x, filters, *, stride, expansion, data_format, block_id):
    """Expand (1x1 conv, BN, ReLU6; not in block 0), 3x3 depthwise conv,
    BN, ReLU6, project (1x1 conv, BN, linear), and the residual add when
    the shape is kept.

    Layer names are the official ones: ``block_{id}_{expand,depthwise,
    project}`` with ``_BN``/``_relu``, ``block_{id}_pad`` and
    ``block_{id}_add``; block 0 is ``expanded_conv_*``. A stride-2 block
    pads explicitly and convolves ``valid`` (every backend pads alike).
    """
    axis = imagenet.channel_axis(data_format)
    inputs = x
    in_channels = x.shape[axis]
    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM, data_format=data_format)
    if block_id:
        prefix = f"block_{block_id}_"
        x = _common.apply_conv_bn(
            x, expansion * in_channels, 1, padding="same", activation="relu6",
            bn_name=f"{prefix}expand_BN", name=f"{prefix}expand", **bn,
        )
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(
            _common.correct_pad(x, 3, data_format), data_format=data_format, name=f"{prefix}pad"
        )(x)
    x = zoo_layers.DepthwiseConv2D(
        3, strides=stride, padding="same" if stride == 1 else "valid", use_bias=False,
        data_format=data_format, name=f"{prefix}depthwise",
    )(x)
    x = zoo_layers.BatchNormalization(
        axis=axis, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}depthwise_BN"
    )(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = _common.apply_conv_bn(
        x, filters, 1, padding="same", bn_name=f"{prefix}project_BN",
        name=f"{prefix}project", **bn,
    )
    if stride == 1 and in_channels == filters:
        x = layers.Add(name=f"{prefix}add")([inputs, x])
    return x


@_common.constructor
def MobileNetV2(
    input_shape=None,
    alpha=1.0,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    data_format=None,
):
    """Instantiate the MobileNetV2 architecture.

    Reference: [MobileNetV2: Inverted Residuals and Linear Bottlenecks](
    https://arxiv.org/abs/1801.04381) (CVPR 2018).

    Official imagenet weights exist for ``alpha`` in {0.35, 0.5, 0.75, 1.0,
    1.3, 1.4} and square inputs of 96, 128, 160, 192 or 224 pixels; the
    file matching ``alpha`` and the input size is loaded. As in
    keras.applications, any other input size (without the top) warns and
    loads the 224 weights.

    Channel counts are ``alpha`` times the paper's, rounded to multiples of
    8 (never more than 10% down); the last convolution keeps 1280 channels
    unless ``alpha > 1``.

    Args:
        input_shape: optional shape tuple, e.g. ``(160, 160, 3)`` (or
            ``(3, 160, 160)`` with channels_first); with ``include_top`` and
            imagenet weights a square size of 96, 128, 160, 192 or 224. At
            least 32 pixels high and wide.
        alpha: width multiplier, a positive number; with imagenet weights
            one of 0.35, 0.5, 0.75, 1.0, 1.3, 1.4.
        include_top: whether to include the pooled dense classifier.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
        name: model name; None gives ``"mobilenetv2_{alpha:.2f}_{rows}"``.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = MobileNetV2(alpha=0.35, weights=None, include_top=False,
        ...                     input_shape=(96, 96, 3), pooling="avg")
        >>> model.output_shape
        (None, 1280)
    """
    validate_alpha(alpha, weights)
    spec, rows = prepare_with_official_rows(
        "mobilenet_v2", IMAGENET_ROWS, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    df = spec.data_format

    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=BN_MOMENTUM, data_format=df)
    x = _common.apply_conv_bn(
        spec.inputs, make_divisible(STEM_FILTERS * alpha), 3, strides=2, padding="same",
        activation="relu6", bn_name="bn_Conv1", name="Conv1", **bn,
    )
    for block_id, (filters, stride, expansion) in enumerate(BLOCKS):
        x = apply_inverted_res_block(
            x, make_divisible(int(filters * alpha)), stride=stride, expansion=expansion,
            data_format=df, block_id=block_id,
        )
    # The head is widened with alpha > 1 only (the paper keeps 1280 below).
    head = make_divisible(HEAD_FILTERS * alpha) if alpha > 1.0 else HEAD_FILTERS
    x = _common.apply_conv_bn(
        x, head, 1, activation="relu6", act_name="out_relu", name="Conv_1", **bn,
    )
    x = _common.pooled_top(x, spec)

    if name is None:
        spec.name = f"mobilenetv2_{alpha:0.2f}_{rows}"
    return _common.finish(x, spec, alpha=alpha, rows=rows)


preprocess_input = _common.make_preprocess_input("mobilenet_v2")


decode_predictions = imagenet.decode_predictions

__all__ = [
    "MobileNetV2",
    "decode_predictions",
    "preprocess_input",
]
