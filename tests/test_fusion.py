"""Inference-time Conv -> BatchNorm -> ReLU/ReLU6/hard-swish fusion
(keras_zoo_plus.fusion and ops.conv_batchnorm): which chains are fused,
that the fused path runs where it should and nowhere else, and that it
computes what the layers compute one by one. Runs on whichever backend
the session uses."""

import itertools

import keras
import numpy as np
import pytest
import zoo_builds

import keras_zoo_plus
from keras_zoo_plus import applications, fusion
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus import ops as zoo_ops

from helpers import keras_reference

BACKEND = keras.backend.backend()
TORCH = BACKEND == "torch"
REL = 1e-5


def _rel(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _randomize_batchnorm(model, seed=0):
    """Non-trivial moving statistics and affine weights, so that a wrong
    fold cannot hide behind mean 0 / variance 1."""
    rng = np.random.default_rng(seed)
    ranges = {"gamma": (0.5, 1.5), "beta": (-0.5, 0.5), "moving_mean": (-0.2, 0.2),
              "moving_variance": (0.5, 2.0)}
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            for name, (low, high) in ranges.items():
                variable = getattr(layer, name, None)
                if variable is not None:
                    variable.assign(rng.uniform(low, high, variable.shape).astype("float32"))


def _seeded_kernels(model, seed):
    """Every kernel drawn from a seeded generator, Glorot-uniform as the
    constructors' own initialisers (fans: a depthwise kernel's window per
    channel; else all but the last axis in, the window times the last axis
    out): those draw from Keras' global seed, so the weights, and with them
    how well a comparison is conditioned, depended on the test order."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        depthwise = getattr(layer, "depthwise_kernel", None) is not None
        kernel = layer.depthwise_kernel if depthwise else getattr(layer, "kernel", None)
        if kernel is None:
            continue
        shape = tuple(kernel.shape)
        window = int(np.prod(shape[:-2]))
        fans = (window, window) if depthwise else (window * shape[-2], window * shape[-1])
        limit = np.sqrt(6.0 / sum(fans))
        kernel.assign(rng.uniform(-limit, limit, shape).astype("float32"))


class _Spy:
    """Counts calls of ops.conv_batchnorm made through the fusion module."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = zoo_ops.conv_batchnorm

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(fusion.zoo_ops, "conv_batchnorm", counting)


def _names(plan):
    return [tuple(None if layer is None else layer.name for layer in chain) for chain in plan]


def test_mobilenet_plan():
    model = applications.MobileNet(weights=None, alpha=0.25, input_shape=(32, 32, 3))
    plan = fusion.fusion_plan(model)
    names = _names(plan)
    # The stem, then a depthwise and a pointwise chain per block (13 blocks).
    assert len(plan) == 27
    assert names[0] == ("conv1", "conv1_bn", "conv1_relu")
    assert names[1] == ("conv_dw_1", "conv_dw_1_bn", "conv_dw_1_relu")
    assert names[-1] == ("conv_pw_13", "conv_pw_13_bn", "conv_pw_13_relu")
    assert fusion.enable_fused_inference(model) == (27 if TORCH else 0)


def test_mobilenet_v2_plan():
    model = zoo_builds.build("mobilenet_v2")  # no top, 32x32: the build other tests share
    plan = fusion.fusion_plan(model)
    names = _names(plan)
    expected = [("Conv1", "bn_Conv1", "Conv1_relu")]
    for block in range(17):
        p = f"block_{block}_" if block else "expanded_conv_"
        if block:
            expected.append((f"{p}expand", f"{p}expand_BN", f"{p}expand_relu"))
        expected.append((f"{p}depthwise", f"{p}depthwise_BN", f"{p}depthwise_relu"))
        # The linear bottleneck: conv and BN only; the BN output goes to
        # the residual add or the next block.
        expected.append((f"{p}project", f"{p}project_BN", None))
    expected.append(("Conv_1", "Conv_1_bn", "out_relu"))
    assert names == expected  # every convolution of the network, 52 chains
    depthwise = [conv for conv, _, _ in plan if conv.name.endswith("depthwise")]
    assert len(depthwise) == 17
    assert all(type(conv) is zoo_layers.DepthwiseConv2D for conv in depthwise)
    assert fusion.enable_fused_inference(model) == (52 if TORCH else 0)


def test_xception_plan_stops_at_shared_outputs():
    model = applications.Xception(weights=None, input_shape=(71, 71, 3))
    plan = dict((c, (b, a)) for c, b, a in _names(fusion.fusion_plan(model)))
    # block1_conv1 -> bn -> act: a whole chain.
    assert plan["block1_conv1"] == ("block1_conv1_bn", "block1_conv1_act")
    # block2_sepconv2_bn feeds a MaxPooling and then the residual add: no
    # activation follows it, so only conv and BN are fused.
    assert plan["block2_sepconv2"] == ("block2_sepconv2_bn", None)
    # Middle-flow blocks start with a ReLU on the residual (pre-activation):
    # the BN output of the last sepconv goes to the add only.
    assert plan["block5_sepconv3"] == ("block5_sepconv3_bn", None)


def _chain_model(data_format="channels_last"):
    """conv -> BN -> ReLU6 -> conv -> BN with the BN output a model output
    and read twice; plus a conv whose output is also read by an add."""
    shape = (3, 9, 9) if data_format == "channels_first" else (9, 9, 3)
    axis = 1 if data_format == "channels_first" else -1
    inputs = keras.Input(shape)
    x = zoo_layers.Conv2D(4, 3, padding="same", use_bias=False, data_format=data_format,
                          name="c1")(inputs)
    x = zoo_layers.BatchNormalization(axis=axis, name="b1")(x)
    x = keras.layers.ReLU(6.0, name="r1")(x)
    y = zoo_layers.Conv2D(4, 1, data_format=data_format, name="c2")(x)
    y = zoo_layers.BatchNormalization(axis=axis, name="b2")(y)
    z = keras.layers.Activation("relu", name="r2")(y)
    w = zoo_layers.DepthwiseConv2D(3, padding="same", data_format=data_format, name="c3")(z)
    w2 = zoo_layers.BatchNormalization(axis=axis, name="b3")(w)
    w = keras.layers.Add(name="add_w")([w, w2])  # c3's output is read twice
    model = keras.Model(inputs, [y, keras.layers.Add()([z, w])])
    _randomize_batchnorm(model)
    return model


def test_plan_respects_model_outputs_and_readers():
    model = _chain_model()
    # c2 -> b2: b2's output is a model output, so r2 stays a layer of its
    # own; c3's output is read by b3 and the add: not fused.
    assert _names(fusion.fusion_plan(model)) == [("c1", "b1", "r1"), ("c2", "b2", None)]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_fused_model_matches_layer_by_layer(data_format, monkeypatch):
    model = _chain_model(data_format)
    assert fusion.enable_fused_inference(model) == (2 if TORCH else 0)
    spy = _Spy(monkeypatch)
    x = np.random.default_rng(1).standard_normal((2,) + model.input_shape[1:]).astype("float32")
    fused = model.predict_on_batch(x)
    # An eager call keeps autograd on (torch): the layers run one by one.
    plain = [keras.ops.convert_to_numpy(t) for t in model(x, training=False)]
    assert spy.calls == (2 if TORCH else 0)
    for a, b in zip(fused, plain):
        assert _rel(a, b) <= REL


def _hard_swish(y):
    """Keras' hard_silu, written out: y * relu6(y + 3) / 6."""
    return y * np.clip(y + 3.0, 0.0, 6.0) / 6.0


def _swish(y):
    """Keras' silu (swish), written out: y * sigmoid(y)."""
    return y / (1.0 + np.exp(-y))


#: The post-op activations beyond ReLU: (name, alias, formula).
_POST_OPS = {
    "hard_swish": ("hard_silu", "hard_swish", _hard_swish),
    "swish": ("silu", "swish", _swish),
}


def _post_op_model(data_format, kind):
    """conv -> BN -> activation, depthwise (stride 2) -> BN -> the same
    activation by Keras' alias, conv -> BN -> hard_sigmoid (not a post-op)."""
    name, alias, _ = _POST_OPS[kind]
    shape = (3, 9, 10) if data_format == "channels_first" else (9, 10, 3)
    axis = 1 if data_format == "channels_first" else -1
    inputs = keras.Input(shape)
    x = zoo_layers.Conv2D(4, 3, padding="same", data_format=data_format, name="h1")(inputs)
    x = zoo_layers.BatchNormalization(axis=axis, name="hb1")(x)
    x = keras.layers.Activation(name, name="ha1")(x)
    x = zoo_layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False,
                                   data_format=data_format, name="h2")(x)
    x = zoo_layers.BatchNormalization(axis=axis, name="hb2")(x)
    x = keras.layers.Activation(alias, name="ha2")(x)
    x = zoo_layers.Conv2D(5, 1, use_bias=False, data_format=data_format, name="h3")(x)
    x = zoo_layers.BatchNormalization(axis=axis, name="hb3")(x)
    x = keras.layers.Activation("hard_sigmoid", name="ha3")(x)
    model = keras.Model(inputs, x)
    _randomize_batchnorm(model, seed=8)
    rng = np.random.default_rng(10)  # seeded kernels: the ranges asserted below are fixed
    for layer_name in ("h1", "h2", "h3"):
        conv = model.get_layer(layer_name)
        conv.kernel.assign(0.6 * rng.standard_normal(conv.kernel.shape).astype("float32"))
        if conv.use_bias:
            conv.bias.assign(0.5 * rng.standard_normal(conv.bias.shape).astype("float32"))
    return model


