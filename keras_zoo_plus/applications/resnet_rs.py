"""ResNetRS50 to ResNetRS420 (Bello et al., "Revisiting ResNets", NeurIPS
2021), one builder, in both data formats.

Keras 3's keras.applications has no ResNet-RS. tf_keras (Keras 2) has the
seven constructors and official ImageNet files; these are the same graphs,
on every backend, and load those files by name.

The graph is tf_keras': in-graph preprocessing (Rescaling to [0, 1] and,
with 3 channels, the ImageNet mean and variance, so ``preprocess_input`` is
the identity), a ResNet-D stem of four 3x3 convolutions (the max pool
replaced by a stride-2 convolution), four groups of bottleneck blocks with
squeeze-and-excite, whose first block's shortcut is an average pool (stride
2) and a 1x1 convolution, and an average-pool, dropout and Dense head.
Strided convolutions pad explicitly (``k // 2`` before, the rest after) and
then run "valid", so every backend and data format takes the same windows.

Weights: ``"imagenet"`` loads the file of the highest training resolution
that exists for the depth, as tf_keras does; ``"imagenet-i<resolution>"``
(for example ``"imagenet-i224"`` for ResNetRS152) picks another one.

Deliberate differences from tf_keras:

* ``data_format`` is honoured; tf_keras builds in the global format only.
* Layers tf_keras leaves to global counters get fixed names (the padding
  before a strided convolution is ``{conv}_pad``, the residual addition
  ``{block}_add``); the stem is ``stem_1_*`` as in a fresh tf_keras session.

Drop-connect keeps tf_keras' semantics exactly: a Dropout with
``noise_shape=(None, 1, 1, 1)`` (whole examples) whose *rate* is tf_keras'
``survival_probability`` (``drop_connect_rate * group / 5``); only training
sees it.
"""

from __future__ import annotations

import re
import sys

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.model_table.resnet_rs import BLOCKS, FILTERS, RATES, block_name, resolutions

BN_MOMENTUM = 0.0
BN_EPSILON = 1e-5
SE_RATIO = 0.25
#: The stem's name prefix: tf_keras' in a fresh session (``stem_1``).
STEM = "stem_1"
CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "truncated_normal"},
}
#: Python's recursion limit the deepest models need: Keras walks a graph
#: recursively, one frame per layer, when it builds, clones, saves or loads
#: a functional model (measured: ResNetRS270, 350 and 420 need 1250, 1500
#: and 1750 from a script's top level; tf_keras sets 1300, 1500, 1800).
RECURSION_LIMITS = {270: 2000, 350: 2500, 420: 3000}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_VARIANCE = (0.229**2, 0.224**2, 0.225**2)


def _conv_bn(x, filters, kernel_size, strides, *, data_format, name, bn_name, act_name=None):
    """tf_keras' ``Conv2DFixedPadding`` -> BatchNormalization (-> ReLU
    named ``act_name``): a strided convolution pads explicitly first and
    runs "valid"; a stride-1 one runs "same"."""
    if strides > 1:
        before = (kernel_size - 1) // 2
        after = kernel_size - 1 - before
        x = layers.ZeroPadding2D(((before, after), (before, after)), data_format=data_format,
                                 name=f"{name}_pad")(x)
    return _common.apply_conv_bn(
        x, filters, kernel_size, strides=strides, padding="same" if strides == 1 else "valid",
        data_format=data_format, name=name, bn_name=bn_name, bn_epsilon=BN_EPSILON,
        bn_momentum=BN_MOMENTUM, activation="relu" if act_name else None, act_name=act_name,
        kernel_initializer=CONV_INITIALIZER,
    )


def apply_stem(x, *, data_format):
    """Four 3x3 conv -> BN -> ReLU, strides 2, 1, 1, 2 (32, 32, 64, 64 filters)."""
    for i, (filters, strides) in enumerate(((32, 2), (32, 1), (64, 1), (64, 2)), 1):
        x = _conv_bn(x, filters, 3, strides, data_format=data_format,
                     name=f"{STEM}_stem_conv_{i}", bn_name=f"{STEM}_stem_batch_norm_{i}",
                     act_name=f"{STEM}_stem_act_{i}")
    return x


