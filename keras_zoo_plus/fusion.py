"""Inference-time fusion of Convolution -> BatchNormalization -> ReLU
(or ReLU6, hard-swish or swish).

Every family is a chain of convolutions, each followed by a
BatchNormalization and usually a ReLU or ReLU6 (hard-swish in
MobileNetV3, swish in EfficientNet). In inference the normalisation is an affine map that can
be folded into the convolution's kernel and bias, and the activation can
run as the convolution's post-op
(:func:`keras_zoo_plus.ops.conv_batchnorm`); TensorFlow's graph optimizer
does this for its own graphs, Keras' torch backend runs three separate
eager passes instead.

:func:`enable_fused_inference` finds those chains in a functional model
(``fusion_plan``) and gives the model instance a ``call`` that runs them
fused whenever :func:`keras_zoo_plus.ops.fused_inference_active` allows it
(today: torch on CPU, no autograd, float32, not training) and the model's
own ``call`` otherwise. The model stays a plain ``keras.Model``: layers,
weights, config and saved files are unchanged, a layer called on its own
or a new model built from the layers' outputs computes exactly what it
did, and a chain is only fused when nothing else reads the convolution's
or the normalisation's output.

Example:
    >>> model = keras_zoo_plus.applications.MobileNet(weights=None)
    >>> keras_zoo_plus.fusion.enable_fused_inference(model)  # constructors do this
    27
"""

from __future__ import annotations

import keras

from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus import ops as zoo_ops

_CONV_KINDS = (
    (zoo_layers.SeparableConv2D, "separable"),
    (zoo_layers.DepthwiseConv2D, "depthwise"),
    (zoo_layers.Conv2D, "conv"),
)
_MARK = "_keras_zoo_plus_fused_call"


def _kind(layer):
    for cls, kind in _CONV_KINDS:
        if type(layer) is cls:
            return kind
    return None


def _post_op(layer):
    """How an activation layer runs as the convolution's post-op: the
    ``max_value`` / ``activation`` arguments of
    :func:`keras_zoo_plus.ops.conv_batchnorm` (``max_value`` ``inf`` for
    ReLU, the cap for ReLU6-like; ``activation="hard_silu"`` for
    ``Activation("hard_silu")`` and its alias ``"hard_swish"``;
    ``activation="silu"`` for ``Activation("silu")``/``"swish"``), or
    ``None`` when it cannot."""
    if type(layer) is keras.layers.ReLU:
        if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            return None
        cap = float("inf") if layer.max_value is None else float(layer.max_value)
        return {"max_value": cap, "activation": None}
    if type(layer) is keras.layers.Activation:
        fn = layer.activation
        if fn is keras.activations.relu:
            return {"max_value": float("inf"), "activation": None}
        if fn in (keras.activations.relu6, zoo_layers.relu6):
            return {"max_value": 6.0, "activation": None}
        if fn is keras.activations.hard_silu:
            return {"max_value": None, "activation": "hard_silu"}
        if fn is keras.activations.silu:
            return {"max_value": None, "activation": "silu"}
    return None


def _single_axis(axis):
    if isinstance(axis, int):
        return axis
    axis = list(axis)
    return axis[0] if len(axis) == 1 else -99  # never a channel axis


def _graph(model):
    """``(readers, single_output, outputs)`` of a functional model: the
    layers reading each tensor (by id), a function giving a layer's output
    when it is called once with one output (else None), and the ids of the
    model's outputs."""
    readers, produced = {}, {}
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            layer = node.operation
            if layer is None or node.is_input:
                continue
            produced.setdefault(id(layer), []).extend(node.output_tensors)
            for tensor in node.input_tensors:
                readers.setdefault(id(tensor), []).append(layer)

    def single_output(layer):
        tensors = produced.get(id(layer), [])
        return tensors[0] if len(tensors) == 1 and len(layer._inbound_nodes) == 1 else None

    return readers, single_output, {id(t) for t in model.outputs}