def _bn_stats(bn):
    return {k: keras.ops.convert_to_numpy(getattr(bn, v)) for k, v in
            (("mean", "moving_mean"), ("variance", "moving_variance"), ("offset", "beta"),
             ("scale", "gamma"))}


def _post_op_reference(model, x, fmt, formula):
    """The three chains with keras.ops convolutions and normalisations and
    the activations as NumPy formulas; also each pre-activation."""
    def layer(name):
        return model.get_layer(name)

    def chain(y, conv, bn, kind, strides, padding, bias):
        out = _reference(y, keras.ops.convert_to_numpy(conv.kernel), None,
                         keras.ops.convert_to_numpy(conv.bias) if bias else None,
                         _bn_stats(bn), kind, None, strides, padding, fmt)
        return keras.ops.convert_to_numpy(out).astype("float64")

    pre1 = chain(x, layer("h1"), layer("hb1"), "conv", 1, "same", True)
    pre2 = chain(formula(pre1).astype("float32"), layer("h2"), layer("hb2"), "depthwise",
                 2, "same", False)
    pre3 = chain(formula(pre2).astype("float32"), layer("h3"), layer("hb3"), "conv",
                 1, "valid", False)
    return np.clip(pre3 + 3.0, 0.0, 6.0) / 6.0, (pre1, pre2)


