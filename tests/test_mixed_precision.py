"""Mixed precision (``mixed_float16``, ``mixed_bfloat16``) on every backend.

Every registered model builds under each policy, runs inference within
rel 2e-2 of the tf_keras float32 oracle (the golden outputs of
tests/golden/: an independent reference) without NaN, and takes a
training step: the smallest model of each family
(``keras_zoo_plus.check.quick_models()``) in every backend session,
channels_last; every other model in the slow session, channels_first.

What Keras' mixed policies promise, and so what is asserted here:

* every variable is float32 (``variable_dtype``), BatchNormalization's
  moving statistics included, and stays float32 through a training step;
* the normalisation layers compute in float32 and return the policy's
  compute dtype (Keras' ``BatchNormalization`` and ``LayerNormalization``
  upcast their inputs: they overflow or lose the statistics in 16 bits);
* a training step under ``mixed_float16`` goes through a
  ``LossScaleOptimizer`` (given here with a smaller initial scale, see
  FLOAT16_INITIAL_SCALE); its loss is finite and it reaches both ends of
  the model.

Four deep ResNets cannot run in float16 with the oracle's synthetic
weights, whose float32 activations exceed float16's range
(FLOAT16_OVERFLOW): strict expected failures in the slow session.

Keras' mixed precision guide recommends a float32 softmax at the end of a
model, but keras.applications does not build one: its classifier is
``Dense(classes, activation=classifier_activation)`` (or
``Activation(classifier_activation)`` after MobileNet's 1x1 convolution)
under the global policy, whose output is in the compute dtype. Ours
matches keras.applications (same graph, same serialised config), and the
head test asserts exactly that against Keras' own layers, not a float32
softmax that Keras does not build.

The fast kernels of ``keras_zoo_plus.ops`` and the torch fused inference
path: for float16 and bfloat16 inputs, which run in that dtype and which
step aside to Keras' native op (``test_fast_kernels_in_16_bit``,
``test_fused_inference_steps_aside_under_a_mixed_policy``).
"""

from __future__ import annotations

import functools

import keras
import model_cache
import numpy as np
import pytest

from keras_zoo_plus import applications, check, model_table, weights
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus import ops as zoo_ops
from keras_zoo_plus.deferred import build_without_initializers

from helpers import CASES, golden_input, legacy_entries, load_golden, rel_error, run_model

BACKEND = keras.backend.backend()
POLICIES = ("mixed_float16", "mixed_bfloat16")
#: The tolerance of the issue: a 16-bit compute dtype keeps 8 (bfloat16)
#: or 11 (float16) significant bits per operation.
MIXED_TOL = 2e-2
QUICK = check.quick_models()
OTHERS = [e.name for e in model_table.entries() if e.name not in QUICK]

#: The normalisation layer types the models use, each checked to compute in
#: float32 by test_normalisation_layers_compute_in_float32; a model using
#: another type fails _check_dtypes until it is added there.
NORMALISATIONS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)


@functools.cache
def _keras_head_dtype(policy, activation):
    """The output dtype of keras.applications' classifier head under
    ``policy``: a ``Dense`` with the classifier activation, as Keras builds
    it, measured on Keras' own layer."""
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        return keras.backend.standardize_dtype(
            keras.layers.Dense(3, activation=activation)(keras.Input((4,))).dtype)
    finally:
        keras.config.set_dtype_policy(previous)


def _float_dtypes(model):
    """The dtypes of the model's floating-point variables (a dropout's seed
    state is an integer)."""
    return {v.dtype for v in model.weights if "float" in v.dtype}


def _check_dtypes(model, policy):
    """Variables float32, normalisation layers under the global policy (so
    Keras' float32 upcast in their ``call`` applies), no layer left at
    float32 compute by accident."""
    compute = policy.split("_")[1]
    assert _float_dtypes(model) == {"float32"}, policy
    norms = [layer for layer in model.layers if isinstance(layer, NORMALISATIONS)]
    assert norms or model.name.startswith("vgg"), "a family without normalisation"
    for layer in norms:
        assert layer.dtype_policy.name == policy, layer.name
        assert type(layer) in NORMALISED_TYPES, (
            f"{type(layer).__name__} ({layer.name}) is not covered by "
            "test_normalisation_layers_compute_in_float32")
    for layer in model.layers:
        if layer.weights or isinstance(layer, keras.layers.Activation):
            assert layer.compute_dtype == compute, (layer.name, layer.compute_dtype)
    for bn in (layer for layer in norms if isinstance(layer, keras.layers.BatchNormalization)):
        assert bn.moving_mean.dtype == bn.moving_variance.dtype == "float32", bn.name


