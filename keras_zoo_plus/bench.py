"""Side-by-side speed of our models and keras.applications on the current
backend (``keras-zoo-plus bench``), or, with ``--peer``, plain PyTorch (torch
backend) or tf_keras, Keras 2 (TensorFlow backend: the only other
implementation of the RegNet and ResNetRS families).

Both models are built with the same architecture and the same weights
(copied in weighted-layer order, shapes checked), then timed in alternating
rounds in one process so that drift in machine load (shared CPUs) hits both
alike. Each round runs ours and theirs once, in an order that alternates
between rounds; the reported ratio is the median over rounds of
``keras time / our time`` (> 1 means ours is faster) and the img/s are
``batch / median time``.

With ``--dtype-policy`` (:func:`compare_dtype_policy`) the peer is our own
model in float32 and ours runs under a mixed precision policy
(``mixed_bfloat16``, ``mixed_float16``), same weights; the ratio is
``float32 time / policy time``.

Example:
    $ KERAS_BACKEND=jax keras-zoo-plus bench --models MobileNet ResNet50 --rounds 7
    $ KERAS_BACKEND=tensorflow keras-zoo-plus bench --peer tf_keras --models RegNetY002
    $ KERAS_BACKEND=torch keras-zoo-plus bench --dtype-policy mixed_bfloat16 --models ResNet50
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np


class KerasRefused(Exception):
    """keras.applications cannot build the model on this backend/format."""


def build_pair(name, size=224, data_format="channels_last"):
    """Our model and keras.applications' model ``name`` with the same
    random weights.

    Args:
        name: A constructor name both sides have, e.g. ``"MobileNet"``.
        size: Input height and width.
        data_format: Data format of *our* model (keras.applications follows
            the global setting, which this function does not change).

    Returns:
        (ours, theirs): the two models; ``theirs`` is a :class:`KerasRefused`
        (carrying keras.applications' message) when keras.applications
        refuses to build the model here, e.g. NASNetMobile on torch.

    Raises:
        ValueError: if ``name`` is unknown to either side, or the weighted
            layers do not line up.
    """
    from keras_zoo_plus import applications

    our_ctor = getattr(applications, name, None)
    ctor = getattr(keras.applications, name, None)
    if our_ctor is None or ctor is None or name.startswith("_"):
        raise ValueError(
            f"`models`: {name!r} is not a constructor of both keras_zoo_plus.applications "
            "and keras.applications."
        )
    ours = build_ours(name, size, data_format)
    theirs = build_keras(name, size)
    if isinstance(theirs, KerasRefused):
        return ours, theirs
    src = theirs.get_weights()
    dst = ours.weights
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst)):
        raise ValueError(f"{name}: weighted layers of ours and keras.applications differ.")
    weights = [
        _random_like(w.shape, v.path, i) for i, (w, v) in enumerate(zip(src, theirs.weights))
    ]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs


def build_ours(name, size=224, data_format="channels_last", **kwargs):
    """Our constructor ``name`` with ``weights=None`` at ``size`` in
    ``data_format``; ``kwargs`` go to the constructor too (the tf_keras
    peer passes ``classifier_activation=None``)."""
    from keras_zoo_plus import applications

    shape = (3, size, size) if data_format == "channels_first" else (size, size, 3)
    return getattr(applications, name)(weights=None, input_shape=shape,
                                       data_format=data_format, **kwargs)


def build_keras(name, size=224):
    """keras.applications' ``name`` with ``weights=None`` at ``size``
    (channels_last), its graph past a stale guard where it has one
    (:data:`_UNGUARDED`), or a :class:`KerasRefused` with its message."""
    shape = (size, size, 3)
    try:
        return getattr(keras.applications, name)(weights=None, input_shape=shape)
    except Exception as exc:  # keras.applications' own refusal, e.g. NASNetMobile on torch
        theirs = _unguarded_reference(name, shape)
        return KerasRefused(f"{type(exc).__name__}: {exc}") if theirs is None else theirs


# keras.applications 3.15.1's NASNetMobile refuses the torch backend with a
# stale guard ("outstanding bug"); the function behind it, NASNet(), builds
# the same graph with these arguments (copied from NASNetMobile) and runs
# correctly on torch (the oracle parity tests check our model; `compare`
# checks the two agree). Private API, so any failure means "refused".
_UNGUARDED = {
    "NASNetMobile": dict(
        penultimate_filters=1056, num_blocks=4, stem_block_filters=32,
        skip_reduction=False, filter_multiplier=2, default_size=224, name="nasnet_mobile",
    ),
}


def _unguarded_reference(name, shape):
    """keras.applications' graph for ``name`` built past its backend guard,
    or ``None``. The model gets ``bench_reference = "unguarded"``."""
    if name not in _UNGUARDED:
        return None
    try:
        from keras.src.applications import nasnet as keras_nasnet

        model = keras_nasnet.NASNet(shape, weights=None, **_UNGUARDED[name])
    except Exception:
        return None
    model.bench_reference = "unguarded"
    return model


def _random_like(shape, path, seed):
    """Random weights that keep activations finite and non-trivial."""
    rng = np.random.default_rng(seed)
    if path.endswith("moving_variance"):
        return (0.5 + np.abs(rng.standard_normal(shape))).astype("float32")
    if path.endswith("gamma"):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype("float32")
    scale = 1.0 / np.sqrt(np.prod(shape[:-1])) if len(shape) > 1 else 0.1
    return (scale * rng.standard_normal(shape)).astype("float32")


def model_flops(model):
    """Floating-point operations (2 x multiply-adds) of one image through
    the convolution and dense layers of ``model``."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "ChannelDense"):
            continue
        out = layer.output.shape
        if kind in ("Dense", "ChannelDense"):
            # Applied at every position of a feature map (ConvNeXt's
            # pointwise layers); once for a flat input.
            first = getattr(layer, "data_format", None) == "channels_first" and len(out) > 2
            positions = int(np.prod(out[2:] if first else out[1:-1]))
            total += 2 * positions * int(np.prod(layer.kernel.shape))
            continue
        first = layer.data_format == "channels_first"
        positions = int(np.prod(out[2:] if first else out[1:3]))
        if kind == "Conv2D":
            total += 2 * positions * int(np.prod(layer.kernel.shape))
        elif kind == "DepthwiseConv2D":
            total += 2 * positions * int(np.prod(layer.kernel.shape))
        else:
            total += 2 * positions * int(np.prod(layer.depthwise_kernel.shape))
            total += 2 * positions * int(np.prod(layer.pointwise_kernel.shape))
    return total


def _step_fn(model, x, train, from_logits=False, library=keras):
    """One timed step of ``model``: ``predict_on_batch``, or with ``train``
    one SGD step (``from_logits``: the model returns logits, as both sides
    of the tf_keras peer do, so the loss applies the softmax). ``library``:
    the Keras that built ``model`` (``tf_keras`` for the tf_keras peer),
    whose optimizer and loss it compiles with."""
    if train:
        loss = (library.losses.SparseCategoricalCrossentropy(from_logits=True) if from_logits
                else "sparse_categorical_crossentropy")
        model.compile(optimizer=library.optimizers.SGD(1e-4), loss=loss)
        y = np.zeros((x.shape[0],), "int32")
        return lambda: model.train_on_batch(x, y)
    return lambda: model.predict_on_batch(x)


def _inputs(batch, size, data_format):
    """The timed input, channels_last (the peer's), and ours in ``data_format``."""
    x = np.random.default_rng(1).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    x_ours = np.transpose(x, (0, 3, 1, 2)).copy() if data_format == "channels_first" else x
    return x, x_ours


def _deviation(ours, theirs):
    """Max |ours - theirs| relative to max |theirs|."""
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-12))


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


