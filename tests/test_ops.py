"""Parity of keras_zoo_plus.ops (the fast formulations the current backend
picks) with keras.ops.depthwise_conv / separable_conv, values and gradients,
on small random inputs. Runs on whichever backend the session uses."""

import contextlib
import importlib
import inspect
import itertools
import re

import keras
import numpy as np
import pytest

from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus import ops as zoo_ops

from helpers import keras_reference, keras_runs_nchw_conv

BACKEND = keras.backend.backend()
REL = 1e-5

# (strides, dilation): Keras refuses strides and dilation both > 1.
STRIDE_DILATION = [(1, 1), (2, 1), (1, 2)]
# Every stride/dilation x padding x odd/even size, with (kernel, multiplier)
# in two pairs, plus the two other pairings where asymmetric padding bites.
ALL_CASES = [
    (sd, pad, size, k, m)
    for sd, pad, size, (k, m) in itertools.product(
        STRIDE_DILATION, ["same", "valid"], [7, 8], [(3, 1), (5, 2)]
    )
] + [((2, 1), "same", 8, 3, 2), ((2, 1), "same", 7, 5, 1)]
# A "valid" kernel wider than the input has no output: not a case.
ALL_CASES = [c for c in ALL_CASES if c[1] == "same" or c[2] - (c[3] - 1) * c[0][1] >= 1]
# With stride 1 the padding does not depend on the size's parity, so the odd
# size adds nothing there: keep those in the slow session (JAX compiles every
# case afresh, which dominates the fast session's time).
CASES = [
    pytest.param(c, marks=pytest.mark.slow) if c[0][0] == 1 and c[2] == 7 else c for c in ALL_CASES
]


def _case_id(case):
    (s, d), pad, size, k, m = case
    return f"s{s}-d{d}-{pad}-n{size}-k{k}-m{m}"


def _inputs(data_format, size, k, m, channels=3, seed=0, filters=4):
    rng = np.random.default_rng(seed)
    shape = (2, size, size + 1, channels)  # non-square catches H/W swaps
    x = rng.standard_normal(shape).astype("float32")
    if data_format == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2)).copy()
    dw = rng.standard_normal((k, k, channels, m)).astype("float32")
    pw = rng.standard_normal((1, 1, channels * m, filters)).astype("float32")
    return x, dw, pw


def _value_and_grads(fn, args, seed=1):
    """``fn(*args)`` and d/d(args) of ``sum(fn(*args) * w)`` for a fixed
    random ``w`` (so every output element contributes a distinct weight)."""
    if BACKEND == "jax":
        import jax

        # Under jit, where "auto" picks the fused shifted formulation.
        out = np.asarray(jax.jit(fn)(*args))
    else:
        out = keras.ops.convert_to_numpy(fn(*[keras.ops.convert_to_tensor(a) for a in args]))
    w = np.random.default_rng(seed).standard_normal(out.shape).astype("float32")
    if BACKEND == "jax":
        import jax

        def loss(*a):
            return (fn(*a) * w).sum()

        # jit: one compilation instead of one per eager primitive.
        grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)
    elif BACKEND == "torch":
        import torch

        tensors = [torch.tensor(a, requires_grad=True) for a in args]
        (fn(*tensors) * torch.tensor(w)).sum().backward()
        grads = [t.grad for t in tensors]
    else:
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss = tf.reduce_sum(fn(*tensors) * w)
        grads = tape.gradient(loss, tensors)
    return out, [keras.ops.convert_to_numpy(g) for g in grads]


def _assert_close(actual, expected, what):
    scale = max(float(np.max(np.abs(expected))), 1e-6)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert err <= REL * scale, f"{what}: max|diff| {err:.3g} > {REL} * {scale:.3g}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_depthwise_matches_keras(case, data_format):
    (strides, dilation), padding, size, k, m = case
    x, dw, _ = _inputs(data_format, size, k, m)
    kwargs = dict(strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation)

    ref, ref_grads = _value_and_grads(
        lambda a, b: keras.ops.depthwise_conv(a, b, **kwargs), (x, dw)
    )
    out, grads = _value_and_grads(lambda a, b: zoo_ops.depthwise_conv2d(a, b, **kwargs), (x, dw))
    _assert_close(out, ref, "output")
    _assert_close(grads[0], ref_grads[0], "d/dx")
    _assert_close(grads[1], ref_grads[1], "d/dkernel")


@pytest.mark.parametrize(
    "case", [c for c in ALL_CASES if c[2] == 8 and c[1] == "same"], ids=_case_id
)
def test_separable_matches_keras(case, data_format):
    (strides, dilation), padding, size, k, m = case
    x, dw, pw = _inputs(data_format, size, k, m)
    kwargs = dict(strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation)

    ref_op = keras_reference(
        lambda a, b, c, data_format: keras.ops.separable_conv(
            a, b, c, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation,
        ),
        data_format,
    )
    ref, ref_grads = _value_and_grads(ref_op, (x, dw, pw))
    out, grads = _value_and_grads(
        lambda a, b, c: zoo_ops.separable_conv2d(a, b, c, **kwargs), (x, dw, pw)
    )
    _assert_close(out, ref, "output")
    for name, g, r in zip(("d/dx", "d/ddepthwise", "d/dpointwise"), grads, ref_grads):
        _assert_close(g, r, name)


