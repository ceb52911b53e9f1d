"""MobileNet v1 (Howard et al., 2017), keras.applications.mobilenet-style.

The graph is the official Keras one (layer order, names and shapes), so
the official ``mobilenet_{alpha}_{rows}_tf[_no_top].h5`` files load by
name. ``relu6`` and ``DepthwiseConv2D`` are re-exported here because
Keras 2 era code loads saved MobileNets with
``custom_objects={"relu6": mobilenet.relu6, "DepthwiseConv2D":
mobilenet.DepthwiseConv2D}``.
"""

from __future__ import annotations

import numbers
import warnings

from keras import layers

from keras_zoo_plus import imagenet, model_table
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.layers import DepthwiseConv2D, relu6

BN_EPSILON = 1e-3  # the Keras default, which the official graph uses

_ENTRY = model_table.get("mobilenet")

#: ``alpha`` values with official imagenet weights, and the square input
#: sizes they exist for (the model table's weight-file variants).
IMAGENET_ALPHAS = tuple(sorted({dict(wf.variant)["alpha"] for wf in _ENTRY.weights}, reverse=True))
IMAGENET_ROWS = tuple(sorted({dict(wf.variant)["rows"] for wf in _ENTRY.weights}))

# (pointwise filters at alpha=1, stride) of depthwise blocks 1..13.
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)

def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate_mobilenet_args(alpha, depth_multiplier, dropout, weights):
    """Check MobileNet's own arguments (before any layer is built).

    Raises:
        ValueError, TypeError: naming the argument, the value received and
            what is allowed.
    """
    if not _is_real(alpha):
        raise TypeError(f"`alpha` must be a number. Received: alpha={alpha!r}")
    if not alpha * 32 >= 1:
        # int(32 * alpha) filters in the first convolution must be >= 1.
        raise ValueError(
            "`alpha` must be at least 1/32 = 0.03125 so that every layer keeps "
            f"at least one filter. Received: alpha={alpha!r}"
        )
    if not isinstance(depth_multiplier, numbers.Integral) or isinstance(depth_multiplier, bool):
        raise TypeError(
            "`depth_multiplier` must be a positive integer. "
            f"Received: depth_multiplier={depth_multiplier!r}"
        )
    if depth_multiplier < 1:
        raise ValueError(
            "`depth_multiplier` must be a positive integer. "
            f"Received: depth_multiplier={depth_multiplier!r}"
        )
    if not _is_real(dropout) or not 0 <= dropout < 1:
        raise ValueError(
            "`dropout` must be a float in [0, 1) (the dropout rate before the "
            f"classifier). Received: dropout={dropout!r}"
        )
    if weights == "imagenet":
        if depth_multiplier != 1:
            raise ValueError(
                'With `weights="imagenet"`, `depth_multiplier` must be 1 (the '
                "only value with official weights). "
                f"Received: depth_multiplier={depth_multiplier!r}"
            )
        if alpha not in IMAGENET_ALPHAS:
            raise ValueError(
                'With `weights="imagenet"`, `alpha` must be one of '
                f"{', '.join(str(a) for a in sorted(IMAGENET_ALPHAS)[:-1])} or "
                f"{max(IMAGENET_ALPHAS)} (the values with official weights). "
                f"Received: alpha={alpha!r}"
            )


def prepare_with_official_rows(model, official_rows, *, weights, input_shape, input_tensor,
                               data_format, **common):
    """``_common.prepare`` for a MobileNet whose official files exist per
    square input size (``rows``): keras.applications' rule makes a square
    official size the default size (so ``include_top`` with imagenet weights
    accepts it), anything else 224.

    Returns:
        ``(spec, rows)``: ``rows`` names the official file; with imagenet
        weights and an input that is not a square official size it is 224,
        with keras.applications' warning.
    """
    df = imagenet.resolve_data_format(data_format)
    shape = input_shape
    if shape is None and input_tensor is not None and hasattr(input_tensor, "shape"):
        shape = tuple(input_tensor.shape[1:])
    size = _common.spatial(shape, df)
    default_size = 224
    if size is not None and size[0] == size[1] and size[0] in official_rows:
        default_size = size[0]
    spec = _common.prepare(
        model, weights=weights, input_tensor=input_tensor, input_shape=input_shape,
        data_format=df, default_size=default_size, **common,
    )
    rows, cols = _common.spatial(spec.input_shape, df)
    if weights == "imagenet" and (rows != cols or rows not in official_rows):
        rows = 224
        warnings.warn(
            "`input_shape` is undefined or non-square, or `rows` is not in "
            f"{list(official_rows)}. Weights for input shape (224, 224) will be "
            "loaded as the default.",
            stacklevel=3,
        )
    return spec, rows


def apply_conv_block(x, filters, *, strides, data_format, name="conv1"):
    """The stem: 3x3 convolution (no bias), BatchNormalization, ReLU6."""
    return _common.apply_conv_bn(
        x, filters, 3, strides=strides, padding="same", bn_epsilon=BN_EPSILON,
        activation="relu6", data_format=data_format, name=name,
    )