#: ``--peer`` values: what our model is timed against.
PEERS = {"keras": "keras.applications", "torch": "plain PyTorch",
         "tf_keras": "tf_keras (Keras 2)"}

#: Column label of each peer in :func:`format_table`.
_PEER_LABELS = {PEERS["keras"]: "keras", PEERS["torch"]: "PyTorch",
                PEERS["tf_keras"]: "tf_keras"}

_TF_KERAS_MISSING = "`peer='tf_keras'` needs tf_keras (pip install tf_keras)"


def _import_tf_keras():
    """The ``tf_keras`` module (Keras 2), imported beside Keras 3: it is a
    separate package, so nothing global (TF_USE_LEGACY_KERAS) is set.

    Raises:
        ValueError: if tf_keras is not installed.
    """
    try:
        import tf_keras
    except ImportError:
        raise ValueError(_TF_KERAS_MISSING) from None
    return tf_keras


def compare(
    name, batch=16, size=224, train=False, rounds=5, data_format="channels_last", log=print,
    peer="keras",
):
    """Time ours against keras.applications (plain PyTorch, tf_keras) for
    one model.

    Args:
        name: keras.applications constructor name (any zoo constructor with
            ``peer="torch"``, any tf_keras.applications has with
            ``peer="tf_keras"``).
        batch: Images per step.
        size: Input height and width.
        train: Time one SGD training step instead of inference.
        rounds: Timed rounds (each runs both models once) after a warm-up.
        data_format: Data format of our model.
        log: Where progress lines go.
        peer: ``"keras"``: keras.applications' model on this backend;
            ``"torch"``: the same graph as a plain ``torch.nn.Module``
            (:mod:`keras_zoo_plus.torch_peer`: eval, ``no_grad``,
            channels_last memory), inference only, torch backend only;
            ``"tf_keras"``: tf_keras.applications' model (Keras 2, on the
            same TensorFlow), TensorFlow backend only, both sides built
            with ``classifier_activation=None``.

    Returns:
        dict with ``model, mode, peer, ours_ips, peer_ips, keras_ips, ratio,
        gflops`` and the per-round ratios (``keras_ips`` is ``peer_ips``
        for the keras peer, None otherwise; the other peers add the
        outputs' max relative ``deviation``).

    Raises:
        ValueError: for a peer this backend or mode cannot time.
    """
    if peer not in PEERS:
        raise ValueError(f"`peer` must be one of {sorted(PEERS)}. Received: peer={peer!r}")
    if peer == "torch":
        return _compare_with_torch(name, batch, size, train, rounds, data_format, log)
    if peer == "tf_keras":
        return _compare_with_tf_keras(name, batch, size, train, rounds, data_format, log)
    ours, theirs = build_pair(name, size, data_format)
    refused = theirs if isinstance(theirs, KerasRefused) else None
    x, x_ours = _inputs(batch, size, data_format)
    if refused is not None:
        log(f"{name}: keras.applications refuses it here ({refused}); timing ours alone")
    if getattr(theirs, "bench_reference", None) == "unguarded":
        log(f"{name}: keras.applications refuses this backend; timing its graph built "
            "by keras.src.applications NASNet() past the guard")
    if refused is None and not train:
        # Same weights, same input: the outputs must agree before timing means anything.
        a = keras.ops.convert_to_numpy(ours.predict_on_batch(x_ours))
        b = keras.ops.convert_to_numpy(theirs.predict_on_batch(x))
        dev = _deviation(a, b)
        log(f"{name}: max rel deviation ours vs keras {dev:.2e}")
    fns = {"ours": _step_fn(ours, x_ours, train)}
    if refused is None:
        fns["keras"] = _step_fn(theirs, x, train)
    med, ratios = _alternate(fns, rounds, log)
    flops = model_flops(ours) * batch * (3 if train else 1)
    return {
        "model": name,
        "mode": "train" if train else "infer",
        "peer": PEERS["keras"],
        "ours_ips": batch / med["ours"],
        "peer_ips": batch / med["keras"] if refused is None else None,
        "keras_ips": batch / med["keras"] if refused is None else None,
        "ratio": statistics.median(ratios) if ratios else None,
        "ratios": ratios,
        "gflops": flops / med["ours"] / 1e9,
        "keras_error": None if refused is None else str(refused),
        "keras_reference": None if refused is not None else getattr(
            theirs, "bench_reference", "public"),
    }


