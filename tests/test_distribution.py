"""Fine-tuning and inference beyond one device (README "Scaling out").

JAX: ``keras.distribution.DataParallel`` and ``ModelParallel`` over two
virtual CPU devices (tests/conftest.py starts the jax session's XLA with
``--xla_force_host_platform_device_count=2``). TensorFlow:
``tf.distribute.MirroredStrategy`` over two logical CPU devices, in a
subprocess (TensorFlow splits its CPU before it runs anything). The
layout itself (:func:`keras_zoo_plus.layout_map`) is backend-free Python,
checked in the torch session.

The reference is the same model, with the same weights, on one device:
what distributing must not change. Weights are ``check``'s synthetic
ones (tame activations in every family) and the comparisons are of the
weights after the steps, rel to each variable's largest magnitude.
"""

import contextlib
import re

import keras
import numpy as np
import pytest

import keras_zoo_plus as kz
from keras_zoo_plus import check, distribution, registry, synthetic
from keras_zoo_plus.deferred import build_structure_only, build_without_initializers

BACKEND = keras.backend.backend()
FAMILIES = check.quick_models()
STEPS = 3
BATCH = 4  # two images per device
RELATIVE_STEP = 5e-4


def _devices():
    import jax

    devices = jax.devices()
    assert len(devices) >= 2, (
        "these tests need two JAX devices: run them with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=2 (tests/conftest.py "
        f"sets it before JAX starts); found {devices}")
    return devices[:2]


def _size(name):
    return max(32, int(registry.model_info(name).min_size))


def _build(name, size=None, **kwargs):
    size = size or _size(name)
    return build_without_initializers(
        kz.create_model, name, weights=None, input_shape=(size, size, 3),
        classifier_activation=None, **kwargs)


def _batch(size, batch):
    x = synthetic.synthetic_input((batch, size, size, 3), seed=1)
    y = np.arange(batch) * 7
    return x, y


def _fine_tune(name, scope, prepare, *, size=None, batch=BATCH, state=None, rate=None):
    """``STEPS`` SGD steps on one batch, under ``scope``, after
    ``prepare(model)`` (the freeze schedule). Returns the weights before
    and after, the losses, the paths, the variables before (dropout seeds
    included) and the learning rate.

    ``state``: another run's variables, given to this one (the two models
    are built one after the other and would otherwise draw different
    dropout seeds). ``rate``: the learning rate; None: the rate at which
    the first step moves the model's largest-moving weight by
    ``RELATIVE_STEP`` of its magnitude (synthetic weights are not trained
    ones: a fixed rate blew some families' losses up to NaN in 3 steps and
    barely moved others). Finding it costs one step of the same compiled
    program, undone before the steps that count."""
    size = size or _size(name)
    x, y = _batch(size, batch)
    with scope:
        model = _build(name, size)
        synthetic.apply_synthetic_weights(model, seed=0, family=registry.model_info(name).family)
        if state is not None:
            for variable, value in zip(model.variables, state, strict=True):
                variable.assign(value)
        prepare(model)
        state = [keras.ops.convert_to_numpy(v) for v in model.variables]
        before = [keras.ops.convert_to_numpy(v) for v in model.weights]
        optimizer = keras.optimizers.SGD(1.0 if rate is None else rate)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        def fit(epochs):
            # fit, not train_on_batch: under tf.distribute only fit splits
            # the batch between the replicas (train_on_batch gives each
            # replica the whole batch).
            return model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False,
                             verbose=0).history["loss"]

        if rate is None:
            fit(1)
            moved = max(float(np.max(np.abs(keras.ops.convert_to_numpy(v) - w0)))
                        / float(np.max(np.abs(w0)) or 1.0)
                        for v, w0 in zip(model.weights, before))
            rate = RELATIVE_STEP / moved
            for variable, value in zip(model.variables, state, strict=True):
                variable.assign(value)
            optimizer.learning_rate.assign(rate)
        losses = [float(v) for v in fit(STEPS)]
        after = [keras.ops.convert_to_numpy(v) for v in model.weights]
    return before, after, losses, [v.path for v in model.weights], state, rate


