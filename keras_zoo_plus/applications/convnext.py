"""ConvNeXt Tiny, Small, Base, Large and XLarge (Liu et al., CVPR 2022),
one builder, in both data formats.

The graph is the official Keras one: an in-graph ImageNet Normalization
(so ``preprocess_input`` is the identity), a stride-4 stem and three
stride-2 downsampling blocks (nested ``Sequential`` models, as in the
official files), and ConvNeXt blocks of a 7x7 depthwise convolution,
LayerNormalization, Dense(4C) -> GELU -> Dense(C), LayerScale and
stochastic depth around a residual add. keras.applications refuses
``channels_first``; here every layer takes its channel axis from
``data_format`` (LayerNormalization over axis 1, the pointwise Dense
layers over axis 1 with :class:`keras_zoo_plus.layers.ChannelDense`,
LayerScale over axis 1): one graph, the same weights in both formats.

Layer names start with the model-table entry's name (``convnext_tiny_...``,
the official files' names) whatever ``name=`` the model is given, so the
official files load by name and the feature levels and freeze stages name
the same layers in every model; Keras prefixes them with ``name``.

Beyond keras.applications' signature, ``drop_path_rate`` (stochastic
depth, rising linearly to this rate over the blocks; keras.applications
passes 0.0) and ``layer_scale_init_value`` (None: no LayerScale) come last,
as the arguments of Keras' private ``ConvNeXt`` builder.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.model_table.convnext import CONFIGS

LN_EPSILON = 1e-6
#: The ImageNet mean and variance of the in-graph Normalization, in [0, 255].
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_VARIANCE = ((0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2)


def _layer_norm(data_format, name, *, axis=None):
    if axis is None:
        axis = imagenet.channel_axis(data_format)
    return zoo_layers.LayerNormalization(axis=axis, epsilon=LN_EPSILON, name=name)


def apply_block(x, projection_dim, *, drop_path_rate, layer_scale_init_value, data_format,
                name):
    """One ConvNeXt block: ``x + drop_path(scale * mlp(norm(dwconv7(x))))``."""
    axis = imagenet.channel_axis(data_format)
    # A grouped Conv2D, as in the official graph: its kernel is
    # (7, 7, 1, C), where a DepthwiseConv2D's would be (7, 7, C, 1).
    y = zoo_layers.Conv2D(
        projection_dim, 7, padding="same", groups=projection_dim, data_format=data_format,
        name=f"{name}_depthwise_conv",
    )(x)
    y = _layer_norm(data_format, f"{name}_layernorm")(y)
    y = zoo_layers.ChannelDense(
        4 * projection_dim, data_format=data_format, name=f"{name}_pointwise_conv_1"
    )(y)
    y = layers.Activation("gelu", name=f"{name}_gelu")(y)
    y = zoo_layers.ChannelDense(
        projection_dim, data_format=data_format, name=f"{name}_pointwise_conv_2"
    )(y)
    if layer_scale_init_value is not None:
        y = zoo_layers.LayerScale(
            layer_scale_init_value, projection_dim, axis=axis,
            name=f"{name}_layer_scale",
        )(y)
    if drop_path_rate:
        y = zoo_layers.StochasticDepth(drop_path_rate, name=f"{name}_stochastic_depth")(y)
    else:
        y = layers.Activation("linear", name=f"{name}_identity")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def apply_stem(x, filters, *, data_format, name):
    """4x4 stride-4 convolution -> LayerNormalization (a nested Sequential)."""
    return keras.Sequential([
        zoo_layers.Conv2D(filters, 4, strides=4, data_format=data_format,
                          name=f"{name}_stem_conv"),
        _layer_norm(data_format, f"{name}_stem_layernorm"),
    ], name=f"{name}_stem")(x)


def apply_downsampling(x, filters, *, data_format, name, index):
    """LayerNormalization -> 2x2 stride-2 convolution (a nested Sequential)."""
    return keras.Sequential([
        _layer_norm(data_format, f"{name}_downsampling_layernorm_{index}"),
        zoo_layers.Conv2D(filters, 2, strides=2, data_format=data_format,
                          name=f"{name}_downsampling_conv_{index}"),
    ], name=f"{name}_downsampling_block_{index}")(x)


def _convnext(spec, variant, *, include_preprocessing, drop_path_rate, layer_scale_init_value):
    df = spec.data_format
    prefix = spec.entry.name
    depths, dims = CONFIGS[variant]
    x = spec.inputs
    channels = spec.input_shape[0 if df == "channels_first" else -1]
    if include_preprocessing and channels == 3:
        x = zoo_layers.Normalization(
            axis=imagenet.channel_axis(df), mean=IMAGENET_MEAN, variance=IMAGENET_VARIANCE,
            name=f"{prefix}_prestem_normalization",
        )(x)
    rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(depths))]
    done = 0
    for stage, (depth, dim) in enumerate(zip(depths, dims)):
        if stage == 0:
            x = apply_stem(x, dim, data_format=df, name=prefix)
        else:
            x = apply_downsampling(x, dim, data_format=df, name=prefix, index=stage - 1)
        for block in range(depth):
            x = apply_block(
                x, dim, drop_path_rate=rates[done + block],
                layer_scale_init_value=layer_scale_init_value, data_format=df,
                name=f"{prefix}_stage_{stage}_block_{block}",
            )
        done += depth
    if spec.include_top:
        x = layers.GlobalAveragePooling2D(data_format=df, name=f"{prefix}_head_gap")(x)
        x = _layer_norm(df, f"{prefix}_head_layernorm", axis=-1)(x)
        x = _common.classifier(x, spec, name=f"{prefix}_head_dense")
    else:
        x = _common.global_pool(x, spec)
        axis = -1 if spec.pooling else None
        x = _layer_norm(df, f"{prefix}_features_layernorm", axis=axis)(x)
    return _common.finish(x, spec)


def validate_convnext_args(include_preprocessing, drop_path_rate, layer_scale_init_value,
                           weights):
    """Check ConvNeXt's own arguments (before any layer is built).

    Raises:
        TypeError, ValueError: naming the argument, the value received and
            what is allowed.
    """
    imagenet.validate_bool("include_preprocessing", include_preprocessing)
    if (isinstance(drop_path_rate, bool) or not isinstance(drop_path_rate, (int, float))
            or not 0.0 <= drop_path_rate < 1.0):
        raise ValueError(
            "`drop_path_rate` must be a float in [0, 1) (the stochastic depth rate of "
            f"the last block). Received: drop_path_rate={drop_path_rate!r}"
        )
    if layer_scale_init_value is not None and (
        isinstance(layer_scale_init_value, bool)
        or not isinstance(layer_scale_init_value, (int, float))
        or not layer_scale_init_value >= 0.0
    ):
        raise ValueError(
            "`layer_scale_init_value` must be None (no layer scale) or a float >= 0. "
            f"Received: layer_scale_init_value={layer_scale_init_value!r}"
        )
    if layer_scale_init_value is None and weights is not None:
        raise ValueError(
            "`layer_scale_init_value=None` builds no LayerScale layers, which every "
            "ConvNeXt weights file holds: use a float with `weights`. "
            f"Received: layer_scale_init_value=None, weights={weights!r}"
        )


def _build(model, variant, *, include_top, include_preprocessing, weights, input_tensor,
           input_shape, pooling, classes, classifier_activation, name, data_format,
           drop_path_rate, layer_scale_init_value):
    validate_convnext_args(include_preprocessing, drop_path_rate, layer_scale_init_value,
                           weights)
    spec = _common.prepare(
        model, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _convnext(spec, variant, include_preprocessing=include_preprocessing,
                     drop_path_rate=drop_path_rate,
                     layer_scale_init_value=layer_scale_init_value)


_DOC = """Instantiate the {title} architecture.

    Reference: [A ConvNet for the 2020s](https://arxiv.org/abs/2201.03545)
    (CVPR 2022). {weights_note} Unlike keras.applications, both data formats
    are supported.

    The model normalises its input itself (ImageNet mean and variance, in
    a Normalization layer): give it RGB pixels in [0, 255];
    `preprocess_input` is the identity.

    Args:
        include_top: whether to include the pooling, LayerNorm and Dense head.
        include_preprocessing: whether the model normalises its input (only
            with 3 input channels). Keep True with `weights="imagenet"`.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise (224, 224, 3), or (3, 224, 224) with channels_first);
            at least 32 pixels high and wide.
        pooling: None, "avg" or "max" when `include_top` is False (then a
            LayerNormalization follows, as in keras.applications).
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
        name: model name (layer names keep the `{entry}_` prefix).
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.
        drop_path_rate: stochastic depth rate of the last block, rising
            linearly from 0 over the blocks (0.0, keras.applications' value:
            none). Drops only in training.
        layer_scale_init_value: initial LayerScale value (1e-6), or None for
            no LayerScale (not with `weights`).

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