def _compare_with_torch(name, batch, size, train, rounds, data_format, log):
    """:func:`compare` against the plain-PyTorch program of the same graph
    and weights (:func:`keras_zoo_plus.torch_peer.plain_torch_module`)."""
    if keras.backend.backend() != "torch":
        raise ValueError(
            "`peer='torch'` times plain PyTorch against our torch backend; the backend is "
            f"{keras.backend.backend()!r} (set KERAS_BACKEND=torch).")
    if train:
        raise ValueError("`peer='torch'` times inference only; received train=True.")
    import torch

    from keras_zoo_plus import torch_peer

    ours = build_ours(name, size, data_format)
    weights = [_random_like(v.shape, v.path, i) for i, v in enumerate(ours.weights)]
    ours.set_weights(weights)
    twin = ours
    if data_format != "channels_last":  # the peer is read off a channels_last graph
        twin = build_ours(name, size, "channels_last")
        twin.set_weights(weights)
    peer = torch_peer.plain_torch_module(twin)
    del twin
    x, x_ours = _inputs(batch, size, data_format)
    x_peer = torch_peer.to_channels_last(x)

    def run_peer():
        with torch.no_grad():
            return peer(x_peer)

    a = keras.ops.convert_to_numpy(ours.predict_on_batch(x_ours))
    b = run_peer().numpy()
    dev = _deviation(a, b)
    log(f"{name}: max rel deviation ours vs plain PyTorch {dev:.2e}")
    med, ratios = _alternate({"ours": lambda: ours.predict_on_batch(x_ours), "peer": run_peer},
                             rounds, log)
    return {
        "model": name,
        "mode": "infer",
        "peer": PEERS["torch"],
        "ours_ips": batch / med["ours"],
        "peer_ips": batch / med["peer"],
        "keras_ips": None,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "gflops": model_flops(ours) * batch / med["ours"] / 1e9,
        "deviation": dev,
        "keras_error": None,
        "keras_reference": None,
    }