def _compare(one, two):
    """Per weight: max |two - one| / max |one| after the steps, and the
    same rel to the largest update one device made to that weight."""
    before, after1, _, paths, _, _ = one
    after2 = two[1]
    rows = []
    for path, w0, w1, w2 in zip(paths, before, after1, after2, strict=True):
        diff = float(np.max(np.abs(w2.astype("float64") - w1)))
        scale = float(np.max(np.abs(w1)))
        update = float(np.max(np.abs(w1.astype("float64") - w0)))
        rows.append((path, diff / scale if scale else diff, diff / update if update else diff,
                     update))
    return rows


def _data_parallel_run(name, prepare, **kwargs):
    one = _fine_tune(name, contextlib.nullcontext(), prepare, **kwargs)
    two = _fine_tune(name, keras.distribution.DataParallel(devices=_devices()).scope(),
                     prepare, state=one[4], rate=one[5], **kwargs)
    rows = _compare(one, two)
    worst_w = max(rows, key=lambda r: r[1])
    worst_u = max(rows, key=lambda r: r[2])
    moved = [r[0] for r in rows if r[3] > 0]
    print(f"DP {name} {prepare.__name__} lr {one[5]:.3g}: losses {one[2]} vs {two[2]}; "
          f"rel to weights {worst_w[1]:.3g} ({worst_w[0]}), rel to update {worst_u[2]:.3g} "
          f"({worst_u[0]}), {len(moved)}/{len(rows)} weights moved")
    return rows, moved, one, two


def _rounded(state):
    """The variables with float32 rounding-sized noise (relative 2**-24):
    how far apart two runs that differ only in rounding end up."""
    noise = np.random.default_rng(0)
    return [v * (1 + 2.0**-24 * noise.standard_normal(v.shape)).astype(v.dtype)
            if v.dtype.kind == "f" else v for v in state]


def everything(model):
    """Every weight trains, BatchNormalization on batch statistics."""


def bn_frozen(model):
    """Every weight trains; BatchNormalization frozen (moving statistics)."""
    kz.freeze_batchnorm(model)


def head_only(model):
    """Phase 1 of README's fine-tuning: the backbone frozen."""
    kz.freeze(model, up_to="out_relu")


def last_stage(model):
    """Phase 2: the last stage unfrozen, its BatchNormalization frozen."""
    kz.freeze(model, up_to="out_relu")
    kz.unfreeze(model, stages=1)


def last_stage_with_bn(model):
    """Phase 2 with the last stage's BatchNormalization training too."""
    kz.freeze(model, up_to="out_relu")
    kz.unfreeze(model, stages=1, batchnorm=True)


def _assert_same_weights(rows, tolerance=1e-5):
    bad = [(path, w) for path, w, _, _ in rows if w > tolerance]
    assert not bad, bad


@pytest.mark.only_backend("jax")
@pytest.mark.parametrize("name", FAMILIES)
def test_data_parallel_fine_tuning_matches_one_device(name):
    """The smallest model of each family, every weight training,
    BatchNormalization frozen: float32, at the family's smallest input,
    two images per device. (With batch statistics, training at this size
    is chaotic: on one device, weights moved by 1e-7 of themselves gave
    ResNet50 a 10% different loss after 3 steps; see
    :func:`test_data_parallel_with_batch_statistics_everywhere`.)

    Within rel 1e-5, or, where float32 rounding alone spreads one
    device's result wider (a model whose synthetic logits are in the
    hundreds: ResNet50V2's loss starts at 359), within three times that
    spread, measured as in the batch-statistics case."""
    rows, moved, one, _ = _data_parallel_run(name, bn_frozen)
    assert len(moved) >= len([p for p in one[3] if p.endswith("kernel")]) // 4
    worst = max(r[1] for r in rows)
    if worst > 1e-5:
        rounding = max(r[1] for r in _compare(one, _fine_tune(
            name, contextlib.nullcontext(), bn_frozen, state=_rounded(one[4]), rate=one[5])))
        print(f"DP {name}: two devices {worst:.3g}, rounding {rounding:.3g}")
        assert worst <= 3 * rounding, (worst, rounding)