def apply_squeeze_excite(x, filters, *, data_format, name):
    """Global average -> 1x1 ReLU reduce -> 1x1 sigmoid expand -> scale
    (``filters`` is the bottleneck width; the block's output has 4x)."""
    s = layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True,
                                      name=f"{name}_se_squeeze")(x)
    s = zoo_layers.Conv2D(
        max(1, int(filters * 4 * SE_RATIO)), 1, padding="same", activation="relu",
        kernel_initializer=CONV_INITIALIZER, data_format=data_format, name=f"{name}_se_reduce",
    )(s)
    s = zoo_layers.Conv2D(
        4 * filters, 1, padding="same", activation="sigmoid",
        kernel_initializer=CONV_INITIALIZER, data_format=data_format, name=f"{name}_se_expand",
    )(s)
    return layers.Multiply(name=f"{name}_se_excite")([x, s])


def apply_block(x, filters, *, strides, projection, drop_rate, data_format, name):
    """One bottleneck block: 1x1 -> 3x3 (strided) -> 1x1 (4x filters) -> SE,
    added to the shortcut (average pool + 1x1 projection where it changes)."""
    shortcut = x
    if projection:
        if strides == 2:
            shortcut = zoo_layers.AveragePooling2D(2, 2, padding="same", data_format=data_format,
                                               name=f"{name}_projection_pooling")(x)
        shortcut = _conv_bn(shortcut, 4 * filters, 1, 1, data_format=data_format,
                            name=f"{name}_projection_conv",
                            bn_name=f"{name}_projection_batch_norm")
    # tf_keras' name "{name}batch_norm_1", without the underscore the other two have.
    y = _conv_bn(x, filters, 1, 1, data_format=data_format, name=f"{name}_conv_1",
                 bn_name=f"{name}batch_norm_1", act_name=f"{name}_act_1")
    y = _conv_bn(y, filters, 3, strides, data_format=data_format, name=f"{name}_conv_2",
                 bn_name=f"{name}_batch_norm_2", act_name=f"{name}_act_2")
    y = _conv_bn(y, 4 * filters, 1, 1, data_format=data_format, name=f"{name}_conv_3",
                 bn_name=f"{name}_batch_norm_3")
    y = apply_squeeze_excite(y, filters, data_format=data_format, name=f"{name}_se")
    if drop_rate:
        y = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(y)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_output_act")(y)


def _resnet_rs(spec, depth, *, include_preprocessing, resolution):
    df = spec.data_format
    drop_connect_rate, dropout_rate = RATES[depth]
    x = spec.inputs
    if include_preprocessing:
        x = layers.Rescaling(1.0 / 255.0, name="rescaling")(x)
        channels = spec.input_shape[0 if df == "channels_first" else -1]
        if channels == 3:
            x = zoo_layers.Normalization(
                axis=imagenet.channel_axis(df), mean=IMAGENET_MEAN, variance=IMAGENET_VARIANCE,
                name="normalization",
            )(x)
    x = apply_stem(x, data_format=df)
    groups = len(BLOCKS[depth])
    for i, (repeats, filters) in enumerate(zip(BLOCKS[depth], FILTERS)):
        group = i + 2
        drop_rate = drop_connect_rate * group / (groups + 1)
        for block in range(repeats):
            x = apply_block(
                x, filters, strides=2 if block == 0 and i > 0 else 1, projection=block == 0,
                drop_rate=drop_rate, data_format=df, name=block_name(group, block),
            )
    if spec.include_top:
        x = _common.global_pool(x, spec, top=True)
        if dropout_rate > 0:
            x = layers.Dropout(dropout_rate, name="top_dropout")(x)
        x = _common.classifier(x, spec)
    else:
        x = _common.global_pool(x, spec)
    variant = {} if resolution is None else {"resolution": resolution}
    return _common.finish(x, spec, **variant)


_WEIGHTS_VARIANT = re.compile(r"imagenet-i(\d+)")