def _compare_with_tf_keras(name, batch, size, train, rounds, data_format, log):
    """:func:`compare` against tf_keras.applications' ``name`` (Keras 2) on
    the same TensorFlow, both with the same random weights and
    ``classifier_activation=None`` (tf_keras' RegNet ignores the argument
    and returns logits; ours applies it)."""
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "`peer='tf_keras'` times tf_keras (Keras 2, TensorFlow) against our TensorFlow "
            f"backend; the backend is {keras.backend.backend()!r} (set "
            "KERAS_BACKEND=tensorflow).")
    tf_keras = _import_tf_keras()
    from keras_zoo_plus import applications

    if name.startswith("_") or not (hasattr(applications, name)
                                    and hasattr(tf_keras.applications, name)):
        raise ValueError(
            f"`models`: {name!r} is not a constructor of both keras_zoo_plus.applications "
            "and tf_keras.applications.")
    ours = build_ours(name, size, data_format, classifier_activation=None)
    theirs = getattr(tf_keras.applications, name)(
        weights=None, input_shape=(size, size, 3), classifier_activation=None)
    # Same weighted layers in the same order (the graphs are tf_keras'):
    # one flat list of arrays fits both, checked shape by shape.
    ours_shapes = [tuple(v.shape) for v in ours.weights]
    theirs_shapes = [tuple(w.shape) for w in theirs.get_weights()]
    if ours_shapes != theirs_shapes:
        at = next((i for i, (a, b) in enumerate(zip(ours_shapes, theirs_shapes)) if a != b),
                  min(len(ours_shapes), len(theirs_shapes)))
        raise ValueError(
            f"{name}: weighted layers of ours and tf_keras.applications differ ({len(ours_shapes)} "
            f"vs {len(theirs_shapes)} weights; the first mismatch is weight {at}: "
            f"{ours_shapes[at] if at < len(ours_shapes) else None} vs "
            f"{theirs_shapes[at] if at < len(theirs_shapes) else None}).")
    weights = [_random_like(v.shape, v.path, i) for i, v in enumerate(ours.weights)]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    x, x_ours = _inputs(batch, size, data_format)
    # Same weights, same input: the outputs must agree before timing means
    # anything (checked in train mode too: the step starts from these weights).
    a = keras.ops.convert_to_numpy(ours.predict_on_batch(x_ours))
    b = np.asarray(theirs.predict_on_batch(x))
    dev = _deviation(a, b)
    log(f"{name}: max rel deviation ours vs tf_keras {dev:.2e}")
    fns = {"ours": _step_fn(ours, x_ours, train, from_logits=True),
           "peer": _step_fn(theirs, x, train, from_logits=True, library=tf_keras)}
    med, ratios = _alternate(fns, rounds, log)
    return {
        "model": name,
        "mode": "train" if train else "infer",
        "peer": PEERS["tf_keras"],
        "ours_ips": batch / med["ours"],
        "peer_ips": batch / med["peer"],
        "keras_ips": None,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "gflops": model_flops(ours) * batch * (3 if train else 1) / med["ours"] / 1e9,
        "deviation": dev,
        "keras_error": None,
        "keras_reference": None,
    }


def _alternate(fns, rounds, log):
    """Warm ``fns`` up (``{"ours": f}`` plus the peer's, ``"keras"`` or
    ``"peer"``), then time them in ``rounds`` alternating rounds:
    ``({key: median seconds}, [peer time / our time per round])``; no
    ratios without a peer."""
    for fn in fns.values():  # warm-up: compile / trace / allocate
        fn()
    other = next((k for k in fns if k != "ours"), None)
    times = {k: [] for k in fns}
    ratios = []
    for r in range(rounds):
        order = list(fns) if r % 2 == 0 else list(reversed(fns))
        got = {k: _time(fns[k]) for k in order}
        for k, v in got.items():
            times[k].append(v)
        line = f"  round {r + 1}: ours {got['ours']:.3f}s"
        if other is not None:
            ratios.append(got[other] / got["ours"])
            line += f" {other} {got[other]:.3f}s ratio {ratios[-1]:.2f}"
        log(line)
    return {k: statistics.median(v) for k, v in times.items()}, ratios


#: ``--dtype-policy`` values: the mixed policies timed against float32.
DTYPE_POLICIES = ("mixed_bfloat16", "mixed_float16")


def build_under_policy(name, policy, size=224, data_format="channels_last"):
    """Our model ``name`` built under the global dtype policy ``policy``
    (variables float32, computation in the policy's compute dtype), the
    previous global policy restored afterwards."""
    previous = keras.config.dtype_policy().name
    keras.config.set_dtype_policy(policy)
    try:
        return build_ours(name, size, data_format)
    finally:
        keras.config.set_dtype_policy(previous)


def compare_dtype_policy(name, policy, batch=16, size=224, train=False, rounds=5,
                         data_format="channels_last", log=print):
    """Time our model ``name`` under the mixed ``policy`` against the same
    model in float32, same weights, alternating rounds in one process.

    Args:
        name: A constructor of :mod:`keras_zoo_plus.applications`.
        policy: One of :data:`DTYPE_POLICIES`.
        batch, size, train, rounds, data_format: as for :func:`compare`.
        log: Where progress lines go.

    Returns:
        dict with ``model, mode, policy, float32_ips, policy_ips, ratio``
        (median over rounds of float32 time / policy time: > 1 means the
        policy is faster), the per-round ``ratios`` and, for inference,
        the outputs' max relative ``deviation`` (policy vs float32).

    Raises:
        ValueError: for a ``policy`` not in :data:`DTYPE_POLICIES`.
    """
    if policy not in DTYPE_POLICIES:
        raise ValueError(f"`policy` must be one of {list(DTYPE_POLICIES)}. "
                         f"Received: policy={policy!r}")
    reference = build_ours(name, size, data_format)
    mixed = build_under_policy(name, policy, size, data_format)
    # Same values: the mixed model's variables are float32 as well.
    mixed.set_weights(reference.get_weights())
    _, x = _inputs(batch, size, data_format)
    deviation = None
    if not train:
        a = keras.ops.convert_to_numpy(reference.predict_on_batch(x)).astype("float64")
        b = keras.ops.convert_to_numpy(
            keras.ops.cast(mixed.predict_on_batch(x), "float32")).astype("float64")
        deviation = _deviation(b, a)
        log(f"{name}: max rel deviation {policy} vs float32 {deviation:.2e}")
    fns = {"ours": _step_fn(mixed, x, train), "float32": _step_fn(reference, x, train)}
    med, ratios = _alternate(fns, rounds, log)
    return {
        "model": name,
        "mode": "train" if train else "infer",
        "policy": policy,
        "float32_ips": batch / med["float32"],
        "policy_ips": batch / med["ours"],
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "deviation": deviation,
    }