@pytest.mark.only_backend("jax")
@pytest.mark.parametrize("prepare", [head_only, last_stage, last_stage_with_bn],
                         ids=lambda f: f.__name__)
def test_data_parallel_freeze_schedules_match_one_device(prepare):
    """MobileNetV2 at 96 px, four images per device, through README's
    freeze schedules; where the last stage's BatchNormalization trains, its
    statistics are the global batch's (XLA reduces over both devices)."""
    rows, moved, _, _ = _data_parallel_run("mobilenet_v2", prepare, size=96, batch=8)
    _assert_same_weights(rows)
    assert {"predictions/kernel", "predictions/bias"} <= set(moved)
    assert ("Conv_1/kernel" in moved) == (prepare is not head_only)
    assert ("Conv_1_bn/gamma" in moved) == (prepare is last_stage_with_bn)


@pytest.mark.only_backend("jax")
def test_data_parallel_with_batch_statistics_everywhere():
    """Every BatchNormalization on batch statistics (MobileNetV2, 96 px,
    four images per device). Training there is so sensitive that float32
    rounding alone moves the weights past 1e-5 in 3 steps: one device,
    started from weights rounded differently (relative 2**-24), ends
    ``rounding`` away. Two devices must stay within three times that, and a
    data-parallel bug shows far beyond it: the same steps on half the batch
    (what a device that never saw the other's gradients would do) end
    ``half`` away."""
    kwargs = dict(size=96, batch=8)
    rows, _, one, _ = _data_parallel_run("mobilenet_v2", everything, **kwargs)
    rounding = max(r[1] for r in _compare(one, _fine_tune(
        "mobilenet_v2", contextlib.nullcontext(), everything, state=_rounded(one[4]),
        rate=one[5], **kwargs)))
    half = max(r[1] for r in _compare(one, _fine_tune(
        "mobilenet_v2", contextlib.nullcontext(), everything, state=one[4], rate=one[5],
        size=96, batch=4)))
    worst = max(r[1] for r in rows)
    print(f"DP batch statistics: two devices {worst:.3g}, rounding {rounding:.3g}, "
          f"half batch {half:.3g}")
    assert worst <= 3 * rounding
    assert half >= 100 * rounding


# --------------------------------------------------------------------------
# TensorFlow: MirroredStrategy over two logical CPU devices