@pytest.mark.parametrize("kind", sorted(_POST_OPS))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_post_op_chains_fused_match_unfused_and_formula(data_format, kind, monkeypatch):
    """Hard-swish (MobileNetV3) and swish (EfficientNet) as the fused
    convolution's post-op, under both Keras names of each."""
    model = _post_op_model(data_format, kind)
    assert _names(fusion.fusion_plan(model)) == [
        ("h1", "hb1", "ha1"), ("h2", "hb2", "ha2"), ("h3", "hb3", None),
    ]
    assert fusion.enable_fused_inference(model) == (3 if TORCH else 0)
    spy = _Spy(monkeypatch)
    x = np.random.default_rng(9).standard_normal((2,) + model.input_shape[1:]).astype("float32")
    x *= 3
    fused = model.predict_on_batch(x)
    assert spy.calls == (3 if TORCH else 0)
    plain = keras.ops.convert_to_numpy(model(x, training=False))  # layer by layer
    expected, pre_activations = _post_op_reference(model, x, data_format, _POST_OPS[kind][2])
    # Every piece of hard-swish is taken (0 below -3, the quadratic, the
    # identity above 3), and swish's negative dip and near-linear tail.
    for pre in pre_activations:
        assert pre.min() < -3 and pre.max() > 3 and np.any(np.abs(pre) < 3)
    assert _rel(plain, expected) <= REL
    assert _rel(fused, expected) <= REL
    assert _rel(fused, plain) <= REL


def test_layers_called_alone_are_not_fused():
    model = _chain_model()
    fusion.enable_fused_inference(model)
    x = np.random.default_rng(2).standard_normal((2, 9, 9, 3)).astype("float32")
    conv = model.get_layer("c1")
    expected = keras.ops.convert_to_numpy(
        keras.ops.conv(x, conv.kernel, padding="same")
    )
    # The raw convolution, negative values and all: no BN, no clamp.
    feature = keras.Model(model.input, conv.output)
    got = feature.predict_on_batch(x)
    assert got.min() < 0
    assert _rel(got, expected) <= REL