def test_same_padding_is_keras_rule():
    # Extra pixel of an odd total goes after; stride 1 pads (k - 1) * d.
    assert zoo_ops.same_padding(8, 3, 2, 1) == (0, 1)
    assert zoo_ops.same_padding(7, 3, 2, 1) == (1, 1)
    assert zoo_ops.same_padding(8, 4, 1, 1) == (1, 2)
    assert zoo_ops.same_padding(9, 3, 1, 2) == (2, 2)
    assert zoo_ops.same_padding(224, 3, 2, 1) == (0, 1)


def test_selection_rule_on_cpu():
    expected = {"jax": "native", "torch": "channels_last", "tensorflow": "native"}[BACKEND]
    x = keras.ops.zeros((1, 4, 4, 2))
    assert zoo_ops.select_implementation(x) == expected
    assert zoo_ops.select_implementation(x, "channels_last") == expected
    # A CPU-only TensorFlow runs channels_first convolutions as NHWC.
    cf = "channels_last" if BACKEND == "tensorflow" else expected
    assert zoo_ops.select_implementation(x, "channels_first") == cf
    if BACKEND == "jax":
        import jax

        # Under jit (predict, fit) the fused shifted formulation is chosen.
        seen = []
        jax.jit(lambda t: seen.append(zoo_ops.select_implementation(t)) or t)(x)
        assert seen == ["shifted"]


def test_dispatch_picks_the_running_backend_module():
    module = zoo_ops._backend()
    assert module is importlib.import_module(f"keras_zoo_plus.ops._{BACKEND}")
    # Only torch has a batch-normalisation kernel (one pass instead of three).
    x = keras.ops.zeros((1, 4, 4, 2))
    assert zoo_ops.has_kernel("batch_normalization", x) == (BACKEND == "torch")


def test_public_functions_never_name_a_backend():
    source = inspect.getsource(zoo_ops)
    assert not re.search(r"backend\(\)\s*(==|!=|in\b|not in\b)", source)
    assert not re.search(r"import (torch|jax|tensorflow)\b", source)


# The hooks a backend module may define besides kernels named like a public
# function of keras_zoo_plus.ops or a keras.ops function.
_HOOKS = {
    "IMPLEMENTATIONS",
    "select_implementation",
    "fused_inference_supported",
    "fused_inference_active",
}


@pytest.mark.parametrize("name", ["_portable", "_jax", "_torch", "_tensorflow"])
def test_backend_modules_share_one_interface(name):
    # Importable under any backend: frameworks are imported inside the hooks.
    module = importlib.import_module(f"keras_zoo_plus.ops.{name}")
    public = {n for n in vars(module) if not n.startswith("_")}
    public -= {n for n in public if inspect.ismodule(getattr(module, n))}
    public.discard("annotations")  # from __future__
    kernels = public - _HOOKS
    assert kernels <= set(zoo_ops.__all__) | set(dir(keras.ops)), kernels
    for kernel in kernels:
        assert "implementation" in inspect.signature(getattr(module, kernel)).parameters
    assert set(module.IMPLEMENTATIONS) <= set(zoo_ops.IMPLEMENTATIONS) - {"auto", "native"}
    portable = importlib.import_module("keras_zoo_plus.ops._portable")
    for hook in _HOOKS & public:
        if callable(getattr(portable, hook)):
            assert inspect.signature(getattr(module, hook)) == inspect.signature(
                getattr(portable, hook)
            ), hook


def test_a_new_kernel_is_one_hook(monkeypatch):
    # Any keras.ops function is reachable here; a backend module's hook of
    # that name runs in its place, NotImplemented or no hook means keras.ops.
    x = keras.ops.convert_to_tensor(np.linspace(-3, 3, 12, dtype="float32").reshape(1, 2, 2, 3))
    expected = keras.ops.convert_to_numpy(keras.ops.silu(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(zoo_ops.silu(x)), expected)
    module, seen = zoo_ops._backend(), []
    offered = module.IMPLEMENTATIONS[0] if module.IMPLEMENTATIONS else None

    def silu(x, *, implementation):
        seen.append(implementation)
        return keras.ops.multiply(x, 2.0) if implementation == offered else NotImplemented

    monkeypatch.setattr(module, "silu", silu, raising=False)
    monkeypatch.setattr(module, "select_implementation", lambda x, f=None, op=None: offered)
    out = keras.ops.convert_to_numpy(zoo_ops.silu(x))
    np.testing.assert_array_equal(out, keras.ops.convert_to_numpy(x) * 2.0)
    assert seen == [offered]
    out = zoo_ops.silu(x, implementation="native")  # never reaches the hook
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), expected)
    assert seen == [offered]
    with pytest.raises(AttributeError):
        zoo_ops.not_a_keras_op  # noqa: B018


