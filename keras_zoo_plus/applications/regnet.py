"""RegNetX and RegNetY, 002 to 320 (Radosavovic et al., CVPR 2020), one
builder, in both data formats.

Keras 3's keras.applications has no RegNet. tf_keras (Keras 2) has the 24
constructors and official ImageNet files; these are the same graphs, on
every backend, and load those files by name.

The graph is tf_keras': an in-graph Rescaling to [0, 1] (so
``preprocess_input`` is the identity), a 3x3 stride-2 stem, four stages of
X blocks (1x1 -> grouped 3x3 -> 1x1 bottleneck-free residual blocks) or Y
blocks (the same with squeeze-and-excite after the grouped convolution),
each stage opening with a stride-2 block whose shortcut is a 1x1
convolution, and a pooling + Dense head. BatchNormalization uses the
original momentum 0.9 and epsilon 1e-5.

Deliberate differences from tf_keras, which its users should know:

* ``classifier_activation`` is applied. tf_keras validates it and then
  ignores it: its RegNet heads always return logits, "softmax" default or
  not. Here the default gives probabilities, as every other constructor;
  pass ``classifier_activation=None`` for tf_keras' logits. (A tf.keras
  model *file* keeps its saved behaviour when loaded with
  :func:`keras_zoo_plus.load_model`.)
* The head's layers are ``{entry}_head_gap`` and ``{entry}_head_dense``;
  tf_keras names them from a global counter (``1_head_gap``,
  ``1head_dense``), so the official files load by weighted-layer order
  there, with every shape checked.
* ``data_format`` is honoured; tf_keras builds channels_last only.

Layer names otherwise start with the model-table entry's name
(``regnetx002_Stage_0_XBlock_0_conv_3x3``), whatever name the model is
given. The model's name is ``model_name`` (tf_keras' first argument, so
positional calls keep working) or ``name`` (Keras 3's spelling; give one).
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.model_table.regnet import CONFIGS

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
#: Squeeze-and-excite width of a Y block: this share of its *input* channels.
SE_RATIO = 0.25


def _conv(filters, kernel_size, *, data_format, name, strides=1, groups=1, padding="valid"):
    return zoo_layers.Conv2D(
        filters, kernel_size, strides=strides, groups=groups, padding=padding,
        use_bias=False, kernel_initializer="he_normal", data_format=data_format, name=name,
    )


def _bn(data_format, name):
    return zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
        name=name,
    )


def apply_squeeze_excite(x, filters, se_filters, *, data_format, name):
    """Global average -> 1x1 ReLU squeeze -> 1x1 sigmoid excite -> scale."""
    s = layers.GlobalAveragePooling2D(
        data_format=data_format, keepdims=True, name=f"{name}_squeeze_and_excite_gap"
    )(x)
    s = zoo_layers.Conv2D(
        se_filters, 1, activation="relu", kernel_initializer="he_normal",
        data_format=data_format, name=f"{name}_squeeze_and_excite_squeeze",
    )(s)
    s = zoo_layers.Conv2D(
        filters, 1, activation="sigmoid", kernel_initializer="he_normal",
        data_format=data_format, name=f"{name}_squeeze_and_excite_excite",
    )(s)
    return layers.Multiply(name=f"{name}_squeeze_and_excite_scale")([s, x])


def apply_block(x, filters_in, filters_out, group_width, *, block_type, strides, data_format,
                name):
    """One X block (``block_type="X"``) or Y block (``"Y"``, with
    squeeze-and-excite): ``relu(bn(1x1(se(g3x3(1x1(x))))) + shortcut)``."""
    if strides == 1 and filters_in != filters_out:
        raise ValueError(
            f"A stride-1 RegNet block keeps its width: filters_in={filters_in}, "
            f"filters_out={filters_out}"
        )
    # The shortcut's layers come first: the official files list them first.
    if strides != 1:
        shortcut = _conv(filters_out, 1, strides=strides, data_format=data_format,
                         name=f"{name}_skip_1x1")(x)
        shortcut = _bn(data_format, f"{name}_skip_bn")(shortcut)
    else:
        shortcut = x
    y = _conv(filters_out, 1, data_format=data_format, name=f"{name}_conv_1x1_1")(x)
    y = _bn(data_format, f"{name}_conv_1x1_1_bn")(y)
    y = layers.ReLU(name=f"{name}_conv_1x1_1_relu")(y)
    # tf_keras' Conv2D reads groups=0 as 1 (RegNetX080's first stage: 80
    # channels, group width 120).
    y = _conv(filters_out, 3, strides=strides, groups=filters_out // group_width or 1,
              padding="same", data_format=data_format, name=f"{name}_conv_3x3")(y)
    y = _bn(data_format, f"{name}_conv_3x3_bn")(y)
    y = layers.ReLU(name=f"{name}_conv_3x3_relu")(y)
    if block_type == "Y":
        y = apply_squeeze_excite(y, filters_out, int(filters_in * SE_RATIO),
                                 data_format=data_format, name=name)
    y = _conv(filters_out, 1, data_format=data_format, name=f"{name}_conv_1x1_2")(y)
    y = _bn(data_format, f"{name}_conv_1x1_2_bn")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_exit_relu")(y)


def _regnet(spec, variant, *, include_preprocessing):
    df = spec.data_format
    prefix = spec.entry.name
    depths, widths, group_width, block_type = CONFIGS[variant]
    x = spec.inputs
    if include_preprocessing:
        x = layers.Rescaling(1.0 / 255.0, name=f"{prefix}_prestem_rescaling")(x)
    x = _conv(32, 3, strides=2, padding="same", data_format=df, name=f"{prefix}_stem_conv")(x)
    x = _bn(df, f"{prefix}_stem_bn")(x)
    x = layers.ReLU(name=f"{prefix}_stem_relu")(x)
    filters_in = 32
    for stage, (depth, width) in enumerate(zip(depths, widths)):
        for block in range(depth):
            x = apply_block(
                x, filters_in if block == 0 else width, width, group_width,
                block_type=block_type, strides=2 if block == 0 else 1, data_format=df,
                name=f"{prefix}_Stage_{stage}_{block_type}Block_{block}",
            )
        filters_in = width
    if spec.include_top:
        x = layers.GlobalAveragePooling2D(data_format=df, name=f"{prefix}_head_gap")(x)
        x = _common.classifier(x, spec, name=f"{prefix}_head_dense")
    else:
        x = _common.global_pool(x, spec)
    return _common.finish(x, spec)


def resolve_name(model_name, name, default):
    """The model's name from tf_keras' ``model_name`` and Keras 3's ``name``.

    Raises:
        ValueError: both given, and different.
    """
    if name is None:
        return model_name
    if model_name != default and model_name != name:
        raise ValueError(
            "Give the model's name once: `name` (Keras 3) or `model_name` (tf_keras). "
            f"Received: model_name={model_name!r}, name={name!r}"
        )
    return name


def _build(model, variant, *, model_name, include_top, include_preprocessing, weights,
           input_tensor, input_shape, pooling, classes, classifier_activation, name,
           data_format):
    imagenet.validate_bool("include_preprocessing", include_preprocessing)
    spec = _common.prepare(
        model, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation,
        name=resolve_name(model_name, name, model), data_format=data_format,
    )
    return _regnet(spec, variant, include_preprocessing=include_preprocessing)


_DOC = """Instantiate the {title} architecture ({block} blocks).

    Reference: [Designing Network Design Spaces](https://arxiv.org/abs/2003.13678)
    (CVPR 2020). Not in Keras 3's keras.applications: this is tf_keras'
    graph, on every backend and in both data formats, with its official
    ImageNet weights.

    The model rescales its input itself (a Rescaling layer to [0, 1]):
    give it RGB pixels in [0, 255]; `preprocess_input` is the identity.

    Args:
        model_name: the model's name (tf_keras' first argument).
        include_top: whether to include the pooling and Dense head.
        include_preprocessing: whether the model rescales its input. Keep
            True with `weights="imagenet"`.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise (224, 224, 3), or (3, 224, 224) with channels_first);
            at least 32 pixels high and wide.
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
            Applied, unlike tf_keras, which always returns logits.
        name: the model's name, Keras 3's spelling of `model_name` (give
            one of them).
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

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