def test_training_and_autograd_run_unfused(monkeypatch):
    model = _chain_model()
    fusion.enable_fused_inference(model)
    spy = _Spy(monkeypatch)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.random.default_rng(3).standard_normal((4, 9, 9, 3)).astype("float32")
    targets = [np.zeros((4,) + tuple(o.shape[1:]), "float32") for o in model.outputs]
    before = keras.ops.convert_to_numpy(model.get_layer("b1").moving_mean).copy()
    model.train_on_batch(x, targets)
    assert spy.calls == 0
    # Training-mode BN still updates its statistics.
    assert not np.array_equal(keras.ops.convert_to_numpy(model.get_layer("b1").moving_mean), before)
    model(x, training=True)
    assert spy.calls == 0


def test_enable_is_idempotent_and_checks_its_argument():
    model = applications.MobileNet(weights=None, alpha=0.25, input_shape=(32, 32, 3))
    first = getattr(model.call, "plan", None)
    assert fusion.enable_fused_inference(model) == (27 if TORCH else 0)
    assert getattr(model.call, "plan", None) is first
    with pytest.raises(TypeError, match="`model` must be a keras.Model; received Dense"):
        fusion.enable_fused_inference(keras.layers.Dense(2))


def test_model_is_still_a_plain_functional_model(tmp_path):
    model = applications.MobileNet(weights=None, alpha=0.25, input_shape=(32, 32, 3))
    inputs = keras.Input((1,))
    assert type(model) is type(keras.Model(inputs, keras.layers.Dense(1)(inputs)))
    path = str(tmp_path / "m.keras")
    model.save(path)
    x = np.random.default_rng(4).random((2, 32, 32, 3)).astype("float32")
    plain = keras.models.load_model(path)  # keras' loader: nothing installed
    ours = keras_zoo_plus.load_model(path)  # ours: fused again on torch
    assert "call" not in plain.__dict__
    assert ("call" in ours.__dict__) == TORCH
    expected = model.predict_on_batch(x)
    assert _rel(plain.predict_on_batch(x), expected) <= REL
    assert _rel(ours.predict_on_batch(x), expected) <= REL