def format_policy_table(results):
    """Markdown table of :func:`compare_dtype_policy` results (one policy
    per run)."""
    backend = keras.backend.backend()
    policy = results[0]["policy"] if results else DTYPE_POLICIES[0]
    lines = [
        f"| model | backend | mode | float32 img/s | {policy} img/s | speed-up (median) | "
        "max rel deviation |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        dev = "n/a" if r["deviation"] is None else f"{r['deviation']:.1e}"
        lines.append(f"| {r['model']} | {backend} | {r['mode']} | {r['float32_ips']:.1f} | "
                     f"{r['policy_ips']:.1f} | {r['ratio']:.2f}x | {dev} |")
    return "\n".join(lines)


#: Run in a fresh process by :func:`peak_rss`: build one side's model with
#: weights=None, run one inference, print the peak resident set size (KiB).
#: Linux's ``VmHWM`` is read, not ``ru_maxrss``: the latter carries the
#: forking parent's resident size over ``fork`` + ``exec``, so after the
#: timed models were built both sides read the parent's 1735 MiB.
_RSS_SCRIPT = """
import json, resource, sys
import numpy as np
from keras_zoo_plus import bench
name, side, batch, size, data_format = json.loads(sys.argv[1])
if side == "ours":
    model = bench.build_ours(name, size, data_format)
else:
    model = bench.build_keras(name, size)
    if isinstance(model, bench.KerasRefused):
        print("refused")
        sys.exit(0)
x = np.zeros((batch,) + tuple(model.input_shape[1:]), "float32")
model.predict_on_batch(x)
try:  # this process image's own peak (ru_maxrss keeps the parent's across fork + exec)
    with open("/proc/self/status") as f:
        print([int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0])
except (OSError, IndexError):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss(name, side, batch=16, size=224, data_format="channels_last"):
    """Peak resident memory, in MiB, of a fresh Python process (same
    backend, ``KERAS_BACKEND`` inherited) that imports Keras, builds
    ``side``'s model (``"ours"`` or ``"keras"``) with ``weights=None`` and
    runs one ``predict_on_batch`` of ``batch`` images: what a user's
    inference process costs, import included. None when keras.applications
    refuses the model here.

    Raises:
        RuntimeError: if the process fails (its last error line is given).
    """
    import json
    import os
    import subprocess
    import sys

    if side not in ("ours", "keras"):
        raise ValueError(f'`side` must be "ours" or "keras". Received: side={side!r}')
    env = dict(os.environ, KERAS_BACKEND=keras.backend.backend())
    args = json.dumps([name, side, batch, size, data_format])
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, args], capture_output=True,
                          text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"peak memory of {side} {name}: the process failed: {last}")
    if lines[-1] == "refused":
        return None
    return int(lines[-1]) / 1024.0  # KiB -> MiB


#: Run in a fresh process per (model, backend) by :func:`time_on_backend`:
#: our model with the bench's random weights (the same on every backend: they
#: are drawn from each variable's path and index), warm-ups, then the timed
#: steps; saves the first output and prints the median seconds as JSON.
_BACKEND_SCRIPT = """
import json, statistics, sys, time
import keras
import numpy as np
from keras_zoo_plus import bench
name, batch, size, data_format, train, rounds, warmup, out = json.loads(sys.argv[1])
model = bench.build_ours(name, size, data_format)
model.set_weights([bench._random_like(tuple(v.shape), v.path, i)
                   for i, v in enumerate(model.weights)])
_, x = bench._inputs(batch, size, data_format)
np.save(out, keras.ops.convert_to_numpy(model.predict_on_batch(x)))
step = bench._step_fn(model, x, train)
for _ in range(warmup):
    step()
times = [bench._time(step) for _ in range(rounds)]
print(json.dumps({"backend": keras.backend.backend(), "seconds": statistics.median(times)}))
"""


def time_on_backend(name, backend, batch=16, size=224, rounds=5, data_format="channels_last",
                    train=False, output=None, warmup=2):
    """Median seconds of one step (``predict_on_batch``, or an SGD step with
    ``train``) of our model ``name`` on ``backend``, timed in a fresh
    process of this interpreter (``KERAS_BACKEND=backend``: one backend per
    process). The model's output on the timed input is saved to ``output``
    (a ``.npy`` path) when given.

    Raises:
        RuntimeError: if the process fails (its last error line is given).
    """
    import json
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = output or os.path.join(tmp, "output.npy")
        args = json.dumps([name, batch, size, data_format, train, rounds, warmup, path])
        proc = subprocess.run([sys.executable, "-c", _BACKEND_SCRIPT, args], capture_output=True,
                              text=True, env=dict(os.environ, KERAS_BACKEND=backend))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{name} on {backend}: the process failed: {last}")
    return float(json.loads(lines[-1])["seconds"])


def compare_backends(name, backends, batch=16, size=224, train=False, rounds=5,
                     data_format="channels_last", passes=2, log=print):
    """Our model ``name`` timed on each of ``backends`` (:func:`time_on_backend`,
    one process at a time, never two at once), ``passes`` times, each pass
    visiting the backends in a rotated order so that a drift in machine load
    does not always fall on the same one. Each backend's figure is the
    median of its passes' medians; ratios and output deviations are against
    the first backend listed.

    Returns:
        A dict: ``model``, ``mode``, ``backends`` (the order given),
        ``ips`` (img/s per backend), ``ratio`` (img/s over the first
        backend's) and ``deviation`` (max |out - first's| / max |first's|).
    """
    import os
    import tempfile

    if not backends:
        raise ValueError("`backends`: give at least one backend. Received: backends=[]")
    seconds = {b: [] for b in backends}
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(passes):
            k = i % len(backends)
            for backend in list(backends[k:]) + list(backends[:k]):
                path = os.path.join(tmp, f"{backend}.npy")
                seconds[backend].append(time_on_backend(
                    name, backend, batch, size, rounds, data_format, train, output=path))
                log(f"  {name} pass {i + 1} {backend}: {seconds[backend][-1]:.3f}s")
                outputs[backend] = np.load(path)
    ips = {b: batch / statistics.median(s) for b, s in seconds.items()}
    first = backends[0]
    return {
        "model": name,
        "mode": "train" if train else "inference",
        "backends": list(backends),
        "ips": ips,
        "ratio": {b: ips[b] / ips[first] for b in backends},
        "deviation": {b: _deviation(outputs[b], outputs[first]) for b in backends},
    }


def format_backends_table(results):
    """Markdown table of :func:`compare_backends` results: img/s on each
    backend, then each other backend's ratio to the first and its output's
    deviation from the first's."""
    if not results:
        return ""
    backends = results[0]["backends"]
    first, others = backends[0], backends[1:]
    lines = [
        "| model | mode | " + " | ".join(f"{b} img/s" for b in backends) + " |"
        + "".join(f" {b} / {first} |" for b in others)
        + "".join(f" {b} max dev |" for b in others),
        "|---|---|" + "---:|" * (len(backends) + 2 * len(others)),
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['mode']} | " + " | ".join(f"{r['ips'][b]:.1f}" for b in backends)
            + " |" + "".join(f" {r['ratio'][b]:.2f}x |" for b in others)
            + "".join(f" {r['deviation'][b]:.1e} |" for b in others))
    return "\n".join(lines)


def sgemm_peak(n=2048, repeats=5):
    """Best single-precision matmul rate of numpy's BLAS, GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype("float32")
    b = rng.standard_normal((n, n)).astype("float32")
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def format_table(results, latency=False):
    """Markdown table of :func:`compare` results; ``latency`` adds the
    milliseconds per image (what ``--latency``, batch 1, is about)."""
    backend = keras.backend.backend()
    memory = any("ours_peak_mib" in r for r in results)
    # One peer per run (main's --peer); a peer other than keras.applications
    # never refuses a model, so its rows need no "fails" cells or notes.
    peers = {r.get("peer", PEERS["keras"]) for r in results}
    other = next((p for p in peers if p != PEERS["keras"]), None)
    peer = _PEER_LABELS.get(other or PEERS["keras"], other)
    lines = [
        f"| model | backend | mode | ours img/s | {peer} img/s | ratio (median) | ours GFLOP/s |"
        + (f" ours ms/img | {peer} ms/img |" if latency else "")
        + (" ours peak MiB | keras peak MiB | memory ratio |" if memory else ""),
        "|---|---|---|---:|---:|---:|---:|" + ("---:|---:|" if latency else "")
        + ("---:|---:|---:|" if memory else ""),
    ]
    notes = []
    for r in results:
        if other is not None:
            row = (f"| {r['model']} | {backend} | {r['mode']} | {r['ours_ips']:.1f} | "
                   f"{r['peer_ips']:.1f} | {r['ratio']:.2f}x | {r['gflops']:.1f} |")
            if latency:
                row += f" {1000 / r['ours_ips']:.1f} | {1000 / r['peer_ips']:.1f} |"
            lines.append(row)
            continue
        if r["ratio"] is None:
            keras_ips, ratio = "fails", "n/a"
            notes.append(f"{r['model']}: keras.applications fails: {r['keras_error']}")
        else:
            keras_ips, ratio = f"{r['keras_ips']:.1f}", f"{r['ratio']:.2f}x"
            if r.get("keras_reference") == "unguarded":
                keras_ips += " *"
                notes.append(
                    f"* {r['model']}: keras.applications refuses this backend; its graph "
                    "was built past the guard (keras.src.applications NASNet())"
                )
        row = (
            f"| {r['model']} | {backend} | {r['mode']} | {r['ours_ips']:.1f} | "
            f"{keras_ips} | {ratio} | {r['gflops']:.1f} |"
        )
        if latency:
            theirs_ms = "n/a" if r["ratio"] is None else f"{1000 / r['keras_ips']:.1f}"
            row += f" {1000 / r['ours_ips']:.1f} | {theirs_ms} |"
        if memory:
            ours_mib, keras_mib = r.get("ours_peak_mib"), r.get("keras_peak_mib")
            row += f" {ours_mib:.0f} |" if ours_mib is not None else " n/a |"
            if keras_mib is None or ours_mib is None:
                row += " n/a | n/a |"
            else:
                row += f" {keras_mib:.0f} | {ours_mib / keras_mib:.2f} |"
        lines.append(row)
    return "\n".join(lines + [""] + notes if notes else lines)


def plot(results, path):
    """Bar chart of img/s, ours vs the peer (keras.applications unless
    ``--peer`` said otherwise), saved to ``path``.

    Raises:
        RuntimeError: if matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError(
            "`--plot` needs matplotlib, which is not installed; `pip install matplotlib`."
        ) from exc
    labels = [f"{r['model']}\n{r['mode']}" for r in results]
    pos = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(max(4, 1.8 * len(results)), 3.5))
    peer = results[0].get("peer", PEERS["keras"]) if results else PEERS["keras"]
    ax.bar(pos - 0.2, [r.get("peer_ips") or 0 for r in results], 0.4, label=peer)
    ax.bar(pos + 0.2, [r["ours_ips"] for r in results], 0.4, label="keras_zoo_plus")
    for p, r in zip(pos, results):
        text = "keras fails" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        ax.annotate(text, (p + 0.2, r["ours_ips"]), ha="center", va="bottom")
    ax.set_xticks(pos, labels)
    ax.set_ylabel("images / s")
    ax.set_title(f"{keras.backend.backend()} backend")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def bench_models(peer="keras"):
    """Constructor names both keras_zoo_plus.applications and the peer's
    library have (the models ``bench`` can compare): keras.applications'
    (for ``"keras"`` and ``"torch"``) or, for ``"tf_keras"``,
    tf_keras.applications' (imported here: :class:`ValueError` if missing).
    ``None`` (``--backends``: ours against ours): every zoo constructor.
    """
    from keras_zoo_plus import applications

    ours = [n for n in applications.__all__ if n[0].isupper()]
    if peer is None:
        return ours
    library = _import_tf_keras().applications if peer == "tf_keras" else keras.applications
    return [n for n in ours if hasattr(library, n)]