@pytest.fixture(scope="module")
def mirrored():
    import json
    import os
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mirrored_fine_tune.py")
    proc = subprocess.run([sys.executable, script], capture_output=True, text=True,
                          env=dict(os.environ, KERAS_BACKEND="tensorflow"), timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.only_backend("tensorflow")
@pytest.mark.parametrize("schedule", ["bn_frozen", "last_stage"])
def test_mirrored_strategy_fine_tuning_matches_one_device(mirrored, schedule):
    """MobileNetV2 at 96 px, four images per replica, fit's 3 steps:
    BatchNormalization frozen (every other weight training), and the last
    stage unfrozen with the head."""
    result = mirrored[schedule]
    print(f"MirroredStrategy {schedule}: rel {result['rel_to_weights']:.3g}, losses {result['losses']}")
    assert result["rel_to_weights"] <= 1e-5, result
    assert len(result["moved"]) >= (40 if schedule == "bn_frozen" else 3), result["moved"]


@pytest.mark.only_backend("tensorflow")
def test_mirrored_strategy_batch_statistics(mirrored):
    """Keras' BatchNormalization normalises each replica's share with its
    own statistics: the first step already differs from one device. With
    keras_zoo_plus.distribution.synchronize_batchnorm the first step is one
    device's, and the weights after 3 steps stay within three times what float32
    rounding of the starting weights alone moves them (training on batch
    statistics at this size is that sensitive, see the JAX case)."""
    per_replica, synced = mirrored["everything"], mirrored["synchronized"]
    print("MirroredStrategy batch statistics:", {k: mirrored[k]["rel_to_weights"] for k in (
        "everything", "synchronized")}, "rounding", mirrored["rounding"])

    def first_step(result):
        one, two = result["losses"]
        return abs(two[0] - one[0]) / abs(one[0])

    assert first_step(per_replica) > 1e-4, per_replica["losses"]
    assert first_step(synced) <= 1e-6, synced["losses"]
    assert synced["rel_to_weights"] <= 3 * mirrored["rounding"], (synced, mirrored["rounding"])
    assert per_replica["rel_to_weights"] > 100 * mirrored["rounding"]


@pytest.mark.only_backend("tensorflow")
def test_synchronize_batchnorm_sets_and_restores_every_layer():
    model = build_structure_only(kz.create_model, "mobilenet_v2", weights=None,
                                 input_shape=(32, 32, 3))
    wrapped = keras.Sequential([model, keras.layers.BatchNormalization(name="extra_bn")])
    names = [la.name for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(names) == 52
    assert distribution.synchronize_batchnorm(wrapped) == names + ["extra_bn"]
    assert distribution.synchronize_batchnorm(wrapped) == []
    assert model.get_layer("Conv_1_bn").get_config()["synchronized"] is True
    assert distribution.synchronize_batchnorm(wrapped, False) == names + ["extra_bn"]
    assert model.get_layer("Conv_1_bn").get_config()["synchronized"] is False


@pytest.mark.parametrize("call, error, message", [
    (lambda m: distribution.synchronize_batchnorm("model"), TypeError,
     "`model` must be a keras.Model. Received: model='model' of type str"),
    (lambda m: distribution.synchronize_batchnorm(m, 1), TypeError,
     "`synchronized` must be a bool. Received: synchronized=1"),
])
def test_synchronize_batchnorm_rejects_bad_arguments(call, error, message):
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.BatchNormalization()])
    with pytest.raises(error) as info:
        call(model)
    assert str(info.value) == message


@pytest.mark.only_backend("jax", "torch")
def test_synchronize_batchnorm_is_tensorflow_only():
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.BatchNormalization()])
    with pytest.raises(ValueError) as info:
        distribution.synchronize_batchnorm(model)
    assert str(info.value) == (
        "Synchronised BatchNormalization is a tf.distribute feature: Keras supports it "
        f"with the TensorFlow backend only. Received backend {BACKEND!r} (on JAX, "
        "DataParallel already reduces over the global batch).")
    assert distribution.synchronize_batchnorm(model, False) == []


# --------------------------------------------------------------------------
# The layout (backend-free Python: the torch session)

# VGG16's weighted layers and their kernel shapes at 224 px (Simonyan and
# Zisserman, table 1, configuration D), written out by hand.
VGG16_KERNELS = {
    "block1_conv1": (3, 3, 3, 64), "block1_conv2": (3, 3, 64, 64),
    "block2_conv1": (3, 3, 64, 128), "block2_conv2": (3, 3, 128, 128),
    "block3_conv1": (3, 3, 128, 256), "block3_conv2": (3, 3, 256, 256),
    "block3_conv3": (3, 3, 256, 256),
    "block4_conv1": (3, 3, 256, 512), "block4_conv2": (3, 3, 512, 512),
    "block4_conv3": (3, 3, 512, 512),
    "block5_conv1": (3, 3, 512, 512), "block5_conv2": (3, 3, 512, 512),
    "block5_conv3": (3, 3, 512, 512),
    "fc1": (7 * 7 * 512, 4096), "fc2": (4096, 4096), "predictions": (4096, 1000),
}


def _mesh(shape, names=("batch", "model")):
    import math

    n = math.prod(shape)
    devices = _devices() if BACKEND == "jax" else [f"cpu:{i}" for i in range(n)]
    return keras.distribution.DeviceMesh(shape, list(names), devices[:n])