def test_unknown_implementation_is_refused():
    x = np.zeros((1, 4, 4, 2), "float32")
    k = np.zeros((3, 3, 2, 1), "float32")
    with pytest.raises(ValueError, match=r"`implementation` must be one of .* received 'fast'"):
        zoo_ops.depthwise_conv2d(x, k, implementation="fast")
    other = "channels_last" if BACKEND == "jax" else "shifted"
    with pytest.raises(ValueError, match=f"`implementation='{other}'` needs the"):
        zoo_ops.depthwise_conv2d(x, k, implementation=other)


def test_native_implementation_is_keras_op():
    x, dw, _ = _inputs("channels_last", 8, 3, 1)
    out = zoo_ops.depthwise_conv2d(x, dw, padding="same", implementation="native")
    ref = keras.ops.depthwise_conv(x, dw, padding="same")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(ref))


def _twin_models(data_format):
    """The same small separable/depthwise network from our layers (in
    ``data_format``) and from keras.layers, with identical weights, and the
    data format of the keras.layers twin: ``data_format`` itself, or
    channels_last where Keras' channels_first convolution cannot run (the
    network ends in a global pooling, so its output does not depend on it)."""
    ref_format = data_format if keras_runs_nchw_conv() else "channels_last"

    def build(dw_cls, sep_cls, data_format):
        # Widths (7, 7, 3) never equal the channel counts (6, 5, 5): Keras 3.15.1 on
        # TensorFlow adds the bias along the width there in channels_first
        # (see keras_zoo_plus.layers), which would make the reference wrong.
        shape = (3, 9, 13) if data_format == "channels_first" else (9, 13, 3)
        inputs = keras.Input(shape)
        x = dw_cls(3, strides=2, padding="same", depth_multiplier=2, data_format=data_format)(
            inputs
        )
        x = keras.layers.ReLU()(x)
        x = sep_cls(5, 3, padding="same", data_format=data_format)(x)
        x = dw_cls(3, padding="valid", dilation_rate=2, data_format=data_format)(x)
        x = keras.layers.GlobalAveragePooling2D(data_format=data_format)(x)
        return keras.Model(inputs, x)

    ours = build(zoo_layers.DepthwiseConv2D, zoo_layers.SeparableConv2D, data_format)
    ref = build(keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, ref_format)
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.3 for w in ref.weights]
    ref.set_weights(weights)
    ours.set_weights(weights)
    return ours, ref, ref_format


def test_training_step_matches_native_layers(data_format):
    ours, ref, ref_format = _twin_models(data_format)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2,) + tuple(ours.input_shape[1:])).astype("float32")
    x_ref = np.transpose(x, (0, 2, 3, 1)).copy() if ref_format != data_format else x
    y = rng.standard_normal((2, 5)).astype("float32")
    for model in (ours, ref):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loss_ours = ours.train_on_batch(x, y)
    loss_ref = ref.train_on_batch(x_ref, y)
    assert abs(loss_ours - loss_ref) <= REL * abs(loss_ref)
    for a, b, w in zip(ours.get_weights(), ref.get_weights(), ref.weights):
        _assert_close(a, b, f"weight {w.path} after one SGD step")
    _assert_close(
        keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(ref(x_ref)), "outputs"
    )


@pytest.mark.parametrize(
    "case",
    [
        ((1, 1), "same", 8, 3),
        ((2, 1), "same", 8, 3),
        ((2, 1), "same", 7, 1),
        ((1, 2), "valid", 7, 3),
        ((2, 1), "valid", 8, 1),
        ((2, 1), "same", 8, 4),
        ((1, 2), "same", 7, 1),
    ],
    ids=lambda c: f"s{c[0][0]}-d{c[0][1]}-{c[1]}-n{c[2]}-k{c[3]}",
)
def test_conv2d_matches_keras(case, data_format):
    (strides, dilation), padding, size, k = case
    x, _, _ = _inputs(data_format, size, k, 1)
    kernel = np.random.default_rng(2).standard_normal((k, k, 3, 5)).astype("float32")
    _assert_conv2d_matches_keras(x, kernel, strides, padding, dilation, data_format)


def _assert_conv2d_matches_keras(x, kernel, strides, padding, dilation, data_format):
    """zoo_ops.conv2d's values and gradients against keras.ops.conv's (a
    grouped convolution when the kernel has fewer input channels)."""
    kwargs = dict(strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation)
    ref_op = keras_reference(
        lambda a, b, data_format: keras.ops.conv(a, b, **dict(kwargs, data_format=data_format)),
        data_format,
    )
    ref, ref_grads = _value_and_grads(ref_op, (x, kernel))
    out, grads = _value_and_grads(lambda a, b: zoo_ops.conv2d(a, b, **kwargs), (x, kernel))
    assert out.shape == ref.shape
    _assert_close(out, ref, "output")
    _assert_close(grads[0], ref_grads[0], "d/dx")
    _assert_close(grads[1], ref_grads[1], "d/dkernel")


