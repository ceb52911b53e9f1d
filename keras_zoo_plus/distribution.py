"""Sharding a zoo model over devices: :func:`layout_map` for
``keras.distribution.ModelParallel``.

Data parallelism needs nothing from the zoo: build and fine-tune the model
under ``keras.distribution.DataParallel`` (JAX) or inside a
``tf.distribute.MirroredStrategy`` scope (TensorFlow), as README "Scaling
out" shows. Model parallelism needs a layout for each variable, and that
depends on the model's variable names and shapes: :func:`layout_map`
derives it from the model itself, and :func:`bytes_per_device` says what
it buys. Under a ``tf.distribute`` strategy, :func:`synchronize_batchnorm`
makes BatchNormalization's batch statistics the global batch's.

The layout (what timm and keras-hub do for their large models, by hand):
a kernel (Dense, Conv2D, a separable convolution's pointwise kernel) with
at least ``min_size`` elements is split along its output features over
the mesh's ``axis``, when that axis' size divides them. Everything else is
replicated: depthwise kernels (one output feature per input channel),
biases, normalisation parameters and statistics, and the small kernels,
whose memory is not worth the communication. XLA (GSPMD) inserts the
collectives the split needs, so the model computes what it computes on one
device.

Nothing here asks which backend runs: the layout is computed from
variable paths and shapes (a model name is built with
:func:`keras_zoo_plus.deferred.build_structure_only`, which allocates no
weights). Keras runs ``ModelParallel`` on JAX.
"""

from __future__ import annotations

import math
import re

#: Kernels smaller than this many elements are replicated (1 MiB in
#: float32): VGG16's first 12 convolutions and every depthwise kernel of
#: the zoo stay whole.
MIN_SIZE = 2**18

_SPLIT_NAMES = ("kernel", "pointwise_kernel")


def _check_mesh(mesh, axis):
    import keras

    if not isinstance(mesh, keras.distribution.DeviceMesh):
        raise TypeError(
            "`mesh` must be a keras.distribution.DeviceMesh. "
            f"Received: mesh={mesh!r} of type {type(mesh).__name__}")
    if axis not in mesh.axis_names:
        raise ValueError(
            f"`axis` must name an axis of the mesh, one of {list(mesh.axis_names)}. "
            f"Received: axis={axis!r}")
    return mesh.shape[list(mesh.axis_names).index(axis)]


def _model(model_or_name, kwargs):
    import keras

    if isinstance(model_or_name, keras.Model):
        if kwargs:
            raise TypeError(
                "Constructor arguments are only taken with a model name; "
                f"received a model and {sorted(kwargs)}")
        return model_or_name
    if isinstance(model_or_name, str):
        from keras_zoo_plus import deferred, registry

        info = registry.model_info(model_or_name)  # ValueError for an unknown name
        kwargs.setdefault("weights", None)
        return deferred.build_structure_only(info.constructor, **kwargs)
    raise TypeError(
        "`model_or_name` must be a keras.Model or a registered model name. "
        f"Received: model_or_name={model_or_name!r} of type {type(model_or_name).__name__}")


def _split_axis(variable, layer, parts, min_size):
    """The axis of ``variable`` split over ``parts`` devices, or None."""
    import keras

    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return None
    shape = tuple(variable.shape)
    name = variable.path.rsplit("/", 1)[-1]
    if (name not in _SPLIT_NAMES or len(shape) < 2 or math.prod(shape) < min_size
            or shape[-1] % parts):
        return None
    return len(shape) - 1