def _model_names(values, peer="keras"):
    """``--models`` values: constructor names, or ``all``."""
    try:
        known = bench_models(peer)
    except ValueError:  # tf_keras is missing: said in the command line's terms
        raise UsageError("--peer tf_keras needs tf_keras (pip install tf_keras)") from None
    names = []
    for value in values:
        if value == "all":
            names += [n for n in known if n not in names]
            continue
        if value not in known:
            raise UsageError(
                f"--models: unknown model {value!r}; choose from {', '.join(known)} or 'all'"
            )
        if value not in names:
            names.append(value)
    return names


class UsageError(Exception):
    """Bad command-line arguments (exit status 2)."""


def main(args):
    """Entry point of ``keras-zoo-plus bench``: ``args`` as parsed by
    :mod:`keras_zoo_plus.cli`, which defines the subcommand's options."""
    import sys

    if getattr(args, "backends", None) and getattr(args, "dtype_policy", None) is None:
        return _main_backends(args)
    if getattr(args, "dtype_policy", None) is not None:
        return _main_dtype_policy(args)
    peer = getattr(args, "peer", None) or "keras"
    problem = None
    if getattr(args, "passes", None) is not None:
        problem = "--passes applies to --backends (passes over the backends)"
    # Before the names: tf_keras' model list needs TensorFlow and tf_keras.
    elif peer == "tf_keras" and keras.backend.backend() != "tensorflow":
        problem = ("--peer tf_keras compares tf_keras (Keras 2) with our TensorFlow backend; "
                   f"the backend is {keras.backend.backend()} (set KERAS_BACKEND=tensorflow)")
    elif peer == "tf_keras" and getattr(args, "memory", False):
        problem = ("--memory compares with keras.applications; it cannot be combined with "
                   "--peer tf_keras")
    if problem:
        sys.stderr.write(f"keras-zoo-plus: error: {problem}\n")
        return 2
    try:
        names = _model_names(args.models, peer)
    except UsageError as exc:
        sys.stderr.write(f"keras-zoo-plus: error: {exc}\n")
        return 2
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write(
                "keras-zoo-plus: error: --plot needs matplotlib (pip install matplotlib)\n"
            )
            return 2
    latency = getattr(args, "latency", False)
    batch = args.batch
    if latency and batch not in (None, 1):
        problem = f"--latency times one image; it cannot be combined with --batch {batch}"
    elif peer == "torch" and keras.backend.backend() != "torch":
        problem = ("--peer torch compares plain PyTorch with our torch backend; the backend is "
                   f"{keras.backend.backend()} (set KERAS_BACKEND=torch)")
    elif peer == "torch" and args.train:
        problem = "--peer torch times inference only; it cannot be combined with --train"
    elif peer == "torch" and getattr(args, "memory", False):
        problem = "--memory compares with keras.applications; it cannot be combined with --peer torch"
    if problem:
        sys.stderr.write(f"keras-zoo-plus: error: {problem}\n")
        return 2
    batch = 1 if latency else (batch or 16)
    results = []
    for name in names:
        try:
            results.append(compare(name, batch, args.size, args.train, args.rounds,
                                   args.data_format, peer=peer))
        except ValueError as exc:
            sys.stderr.write(f"keras-zoo-plus: skipping {name}: {exc}\n")
    if getattr(args, "memory", False):
        for result in results:
            ours = peak_rss(result["model"], "ours", batch, args.size, args.data_format)
            theirs = peak_rss(result["model"], "keras", batch, args.size)
            result.update(ours_peak_mib=ours, keras_peak_mib=theirs)
    print(f"batch {batch}, {args.size}x{args.size}, {args.rounds} alternating rounds, "
          f"against {PEERS[peer]}")
    print(format_table(results, latency=latency))
    peak = None
    if args.sgemm:
        peak = sgemm_peak()
        print(f"numpy sgemm peak: {peak:.1f} GFLOP/s")
    if args.plot and results:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    if args.json:
        report = {
            "schema_version": 1,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "batch": batch,
            "peer": PEERS[peer],
            "size": args.size,
            "rounds": args.rounds,
            "data_format": args.data_format,
            "sgemm_gflops": peak,
            "results": results,
        }
        _write_json(args.json, report)
    return 0 if results else 1