def fusion_plan(model, graph=None):
    """The chains ``(conv, batchnorm, activation or None)`` of ``model``
    that can run fused.

    A chain qualifies when the convolution is one of ours
    (``layers.Conv2D``/``DepthwiseConv2D``/``SeparableConv2D``) with no
    activation of its own, called once in the model; its output feeds only
    our ``layers.BatchNormalization`` over the channel axis (no renorm),
    which is called once; neither output is a model output, and all three
    compute in float32. The activation joins when it is the normalisation's
    only reader and is a ReLU, ReLU6, hard-swish or swish
    (``keras.layers.ReLU`` without slope or threshold, or
    ``Activation("relu")``/``relu6``/``"hard_silu"``/``"hard_swish"``/
    ``"silu"``/``"swish"``).

    Args:
        model: A functional ``keras.Model``.
        graph: ``_graph(model)`` when the caller has it already.

    Returns:
        list of ``(conv, batchnorm, activation)`` tuples, in layer order.
    """
    if not hasattr(model, "_nodes_by_depth"):
        return []
    readers, single_output, outputs = graph or _graph(model)
    plan = []
    for conv in model.layers:
        kind = _kind(conv)
        if kind is None or conv.activation not in (None, keras.activations.linear):
            continue
        conv_out = single_output(conv)
        if conv_out is None or id(conv_out) in outputs:
            continue
        after = readers.get(id(conv_out), [])
        if len(after) != 1 or type(after[0]) is not zoo_layers.BatchNormalization:
            continue
        bn = after[0]
        bn_out = single_output(bn)
        channel_axis = 1 if conv.data_format == "channels_first" else 3
        if (
            bn_out is None
            or getattr(bn, "renorm", False)
            or _single_axis(bn.axis) % 4 != channel_axis
        ):
            continue
        if any(layer.compute_dtype != "float32" for layer in (conv, bn)):
            continue
        act = None
        after_bn = readers.get(id(bn_out), [])
        if id(bn_out) not in outputs and len(after_bn) == 1:
            candidate = after_bn[0]
            if _post_op(candidate) is not None and single_output(candidate) is not None:
                if candidate.compute_dtype == "float32":
                    act = candidate
        plan.append((conv, bn, act))
    return plan


def dense_plan(model, graph=None):
    """ConvNeXt's pointwise pairs of ``model`` that can run fused: ``(dense,
    follower)`` where ``dense`` is our ``layers.ChannelDense`` with no
    activation of its own, called once, and its only reader is exactly one
    ``Activation("gelu")`` (exact GELU: the post-op) or one
    ``layers.LayerScale`` over the same channel axis (folded into the
    weights), called once; neither output is a model output, and both
    compute in float32. Runs as :func:`keras_zoo_plus.ops.channel_dense`.
    ``graph``: as for :func:`fusion_plan`.

    Returns:
        list of ``(dense, follower)`` tuples, in layer order.
    """
    if not hasattr(model, "_nodes_by_depth"):
        return []
    readers, single_output, outputs = graph or _graph(model)
    plan = []
    for dense in model.layers:
        if type(dense) is not zoo_layers.ChannelDense:
            continue
        if dense.activation not in (None, keras.activations.linear):
            continue
        out = single_output(dense)
        if out is None or id(out) in outputs:
            continue
        after = readers.get(id(out), [])
        if len(after) != 1 or single_output(after[0]) is None:
            continue
        (follower,) = after
        if id(single_output(follower)) in outputs:
            continue
        if _dense_follower(dense, follower) is None:
            continue
        if any(layer.compute_dtype != "float32" for layer in (dense, follower)):
            continue
        plan.append((dense, follower))
    return plan


def _dense_follower(dense, layer):
    """How ``layer`` joins ``dense``: ``"gelu"``, ``"scale"`` or None."""
    if type(layer) is keras.layers.Activation:
        fn = layer.activation
        if fn is keras.activations.gelu and not getattr(fn, "approximate", False):
            return "gelu"
        return None
    if type(layer) is zoo_layers.LayerScale:
        first = dense.data_format == "channels_first"
        return "scale" if layer.axis == (1 if first else -1) else None
    return None


def _supported(model):
    """The Functional internals the fused call relies on (Keras 3.8-3.15)."""
    try:
        from keras.src.models.functional import operation_fn  # noqa: F401
    except ImportError:
        return False
    return all(
        hasattr(model, name) for name in ("_run_through_graph", "_standardize_inputs", "inputs")
    )