def _leaf_layers(model):
    """Every layer of the model that is not a model, nested models opened."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaf_layers(layer)
        else:
            yield layer


def _layers(model):
    """(layer, variable) for every variable of the model, nested models
    included."""
    for layer in _leaf_layers(model):
        for variable in layer.weights:
            yield layer, variable


def layout_map(model_or_name, mesh, *, axis="model", min_size=MIN_SIZE, **kwargs):
    """A ``keras.distribution.LayoutMap`` that splits the model's large
    kernels over ``mesh``'s ``axis``, for ``keras.distribution.ModelParallel``.

    Keras lays a variable out when the variable is created, so build (or
    load) the model inside the distribution's scope, from the map of a name
    or of a model of the same variant.

    Args:
        model_or_name: a Keras model (a zoo model, or one containing one), or
            a registered model name, built structure-only with ``kwargs``.
        mesh: a ``keras.distribution.DeviceMesh``.
        axis: the mesh axis the kernels are split over.
        min_size: kernels with fewer elements are replicated.
        **kwargs: the constructor's arguments, with a name (``classes``
            changes the classifier's shape, so it matters).

    Returns:
        A LayoutMap with one key per split variable, anchored on the
        variable's path (it also matches the path inside a model that
        wraps this one).

    Raises:
        TypeError: ``mesh`` is not a DeviceMesh, ``model_or_name`` is neither
            a model nor a name, ``min_size`` is not an int, or ``kwargs``
            come with a model.
        ValueError: ``axis`` is not an axis of ``mesh``, ``min_size`` is
            below 1, or the name is unknown.

    Example:
        >>> mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"])
        >>> layouts = layout_map("vgg16", mesh)
        >>> with keras.distribution.ModelParallel(
        ...         layout_map=layouts, batch_dim_name="batch").scope():
        ...     model = create_model("vgg16", weights="imagenet")
    """
    import keras

    parts = _check_mesh(mesh, axis)
    if isinstance(min_size, bool) or not isinstance(min_size, int):
        raise TypeError(f"`min_size` must be an int. Received: min_size={min_size!r}")
    if min_size < 1:
        raise ValueError(f"`min_size` must be at least 1. Received: min_size={min_size}")
    model = _model(model_or_name, dict(kwargs))
    layouts = keras.distribution.LayoutMap(mesh)
    for layer, variable in _layers(model):
        split = _split_axis(variable, layer, parts, min_size)
        if split is None:
            continue
        axes = [None] * len(variable.shape)
        axes[split] = axis
        layouts["(?:.*/)?" + re.escape(variable.path)] = tuple(axes)
    return layouts


def bytes_per_device(model, layouts):
    """The bytes of the model's variables that each device of the layout's
    mesh holds: a split variable's share, plus every replicated variable
    whole.

    Args:
        model: a Keras model.
        layouts: a ``keras.distribution.LayoutMap`` (:func:`layout_map`), or
            None for every variable replicated.

    Returns:
        An int: the same on every device (the split axes divide evenly).
    """
    total = 0
    mesh = getattr(layouts, "device_mesh", None)
    sizes = dict(zip(mesh.axis_names, mesh.shape)) if mesh is not None else {}
    for _, variable in _layers(model):
        n = math.prod(variable.shape) * _itemsize(variable.dtype)
        layout = layouts[variable.path] if layouts is not None else None
        if layout is not None:
            n //= math.prod(sizes[a] for a in layout.axes if a is not None)
        total += n
    return total


def _itemsize(dtype):
    import numpy as np

    return np.dtype(str(dtype).replace("bfloat16", "float16")).itemsize


def synchronize_batchnorm(model, synchronized=True):
    """Make every BatchNormalization of ``model`` compute its training
    statistics over all replicas of a ``tf.distribute`` strategy
    (Keras' ``synchronized`` argument), or undo it.

    Under ``tf.distribute.MirroredStrategy`` each replica normalises with
    the statistics of its own share of the batch (Keras' default), so
    training with BatchNormalization on batch statistics differs from one
    device (measured: MobileNetV2 at 96 px, 8 images on 2 replicas, the
    first step's loss 7.228 against 7.214). Synchronised, the first step
    computes what one device computes. On JAX nothing is needed:
    ``keras.distribution.DataParallel`` reduces over the global batch.

    Keras accepts ``synchronized=True`` on TensorFlow only, and the layer's
    config carries it: a model saved synchronised loads on TensorFlow only.
    Call this again with ``synchronized=False`` before saving a model for
    the other backends.

    Args:
        model: a Keras model; nested models are opened up.
        synchronized: True to synchronise, False to restore the default.

    Returns:
        The names of the layers changed.

    Raises:
        TypeError: ``model`` is not a Keras model, or ``synchronized`` is not
            a bool.
        ValueError: ``synchronized=True`` on a backend other than TensorFlow.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"`model` must be a keras.Model. Received: model={model!r} of type "
            f"{type(model).__name__}")
    if not isinstance(synchronized, bool):
        raise TypeError(
            f"`synchronized` must be a bool. Received: synchronized={synchronized!r}")
    if synchronized and keras.backend.backend() != "tensorflow":
        raise ValueError(
            "Synchronised BatchNormalization is a tf.distribute feature: Keras "
            "supports it with the TensorFlow backend only. Received backend "
            f"{keras.backend.backend()!r} (on JAX, DataParallel already reduces "
            "over the global batch).")
    changed = []
    for layer in _leaf_layers(model):
        if (isinstance(layer, keras.layers.BatchNormalization)
                and layer.synchronized != synchronized):
            layer.synchronized = synchronized
            changed.append(layer.name)
    return changed
