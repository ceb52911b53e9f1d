"""Helpers every family constructor shares: argument checks, the input,
the pooling/classifier top, and model assembly with weight loading.

A constructor reads::

    spec = prepare(locals(), default_size=224, min_size=32)
    x = ...blocks(spec.inputs, data_format=spec.data_format)...
    x = top_or_pool(x, spec)            # or a family-specific top
    return finish(x, spec, name=name, key="resnet50")
"""

from __future__ import annotations

import dataclasses

import keras
from keras import layers

from keras_zoo_plus import fusion, imagenet
from keras_zoo_plus import weights as _weights


@dataclasses.dataclass
class BuildSpec:
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
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    data_format,
    default_size,
    min_size,
    require_flatten=None,
    has_imagenet=True,
    require_static=False,
):
    """Validate every common argument and create the input.

    ``require_static``: with ``weights="imagenet"`` the input shape may have
    no ``None`` entry (NASNet).

    Raises ``ValueError``/``TypeError`` before any layer is built.
    """
    data_format = imagenet.resolve_data_format(data_format)
    imagenet.validate_weights(weights, include_top, classes, allow_imagenet=has_imagenet)
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
        require_static
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
        min_size=min_size,
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


def global_pool(x, spec, *, top=False):
    """Global pooling: ``avg`` for a top, else as ``spec.pooling`` says."""
    mode = "avg" if top else spec.pooling
    if mode == "avg":
        return layers.GlobalAveragePooling2D(data_format=spec.data_format, name="avg_pool")(x)
    if mode == "max":
        return layers.GlobalMaxPooling2D(data_format=spec.data_format, name="max_pool")(x)
    return x


def classifier(x, spec, name="predictions"):
    return layers.Dense(spec.classes, activation=spec.classifier_activation, name=name)(x)


def pooled_top(x, spec):
    """The common top: global average pool + Dense, or pooling only."""
    if spec.include_top:
        return classifier(global_pool(x, spec, top=True), spec)
    return global_pool(x, spec)


def finish(x, spec, *, name, key):
    """Create the model and load ``spec.weights`` (official file ``key``)."""
    model = keras.Model(spec.model_inputs, x, name=name)
    _weights.load_weights(model, spec.weights, key=key, include_top=spec.include_top)
    fusion.enable_fused_inference(model)
    return model