def enable_fused_inference(model):
    """Give ``model`` a ``call`` that runs its Conv -> BatchNorm (->
    activation) chains fused where
    :func:`keras_zoo_plus.ops.fused_inference_active` allows it (see the
    module docstring), and the same to every functional
    model nested in it. Idempotent; a no-op on backends without a fused
    path (:func:`keras_zoo_plus.ops.fused_inference_supported`), on models
    with nothing to fuse, on non-functional models and on Keras releases
    without the internals it needs.

    Args:
        model: A ``keras.Model``; zoo constructors and
            :func:`keras_zoo_plus.load_model` call this themselves.

    Returns:
        int: the number of fused chains, nested models included (0 when
        nothing was installed).

    Raises:
        TypeError: if ``model`` is not a ``keras.Model``.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model; received {type(model).__name__}.")
    nested = sum(
        enable_fused_inference(layer) for layer in model.layers if isinstance(layer, keras.Model)
    )
    return nested + _enable(model)


def _enable(model):
    existing = model.__dict__.get("call")
    if getattr(existing, _MARK, False):
        return len(existing.plan) + len(existing.dense_plan)
    if not zoo_ops.fused_inference_supported() or not _supported(model):
        return 0
    # Walked once for both planners (a model without a graph plans nothing).
    graph = _graph(model) if hasattr(model, "_nodes_by_depth") else None
    plan, dense = fusion_plan(model, graph), dense_plan(model, graph)
    if not plan and not dense:
        return 0
    model.call = _fused_call(model, plan, dense)
    return len(plan) + len(dense)


#: Layers whose ``call`` the fused inference path runs directly, without
#: ``Layer.__call__`` (exact types: a subclass may override ``__call__``).
#: Under a float32 policy, in inference, on tensors, ``__call__`` adds
#: nothing to what ``call`` computes (no cast, no mask, built already) but
#: its bookkeeping: 0.1-0.25 ms per layer here, most of a one-image
#: MobileNetV2 or EfficientNetB0 call beside the fused convolutions.
_DIRECT = frozenset({
    keras.layers.Activation, keras.layers.Add, keras.layers.AveragePooling2D,
    keras.layers.Concatenate, keras.layers.Dense, keras.layers.Dropout, keras.layers.Flatten,
    keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
    keras.layers.MaxPooling2D, keras.layers.Multiply, keras.layers.ReLU,
    keras.layers.Rescaling, keras.layers.Reshape, keras.layers.ZeroPadding2D,
    zoo_layers.Conv2D, zoo_layers.DepthwiseConv2D, zoo_layers.SeparableConv2D,
    zoo_layers.MaxPooling2D, zoo_layers.AveragePooling2D,
})


def _direct_call(op, fallback):
    """``op.call`` as the graph walk calls operations, in inference
    (``training=False`` where the layer takes it), while ``op``'s dtype
    policy is float32; ``fallback`` (its ``Layer.__call__``) otherwise,
    checked on every call: a policy can change after the first inference
    (``layer.dtype_policy = ...``, quantization)."""
    call = op.call
    training = getattr(op, "_call_has_training_arg", False)

    def run(*args, **kwargs):
        if op.dtype_policy.name != "float32":
            return fallback(*args, **kwargs)
        if training:
            kwargs["training"] = False
        return call(*args, **kwargs)

    return run


def _fused_call(model, plan, dense_pairs=()):
    from keras.src.models.functional import operation_fn

    original = type(model).call.__get__(model)
    skipped = {id(layer) for _, bn, act in plan for layer in (bn, act) if layer is not None}
    skipped |= {id(follower) for _, follower in dense_pairs}

    def identity(x, *args, **kwargs):
        return x

    def fused(conv, bn, act):
        kind = _kind(conv)
        post_op = {"max_value": None, "activation": None} if act is None else _post_op(act)

        def run(x, *args, **kwargs):
            return zoo_ops.conv_batchnorm(
                x,
                conv.depthwise_kernel if kind == "separable" else conv.kernel,
                pointwise_kernel=conv.pointwise_kernel if kind == "separable" else None,
                kind=kind,
                bias=conv.bias if conv.use_bias else None,
                mean=bn.moving_mean,
                variance=bn.moving_variance,
                offset=bn.beta if bn.center else None,
                scale=bn.gamma if bn.scale else None,
                epsilon=bn.epsilon,
                strides=conv.strides,
                padding=conv.padding,
                data_format=conv.data_format,
                dilation_rate=conv.dilation_rate,
                **post_op,
            )

        return run

    def fused_dense(dense, follower):
        how = _dense_follower(dense, follower)

        def run(x, *args, **kwargs):
            return zoo_ops.channel_dense(
                x,
                dense.kernel,
                dense.bias if dense.use_bias else None,
                data_format=dense.data_format,
                activation="gelu" if how == "gelu" else None,
                scale=follower.gamma if how == "scale" else None,
            )

        return run

    # Built once: the graph walk asks for each operation's function per call.
    runners = {id(conv): fused(conv, bn, act) for conv, bn, act in plan}
    runners.update({id(d): fused_dense(d, f) for d, f in dense_pairs})

    direct = {id(op) for op in model.operations
              if type(op) in _DIRECT and getattr(op, "built", False)}

    def pick(training):
        def for_operation(op):
            if id(op) in runners:
                return runners[id(op)]
            if id(op) in skipped:
                return identity
            if id(op) in direct:
                return _direct_call(op, operation_fn(op, training=training))
            return operation_fn(op, training=training)

        return for_operation

    schedules = {}

    def call(inputs, training=None, mask=None, **kwargs):
        if training or mask is not None or kwargs:
            return original(inputs, training=training, mask=mask, **kwargs)
        standardized = model._standardize_inputs(inputs)
        flat = keras.tree.flatten(standardized)
        if not zoo_ops.fused_inference_active(flat[0]):
            return original(inputs, training=training, mask=mask, **kwargs)
        if training not in schedules:
            schedules[training] = _schedule(model, pick(training))
        outputs = _run_schedule(model, schedules[training], flat)
        return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs

    call.plan = plan
    call.dense_plan = list(dense_pairs)
    setattr(call, _MARK, True)
    return call


def _schedule(model, for_operation):
    """The model's graph as a flat list of steps, in the order Keras' graph
    walk (``Function._run_through_graph``) computes them: ``(function,
    how, inputs, outputs, node)``. ``how`` says how the node's arguments
    are read: 0, one tensor; 1, a list of tensors (Add, Concatenate...);
    2, Keras' own ``fill_in``. Keras' walk re-reads every node's argument
    structure and flattens every output with tree utilities on each call;
    on torch that bookkeeping was about 9 ms of a 44 ms one-image
    EfficientNetB0 call."""
    from keras.src.backend.common.keras_tensor import KerasTensor

    available = {id(x) for x in model.inputs}
    steps = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if any(id(x) not in available for x in node.input_tensors):
                continue  # not computable from these inputs (Keras skips it too)
            arguments = node.arguments
            args, kwargs = arguments.args, arguments.kwargs
            if arguments._single_positional_tensor is not None:
                how, inputs = 0, id(arguments._single_positional_tensor)
            elif (not kwargs and len(args) == 1 and isinstance(args[0], (list, tuple))
                  and all(isinstance(t, KerasTensor) for t in args[0])):
                how, inputs = 1, [id(t) for t in args[0]]
            else:
                how, inputs = 2, None
            outputs = [id(x) for x in node.outputs]
            available.update(outputs)
            steps.append((for_operation(node.operation), how, inputs, outputs, node))
    return steps


def _run_schedule(model, steps, inputs):
    """:func:`_schedule`'s steps on the flat ``inputs``; the outputs in the
    model's output structure."""
    values = {id(x): y for x, y in zip(model.inputs, inputs)}
    for function, how, args, outputs, node in steps:
        if how == 0:
            y = function(values[args])
        elif how == 1:
            y = function([values[k] for k in args])
        else:
            a, kw = node.arguments.fill_in(values)
            y = function(*a, **kw)
        if len(outputs) == 1 and not isinstance(y, (list, tuple, dict)):
            values[outputs[0]] = y
        else:
            values.update(zip(outputs, keras.tree.flatten(y)))
    return keras.tree.pack_sequence_as(model._outputs_struct,
                                       [values[id(x)] for x in model.outputs])