def apply_depthwise_block(x, filters, *, depth_multiplier, strides, data_format, block_id):
    """3x3 depthwise conv + BN + ReLU6, then 1x1 pointwise conv + BN + ReLU6.

    Strided blocks pad bottom/right by one and convolve ``valid``, as the
    official graph does.
    """
    axis = imagenet.channel_axis(data_format)
    if strides != 1:
        x = layers.ZeroPadding2D(
            ((0, 1), (0, 1)), data_format=data_format, name=f"conv_pad_{block_id}"
        )(x)
    x = zoo_layers.DepthwiseConv2D(
        3, strides=strides, padding="same" if strides == 1 else "valid",
        depth_multiplier=depth_multiplier, use_bias=False,
        data_format=data_format, name=f"conv_dw_{block_id}",
    )(x)
    x = zoo_layers.BatchNormalization(axis=axis, epsilon=BN_EPSILON, name=f"conv_dw_{block_id}_bn")(x)
    x = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
    return _common.apply_conv_bn(
        x, filters, 1, padding="same", bn_epsilon=BN_EPSILON, activation="relu6",
        data_format=data_format, name=f"conv_pw_{block_id}",
    )


def apply_top(x, spec, dropout):
    """The official top: pooled 1x1 convolution as the classifier.

    Pooling keeps the spatial dims (1x1), so ``conv_preds`` sees
    ``(batch, 1, 1, C)`` or ``(batch, C, 1, 1)`` and the reshape gives
    ``(batch, classes)`` in both data formats.
    """
    df = spec.data_format
    x = layers.GlobalAveragePooling2D(data_format=df, keepdims=True, name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = zoo_layers.Conv2D(spec.classes, 1, padding="same", data_format=df, name="conv_preds")(x)
    x = layers.Reshape((spec.classes,), name="reshape_2")(x)
    return layers.Activation(spec.classifier_activation, name="predictions")(x)


@_common.constructor
def MobileNet(
    input_shape=None,
    alpha=1.0,
    depth_multiplier=1,
    dropout=1e-3,
    include_top=True,
    weights="imagenet",
    input_tensor=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
    data_format=None,
):
    """Instantiate the MobileNet (v1) architecture.

    Reference: [MobileNets: Efficient Convolutional Neural Networks for
    Mobile Vision Applications](https://arxiv.org/abs/1704.04861).

    Official imagenet weights exist for ``alpha`` in {0.25, 0.5, 0.75, 1.0},
    ``depth_multiplier=1`` and square inputs of 128, 160, 192 or 224
    pixels; the file matching ``alpha`` and the input size is loaded. As in
    keras.applications, any other input size (without the top) warns and
    loads the 224 weights. Unlike keras.applications, the size of an
    ``input_tensor`` is taken into account when choosing the file.

    Args:
        input_shape: optional shape tuple, e.g. ``(160, 160, 3)`` (or
            ``(3, 160, 160)`` with channels_first); with ``include_top`` and
            imagenet weights a square size of 128, 160, 192 or 224. At least
            32 pixels high and wide.
        alpha: width multiplier (at least 1/32); with imagenet weights one of
            0.25, 0.5, 0.75, 1.0.
        depth_multiplier: positive int, the depthwise convolutions' depth
            multiplier; 1 with imagenet weights.
        dropout: dropout rate before the classifier, a float in [0, 1).
        include_top: whether to include the pooled 1x1-convolution classifier.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
        name: model name; None gives ``"mobilenet_{alpha:.2f}_{rows}"``.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = MobileNet(alpha=0.25, weights=None, include_top=False,
        ...                   input_shape=(128, 128, 3), pooling="avg")
        >>> model.output_shape
        (None, 256)
    """
    validate_mobilenet_args(alpha, depth_multiplier, dropout, weights)
    spec, rows = prepare_with_official_rows(
        "mobilenet", IMAGENET_ROWS, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    df = spec.data_format

    x = apply_conv_block(spec.inputs, int(32 * alpha), strides=2, data_format=df)
    for block_id, (filters, strides) in enumerate(BLOCKS, 1):
        x = apply_depthwise_block(
            x, int(filters * alpha), depth_multiplier=depth_multiplier,
            strides=strides, data_format=df, block_id=block_id,
        )
    if include_top:
        x = apply_top(x, spec, dropout)
    else:
        x = _common.global_pool(x, spec)

    if name is None:
        spec.name = f"mobilenet_{alpha:0.2f}_{rows}"
    return _common.finish(x, spec, alpha=alpha, rows=rows)


preprocess_input = _common.make_preprocess_input("mobilenet")


decode_predictions = imagenet.decode_predictions

__all__ = [
    "DepthwiseConv2D",
    "MobileNet",
    "decode_predictions",
    "preprocess_input",
    "relu6",
]