def test_nested_model_is_fused(monkeypatch):
    base = applications.MobileNet(weights=None, alpha=0.25, include_top=False,
                                  input_shape=(32, 32, 3))
    outer = keras.Sequential([base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    spy = _Spy(monkeypatch)
    x = np.random.default_rng(5).random((2, 32, 32, 3)).astype("float32")
    fused = outer.predict_on_batch(x)
    assert spy.calls == (27 if TORCH else 0)
    plain = keras.ops.convert_to_numpy(outer(x, training=False))
    assert _rel(fused, plain) <= REL


# A small slice of each family: the fused predict against the eager,
# layer-by-layer call (the oracle parity tests compare both to Keras 2).
FAMILIES = [
    ("MobileNet", dict(alpha=0.25, depth_multiplier=2), 32),
    ("ResNet50", {}, 32),
    ("Xception", {}, 71),
    ("InceptionV3", {}, 75),
    ("DenseNet121", {}, 32),
    ("NASNetMobile", {}, 32),
]


# Elsewhere nothing is fused and the check is that predict still equals the
# eager call; one family says that (JAX compiles every model afresh).
FAMILIES_HERE = FAMILIES if TORCH else FAMILIES[:1]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name,kwargs,size", FAMILIES_HERE, ids=[f[0] for f in FAMILIES_HERE])
def test_family_fused_matches_unfused(name, kwargs, size, data_format, monkeypatch):
    shape = (3, size, size) if data_format == "channels_first" else (size, size, 3)
    model = getattr(applications, name)(
        weights=None, input_shape=shape, data_format=data_format,
        classifier_activation=None, **kwargs
    )
    _randomize_batchnorm(model)
    plan = fusion.fusion_plan(model)
    assert plan, f"{name}: nothing to fuse"
    spy = _Spy(monkeypatch)
    x = np.random.default_rng(6).random((2,) + shape).astype("float32")
    fused = model.predict_on_batch(x)
    plain = keras.ops.convert_to_numpy(model(x, training=False))
    assert spy.calls == (len(plan) if TORCH else 0)
    err = _rel(fused, plain)
    assert err <= REL, f"{name} {data_format}: rel {err:.3g}"


# --- ops.conv_batchnorm ----------------------------------------------------

OP_CASES = list(
    itertools.product(
        ["conv", "depthwise", "separable"],
        [(1, "same"), (2, "same"), (2, "valid")],
        [None, float("inf"), 6.0],
    )
)
if not TORCH:
    # The op is the unfused chain there (covered piece by piece in
    # test_ops.py): one stride/padding and one activation per kind.
    OP_CASES = [c for c in OP_CASES if c[1] == (2, "same") and c[2] == 6.0]


def _op_inputs(kind, data_format, bias):
    rng = np.random.default_rng(7)
    c, m, f = 3, 2, 5
    x = rng.standard_normal((2, 8, 9, c)).astype("float32") * 3
    if data_format == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2)).copy()
    if kind == "conv":
        kernel, pointwise, out = rng.standard_normal((3, 3, c, f)), None, f
    elif kind == "depthwise":
        kernel, pointwise, out = rng.standard_normal((3, 3, c, m)), None, c * m
    else:
        kernel = rng.standard_normal((3, 3, c, m))
        pointwise, out = rng.standard_normal((1, 1, c * m, f)).astype("float32"), f
    stats = dict(
        mean=rng.uniform(-0.5, 0.5, out).astype("float32"),
        variance=rng.uniform(0.5, 2, out).astype("float32"),
        offset=rng.uniform(-1, 1, out).astype("float32"),
        scale=rng.uniform(0.5, 1.5, out).astype("float32"),
    )
    b = rng.standard_normal(out).astype("float32") if bias else None
    return x, kernel.astype("float32"), pointwise, b, stats


def _reference(x, kernel, pointwise, bias, stats, kind, max_value, strides, padding, fmt):
    """The chain written with keras.ops only."""
    if kind == "conv":
        y = keras_reference(
            lambda a, data_format: keras.ops.conv(a, kernel, strides, padding, data_format),
            fmt,
        )(x)
    elif kind == "depthwise":
        y = keras.ops.depthwise_conv(x, kernel, strides, padding, data_format=fmt)
    else:
        y = keras_reference(
            lambda a, data_format: keras.ops.separable_conv(
                a, kernel, pointwise, strides, padding, data_format
            ),
            fmt,
        )(x)
    axis = 1 if fmt == "channels_first" else -1
    if bias is not None:
        bias = keras.ops.convert_to_tensor(bias)
        y = y + (keras.ops.reshape(bias, (1, -1, 1, 1)) if axis == 1 else bias)
    y = keras.ops.batch_normalization(
        y, stats["mean"], stats["variance"], axis, offset=stats["offset"],
        scale=stats["scale"], epsilon=1e-3,
    )
    if max_value is None:
        return y
    return keras.ops.relu(y) if max_value == float("inf") else keras.ops.clip(y, 0.0, max_value)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kind,sp,max_value", OP_CASES)
def test_conv_batchnorm_matches_keras_ops(kind, sp, max_value, data_format):
    strides, padding = sp
    bias = kind != "separable"
    x, kernel, pointwise, b, stats = _op_inputs(kind, data_format, bias)
    expected = keras.ops.convert_to_numpy(
        _reference(x, kernel, pointwise, b, stats, kind, max_value, strides, padding, data_format)
    )

    def run():
        return keras.ops.convert_to_numpy(
            zoo_ops.conv_batchnorm(
                x, kernel, pointwise_kernel=pointwise, kind=kind, bias=b, epsilon=1e-3,
                max_value=max_value, strides=strides, padding=padding,
                data_format=data_format, **stats,
            )
        )

    assert _rel(run(), expected) <= REL  # autograd on (torch: F.conv2d + clamp)
    if TORCH:
        import torch

        with torch.no_grad():  # oneDNN's fused primitive
            assert _rel(run(), expected) <= REL


HARD_SILU_CASES = list(itertools.product(["conv", "depthwise", "separable"],
                                         [(1, "same"), (2, "valid")]))