def _main_dtype_policy(args):
    """``bench --dtype-policy POLICY``: each model under ``POLICY`` against
    itself in float32 (:func:`compare_dtype_policy`), in one table."""

    policy = args.dtype_policy
    latency = getattr(args, "latency", False)
    problem = None
    if policy not in DTYPE_POLICIES:
        problem = (f"--dtype-policy: unknown policy {policy!r}; choose from "
                   f"{', '.join(DTYPE_POLICIES)}")
    else:
        for flag, given in (("--peer", getattr(args, "peer", None)),
                            ("--backends", getattr(args, "backends", None)),
                            ("--memory", getattr(args, "memory", False)),
                            ("--plot", getattr(args, "plot", None)),
                            ("--passes", getattr(args, "passes", None))):
            if given:
                problem = (f"--dtype-policy times our models against themselves in float32; "
                           f"it cannot be combined with {flag}")
                break
    checked = _names_and_batch(args, problem, latency)
    if checked is None:
        return 2
    names, batch = checked
    results = [compare_dtype_policy(name, policy, batch, args.size, args.train, args.rounds,
                                    args.data_format)
               for name in names]
    print(f"batch {batch}, {args.size}x{args.size}, {args.data_format}, {args.rounds} "
          f"alternating rounds, {policy} against float32")
    print(format_policy_table(results))
    if args.json:
        _write_json(args.json, {
            "schema_version": 1,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "batch": batch,
            "size": args.size,
            "rounds": args.rounds,
            "data_format": args.data_format,
            "dtype_policy": policy,
            "results": results,
        })
    return 0 if results else 1