def resolve_weights(depth, weights):
    """``(weights, resolution)``: ``"imagenet"`` and ``"imagenet-i<N>"``
    become ``"imagenet"`` and the resolution of the file to load (the
    highest by default); anything else is returned as given, with None.

    Raises:
        ValueError: ``"imagenet-i<N>"`` for a resolution without a file.
    """
    if not isinstance(weights, str):
        return weights, None
    if weights == "imagenet":
        return weights, resolutions(depth)[0]
    match = _WEIGHTS_VARIANT.fullmatch(weights)
    if match is None:
        return weights, None
    resolution = int(match.group(1))
    if resolution not in resolutions(depth):
        allowed = ", ".join(repr(f"imagenet-i{r}") for r in resolutions(depth))
        raise ValueError(
            f"ResNetRS{depth} has official weights for `weights` in 'imagenet' (the "
            f"highest resolution), {allowed}, None or the path to a weights file. "
            f"Received: weights={weights!r}"
        )
    return "imagenet", resolution


def allow_deep_graph(depth):
    """Raise Python's recursion limit to what ``depth`` needs, if it is
    lower, and leave it raised, as tf_keras does: the model must stay
    usable after the constructor returns (saved, cloned, reloaded)."""
    limit = RECURSION_LIMITS.get(depth)
    if limit is not None and sys.getrecursionlimit() < limit:
        sys.setrecursionlimit(limit)


def _build(depth, *, include_top, weights, classes, input_shape, input_tensor, pooling,
           classifier_activation, include_preprocessing, name, data_format):
    imagenet.validate_bool("include_preprocessing", include_preprocessing)
    weights, resolution = resolve_weights(depth, weights)
    spec = _common.prepare(
        f"resnetrs{depth}", include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    allow_deep_graph(depth)
    return _resnet_rs(spec, depth, include_preprocessing=include_preprocessing,
                      resolution=resolution)


_DOC = """Instantiate the ResNet-RS{depth} architecture.

    Reference: [Revisiting ResNets: Improved Training and Scaling
    Strategies](https://arxiv.org/abs/2103.07579) (NeurIPS 2021). Not in
    Keras 3's keras.applications: this is tf_keras' graph, on every backend
    and in both data formats, with its official ImageNet weights.

    The model preprocesses its input itself (Rescaling to [0, 1], then the
    ImageNet mean and variance): give it RGB pixels in [0, 255];
    `preprocess_input` is the identity.

    Args:
        include_top: whether to include the pooling, dropout and Dense head.
        weights: None (random init), "imagenet" (the file of the highest
            training resolution: {default}), one of {variants}, or a path
            to a weights file (legacy Keras .h5, .weights.h5 or .keras).
        classes: number of classes (1000 with imagenet weights and a top).
        input_shape: optional shape tuple, only with `include_top=False`
            (otherwise (224, 224, 3), or (3, 224, 224) with channels_first);
            at least 32 pixels high and wide.
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        pooling: None, "avg" or "max" when `include_top` is False.
        classifier_activation: activation of the top layer (None: logits).
        include_preprocessing: whether the model rescales and normalises its
            input (the normalisation only with 3 channels). Keep True with
            `weights="imagenet"`.
        name: the model's name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = ResNetRS{depth}(weights=None, include_top=False, pooling="avg",
        ...                  input_shape=(3, 64, 64), data_format="channels_first")
        >>> model.output_shape
        (None, 2048)
    """


def _make(depth):
    def constructor(
        include_top=True, weights="imagenet", classes=1000, input_shape=None,
        input_tensor=None, pooling=None, classifier_activation="softmax",
        include_preprocessing=True, name=f"resnet-rs-{depth}", data_format=None,
    ):
        return _build(
            depth, include_top=include_top, weights=weights, classes=classes,
            input_shape=input_shape, input_tensor=input_tensor, pooling=pooling,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing, name=name, data_format=data_format,
        )

    title = f"ResNetRS{depth}"
    constructor.__name__ = constructor.__qualname__ = title
    constructor.__module__ = __name__
    constructor.__doc__ = _DOC.format(
        depth=depth, default=f"imagenet-i{resolutions(depth)[0]}",
        variants=", ".join(f'"imagenet-i{r}"' for r in resolutions(depth)),
    )
    return _common.constructor(constructor)


ResNetRS50 = _make(50)
ResNetRS101 = _make(101)
ResNetRS152 = _make(152)
ResNetRS200 = _make(200)
ResNetRS270 = _make(270)
ResNetRS350 = _make(350)
ResNetRS420 = _make(420)

preprocess_input = _common.make_preprocess_input("resnet_rs")
decode_predictions = imagenet.decode_predictions

__all__ = [f"ResNetRS{d}" for d in BLOCKS] + ["preprocess_input", "decode_predictions"]