def _split_keys(layouts):
    """{variable path: axes} from the map's anchored keys."""
    out = {}
    for key in layouts:
        assert key.startswith("(?:.*/)?"), key
        out[re.sub(r"\\(.)", r"\1", key[len("(?:.*/)?"):])] = layouts[key].axes
    return out


@pytest.mark.backend_independent
def test_vgg16_layout_splits_the_large_kernels_along_their_outputs():
    layouts = kz.layout_map("vgg16", _mesh((1, 2)))
    # 2**18 elements and more: from block3_conv1 (294912) on.
    large = [n for n, s in VGG16_KERNELS.items() if np.prod(s) >= 2**18]
    assert large[0] == "block3_conv1" and len(large) == 11 + 3 - 2
    expected = {f"{n}/kernel": (None,) * (len(VGG16_KERNELS[n]) - 1) + ("model",) for n in large}
    assert _split_keys(layouts) == expected
    # Biases and small kernels are not split, and no key matches a
    # variable it was not made for (block1_conv1 would match
    # "conv1/kernel" unanchored).
    assert layouts["block1_conv1/kernel"] is None
    assert layouts["block5_conv3/bias"] is None
    assert layouts["vgg16/block5_conv3/kernel"].axes == (None, None, None, "model")
    assert layouts["xblock5_conv3/kernel"] is None


@pytest.mark.backend_independent
def test_bytes_per_device_of_vgg16():
    model = build_structure_only(kz.create_model, "vgg16", weights=None)
    params = {n: int(np.prod(s)) + s[-1] for n, s in VGG16_KERNELS.items()}
    assert sum(params.values()) == 138_357_544  # keras.applications.VGG16().count_params()
    split = sum(np.prod(s) for n, s in VGG16_KERNELS.items() if np.prod(s) >= 2**18)
    whole = 4 * sum(params.values())
    for shape, parts in (((1, 2), 2), ((2, 1), 1), ((1, 4), 4)):
        layouts = kz.layout_map(model, _mesh(shape))
        assert distribution.bytes_per_device(model, layouts) == whole - 4 * split + 4 * split // parts
    assert distribution.bytes_per_device(model, None) == whole


@pytest.mark.backend_independent
def test_layout_of_a_wrapped_model_and_a_new_head():
    """The keys match the zoo model's variables inside the user's model;
    a classifier whose outputs the axis does not divide stays whole, and
    ``min_size`` moves the threshold."""
    mesh = _mesh((1, 4))
    base = build_structure_only(kz.create_model, "vgg16", weights=None, include_top=False,
                                input_shape=(32, 32, 3), pooling="avg")
    model = keras.Sequential([base, keras.layers.Dense(10, name="head")])
    layouts = kz.layout_map(model, mesh, min_size=1)
    keys = _split_keys(layouts)
    assert sorted(keys) == sorted(f"{n}/kernel" for n in VGG16_KERNELS if n.startswith("block"))
    assert layouts["head/kernel"] is None  # 10 outputs over 4 devices
    assert kz.layout_map("vgg16", mesh, classes=10, min_size=1)["predictions/kernel"] is None
    assert kz.layout_map("vgg16", _mesh((1, 2)), classes=10, min_size=1)[
        "predictions/kernel"].axes == (None, "model")
    assert len(kz.layout_map("vgg16", mesh, min_size=2**24)) == 2  # fc1, fc2 (4096**2 = 2**24)
    assert list(_split_keys(kz.layout_map("vgg16", mesh, min_size=2**24 + 1))) == ["fc1/kernel"]


@pytest.mark.backend_independent
def test_depthwise_kernels_stay_whole():
    layouts = kz.layout_map("mobilenet", _mesh((1, 2)), min_size=1)
    keys = _split_keys(layouts)
    assert keys and not any("conv_dw" in k for k in keys)
    assert "conv_pw_13/kernel" in keys and "conv_preds/kernel" in keys


