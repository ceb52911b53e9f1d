"""Building a model whose weights are replaced right away, without running
its initializers.

``keras-zoo-plus check`` and the oracle tests build a model and then set
every weight (synthetic arrays, or a weights file): the random
initializers' values are never used, yet they were most of the build.
Measured on this 2-core machine, DenseNet121 at 64x81, build + weights:

========== ====================== ====================================
backend    with initializers      :func:`build_without_initializers`
========== ====================== ====================================
torch      4.3 s                  0.6 s
tensorflow 4.1 s                  1.3 s
jax        34 s cold, 1.3 s warm  1.6 s cold, 0.9 s warm
========== ====================== ====================================

(JAX compiles every random initializer once per weight shape; "cold" is
a process without a compilation cache.) Outputs are bit-identical.

How: the model is built inside ``keras.StatelessScope(initialize_variables=False)``,
which creates every variable without a value; then each layer weight
gets zeros (one ``np.zeros`` each) and every other variable (a Dropout's
seed state) its own initializer, and Keras' list of variables awaiting
initialisation is settled, so nothing runs them again later. This uses
Keras internals (``Variable._initializer``, the deferred-initialisation
list), so where they are missing (another Keras release) the model is
built the ordinary way: slower, same result.
"""

from __future__ import annotations

import numpy as np


def _zeros(shape, dtype=None):
    return np.zeros(tuple(shape), dtype=dtype or "float32")


def build_without_initializers(build, *args, **kwargs):
    """``build(*args, **kwargs)``, a function returning a Keras model,
    with every layer weight zero-filled instead of initialised.

    The caller must then set every weight (``set_weights``,
    :func:`keras_zoo_plus.weights.assign_legacy`, ...): the zeros are not
    a usable initialisation. Variables that are not layer weights (a
    Dropout's seed state) get their initializer's value as usual.

    Args:
        build: a callable returning a ``keras.Model`` (a constructor).
        *args, **kwargs: its arguments.

    Returns:
        The model.

    Example:
        >>> model = build_without_initializers(ResNet50, weights=None)
        >>> model.set_weights(arrays)  # every weight, right away
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.backend.common.variables import initialize_all_variables
    except ImportError:  # another Keras layout: build the ordinary way
        return build(*args, **kwargs)
    model, pending_before = _stateless_build(build, args, kwargs)
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    layer_weights = {id(w) for w in model.weights}
    for variable in pending:
        if id(variable) in layer_weights and getattr(variable, "_value", 0) is None:
            variable._initializer = _zeros
    # Initialises exactly this build's variables: the list held only the
    # caller's earlier pending variables (normally none), which are put back.
    earlier = {id(v) for v in pending_before}
    global_state.set_global_attribute(
        "uninitialized_variables", [v for v in pending if id(v) not in earlier]
    )
    initialize_all_variables()
    global_state.set_global_attribute("uninitialized_variables", pending_before)
    _track_torch_parameters(model)
    return model


def _track_torch_parameters(model):
    """On torch, register every layer's variables as its module parameters,
    as an ordinary build does once a layer is built.

    Keras' torch layers skip that step inside a stateless scope (their
    variables have no value yet) and do it lazily, when
    ``named_parameters`` is first asked. TorchScript tracing (Keras' ONNX
    export) does not ask: every weight of a model built here was a tensor
    it could not insert as a constant ("Cannot insert a Tensor that
    requires grad as a constant"), so a zoo model built with weights (an
    official file or a user's) failed to export on torch. Elsewhere
    nothing to do."""
    layers = [model, *model._flatten_layers(include_self=False)]
    for layer in layers:
        track = getattr(layer, "_track_variables", None)
        if track is not None and not hasattr(layer, "_torch_params"):
            track()


def build_structure_only(build, *args, **kwargs):
    """``build(*args, **kwargs)`` for a caller that reads the model's
    structure only: layers, configs, output shapes, variable names and
    shapes, parameter counts (``keras-zoo-plus table``, the tests).

    Built inside ``keras.StatelessScope(initialize_variables=False)``, like
    :func:`build_without_initializers`, but the variables never get a
    value: no initializer runs and no array is allocated. They are taken
    off Keras' list of variables awaiting values (the list is put back as
    it was), so nothing initialises them later. Do not read or assign the
    weights of such a model, nor run it.

    Measured on this 2-core machine, ``keras-zoo-plus table`` (the 20
    constructors with their tops), with initializers and with this:
    jax 96.7 s and 7.3 s, tensorflow 36.7 s and 13.8 s, torch 20.7 s and
    13.4 s; the same table.

    Args:
        build: a callable returning a Keras model (a constructor,
            ``keras.saving.deserialize_keras_object``, ...).
        *args, **kwargs: its arguments.

    Returns:
        The model, without variable values.

    Example:
        >>> build_structure_only(ResNet50, weights=None).count_params()
        25636712
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # another Keras layout: build the ordinary way
        return build(*args, **kwargs)
    model, pending_before = _stateless_build(build, args, kwargs)
    global_state.set_global_attribute("uninitialized_variables", pending_before)
    _give_integer_variables_values(model)
    return model


def _give_integer_variables_values(model):
    """Initialise the model's integer variables (a Normalization's
    ``count``: scalars). Keras' torch backend cannot track a variable
    without a value once the model is nested in another: its placeholder
    becomes a ``torch.nn.Parameter`` requiring gradients, which an integer
    tensor cannot ("Only Tensors of floating point and complex dtype can
    require gradients")."""
    import keras

    for variable in model.variables:
        if (getattr(variable, "_value", 0) is None
                and not keras.backend.is_float_dtype(variable.dtype)):
            variable._deferred_initialize()


def _stateless_build(build, args, kwargs):
    """``(model, Keras' list of variables awaiting values before the build)``
    for ``build(*args, **kwargs)`` run inside
    ``keras.StatelessScope(initialize_variables=False)``; a failed build (a
    refused argument) puts the list back and leaves nothing pending."""
    import keras
    from keras.src.backend.common import global_state

    before = list(global_state.get_global_attribute("uninitialized_variables") or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            return build(*args, **kwargs), before
    except BaseException:
        global_state.set_global_attribute("uninitialized_variables", before)
        raise