def _doc(variant, title):
    note = ("Pre-trained on ImageNet-21k, fine-tuned on ImageNet-1k."
            if variant in ("base", "large", "xlarge") else "Trained on ImageNet-1k.")
    return _DOC.format(title=title, entry=f"convnext_{variant}", weights_note=note,
                       features=CONFIGS[variant][1][-1])


@_common.constructor
def ConvNeXtTiny(
    include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
    input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
    name="convnext_tiny", data_format=None, drop_path_rate=0.0, layer_scale_init_value=1e-6,
):
    return _build(
        "convnext_tiny", "tiny", include_top=include_top,
        include_preprocessing=include_preprocessing, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value,
    )


@_common.constructor
def ConvNeXtSmall(
    include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
    input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
    name="convnext_small", data_format=None, drop_path_rate=0.0, layer_scale_init_value=1e-6,
):
    return _build(
        "convnext_small", "small", include_top=include_top,
        include_preprocessing=include_preprocessing, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value,
    )


@_common.constructor
def ConvNeXtBase(
    include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
    input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
    name="convnext_base", data_format=None, drop_path_rate=0.0, layer_scale_init_value=1e-6,
):
    return _build(
        "convnext_base", "base", include_top=include_top,
        include_preprocessing=include_preprocessing, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value,
    )