@pytest.mark.parametrize(
    "case",
    [((1, 1), "same"), ((2, 1), "same"), ((1, 2), "valid"), ((2, 1), "valid")],
    ids=lambda c: f"s{c[0][0]}-d{c[0][1]}-{c[1]}",
)
def test_grouped_conv2d_matches_keras(case, data_format):
    """3 groups of 2 input channels and 2 filters (RegNet's grouped 3x3; on
    JAX/CPU one convolution per group, keras_zoo_plus.ops._jax), values and
    gradients against keras.ops.conv's grouped convolution."""
    (strides, dilation), padding = case
    x, _, _ = _inputs(data_format, 8, 3, 1, channels=6)
    kernel = np.random.default_rng(3).standard_normal((3, 3, 2, 6)).astype("float32")
    _assert_conv2d_matches_keras(x, kernel, strides, padding, dilation, data_format)


@pytest.mark.parametrize("affine", ["scale_offset", "none"])
def test_batch_normalization_matches_keras(data_format, affine):
    rng = np.random.default_rng(5)
    channels = 6
    x = rng.standard_normal((2, 5, 7, channels)).astype("float32")
    if data_format == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2)).copy()
    axis = 1 if data_format == "channels_first" else -1
    mean = rng.standard_normal(channels).astype("float32")
    var = (0.5 + rng.random(channels)).astype("float32")
    beta = rng.standard_normal(channels).astype("float32")
    gamma = (1 + 0.3 * rng.standard_normal(channels)).astype("float32")

    if affine == "none":

        def make(op):
            return lambda a, m, v: op(a, m, v, axis=axis, epsilon=1e-3)

        args = (x, mean, var)
    else:

        def make(op):
            return lambda a, m, v, b, g: op(a, m, v, axis=axis, offset=b, scale=g, epsilon=1e-3)

        args = (x, mean, var, beta, gamma)
    ref, ref_grads = _value_and_grads(make(keras.ops.batch_normalization), args)
    out, grads = _value_and_grads(make(zoo_ops.batch_normalization), args)
    _assert_close(out, ref, "output")
    for name, g, r in zip(["x", "mean", "variance", "offset", "scale"], grads, ref_grads):
        _assert_close(g, r, f"d/d{name}")


def test_batch_normalization_implementation_rule():
    x = np.ones((1, 2, 2, 3), "float32")
    stats = np.ones(3, "float32")
    with pytest.raises(ValueError, match=r"`implementation` must be one of .* received 'fused'"):
        zoo_ops.batch_normalization(x, stats, stats, axis=-1, implementation="fused")
    native = zoo_ops.batch_normalization(x, stats, stats, axis=-1, implementation="native")
    ref = keras.ops.batch_normalization(x, stats, stats, axis=-1)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(native), keras.ops.convert_to_numpy(ref)
    )


def _twin_bn_models(data_format, **bn_kwargs):
    axis = 1 if data_format == "channels_first" else -1
    shape = (4, 5, 6) if data_format == "channels_first" else (5, 6, 4)

    def build(bn_cls):
        inputs = keras.Input(shape)
        x = bn_cls(axis=axis, **bn_kwargs)(inputs)
        # A trainable layer after the BatchNorm, the same in both models
        # (Dense on the last axis: no convolution, so no NCHW kernel needed).
        x = keras.layers.Dense(3)(x)
        return keras.Model(inputs, x)

    ours, ref = build(zoo_layers.BatchNormalization), build(keras.layers.BatchNormalization)
    rng = np.random.default_rng(6)
    weights = [rng.random(w.shape).astype("float32") + 0.5 for w in ref.weights]
    ref.set_weights(weights)
    ours.set_weights(weights)
    x = rng.standard_normal((3,) + shape).astype("float32")
    return ours, ref, x


@pytest.mark.parametrize("bn_kwargs", [{}, {"center": False, "scale": False, "epsilon": 1.001e-5}])
def test_batchnorm_layer_matches_keras(data_format, bn_kwargs):
    ours, ref, x = _twin_bn_models(data_format, **bn_kwargs)
    for training in (False, True):
        _assert_close(
            keras.ops.convert_to_numpy(ours(x, training=training)),
            keras.ops.convert_to_numpy(ref(x, training=training)),
            f"outputs, training={training}",
        )
    # Inference through predict (compiled where the backend compiles).
    _assert_close(ours.predict(x, verbose=0), ref.predict(x, verbose=0), "predict")


@pytest.mark.parametrize("frozen", [False, True])
def test_batchnorm_layer_training_step_matches_keras(data_format, frozen):
    ours, ref, x = _twin_bn_models(data_format)
    y = np.random.default_rng(7).standard_normal((x.shape[0],) + ours.output_shape[1:])
    for model in (ours, ref):
        model.layers[1].trainable = not frozen  # frozen BN runs in inference mode
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    loss_ours = ours.train_on_batch(x, y.astype("float32"))
    loss_ref = ref.train_on_batch(x, y.astype("float32"))
    assert abs(loss_ours - loss_ref) <= REL * abs(loss_ref)
    for a, b, w in zip(ours.get_weights(), ref.get_weights(), ref.weights):
        _assert_close(a, b, f"weight {w.path} after one SGD step (frozen BN: {frozen})")