def _kernels(model):
    """The first and the last trainable kernels (the stem convolution's,
    the classifier's: a Dense's or MobileNet's 1x1 ``conv_preds``): the
    two ends of backpropagation."""
    kernels = [v for v in model.trainable_weights if v.path.endswith("kernel")]
    return kernels[0], kernels[-1]


#: The float16 loss scale the training step starts at. Keras' default,
#: 2**15, overflowed the synthetic weights' gradients for the first 5 steps
#: of ResNet50 (skipped, the scale halved each time, as the
#: LossScaleOptimizer intends; ~10 s each in torch's float16 CPU backward)
#: and for 8 of RegNetX002 on torch, whose CPU float16 convolution
#: accumulates the stem kernel's gradient in float16 (inf from a scale of
#: 128 on, where the true maximum is 4.1e3). Starting at 32 the first step
#: updates every model; a later overflow still halves the scale.
FLOAT16_INITIAL_SCALE = 32.0


def _first_update(model, x, what):
    """Train on the first image until the first and the last kernels both
    change (at most 8 steps; under float16 with loss scaling, an
    overflowing step is skipped and the scale halved). Returns the last
    (finite) loss."""
    optimizer = keras.optimizers.SGD(1e-3)
    if model.dtype_policy.name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(
            optimizer, initial_scale=FLOAT16_INITIAL_SCALE)
    # Eager on TensorFlow, as helpers.run_model's inference: tracing and
    # optimising the training graph took 100 s of NASNetMobile's step under
    # mixed_float16, the eager step 3.6 s. Keras' train_step either way.
    model.compile(optimizer=optimizer, run_eagerly=BACKEND == "tensorflow",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert model.optimizer is optimizer, what
    ends = _kernels(model)
    before = [keras.ops.convert_to_numpy(v).copy() for v in ends]
    # One image: the step's cost is the backward pass (float16's on torch's
    # CPU is ~100x its float32), and one image trains every layer as two do.
    x = x[:1]
    for _ in range(8):
        loss = float(model.train_on_batch(x, np.array([1])))
        assert np.isfinite(loss), what
        changed = [not np.array_equal(old, keras.ops.convert_to_numpy(v))
                   for v, old in zip(ends, before)]
        if all(changed):
            return loss
        assert not any(changed), (what, "one end of the model updated without the other")
    raise AssertionError(f"{what}: 8 training steps changed no weight")


def _mixed_precision_run(name, policies, data_format, *, train):
    """Under each of ``policies``: the oracle case ``{name}_top`` (its size,
    batch and synthetic weights, tests/test_parity.py) built under the
    policy, its dtypes as Keras' policy intends, inference within rel 2e-2
    of the oracle's float32 logits, no NaN; with ``train``, the steps that
    the first update takes, after which the variables (BatchNormalization's
    moving statistics included) are still float32 and finite. Returns
    ``{policy: (rel error, loss)}``."""
    case = f"{name}_top"
    entry = model_table.get(name)
    kwargs = model_cache.constructor_kwargs(case, data_format)
    structure, arrays = model_cache.synthetic_arrays(case)
    expected, _ = load_golden(case)
    x = golden_input(case, data_format)
    results = {}
    for policy in policies:
        previous = keras.config.dtype_policy().name
        keras.config.set_dtype_policy(policy)
        try:
            model = build_without_initializers(entry.constructor, weights=None, **kwargs)
            weights.assign_legacy(model, legacy_entries(structure, arrays), source=case)
            assert model.dtype_policy.name == policy
            _check_dtypes(model, policy)
            # Eager on TensorFlow (no graph to trace), one XLA program on
            # JAX, predict's path on torch: helpers.run_model.
            y = run_model(model, x)
            assert y.dtype == policy.split("_")[1], y.dtype
            y = y.astype("float64")
            loss = None
            if train:
                moving = [v for v in model.non_trainable_weights if "moving" in v.path]
                stats = [keras.ops.convert_to_numpy(v).copy() for v in moving]
                loss = _first_update(model, x, f"{name} {policy}")
                assert _float_dtypes(model) == {"float32"}
                for v in moving:
                    assert np.all(np.isfinite(keras.ops.convert_to_numpy(v))), v.path
                # Training mode updated the statistics (in float32).
                assert not moving or any(
                    not np.array_equal(old, keras.ops.convert_to_numpy(v))
                    for v, old in zip(moving, stats))
        finally:
            keras.config.set_dtype_policy(previous)
        assert np.all(np.isfinite(y)), policy
        err = rel_error(y, expected)
        print(f"{name} {policy} {data_format}: rel {err:.3g} vs the float32 oracle, loss {loss}")
        assert err <= MIXED_TOL, (policy, err)
        results[policy] = (err, loss)
    return results


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", QUICK)
def test_mixed_precision_inference_and_training_step(name, policy):
    """The smallest model of each family: build, dtypes, inference within
    rel 2e-2 of the float32 oracle and a training step (loss scaling under
    float16)."""
    _mixed_precision_run(name, [policy], "channels_last", train=True)


def test_every_model_has_an_oracle_case():
    """The slow test below reads ``{name}_top`` for every other model: a
    model without one would fail there, late."""
    assert [n for n in QUICK + OTHERS if f"{n}_top" not in CASES] == []
    assert set(FLOAT16_OVERFLOW) <= set(OTHERS)
    assert len(QUICK) == len({model_table.get(n).family for n in QUICK + OTHERS})


#: Models whose float32 activations, under the synthetic weights of their
#: oracle case, exceed float16's largest value (65504), so float16 cannot
#: hold them: max |activation| measured on torch in float32 (channels_last,
#: the golden input), and the first layer past 65504. The residual stream
#: of the deepest ResNets grows block after block with these weights; it
#: is a property of the weights, not of the graph (official weights keep
#: activations small), and bfloat16 (float32's range) runs them. Every
#: other model stayed below 160 (NASNetLarge, ConvNeXtLarge and XLarge
#: not measured).
FLOAT16_OVERFLOW = {
    "resnet101": "6.7e6, conv4_block14_add",
    "resnet101v2": "1.7e6, conv4_block17_out",
    "resnet152": "1.3e10, conv4_block10_add",
    "resnet152v2": "7.6e8, conv4_block13_out",
}


def _slow_params():
    for name in OTHERS:
        for policy in POLICIES:
            marks = ()
            if policy == "mixed_float16" and name in FLOAT16_OVERFLOW:
                marks = pytest.mark.xfail(strict=True, reason=(
                    "float32 activations beyond float16's range under the synthetic weights: "
                    + FLOAT16_OVERFLOW[name]))
            yield pytest.param(name, policy, marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("name, policy", _slow_params())
def test_mixed_precision_of_every_other_model(name, policy):
    """The other variants share their family's layers with the smallest
    one; depth and width are what could overflow float16: inference and a
    training step, channels_first."""
    _mixed_precision_run(name, [policy], "channels_first", train=True)


# --------------------------------------------------------------------------
# The classifier head and the normalisation layers


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("ctor", ["MobileNetV3Small", "RegNetX002"])
def test_classifier_head_dtype_is_keras_applications(ctor, policy):
    """With the default ``classifier_activation="softmax"`` the head's
    output has the dtype of keras.applications' own head under the policy
    (Keras' Dense with that activation: the compute dtype, not float32),
    and it is a probability distribution."""
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        model = build_without_initializers(getattr(applications, ctor), weights=None,
                                           input_shape=(32, 40, 3), classes=7)
        x = np.random.default_rng(0).random((2, 32, 40, 3)).astype("float32") * 255
        y = run_model(model, x)
        # MobileNetV3's Activation after its 1x1 convolution, RegNet's Dense.
        layer = model.layers[-1]
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer.compute_dtype == policy.split("_")[1]
    assert str(y.dtype) == _keras_head_dtype(policy, "softmax") == policy.split("_")[1]
    y = y.astype("float64")
    assert y.shape == (2, 7)
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-2)
    assert np.all(y >= 0)


NORMALISED_TYPES = (zoo_layers.BatchNormalization, zoo_layers.LayerNormalization,
                    keras.layers.BatchNormalization, keras.layers.LayerNormalization)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("cls", NORMALISED_TYPES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_normalisation_layers_compute_in_float32(cls, policy):
    """Values that 16-bit arithmetic gets wrong and float32 gets right,
    given in the compute dtype: for batch normalisation input 1024 (exact
    in 16 bits) and a float32 moving mean 1023.9 (which float16 and
    bfloat16 round to 1024), so x - mean is 0.1 and the output 1 in
    float32, 0 in 16 bits; for layer normalisation see below. The output
    comes back in the compute dtype."""
    compute = policy.split("_")[1]
    layer = cls(axis=-1, epsilon=1e-3, dtype=policy)
    layer.build((2, 3, 4))
    if isinstance(layer, keras.layers.BatchNormalization):
        layer.moving_mean.assign(np.full(4, 1023.9, "float32"))
        layer.moving_variance.assign(np.full(4, 0.01 - 1e-3, "float32"))
        x = np.full((2, 3, 4), 1024.0, "float32")
        want = 1.0
    else:
        # Layer normalisation's statistics come from the input: 1024 and
        # 1024 + d, d the 16-bit dtype's spacing at 1024 (1 for float16, 8
        # for bfloat16), are exact, their mean is not: in 16 bits the
        # deviations of +-d/2 become 0 or d.
        d = {"float16": 1.0, "bfloat16": 8.0}[compute]
        x = np.tile(np.array([1024.0, 1024.0 + d, 1024.0, 1024.0 + d], "float32"), (2, 3, 1))
        dev = (x[0, 0, 1] - x[0, 0, 0]) / 2
        want = dev / np.sqrt(dev**2 + 1e-3)
    y = layer(keras.ops.cast(x, compute), training=False)
    assert keras.backend.standardize_dtype(y.dtype) == compute
    y = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
    if isinstance(layer, keras.layers.BatchNormalization):
        np.testing.assert_allclose(y, want, rtol=1e-2)
    else:
        np.testing.assert_allclose(np.abs(y), want, rtol=1e-2)


# --------------------------------------------------------------------------
# Fast kernels and the torch fused path in 16 bits


def _hooked(monkeypatch):
    """Record, per kernel hook of the running backend's module, whether it
    ran (returned a tensor) or stepped aside (returned ``NotImplemented``)."""
    module = zoo_ops._backend()
    calls = []
    for name in KERNEL_HOOKS:
        hook = getattr(module, name, None)
        if hook is None:
            continue

        def recorder(*args, _hook=hook, _name=name, **kwargs):
            y = _hook(*args, **kwargs)
            calls.append((_name, y is not NotImplemented))
            return y

        monkeypatch.setattr(module, name, recorder)
    return calls


KERNEL_HOOKS = ("conv2d", "depthwise_conv2d", "batch_normalization", "layer_normalization",
                "conv_batchnorm", "channel_dense", "max_pool2d", "average_pool2d")


def _kernel_cases():
    """``{label: (hook, ours(arrays, implementation), keras_ref(arrays))}``,
    channels_last, on arrays drawn by ``_kernel_arrays``; the reference is
    ``keras.ops``' own op (or chain of them)."""
    o = keras.ops

    def bn_ref(a):
        return o.batch_normalization(a["x"], a["mean"], a["var"], -1, offset=a["beta"],
                                     scale=a["gamma"], epsilon=1e-3)

    return {
        "depthwise 3x3/2 same": (
            "depthwise_conv2d",
            lambda a, i: zoo_ops.depthwise_conv2d(a["x"], a["dw"], 2, "same", implementation=i),
            lambda a: o.depthwise_conv(a["x"], a["dw"], 2, "same")),
        "conv 1x1": (
            "conv2d",
            lambda a, i: zoo_ops.conv2d(a["x"], a["pw"], implementation=i),
            lambda a: o.conv(a["x"], a["pw"])),
        "conv 3x3 grouped": (
            "conv2d",
            lambda a, i: zoo_ops.conv2d(a["x"], a["grouped"], padding="same", implementation=i),
            lambda a: o.conv(a["x"], a["grouped"], padding="same")),
        "separable 3x3": (
            "depthwise_conv2d",
            lambda a, i: zoo_ops.separable_conv2d(a["x"], a["dw"], a["pw"], padding="same",
                                                  implementation=i),
            lambda a: o.separable_conv(a["x"], a["dw"], a["pw"], padding="same")),
        "batch_normalization": (
            "batch_normalization",
            lambda a, i: zoo_ops.batch_normalization(
                a["x"], a["mean"], a["var"], -1, offset=a["beta"], scale=a["gamma"],
                implementation=i),
            bn_ref),
        "layer_normalization": (
            "layer_normalization",
            lambda a, i: zoo_ops.layer_normalization(a["x"], a["gamma"], a["beta"], axis=-1,
                                                     implementation=i),
            lambda a: o.layer_normalization(a["x"], a["gamma"], a["beta"], axis=-1,
                                            epsilon=1e-3)),
        "conv_batchnorm relu6": (
            "conv_batchnorm",
            lambda a, i: zoo_ops.conv_batchnorm(
                a["x"], a["k3"], mean=a["mean"], variance=a["var"], offset=a["beta"],
                scale=a["gamma"], max_value=6.0, padding="same", implementation=i),
            lambda a: o.clip(o.batch_normalization(
                o.conv(a["x"], a["k3"], padding="same"), a["mean"], a["var"], -1,
                offset=a["beta"], scale=a["gamma"], epsilon=1e-3), 0.0, 6.0)),
        "channel_dense gelu": (
            "channel_dense",
            lambda a, i: zoo_ops.channel_dense(a["x"], a["dense"], a["beta"], activation="gelu",
                                               implementation=i),
            lambda a: o.gelu(o.matmul(a["x"], a["dense"]) + a["beta"], approximate=False)),
        "max_pool 3x3/2 same": (
            "max_pool2d",
            lambda a, i: zoo_ops.max_pool2d(a["x"], 3, 2, "same", implementation=i),
            lambda a: o.max_pool(a["x"], 3, 2, "same")),
        "average_pool 2x2/2": (
            "average_pool2d",
            lambda a, i: zoo_ops.average_pool2d(a["x"], 2, 2, implementation=i),
            lambda a: o.average_pool(a["x"], 2, 2)),
    }


def _kernel_arrays(dtype):
    """Inputs in ``dtype`` and the same values in float32 (rounded to
    ``dtype`` first, so the reference differs only by the arithmetic)."""
    rng = np.random.default_rng(3)
    raw = {
        "x": rng.standard_normal((2, 9, 11, 8)),
        "dw": rng.standard_normal((3, 3, 8, 1)) / 3,
        "pw": rng.standard_normal((1, 1, 8, 8)) / 3,
        "grouped": rng.standard_normal((3, 3, 4, 8)) / 6,
        "k3": rng.standard_normal((3, 3, 8, 8)) / 8,
        "dense": rng.standard_normal((8, 8)) / 3,
        "mean": rng.standard_normal(8) / 4,
        "var": rng.random(8) + 0.5,
        "beta": rng.standard_normal(8) / 4,
        "gamma": rng.random(8) + 0.5,
    }
    low = {k: keras.ops.convert_to_tensor(v.astype("float32"), dtype) for k, v in raw.items()}
    f32 = {k: keras.ops.cast(v, "float32") for k, v in low.items()}
    return low, f32


#: Which of our kernels run in a 16-bit dtype on each backend and which
#: step aside to the portable ``keras.ops`` formulation. ``channel_dense``
#: on torch declines all but float32 (its folded scale and oneDNN's fused
#: GELU are float32 paths). A hook missing on a backend is the portable
#: formulation by construction: listed as "portable".
KERNEL_ROUTE = {
    "torch": {"channel_dense gelu": "steps aside"},
    "jax": {"batch_normalization": "portable", "layer_normalization": "portable",
            "conv_batchnorm relu6": "portable", "channel_dense gelu": "portable",
            "average_pool 2x2/2": "portable"},
    "tensorflow": {"batch_normalization": "portable", "layer_normalization": "portable",
                   "conv_batchnorm relu6": "portable", "channel_dense gelu": "portable",
                   "max_pool 3x3/2 same": "portable", "average_pool 2x2/2": "portable"},
}
#: Relative to max |reference|. A kernel that accumulates in float32 and
#: rounds once to the 16-bit dtype is within half a unit in the last place
#: of the largest output (measured: 2.7e-4 for float16, 2.4e-3 for
#: bfloat16 on every backend); JAX's shifted depthwise convolution summing
#: its 9 taps in bfloat16 was 5.2e-3 off, which the first tolerance
#: catches. Chains of ops (normalisation, convolution + normalisation,
#: dense + GELU, a 4-value mean) round several times, in Keras' native
#: ops as well (up to 7.4e-3 in bfloat16).
KERNEL_TOL = {"float16": 6e-4, "bfloat16": 4e-3}
CHAIN_TOL = {"float16": 2e-3, "bfloat16": 1e-2}
CHAINS = {"batch_normalization", "conv_batchnorm relu6", "channel_dense gelu",
          "average_pool 2x2/2"}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_fast_kernels_in_16_bit(dtype, monkeypatch):
    """Each fast kernel, called by the backend's formulation name, either
    runs in ``dtype`` (its hook returns a tensor: output in ``dtype``,
    within a 16-bit tolerance of Keras' op in float32) or steps aside (its
    hook returns ``NotImplemented``, or the backend has none: the output is
    exactly ``implementation="native"``'s), as KERNEL_ROUTE says; on
    TensorFlow the "channels_last" formulation is the native op between
    transposes (the CPU's channels_first route)."""
    implementation = (zoo_ops._backend().IMPLEMENTATIONS or ("auto",))[0]
    low, f32 = _kernel_arrays(dtype)
    routes = KERNEL_ROUTE.get(BACKEND, {})
    seen, errors = {}, {}
    for label, (hook, ours, reference) in _kernel_cases().items():
        calls = _hooked(monkeypatch)
        y = ours(low, implementation)
        monkeypatch.undo()
        own = [ran for name, ran in calls if name == hook]
        route = "runs" if own and all(own) else ("steps aside" if own else "portable")
        seen[label] = route
        assert keras.backend.standardize_dtype(y.dtype) == dtype, (label, y.dtype)
        got = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")).astype("float64")
        want = keras.ops.convert_to_numpy(reference(f32)).astype("float64")
        err = rel_error(got, want)
        errors[label] = round(err, 5)
        assert err <= (CHAIN_TOL if label in CHAINS else KERNEL_TOL)[dtype], (label, route, err)
        if route != "runs":
            native = keras.ops.convert_to_numpy(keras.ops.cast(ours(low, "native"), "float32"))
            np.testing.assert_array_equal(got, native, err_msg=label)
    print(BACKEND, dtype, seen, errors)
    assert seen == {label: routes.get(label, "runs") for label in seen}


@pytest.mark.only_backend("torch")
@pytest.mark.parametrize("policy", POLICIES)
def test_fused_inference_steps_aside_under_a_mixed_policy(policy, monkeypatch):
    """Torch's fused inference (fusion.py: Convolution -> BatchNorm ->
    ReLU6 as one oneDNN convolution, layers' ``call`` without
    ``__call__``) is planned for float32 layers only: under a mixed policy
    the plan is empty, no fused kernel runs, and ``predict_on_batch``
    gives exactly the layer-by-layer ``model(x, training=False)``. The
    same model under float32 does run the fused kernel (the spy works)."""
    from keras_zoo_plus import fusion

    calls = []
    original = zoo_ops.conv_batchnorm

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    x = np.random.default_rng(10).random((2, 32, 40, 3)).astype("float32")
    outputs = {}
    for p in ("float32", policy):
        previous = keras.config.dtype_policy().name
        keras.config.set_dtype_policy(p)
        try:
            model = applications.MobileNetV2(weights=None, input_shape=(32, 40, 3), alpha=0.35,
                                             classes=5, classifier_activation=None)
            plan = fusion.fusion_plan(model)
            del calls[:]
            monkeypatch.setattr(zoo_ops, "conv_batchnorm", spy)
            fused = model.predict_on_batch(x)
            monkeypatch.undo()
            plain = keras.ops.convert_to_numpy(model(x, training=False))
        finally:
            keras.config.set_dtype_policy(previous)
        outputs[p] = (len(plan), len(calls), fused, plain)
    n_plan, n_calls, fused, plain = outputs["float32"]
    assert n_plan > 0 and n_calls == n_plan
    n_plan, n_calls, fused, plain = outputs[policy]
    assert (n_plan, n_calls) == (0, 0)
    assert fused.dtype == plain.dtype == policy.split("_")[1]
    np.testing.assert_array_equal(fused.astype("float32"), plain.astype("float32"))