def _make(variant):
    entry = f"regnet{variant}"
    title = f"RegNet{variant.upper()}"

    def constructor(
        model_name=entry, include_top=True, include_preprocessing=True, weights="imagenet",
        input_tensor=None, input_shape=None, pooling=None, classes=1000,
        classifier_activation="softmax", name=None, data_format=None,
    ):
        return _build(
            entry, variant, model_name=model_name, include_top=include_top,
            include_preprocessing=include_preprocessing, weights=weights,
            input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
            classes=classes, classifier_activation=classifier_activation, name=name,
            data_format=data_format,
        )

    constructor.__name__ = constructor.__qualname__ = title
    constructor.__module__ = __name__
    constructor.__doc__ = _DOC.format(title=title, block=CONFIGS[variant][3],
                                      features=CONFIGS[variant][1][-1])
    return _common.constructor(constructor)


RegNetX002 = _make("x002")
RegNetX004 = _make("x004")
RegNetX006 = _make("x006")
RegNetX008 = _make("x008")
RegNetX016 = _make("x016")
RegNetX032 = _make("x032")
RegNetX040 = _make("x040")
RegNetX064 = _make("x064")
RegNetX080 = _make("x080")
RegNetX120 = _make("x120")
RegNetX160 = _make("x160")
RegNetX320 = _make("x320")
RegNetY002 = _make("y002")
RegNetY004 = _make("y004")
RegNetY006 = _make("y006")
RegNetY008 = _make("y008")
RegNetY016 = _make("y016")
RegNetY032 = _make("y032")
RegNetY040 = _make("y040")
RegNetY064 = _make("y064")
RegNetY080 = _make("y080")
RegNetY120 = _make("y120")
RegNetY160 = _make("y160")
RegNetY320 = _make("y320")

preprocess_input = _common.make_preprocess_input("regnet")
decode_predictions = imagenet.decode_predictions

__all__ = [f"RegNet{v.upper()}" for v in CONFIGS] + ["preprocess_input", "decode_predictions"]