if BACKEND == "tensorflow":
    # TensorFlow only: the rule that keeps channels_first convolutions off
    # TensorFlow's CPU NCHW kernel, which only exists with oneDNN.

    @pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d", "separable_conv2d"])
    def test_tensorflow_cpu_runs_channels_first_as_nhwc(op):
        import tensorflow as tf

        from keras_zoo_plus.ops import _tensorflow

        assert _tensorflow._cpu_only()  # CI and this project's machines have no GPU
        x, dw, pw = _inputs("channels_first", 8, 3, 1)
        kernel = {"conv2d": (dw[..., :1].repeat(4, -1),), "depthwise_conv2d": (dw,),
                  "separable_conv2d": (dw, pw)}[op]
        fn = tf.function(
            lambda t: getattr(zoo_ops, op)(t, *kernel, padding="same", data_format="channels_first")
        )
        graph = fn.get_concrete_function(tf.TensorSpec(x.shape, tf.float32)).graph
        convs = [o for o in graph.get_operations() if o.type in ("Conv2D", "DepthwiseConv2dNative")]
        assert convs and all(o.get_attr("data_format") == b"NHWC" for o in convs), [
            (o.type, o.get_attr("data_format")) for o in convs
        ]
        assert any(o.type == "Transpose" for o in graph.get_operations())
        # Explicit "channels_last" is the same computation; "native" is Keras'
        # op as it is (NCHW), refused by this CPU kernel without oneDNN.
        ref = keras_reference(
            lambda a, data_format: keras.ops.conv(a, kernel[0], padding="same",
                                                  data_format=data_format),
            "channels_first",
        )(x) if op == "conv2d" else None
        out = getattr(zoo_ops, op)(x, *kernel, padding="same", data_format="channels_first",
                                   implementation="channels_last")
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(fn(x))
        )
        if ref is not None:
            _assert_close(keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(ref), op)


# --- layer normalization ----------------------------------------------------

LN_REL = 1e-6  # outputs; gradients (other reduction orders) keep REL


def _ln_reference(axis, epsilon):
    """keras.layers.LayerNormalization's op, ``keras.ops.layer_normalization``.
    Keras 3.15.1 on torch hands a single axis to ``F.layer_norm``, which
    normalises the *last* axis, so its axis=1 fails on 4D inputs there; the
    reference is then Keras' axis=-1 op between transposes (still Keras')."""
    if axis == -1 or BACKEND != "torch":
        return lambda a, g, b: keras.ops.layer_normalization(a, g, b, axis=axis, epsilon=epsilon)

    def via_nhwc(a, g, b):
        y = keras.ops.layer_normalization(
            keras.ops.transpose(a, (0, 2, 3, 1)), g, b, axis=-1, epsilon=epsilon
        )
        return keras.ops.transpose(y, (0, 3, 1, 2))

    return via_nhwc


def _ln_inputs(shape, seed=8, offset=0.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + offset).astype("float32")
    return x


def _ln_numpy(x, gamma, beta, axis, epsilon):
    x = x.astype("float64")
    mean = x.mean(axis, keepdims=True)
    var = ((x - mean) ** 2).mean(axis, keepdims=True)
    shape = [1] * x.ndim
    shape[axis] = -1
    y = (x - mean) / np.sqrt(var + epsilon)
    if gamma is not None:
        y = y * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y


@pytest.mark.parametrize("affine", [True, False])
def test_layer_normalization_matches_keras(data_format, affine):
    axis = 1 if data_format == "channels_first" else -1
    x = _ln_inputs((2, 5, 7, 6), offset=0.5)
    if axis == 1:
        x = np.transpose(x, (0, 3, 1, 2)).copy()
    rng = np.random.default_rng(9)
    gamma = (1 + 0.3 * rng.standard_normal(6)).astype("float32")
    beta = (0.3 * rng.standard_normal(6)).astype("float32")
    eps = 1e-6
    if affine:
        ref_fn, args = _ln_reference(axis, eps), (x, gamma, beta)

        def ours(a, g, b):
            return zoo_ops.layer_normalization(a, g, b, axis=axis, epsilon=eps)
    else:
        ref3 = _ln_reference(axis, eps)

        def ref_fn(a):
            return ref3(a, None, None)

        def ours(a):
            return zoo_ops.layer_normalization(a, axis=axis, epsilon=eps)

        args = (x,)
    ref, ref_grads = _value_and_grads(ref_fn, args)
    out, grads = _value_and_grads(ours, args)
    scale = float(np.max(np.abs(ref)))
    assert out.shape == ref.shape
    assert np.max(np.abs(out - ref)) <= LN_REL * scale
    g_np, b_np = (gamma, beta) if affine else (None, None)
    assert np.max(np.abs(out - _ln_numpy(x, g_np, b_np, axis, eps))) <= LN_REL * scale
    for name, g, r in zip(["x", "gamma", "beta"], grads, ref_grads):
        _assert_close(g, r, f"d/d{name}")