if not TORCH:
    HARD_SILU_CASES = [("depthwise", (2, "valid"))]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("kind,sp", HARD_SILU_CASES)
@pytest.mark.parametrize("name", ["hard_silu", "hard_swish"])
def test_conv_batchnorm_hard_silu_matches_formula(kind, sp, name, data_format):
    strides, padding = sp
    x, kernel, pointwise, b, stats = _op_inputs(kind, data_format, kind != "separable")
    pre = keras.ops.convert_to_numpy(
        _reference(x, kernel, pointwise, b, stats, kind, None, strides, padding, data_format)
    ).astype("float64")
    assert pre.min() < -3 and pre.max() > 3
    expected = _hard_swish(pre)

    def run():
        return keras.ops.convert_to_numpy(
            zoo_ops.conv_batchnorm(
                x, kernel, pointwise_kernel=pointwise, kind=kind, bias=b, epsilon=1e-3,
                activation=name, strides=strides, padding=padding,
                data_format=data_format, **stats,
            )
        )

    assert _rel(run(), expected) <= REL  # autograd on (torch: F.conv2d + hardswish)
    if TORCH:
        import torch

        with torch.no_grad():  # oneDNN's convolution with the hardswish post-op
            assert _rel(run(), expected) <= REL


def test_conv_batchnorm_gradients_match_keras_ops():
    """With autograd on, the folded convolution differentiates like the
    chain (torch; elsewhere the op is the chain itself)."""
    x, kernel, _, b, stats = _op_inputs("conv", "channels_last", True)
    if TORCH:
        import torch

        def grads(fn):
            args = [torch.tensor(a, requires_grad=True) for a in (x, kernel, stats["scale"])]
            out = fn(*args)
            (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
            return [a.grad.numpy() for a in args]

        def ours(xx, kk, gg):
            s = dict(stats, scale=gg)
            return zoo_ops.conv_batchnorm(xx, kk, bias=b, max_value=6.0, padding="same", **s)

        def ref(xx, kk, gg):
            s = dict(stats, scale=gg)
            return _reference(xx, kk, None, b, s, "conv", 6.0, 1, "same", "channels_last")

        for g, r, what in zip(grads(ours), grads(ref), ["x", "kernel", "scale"]):
            assert _rel(g, r) <= REL, what
    else:
        out = zoo_ops.conv_batchnorm(x, kernel, bias=b, max_value=6.0, padding="same", **stats)
        ref = _reference(x, kernel, None, b, stats, "conv", 6.0, 1, "same", "channels_last")
        assert _rel(keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(ref)) <= REL


def test_conv_batchnorm_bad_arguments():
    x, kernel, _, _, stats = _op_inputs("conv", "channels_last", False)
    with pytest.raises(ValueError, match="`kind` must be 'conv', 'depthwise' or 'separable'; "
                                         "received 'grouped'"):
        zoo_ops.conv_batchnorm(x, kernel, kind="grouped", **stats)
    with pytest.raises(ValueError, match="`pointwise_kernel` is required when kind='separable'"):
        zoo_ops.conv_batchnorm(x, kernel, kind="separable", **stats)
    with pytest.raises(ValueError, match=r"`max_value` must be None or > 0; received 0"):
        zoo_ops.conv_batchnorm(x, kernel, max_value=0, **stats)
    with pytest.raises(ValueError, match="`activation` must be None, 'hard_silu', "
                                         "'hard_swish', 'silu' or 'swish'; received 'gelu'"):
        zoo_ops.conv_batchnorm(x, kernel, activation="gelu", **stats)
    with pytest.raises(ValueError, match=r"`activation` must be None, 'hard_silu', "
                                         r"'hard_swish', 'silu' or 'swish'; "
                                         r"received \['hard_silu'\]"):
        zoo_ops.conv_batchnorm(x, kernel, activation=["hard_silu"], **stats)
    with pytest.raises(ValueError, match=r"`max_value` must be None with "
                                         r"activation='hard_silu'; received max_value=6.0"):
        zoo_ops.conv_batchnorm(x, kernel, activation="hard_swish", max_value=6.0, **stats)


# --- ConvNeXt's pointwise pairs (ops.channel_dense) --------------------------


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_convnext_pointwise_pairs_fused_match_unfused(data_format, monkeypatch):
    from keras_zoo_plus import synthetic

    shape = (3, 32, 32) if data_format == "channels_first" else (32, 32, 3)
    kwargs = dict(weights=None, input_shape=shape, data_format=data_format,
                  classifier_activation=None)
    if not TORCH:
        # Nothing is fused elsewhere and predict == eager is checked there
        # on one family (FAMILIES_HERE): only the plan, which reads the
        # graph alone (no variable needs a value; JAX took 27 s to compile
        # and run this model both ways).
        model = zoo_builds.structure(applications.ConvNeXtTiny, **kwargs)
    else:
        model = applications.ConvNeXtTiny(**kwargs)
        # Synthetic weights: LayerScale's gamma O(1), not its 1e-6 initial
        # value, so the MLP branch (what is fused) carries the output.
        synthetic.apply_synthetic_weights(model, seed=3)
    pairs = fusion.dense_plan(model)
    # 18 blocks: pointwise_conv_1 -> gelu and pointwise_conv_2 -> layer_scale.
    assert [(d.name, f.name) for d, f in pairs[:2]] == [
        ("convnext_tiny_stage_0_block_0_pointwise_conv_1", "convnext_tiny_stage_0_block_0_gelu"),
        ("convnext_tiny_stage_0_block_0_pointwise_conv_2",
         "convnext_tiny_stage_0_block_0_layer_scale"),
    ]
    assert len(pairs) == 36
    if not TORCH:
        return
    calls = []
    real = zoo_ops.channel_dense
    monkeypatch.setattr(fusion.zoo_ops, "channel_dense",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    x = np.random.default_rng(6).uniform(0, 255, (2,) + shape).astype("float32")
    fused = model.predict_on_batch(x)
    # Counted before the eager call: in channels_first the unfused
    # ChannelDense layers use the same op.
    assert len(calls) == 36
    plain = keras.ops.convert_to_numpy(model(x, training=False))
    err = _rel(fused, plain)
    assert err <= REL, f"{data_format}: rel {err:.3g}"


def test_dense_plan_leaves_approximate_gelu_and_other_axes_alone():
    first = dict(data_format="channels_first")
    inputs = keras.Input((6, 4, 5))
    a = zoo_layers.ChannelDense(8, name="d1", **first)(inputs)
    a = keras.layers.Activation(lambda t: keras.activations.gelu(t, approximate=True),
                                name="approx")(a)
    b = zoo_layers.ChannelDense(6, name="d2", **first)(a)
    b = zoo_layers.LayerScale(0.5, 5, name="width_scale")(b)  # the last axis, not channels
    c = zoo_layers.ChannelDense(6, name="d3", **first)(b)
    c = zoo_layers.LayerScale(0.5, 6, axis=1, name="ls")(c)
    model = keras.Model(inputs, zoo_layers.ChannelDense(2, name="d4", **first)(c))
    assert [(d.name, f.name) for d, f in fusion.dense_plan(model)] == [("d3", "ls")]
    # A follower whose output the model returns is not skipped.
    both = keras.Model(inputs, [c, model.output])
    assert fusion.dense_plan(both) == []


# --- folded weights follow the model's weights ------------------------------


# Defined where the fused path keeps folded weights (torch); elsewhere
# predict is Keras' own, which this would only re-test (28 s on JAX).
if TORCH:

    def test_inference_follows_every_weight_change():
        """The fused path folds each chain's weights once and keeps them
        (keras_zoo_plus.ops._torch._folded); every way a weight changes must
        reach the next inference: set_weights, one variable's assign, a
        training step, a weights load. The reference is the model's own
        unfused eager call, within 1e-4, and a model built afresh with the
        same weights, which folds them anew, within 1e-6: a stale fold is off
        by 1e-3 or more here (each change below moves the output by that much
        at least). How far folding in float32 moves the output off the
        unfused one depends on the weights: after a training step at
        learning rate 0.05 it was 1e-7 to 9e-5 over 12 unseeded
        initialisations, and 5.6e-4 once in a full session (2026-12-01),
        while the refolded model agreed exactly. The kernels are seeded and
        the step is at 0.01: 16 seeds gave at most 1.9e-6 after it."""
        def build():
            return applications.MobileNetV2(weights=None, input_shape=(32, 40, 3), alpha=0.35,
                                            classes=5, classifier_activation=None)

        model = build()
        _seeded_kernels(model, seed=8)
        _randomize_batchnorm(model)
        x = np.random.default_rng(8).random((2, 32, 40, 3)).astype("float32")

        def check(what, previous):
            fused = keras.ops.convert_to_numpy(model.predict_on_batch(x))
            plain = keras.ops.convert_to_numpy(model(x, training=False))
            # A model built afresh with the same weights folds them now:
            # a kept fold that missed the change differs from it by 1e-3
            # or more, a current one computes the same thing.
            fresh = build()
            fresh.set_weights(model.get_weights())
            refolded = keras.ops.convert_to_numpy(fresh.predict_on_batch(x))
            assert _rel(fused, refolded) <= 1e-6, what
            assert _rel(fused, plain) <= 1e-4, what
            assert _rel(fused, previous) > 1e-3, f"{what}: the output did not change"
            return fused

        out = check("first call", np.zeros((2, 5)))
        model.set_weights([w * 1.25 if w.ndim == 4 else w for w in model.get_weights()])
        out = check("set_weights", out)
        bn = model.get_layer("Conv_1_bn")  # the last chain: its change reaches the output
        bn.moving_mean.assign(keras.ops.convert_to_numpy(bn.moving_mean) + 0.5)
        out = check("one variable's assign", out)
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.train_on_batch(x, np.array([1, 3]))
        out = check("a training step", out)
        saved = [w.copy() for w in model.get_weights()]
        model.set_weights([w * 0.8 if w.ndim == 4 else w for w in saved])
        check("a second set_weights", out)
        model.set_weights(saved)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model.predict_on_batch(x)), out,
                                   rtol=1e-5, atol=1e-6)


    def test_stateless_call_computes_with_the_values_it_is_given():
        """In a stateless call the variables read as the given values
        (Keras' StatelessScope), and the kept folded weights of the
        model's own values must neither be used there nor be replaced."""
        import torch

        model = applications.MobileNetV2(weights=None, input_shape=(32, 40, 3), alpha=0.35,
                                         classes=5, classifier_activation=None)
        _randomize_batchnorm(model)
        x = np.random.default_rng(9).random((2, 32, 40, 3)).astype("float32")
        own = keras.ops.convert_to_numpy(model.predict_on_batch(x))  # folds and keeps
        scaled = [w * 1.25 if w.ndim == 4 else w for w in model.get_weights()]
        by_path = dict(zip([v.path for v in model.weights], scaled))
        with torch.no_grad():
            y, _ = model.stateless_call(
                [torch.as_tensor(by_path[v.path]) for v in model.trainable_variables],
                [torch.as_tensor(by_path[v.path]) for v in model.non_trainable_variables],
                torch.as_tensor(x))
        got = keras.ops.convert_to_numpy(y)
        # The model's own values again: the kept weights are still theirs.
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model.predict_on_batch(x)), own,
                                   rtol=1e-6, atol=1e-7)
        model.set_weights(scaled)
        want = keras.ops.convert_to_numpy(model(x, training=False))
        assert _rel(got, want) <= REL
        assert _rel(got, own) > 1e-3

    def test_a_layer_whose_policy_changes_after_the_first_inference_follows_it():
        """Plain layers run their ``call`` directly only under a float32
        policy, checked on every call: a policy set after the first
        inference (``layer.dtype_policy = ...``) reaches the next one."""
        model = applications.MobileNetV2(weights=None, input_shape=(32, 40, 3), alpha=0.35,
                                         classes=5, classifier_activation=None)
        _randomize_batchnorm(model)
        x = np.random.default_rng(10).random((2, 32, 40, 3)).astype("float32")
        before = np.asarray(model.predict_on_batch(x), "float32")
        head = model.get_layer("predictions")
        head.dtype_policy = keras.DTypePolicy("mixed_bfloat16")
        fused = keras.ops.convert_to_numpy(keras.ops.cast(model.predict_on_batch(x), "float32"))
        plain = keras.ops.convert_to_numpy(keras.ops.cast(model(x, training=False), "float32"))
        # bfloat16 moves the head's output by ~1e-3; run in float32 it
        # would stay within float32 rounding (~1e-7) of before.
        assert _rel(fused, before) > 1e-4
        assert _rel(fused, plain) < 1e-2