@pytest.mark.backend_independent
@pytest.mark.parametrize("call, error, message", [
    (lambda m: kz.layout_map("vgg16", "mesh"), TypeError,
     "`mesh` must be a keras.distribution.DeviceMesh. Received: mesh='mesh' of type str"),
    (lambda m: kz.layout_map("vgg16", m, axis="tensor"), ValueError,
     "`axis` must name an axis of the mesh, one of ['batch', 'model']. Received: axis='tensor'"),
    (lambda m: kz.layout_map("vgg16", m, min_size=0), ValueError,
     "`min_size` must be at least 1. Received: min_size=0"),
    (lambda m: kz.layout_map("vgg16", m, min_size=1.5), TypeError,
     "`min_size` must be an int. Received: min_size=1.5"),
    (lambda m: kz.layout_map(3, m), TypeError,
     "`model_or_name` must be a keras.Model or a registered model name. "
     "Received: model_or_name=3 of type int"),
    (lambda m: kz.layout_map("vgg17", m), ValueError, "vgg17"),
    (lambda m: kz.layout_map(keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)]), m,
                             classes=3), TypeError,
     "Constructor arguments are only taken with a model name; received a model and ['classes']"),
])
def test_layout_map_rejects_bad_arguments(call, error, message):
    with pytest.raises(error) as info:
        call(_mesh((1, 2)))
    assert message in str(info.value)


# --------------------------------------------------------------------------
# Model parallel on JAX: the outputs of the sharded model are the
# unsharded model's


def _predict_sharded(name, shape, size=None):
    size = size or _size(name)
    kwargs = dict(input_shape=(size, size, 3))
    x = synthetic.synthetic_input((2, size, size, 3), seed=1)
    model = _build(name, size)
    synthetic.apply_synthetic_weights(model, seed=0, family=registry.model_info(name).family)
    expected = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    arrays = model.get_weights()
    del model
    results = {}
    for mesh_shape in shape:
        mesh = _mesh(mesh_shape)
        layouts = kz.layout_map(name, mesh, classifier_activation=None, **kwargs)
        with keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="batch").scope():
            sharded = _build(name, size)
            sharded.set_weights(arrays)
            y = keras.ops.convert_to_numpy(sharded.predict_on_batch(x))
        held = {}
        for variable in sharded.weights:
            for shard in variable.value.addressable_shards:
                held[shard.device.id] = held.get(shard.device.id, 0) + shard.data.nbytes
        results[mesh_shape] = (y, held, distribution.bytes_per_device(sharded, layouts),
                               distribution.bytes_per_device(sharded, None), len(layouts))
        del sharded
    return expected, results


def _assert_sharded_outputs(name, meshes=((2, 1), (1, 2))):
    expected, results = _predict_sharded(name, meshes)
    for mesh_shape, (y, held, per_device, whole, n_split) in results.items():
        err = float(np.max(np.abs(y - expected)) / np.max(np.abs(expected)))
        print(f"MP {name} {mesh_shape}: rel {err:.3g}, {n_split} split, "
              f"{per_device / 2**20:.1f} of {whole / 2**20:.1f} MiB per device")
        assert err <= 1e-5, (mesh_shape, err)
        # What the devices hold is what the layout says.
        assert sorted(held) == [0, 1] and set(held.values()) == {per_device}
        if mesh_shape[1] == 1:
            assert per_device == whole
        else:
            assert per_device < whole


@pytest.mark.only_backend("jax")
def test_model_parallel_vgg16_matches_one_device():
    _assert_sharded_outputs("vgg16")


def _largest_of_each_family():
    largest = {}
    for info in registry.all_models():
        if info.params > largest.get(info.family, (0, None))[0]:
            largest[info.family] = (info.params, info.name)
    return sorted(name for _, name in largest.values())


LARGEST = _largest_of_each_family()


@pytest.mark.slow
@pytest.mark.only_backend("jax")
@pytest.mark.parametrize("name", LARGEST)
def test_model_parallel_largest_variant_matches_one_device(name):
    _assert_sharded_outputs(name)