def test_layer_normalization_matches_keras_layer(data_format):
    # The layer itself (weights set, epsilon 1e-6 as in ConvNeXt), and an
    # input with channels_last strides on torch (our convolutions' output).
    axis = 1 if data_format == "channels_first" else -1
    channels = 8
    x = _ln_inputs((2, 4, 5, channels), seed=10, offset=-1.0)
    layer = keras.layers.LayerNormalization(axis=-1, epsilon=1e-6)
    layer.build(x.shape)
    rng = np.random.default_rng(11)
    weights = [(1 + 0.2 * rng.standard_normal(channels)).astype("float32"),
               (0.2 * rng.standard_normal(channels)).astype("float32")]
    layer.set_weights(weights)
    ref = keras.ops.convert_to_numpy(layer(x))  # channels_last: Keras' layer on any backend
    xin = np.transpose(x, (0, 3, 1, 2)).copy() if axis == 1 else x
    tensor = keras.ops.convert_to_tensor(xin)
    if BACKEND == "torch" and axis == 1:
        import torch

        tensor = tensor.contiguous(memory_format=torch.channels_last)
    out = zoo_ops.layer_normalization(tensor, layer.gamma, layer.beta, axis=axis, epsilon=1e-6)
    out = keras.ops.convert_to_numpy(out)
    if axis == 1:
        out = np.transpose(out, (0, 2, 3, 1))
        if BACKEND != "torch":  # Keras' own axis=1 layer runs here
            layer1 = keras.layers.LayerNormalization(axis=1, epsilon=1e-6)
            layer1.build(xin.shape)
            layer1.set_weights(weights)
            ref1 = np.transpose(keras.ops.convert_to_numpy(layer1(xin)), (0, 2, 3, 1))
            assert np.max(np.abs(out - ref1)) <= LN_REL * np.max(np.abs(ref1))
    assert np.max(np.abs(out - ref)) <= LN_REL * np.max(np.abs(ref))


def test_layer_normalization_2d():
    # The head's LayerNormalization after global pooling.
    x = _ln_inputs((3, 10), seed=12)
    gamma = np.linspace(0.5, 1.5, 10).astype("float32")
    beta = np.linspace(-1, 1, 10).astype("float32")
    ref = keras.ops.convert_to_numpy(
        keras.ops.layer_normalization(x, gamma, beta, axis=-1, epsilon=1e-6)
    )
    for axis in (-1, 1):
        out = zoo_ops.layer_normalization(x, gamma, beta, axis=axis, epsilon=1e-6)
        out = keras.ops.convert_to_numpy(out)
        assert np.max(np.abs(out - ref)) <= LN_REL * np.max(np.abs(ref))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_layer_normalization_half_precision(data_format, dtype):
    # Computed in float32 and cast back, as Keras does: the outputs agree
    # with Keras' within one rounding of the half type (eps * max|y|).
    axis = 1 if data_format == "channels_first" else -1
    x = _ln_inputs((2, 4, 5, 6), seed=13)
    if axis == 1:
        x = np.transpose(x, (0, 3, 1, 2)).copy()
    gamma = np.linspace(0.5, 1.5, 6).astype("float32")
    beta = np.linspace(-0.5, 0.5, 6).astype("float32")
    xh = keras.ops.cast(keras.ops.convert_to_tensor(x), dtype)
    out = zoo_ops.layer_normalization(xh, gamma, beta, axis=axis, epsilon=1e-6)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    ref = _ln_reference(axis, 1e-6)(xh, gamma, beta)
    out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    ref = keras.ops.convert_to_numpy(keras.ops.cast(ref, "float32"))
    tol = {"float16": 2.0**-10, "bfloat16": 2.0**-7}[dtype] * np.max(np.abs(ref))
    assert np.max(np.abs(out - ref)) <= tol


def test_layer_normalization_arguments():
    x = np.zeros((1, 3, 3, 2), "float32")
    g = np.ones(2, "float32")
    with pytest.raises(ValueError, match=r"`axis` must be -1 .* received 2 for a 4D input"):
        zoo_ops.layer_normalization(x, g, g, axis=2, epsilon=1e-6)
    with pytest.raises(ValueError, match="received 1 for a 3D input"):
        zoo_ops.layer_normalization(x[0], g, g, axis=1, epsilon=1e-6)
    with pytest.raises(ValueError, match="received -5"):
        zoo_ops.layer_normalization(x, g, g, axis=-5, epsilon=1e-6)
    with pytest.raises(TypeError, match="`axis` must be an int"):
        zoo_ops.layer_normalization(x, g, g, axis=(3,), epsilon=1e-6)
    with pytest.raises(ValueError, match=r"`implementation` must be one of"):
        zoo_ops.layer_normalization(x, g, g, axis=-1, implementation="fast")
    # axis 3 of a 4D input is the last axis.
    out = zoo_ops.layer_normalization(x + np.arange(2, dtype="float32"), g, g, axis=3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out)[..., 0], 0.0, atol=1e-2)
    # Only torch/CPU has a kernel of its own (F.layer_norm on the NHWC view).
    assert zoo_ops.has_kernel("layer_normalization", keras.ops.zeros((1, 2, 2, 2))) == (
        BACKEND == "torch"
    )


