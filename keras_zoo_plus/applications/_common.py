"""Helpers every family constructor shares: argument checks, the input,
the conv -> BN (-> activation) block, the pooling/classifier top, model
assembly with weight loading, and ``preprocess_input``.

Facts (sizes, weight files, preprocessing mode) come from the model's
entry in :mod:`keras_zoo_plus.model_table`; a family builder reads::

    spec = prepare("resnet50", include_top=include_top, weights=weights, ...)
    x = ...blocks(spec.inputs, data_format=spec.data_format)...
    x = pooled_top(x, spec)             # or a family-specific top
    return finish(x, spec)
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import inspect

import keras
from keras import layers

from keras_zoo_plus import fusion, imagenet, model_table
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus import weights as _weights


@dataclasses.dataclass
class BuildSpec:
    entry: model_table.ModelInfo
    name: str
    data_format: str
    bn_axis: int
    input_shape: tuple
    inputs: object  # the tensor blocks start from
    model_inputs: object  # what keras.Model gets as inputs
    include_top: bool
    weights: object
    pooling: object
    classes: int
    classifier_activation: object


def prepare(
    model,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    data_format,
    default_size=None,
    require_flatten=None,
):
    """Validate every common argument and create the input.

    Args:
        model: the model's name in the model table, whose entry gives the
            minimum size, the default size (``default_size`` overrides it,
            e.g. MobileNet's official sizes), whether official weights exist
            and whether they need a static input shape (``require_static``).
        name: the Keras model's name.
        The others: the constructor's arguments of the same names.

    Raises ``ValueError``/``TypeError`` before any layer is built.
    """
    entry = model_table.get(model)
    data_format = imagenet.resolve_data_format(data_format)
    if default_size is None:
        default_size = entry.default_size
    imagenet.validate_weights(weights, include_top, classes, allow_imagenet=bool(entry.weights))
    imagenet.validate_pooling(pooling)
    imagenet.validate_classifier_activation(classifier_activation, weights)
    if weights == "imagenet" and include_top and classifier_activation not in (None, "softmax"):
        raise ValueError(
            'Only None and "softmax" are allowed for `classifier_activation` '
            'with `weights="imagenet"` and `include_top=True`. '
            f"Received: classifier_activation={classifier_activation!r}"
        )
    imagenet.validate_input_tensor(input_tensor)
    if input_shape is None and input_tensor is not None:
        # Take the shape from the tensor so the checks below still apply.
        input_shape = tuple(input_tensor.shape[1:])
    if (
        entry.require_static
        and weights == "imagenet"
        and isinstance(input_shape, (tuple, list))
        and None in tuple(input_shape)
    ):
        raise ValueError(
            'With `weights="imagenet"` the input shape must be static (no None '
            f"entries). Received: input_shape={tuple(input_shape)}"
        )
    if require_flatten is None:
        require_flatten = include_top
    shape = imagenet.obtain_input_shape(
        input_shape,
        default_size=default_size,
        min_size=entry.min_size,
        data_format=data_format,
        require_flatten=require_flatten,
        weights=weights,
    )
    if input_tensor is None:
        inputs = layers.Input(shape=shape, name="input")
        model_inputs = inputs
    else:
        if tuple(input_tensor.shape[1:]) != tuple(shape) and input_shape is not None:
            want = tuple(shape)
            got = tuple(input_tensor.shape[1:])
            if any(a is not None and b is not None and a != b for a, b in zip(want, got)):
                raise ValueError(
                    f"`input_tensor` has shape {got} but `input_shape` is {want}."
                )
        inputs = input_tensor
        model_inputs = keras.utils.get_source_inputs(input_tensor)
    return BuildSpec(
        entry=entry,
        name=name,
        data_format=data_format,
        bn_axis=imagenet.channel_axis(data_format),
        input_shape=tuple(shape),
        inputs=inputs,
        model_inputs=model_inputs,
        include_top=include_top,
        weights=weights,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )


def spatial(shape, data_format):
    """``(rows, cols)`` of a 3-entry input shape (no batch axis) in
    ``data_format``, or None if ``shape`` is not one."""
    if not isinstance(shape, (tuple, list)) or len(shape) != 3:
        return None
    return tuple(shape[1:]) if data_format == "channels_first" else tuple(shape[:2])


def correct_pad(x, kernel_size, data_format):
    """The zero padding before a stride-2 ``valid`` convolution that gives
    TensorFlow's ``same`` windows, keras.applications' rule (its
    ``correct_pad``): ``k // 2`` pixels at the end, one fewer at the start
    of an even size; an unknown size pads as an even one, and an unknown
    height pads both axes as even ones."""
    rows, cols = spatial(tuple(x.shape[1:]), data_format)
    half = kernel_size // 2
    if rows is None:
        return ((half - 1, half), (half - 1, half))
    return tuple((half - (1 if size is None else 1 - size % 2), half) for size in (rows, cols))


def global_pool(x, spec, *, top=False):
    """Global pooling: ``avg`` for a top, else as ``spec.pooling`` says."""
    mode = "avg" if top else spec.pooling
    if mode == "avg":
        return layers.GlobalAveragePooling2D(data_format=spec.data_format, name="avg_pool")(x)
    if mode == "max":
        return layers.GlobalMaxPooling2D(data_format=spec.data_format, name="max_pool")(x)
    return x


def classifier(x, spec, name="predictions", **dense_kwargs):
    """The Dense classifier (``dense_kwargs``: e.g. the family's initializers)."""
    return layers.Dense(spec.classes, activation=spec.classifier_activation, name=name,
                        **dense_kwargs)(x)


def pooled_top(x, spec):
    """The common top: global average pool + Dense, or pooling only."""
    if spec.include_top:
        return classifier(global_pool(x, spec, top=True), spec)
    return global_pool(x, spec)


#: Inside a :func:`constructor` call given weights: the list that
#: :func:`finish` hands its (weights, official file) to, for loading once
#: the model is built; None otherwise.
_DEFERRED_LOAD = contextvars.ContextVar("keras_zoo_plus_deferred_load", default=None)


def constructor(fn):
    """Decorator of every public constructor (``ResNet50``, ...).

    Given ``weights`` (``"imagenet"`` or a file), the model is built without
    running its initializers, whose values the weights replace right away
    (:func:`keras_zoo_plus.deferred.build_without_initializers`), then
    loaded. JAX compiles each initializer once per weight shape, so this
    was most of a weighted build there: ``ResNet50V2(weights=<file>,
    include_top=False)`` at 64x64 in a new process took 5.8-6.7 s with
    them and 1.1-1.9 s without (TensorFlow 1.5-1.7 s and 1.1-1.4 s; torch
    about 1 s either way). The loaders fill every weight or raise (they
    never leave a layer as built), so no zero is ever returned. With
    ``weights=None`` the initializers run as usual (the model's random
    initial state). The signature is ``fn``'s (``inspect.signature``
    follows ``__wrapped__``).
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def build(*args, **kwargs):
        if _DEFERRED_LOAD.get() is not None:  # called by another constructor
            return fn(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return fn(*args, **kwargs)  # Python's own error, from the call itself
        weights = bound.arguments.get("weights", signature.parameters["weights"].default)
        if weights is None or _in_stateless_scope():
            # Inside the caller's StatelessScope nothing may be initialised
            # here: the build is the caller's, as without weights.
            return fn(*args, **kwargs)
        from keras_zoo_plus.deferred import build_without_initializers

        loads = []
        token = _DEFERRED_LOAD.set(loads)
        try:
            model = build_without_initializers(fn, *args, **kwargs)
        finally:
            _DEFERRED_LOAD.reset(token)
        ((weights, official, adaptation),) = loads
        return _load_and_fuse(model, weights, official, adaptation)

    return build


def _in_stateless_scope():
    try:
        from keras.src.backend.common.stateless_scope import in_stateless_scope
    except ImportError:  # another Keras layout: assume a scope, build as before
        return True
    return in_stateless_scope()


#: Classes of the pretrained classifiers (ImageNet).
PRETRAINED_CLASSES = 1000


def _adaptation(model, spec):
    """What the loader adapts for ``spec`` (:class:`keras_zoo_plus.weights.Adaptation`):
    the first convolution when the input has
    other than 3 channels, the classifier (the last weighted layer) when
    ``include_top`` with ``classes`` other than 1000; None when neither."""
    channels = spec.input_shape[0 if spec.data_format == "channels_first" else -1]
    weighted = _weights.weighted_layers(model)
    # The first convolution (EfficientNet's input Normalization, weighted,
    # comes before it and is adapted by the loader too).
    convs = [layer for layer in weighted if isinstance(layer, keras.layers.Conv2D)]
    first = convs[0].name if channels != 3 and convs else None
    head = None
    if spec.include_top and spec.classes != PRETRAINED_CLASSES and weighted:
        head = weighted[-1].name
    if first is None and head is None:
        return None
    return _weights.Adaptation(first_conv=first, channels=channels, head=head)


def finish(x, spec, **variant):
    """Create the model and load ``spec.weights``; with ``"imagenet"`` the
    official file of ``spec.entry`` for ``spec.include_top`` and the
    ``variant`` arguments (MobileNet's ``alpha``, ``rows``). Pretrained
    weights for 3 channels and 1000 classes are fitted to other input
    channels and classes (:func:`_adaptation`). Inside a
    :func:`constructor` given weights, the loading is left to it (after
    the build)."""
    model = keras.Model(spec.model_inputs, x, name=spec.name)
    official = None
    if spec.weights == "imagenet":
        official = spec.entry.weight_file(include_top=spec.include_top, **variant)
    adaptation = _adaptation(model, spec) if spec.weights is not None else None
    deferred = _DEFERRED_LOAD.get()
    if deferred is not None and spec.weights is not None:
        deferred.append((spec.weights, official, adaptation))
        return model
    return _load_and_fuse(model, spec.weights, official, adaptation)


def _load_and_fuse(model, weights, official, adaptation):
    """Load ``weights`` into ``model``, then turn on fused inference."""
    _weights.load_weights(model, weights, official=official, adaptation=adaptation)
    fusion.enable_fused_inference(model)
    return model


def apply_conv_bn(
    x, filters, kernel_size, *, data_format, name, strides=1, padding="valid",
    use_bias=False, bn_epsilon=1e-3, bn_scale=True, bn_momentum=0.99, activation=None,
    conv_suffix="", act_suffix="_relu", separable=False, bn_name=None, act_name=None,
    kernel_initializer="glorot_uniform",
):
    """Convolution -> BatchNormalization (-> activation): the chain every
    family has, with the family's naming and BatchNorm settings.

    Layer names: ``{name}{conv_suffix}`` (convolution), ``{name}_bn``,
    ``{name}{act_suffix}``; ``bn_name`` and ``act_name`` replace the last
    two where the official names follow no such rule (MobileNetV2's
    ``bn_Conv1``, ``block_1_expand_BN``, ``out_relu``). ``activation`` is
    None, a Keras activation name or ``"relu6"`` (``layers.ReLU(6.0)``, as
    the official MobileNets). ``separable`` makes the convolution a
    bias-free ``SeparableConv2D``. ``kernel_initializer``: the
    convolution's (Keras' default unless the official graph sets one, as
    EfficientNet does).

    Example:
        >>> y = apply_conv_bn(x, 64, 7, strides=2, use_bias=True,
        ...                   bn_epsilon=1.001e-5, activation="relu",
        ...                   conv_suffix="_conv", data_format=df, name="conv1")
    """
    conv_cls, initializer = zoo_layers.Conv2D, {"kernel_initializer": kernel_initializer}
    if separable:
        conv_cls, initializer = zoo_layers.SeparableConv2D, {}
    x = conv_cls(
        filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
        data_format=data_format, name=f"{name}{conv_suffix}", **initializer,
    )(x)
    x = zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format), epsilon=bn_epsilon, momentum=bn_momentum,
        scale=bn_scale, name=bn_name or f"{name}_bn",
    )(x)
    return apply_activation(x, activation, name=act_name or f"{name}{act_suffix}")


def apply_activation(x, activation, *, name):
    """``activation`` (None, a Keras activation name, or ``"relu6"``)."""
    if activation is None:
        return x
    if activation == "relu6":
        return layers.ReLU(6.0, name=name)(x)
    return layers.Activation(activation, name=name)(x)


_MODE_DOC = {
    "caffe": "RGB -> BGR, then the ImageNet mean subtracted per channel (no scaling)",
    "tf": "pixels in [0, 255] scaled to [-1, 1]",
    "torch": "pixels scaled to [0, 1], then normalised with the ImageNet mean and std",
    "none": "the identity: the model preprocesses inside its graph",
}


def make_preprocess_input(module):
    """The ``preprocess_input`` of family module ``module``, in the mode its
    model-table entries give (they must agree)."""
    modes = {e.preprocess for e in model_table.family_entries(module)}
    if len(modes) != 1:
        raise ValueError(f"Family {module!r} has mixed preprocessing modes: {sorted(modes)}")
    (mode,) = modes

    def preprocess_input(x, data_format=None):
        return imagenet.preprocess_input(x, data_format=data_format, mode=mode)

    preprocess_input.__doc__ = (
        f"Preprocess a batch of RGB images in [0, 255] ({mode!r} mode): {_MODE_DOC[mode]}.\n\n"
        "    Args:\n"
        "        x: NumPy array or backend tensor, a batch or one image.\n"
        "        data_format: None (global default), 'channels_last' or 'channels_first'.\n\n"
        "    Returns:\n"
        "        The preprocessed array (NumPy input is never modified in place).\n"
    )
    preprocess_input.__module__ = f"keras_zoo_plus.applications.{module}"
    return preprocess_input