def _names_and_batch(args, problem, latency):
    """After a mode's own usage checks (``problem``: the first one failed,
    or None), the checks every mode shares: ``(model names, batch)``, or
    None once a usage error is printed."""
    import sys

    if problem is None and latency and args.batch not in (None, 1):
        problem = f"--latency times one image; it cannot be combined with --batch {args.batch}"
    if problem is None:
        try:
            names = _model_names(args.models, peer=None)
        except UsageError as exc:
            problem = str(exc)
    if problem:
        sys.stderr.write(f"keras-zoo-plus: error: {problem}\n")
        return None
    return names, (1 if latency else (args.batch or 16))


def _main_backends(args):
    """``bench --backends``: our models timed on several backends, one
    process each (:func:`compare_backends`), in one table."""
    import sys

    from keras_zoo_plus import check

    backends = list(dict.fromkeys(args.backends))
    installed = check.installed_backends()
    missing = [b for b in backends if b not in installed]
    latency = getattr(args, "latency", False)
    problem = None
    if missing:
        problem = (f"--backends: {', '.join(missing)} cannot be imported here; installed: "
                   f"{', '.join(installed) or 'none'}")
    elif getattr(args, "peer", None):
        problem = (f"--backends times our models across backends; it cannot be combined "
                   f"with --peer {args.peer}")
    elif getattr(args, "memory", False):
        problem = "--memory compares with keras.applications; it cannot be combined with --backends"
    elif args.plot:
        problem = "--plot draws ours against a peer; it cannot be combined with --backends"
    checked = _names_and_batch(args, problem, latency)
    if checked is None:
        return 2
    names, batch = checked
    passes = getattr(args, "passes", None) or 2

    def log(line):
        print(line, file=sys.stderr, flush=True)

    results = []
    for name in names:
        try:
            results.append(compare_backends(name, backends, batch, args.size, args.train,
                                            args.rounds, args.data_format, passes, log=log))
        except RuntimeError as exc:
            sys.stderr.write(f"keras-zoo-plus: skipping {name}: {exc}\n")
    print(f"batch {batch}, {args.size}x{args.size}, {args.data_format}, {args.rounds} rounds "
          f"x {passes} passes, one process per model and backend, ratios to {backends[0]}")
    print(format_backends_table(results))
    if args.json:
        report = {
            "schema_version": 1,
            "backends": backends,
            "keras_version": keras.__version__,
            "batch": batch,
            "size": args.size,
            "rounds": args.rounds,
            "passes": passes,
            "data_format": args.data_format,
            "results": results,
        }
        _write_json(args.json, report)
    return 0 if results else 1


def _write_json(path, report):
    """``report`` as indented JSON at ``path`` (``--json``)."""
    import json

    with open(path, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