# --- channel_dense (ConvNeXt's fused pointwise pairs) -------------------------


def _no_grad():
    """Autograd off on torch (where the fused kernel runs), a no-op elsewhere."""
    import contextlib

    if BACKEND != "torch":
        return contextlib.nullcontext()
    import torch

    return torch.no_grad()


def _erf(x):
    import math

    return np.vectorize(math.erf)(x)


@pytest.mark.parametrize("activation, scaled, biased",
                         [("gelu", False, True), (None, True, True), (None, False, False),
                          ("gelu", True, False)])
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "autograd"])
def test_channel_dense_matches_numpy(data_format, activation, scaled, biased, grad):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 7, 6)).astype("float32")
    kernel = (rng.standard_normal((6, 10)) / 2).astype("float32")
    bias = rng.standard_normal(10).astype("float32") if biased else None
    scale = rng.uniform(0.5, 1.5, 10).astype("float32") if scaled else None
    # float64 reference on channels_last data.
    want = x.astype("float64") @ kernel.astype("float64")
    if bias is not None:
        want = want + bias
    if activation == "gelu":
        want = 0.5 * want * (1 + _erf(want / np.sqrt(2.0)))
    if scale is not None:
        want = want * scale
    first = data_format == "channels_first"
    xin = np.transpose(x, (0, 3, 1, 2)).copy() if first else x
    context = _no_grad() if not grad else __import__("contextlib").nullcontext()
    with context:
        got = keras.ops.convert_to_numpy(zoo_ops.channel_dense(
            keras.ops.convert_to_tensor(xin), kernel, bias, data_format=data_format,
            activation=activation, scale=scale))
    if first:
        got = np.transpose(got, (0, 2, 3, 1))
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 2e-6 * np.max(np.abs(want))


def test_channel_dense_arguments():
    x = np.zeros((1, 2, 3, 4), "float32")
    k = np.zeros((4, 5), "float32")
    with pytest.raises(ValueError, match=re.escape(
            "`activation` must be one of [None, 'gelu']. Received: activation='relu'")):
        zoo_ops.channel_dense(x, k, activation="relu")
    with pytest.raises(ValueError, match=re.escape(
            "With data_format='channels_first' `x` must be 4D (batch, channels, rows, cols). "
            "Received: x.shape=(2, 4)")):
        zoo_ops.channel_dense(np.zeros((2, 4), "float32"), k, data_format="channels_first")


# --- max pooling -------------------------------------------------------------

# (height, width, pool, strides): odd and even sizes, square and oblong
# pools, strides below, at and above the pool, symmetric and asymmetric
# "same" padding.
POOL_CASES = [(7, 9, 3, 2), (8, 8, 3, 2), (8, 9, 2, 2), (9, 7, 3, 1), (10, 11, (2, 3), (3, 1))]


def _numpy_max_pool(x, pool, strides, padding):
    """An independent reference on NHWC data: -inf padding by Keras' "same"
    rule (extra pixel after), then the maximum over each window."""
    (kh, kw), (sh, sw) = pool, strides
    n, h, w, c = x.shape
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        th, tw = max((oh - 1) * sh + kh - h, 0), max((ow - 1) * sw + kw - w, 0)
        x = np.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)),
                   constant_values=-np.inf)
    oh, ow = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    out = np.full((n, oh, ow, c), -np.inf, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            out = np.maximum(out, x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw])
    return out


def _pool_case(reference, h, w, pool, strides, padding, data_format):
    """A seeded (2, h, w, 3) input in ``data_format`` and ``reference``'s
    pooled output of it (computed on NHWC, transposed alike)."""
    x = np.random.default_rng(h * w).standard_normal((2, h, w, 3)).astype("float32")
    expected = reference(x, zoo_ops._pair(pool, "pool"), zoo_ops._pair(strides, "strides"),
                         padding)
    if data_format == "channels_first":
        return x.transpose(0, 3, 1, 2).copy(), expected.transpose(0, 3, 1, 2)
    return x, expected


def _runs_kernel(op, x, data_format):
    """Whether ``op`` on ``x`` reaches a kernel of the running backend (in
    the current export scope) rather than the ``keras.ops`` function."""
    return zoo_ops._kernel(op, zoo_ops._select(x, data_format, op)) is not None