@_common.constructor
def ConvNeXtLarge(
    include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
    input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
    name="convnext_large", data_format=None, drop_path_rate=0.0, layer_scale_init_value=1e-6,
):
    return _build(
        "convnext_large", "large", include_top=include_top,
        include_preprocessing=include_preprocessing, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value,
    )


@_common.constructor
def ConvNeXtXLarge(
    include_top=True, include_preprocessing=True, weights="imagenet", input_tensor=None,
    input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
    name="convnext_xlarge", data_format=None, drop_path_rate=0.0, layer_scale_init_value=1e-6,
):
    return _build(
        "convnext_xlarge", "xlarge", include_top=include_top,
        include_preprocessing=include_preprocessing, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
        drop_path_rate=drop_path_rate, layer_scale_init_value=layer_scale_init_value,
    )


for _variant, _ctor in (("tiny", ConvNeXtTiny), ("small", ConvNeXtSmall),
                        ("base", ConvNeXtBase), ("large", ConvNeXtLarge),
                        ("xlarge", ConvNeXtXLarge)):
    _ctor.__doc__ = _doc(_variant, _ctor.__name__)
del _variant, _ctor

preprocess_input = _common.make_preprocess_input("convnext")
decode_predictions = imagenet.decode_predictions

__all__ = [
    "ConvNeXtTiny",
    "ConvNeXtSmall",
    "ConvNeXtBase",
    "ConvNeXtLarge",
    "ConvNeXtXLarge",
    "preprocess_input",
    "decode_predictions",
]