@pytest.mark.parametrize("exporting", [False, True], ids=["run", "export_scope"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_max_pool2d_matches_numpy(data_format, padding, exporting):
    """Values against the reference always; gradients against Keras' op
    where a kernel of ours ran (elsewhere the op is Keras' own)."""
    from keras_zoo_plus.ops._common import export_scope

    for h, w, pool, strides in POOL_CASES:
        x, expected = _pool_case(_numpy_max_pool, h, w, pool, strides, padding, data_format)

        def fn(t, pool=pool, strides=strides):
            with export_scope() if exporting else contextlib.nullcontext():
                return zoo_ops.max_pool2d(t, pool, strides, padding, data_format)

        with export_scope() if exporting else contextlib.nullcontext():
            kernel = _runs_kernel("max_pool2d", keras.ops.convert_to_tensor(x), data_format)
        if not kernel:
            out = keras.ops.convert_to_numpy(fn(keras.ops.convert_to_tensor(x)))
            np.testing.assert_array_equal(out, expected)
            continue
        out, (grad,) = _value_and_grads(fn, (x,))
        np.testing.assert_array_equal(out, expected)
        # Each output's weight lands on the one input that won its window.
        _, (native_grad,) = _value_and_grads(
            lambda t, p=pool, s=strides: keras.ops.max_pool(t, p, s, padding, data_format), (x,))
        np.testing.assert_allclose(grad, native_grad, rtol=0, atol=1e-6)


def test_max_pool2d_selection():
    from keras_zoo_plus.ops._common import export_scope

    x = keras.ops.zeros((1, 4, 4, 2))
    run = {"torch": "channels_last", "jax": "native", "tensorflow": "native"}[BACKEND]
    exporting = {"torch": "channels_last", "jax": "shifted", "tensorflow": "native"}[BACKEND]
    assert zoo_ops._select(x, "channels_last", "max_pool2d") == run
    with export_scope():
        assert zoo_ops._select(x, "channels_last", "max_pool2d") == exporting
    assert zoo_ops.has_kernel("max_pool2d", x, "channels_last") == (BACKEND == "torch")


def test_max_pool2d_arguments():
    x = keras.ops.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError, match=r"^`padding` must be 'valid' or 'same'; received 'full'\.$"):
        zoo_ops.max_pool2d(x, 2, padding="full")
    with pytest.raises(ValueError, match=r"`pool_size` must be an int or a pair of ints; "
                       r"received \(2, 2, 2\)"):
        zoo_ops.max_pool2d(x, (2, 2, 2))
    with pytest.raises(ValueError, match=r"`implementation` must be one of"):
        zoo_ops.max_pool2d(x, 2, implementation="fast")
    # strides=None means the pool size, as in keras.ops.max_pool.
    assert tuple(zoo_ops.max_pool2d(x, 2).shape) == (1, 2, 2, 2)


def _numpy_average_pool(x, pool, strides, padding):
    """An independent reference on NHWC data: each window's mean over the
    pixels it covers, "same" padding left out of the count (TensorFlow)."""
    (kh, kw), (sh, sw) = pool, strides
    n, h, w, c = x.shape
    top = left = 0
    if padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        top = max((oh - 1) * sh + kh - h, 0) // 2
        left = max((ow - 1) * sw + kw - w, 0) // 2
    else:
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, oh, ow, c), dtype="float64")
    for i in range(oh):
        for j in range(ow):
            r0, c0 = max(i * sh - top, 0), max(j * sw - left, 0)
            r1, c1 = min(i * sh - top + kh, h), min(j * sw - left + kw, w)
            out[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out.astype("float32")


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_average_pool2d_matches_numpy(data_format, padding):
    """Values against the reference in every case (asymmetric "same"
    padding included); where a kernel of ours ran, gradients against
    Keras' op where Keras leaves the padding out too (valid and symmetric
    padding)."""
    for h, w, pool, strides in POOL_CASES:
        x, expected = _pool_case(_numpy_average_pool, h, w, pool, strides, padding, data_format)
        what = f"average_pool2d {h}x{w} {pool}/{strides} {padding}"
        if not _runs_kernel("average_pool2d", keras.ops.convert_to_tensor(x), data_format):
            out = zoo_ops.average_pool2d(x, pool, strides, padding, data_format)
            _assert_close(keras.ops.convert_to_numpy(out), expected, what)
            continue
        out, (grad,) = _value_and_grads(
            lambda t, p=pool, s=strides: zoo_ops.average_pool2d(t, p, s, padding, data_format),
            (x,))
        _assert_close(out, expected, what)
        symmetric = padding == "valid" or all(
            (t := zoo_ops.same_padding(n, k, st, 1))[0] == t[1]
            for n, k, st in zip((h, w), zoo_ops._pair(pool, "pool"),
                                zoo_ops._pair(strides, "strides")))
        if symmetric:
            _, (native_grad,) = _value_and_grads(
                lambda t, p=pool, s=strides: keras.ops.average_pool(t, p, s, padding, data_format),
                (x,))
            _assert_close(grad, native_grad, "gradient")


def test_average_pool2d_selection():
    x = keras.ops.zeros((1, 4, 4, 2))
    assert zoo_ops.has_kernel("average_pool2d", x, "channels_last") == (BACKEND == "torch")
    with pytest.raises(ValueError, match=r"^`padding` must be 'valid' or 'same'; received 'full'\.$"):
        zoo_ops.average_pool2d(x, 2, padding="full")
    assert tuple(zoo_ops.average_pool2d(x, 2).shape) == (1, 2, 2, 2)
