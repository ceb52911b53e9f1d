"""ConvNeXtTiny's ops on CPU, formulations side by side (inference).

    KERAS_BACKEND=torch .nox/torch/bin/python benchmarks/convnext_ops.py
    KERAS_BACKEND=jax .nox/jax/bin/python benchmarks/convnext_ops.py
    KERAS_BACKEND=tensorflow .nox/tensorflow/bin/python benchmarks/convnext_ops.py \
        --only dw ln

Options: ``--only dw ln mlp block model`` (sections), ``--batch 1 8``,
``--rounds 11``, ``--formats channels_last channels_first``,
``--stages 0 1 2 3``, ``--threads N`` (torch/TF intra-op threads, XLA's
Eigen pool), ``--clock wall|process``. On a loaded machine wall times
swing by 10x (descheduled threads); ``--threads 1 --clock process``
then measures the CPU time of each formulation itself.

At ConvNeXtTiny's stage shapes (C = 96, 192, 384, 768 at 56, 28, 14, 7 px
for a 224 input) it times, per batch and data format:

- ``dw``: the 7x7 depthwise convolution ("same"): keras.ops.conv with
  ``groups=C`` (what keras.applications' ``Conv2D(groups=C)`` runs),
  keras.ops.depthwise_conv, every formulation of
  keras_zoo_plus.ops.depthwise_conv2d on this backend, and on torch
  ``F.conv2d(groups=C)`` on contiguous NCHW and on channels_last memory;
- ``ln``: LayerNormalization over the channel axis: keras.ops.
  layer_normalization (what keras.layers.LayerNormalization calls),
  keras_zoo_plus.ops.layer_normalization, and the raw formulations
  (torch: F.layer_norm on the last axis, on a permuted view, manual
  mean/var; JAX: jnp inside jax.jit);
- ``mlp``: Dense(4C) -> GELU(erf) -> Dense(C) -> x * gamma, on the last
  axis (channels_last) or axis 1 (einsum, permute + matmul, 1x1 conv);
- ``block``: the whole ConvNeXt block, Keras' ops against ours;
- ``model``: keras.applications.ConvNeXtTiny(weights=None, 224)
  ``predict_on_batch`` (torch: plus a torch.profiler table of where the
  time goes).

Every candidate runs once per round, the order rotating between rounds;
the figures are the median and the minimum over rounds of the mean of an
inner loop of at least ~10 ms (torch: under ``torch.no_grad()``; JAX: each candidate
``jax.jit``-ed with its arrays as arguments; TensorFlow: ``tf.function``).
Each output is checked against the first candidate's (max |diff| / max
|ref| printed). Results: benchmarks/README.md, "ConvNeXt ops".
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np


def _early_flag(name, default):
    """A command-line option needed before the frameworks are imported."""
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


THREADS = int(_early_flag("--threads", "0"))
if THREADS and "XLA_FLAGS" not in os.environ:
    os.environ["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen={'true' if THREADS > 1 else 'false'} "
        f"intra_op_parallelism_threads={THREADS}"
    )
# "wall" (perf_counter) or "process" (CPU time of this process: under other
# load, with --threads 1, what the formulation itself costs).
CLOCK = {"wall": time.perf_counter, "process": time.process_time}[_early_flag("--clock", "wall")]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_zoo_plus import ops as zoo_ops  # noqa: E402

BACKEND = keras.backend.backend()
STAGES = [(56, 96), (28, 192), (14, 384), (7, 768)]  # (size, channels)
DEPTHS = [3, 3, 9, 3]  # ConvNeXtTiny blocks per stage
EPS = 1e-6


# --- timing -------------------------------------------------------------


def _sync(out):
    if BACKEND == "jax":
        import jax

        jax.block_until_ready(out)
    return out


def _compile(fn):
    """The backend's inference form of ``fn(*arrays)``."""
    if BACKEND == "jax":
        import jax

        return jax.jit(fn)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    return fn


def _numpy(out):
    return np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")


def compare(title, candidates, args, rounds):
    """Times ``candidates`` ({name: fn} run as ``fn(*args)``, or {name:
    (fn, own_args)}), interleaved; prints one row each."""
    print(f"\n{title}")
    runnable, ref = {}, None
    for name, fn in candidates.items():
        fn, a = fn if isinstance(fn, tuple) else (fn, args)
        f = _compile(fn)
        try:
            out = _sync(f(*a))
            _sync(f(*a))
        except Exception as exc:  # a formulation Keras refuses
            print(f"  {name:<50} fails: {type(exc).__name__}: {str(exc).splitlines()[0][:70]}")
            continue
        out = _numpy(out)
        if ref is None:
            ref, dev = out, 0.0
        else:
            dev = float(np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1e-30))
        t0 = CLOCK()
        _sync(f(*a))
        once = CLOCK() - t0
        runnable[name] = (f, a, max(1, int(0.01 / max(once, 1e-6))), dev)
    names = list(runnable)
    times = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            f, a, inner, _ = runnable[name]
            t0 = CLOCK()
            for _ in range(inner):
                out = f(*a)
            _sync(out)
            times[name].append((CLOCK() - t0) / inner)
    base = statistics.median(times[names[0]]) if names else None
    base_min = min(times[names[0]]) if names else None
    result = {}
    for name in names:
        med, low = statistics.median(times[name]), min(times[name])
        result[name] = med
        dev = runnable[name][3]
        print(f"  {name:<50} {med * 1e3:9.3f} ms  x{base / med:5.2f}   "
              f"min {low * 1e3:9.3f} ms  x{base_min / low:5.2f}  dev {dev:.1e}")
    return result


# --- inputs -------------------------------------------------------------


def _rng(seed=0):
    return np.random.default_rng(seed)


def _x(batch, size, channels, data_format, seed=0):
    x = _rng(seed).standard_normal((batch, size, size, channels)).astype("float32")
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return keras.ops.convert_to_tensor(x)


def _t(a):
    return keras.ops.convert_to_tensor(np.asarray(a, dtype="float32"))


# --- candidates -----------------------------------------------------------


def dw_candidates(data_format):
    kw = dict(padding="same", data_format=data_format)
    c = {
        "keras.ops.conv groups=C (keras Conv2D)": lambda x, kd, kg, b: keras.ops.conv(x, kg, **kw),
        "keras.ops.depthwise_conv": lambda x, kd, kg, b: keras.ops.depthwise_conv(x, kd, **kw),
        "zoo depthwise_conv2d auto": lambda x, kd, kg, b: zoo_ops.depthwise_conv2d(x, kd, **kw),
    }
    for impl in zoo_ops._backend().IMPLEMENTATIONS:
        c[f"zoo depthwise_conv2d {impl}"] = (
            lambda x, kd, kg, b, impl=impl: zoo_ops.depthwise_conv2d(
                x, kd, implementation=impl, **kw
            )
        )
    return c


def torch_dw_raw(x, kd, data_format):
    """F.conv2d(groups=C) on pre-laid-out tensors (kernel time only)."""
    import torch
    import torch.nn.functional as F

    nchw = x.permute(0, 3, 1, 2) if data_format == "channels_last" else x
    contiguous = nchw.contiguous()
    cl = nchw.contiguous(memory_format=torch.channels_last)
    c = kd.shape[2]
    w = kd.permute(2, 3, 0, 1).reshape(c, 1, 7, 7).contiguous()

    def run(t):
        # Returned as a (free) view in data_format, to compare outputs.
        y = F.conv2d(t, w, padding=3, groups=c)
        return y.permute(0, 2, 3, 1) if data_format == "channels_last" else y

    return {
        "F.conv2d groups=C, contiguous NCHW": (run, (contiguous,)),
        "F.conv2d groups=C, channels_last memory": (run, (cl,)),
    }


def ln_candidates(data_format, x):
    axis = 1 if data_format == "channels_first" else -1
    c = {
        "keras.ops.layer_normalization": lambda x, g, b: keras.ops.layer_normalization(
            x, g, b, axis=axis, epsilon=EPS
        ),
        "zoo layer_normalization auto": lambda x, g, b: zoo_ops.layer_normalization(
            x, g, b, axis=axis, epsilon=EPS
        ),
        "zoo layer_normalization native": lambda x, g, b: zoo_ops.layer_normalization(
            x, g, b, axis=axis, epsilon=EPS, implementation="native"
        ),
    }
    if axis == 1:

        def keras_nhwc(x, g, b):
            y = keras.ops.layer_normalization(
                keras.ops.transpose(x, (0, 2, 3, 1)), g, b, axis=-1, epsilon=EPS
            )
            return keras.ops.transpose(y, (0, 3, 1, 2))

        c["keras.ops.layer_normalization, NHWC transposes"] = keras_nhwc
    if BACKEND == "torch":
        import torch
        import torch.nn.functional as F

        cdim = x.shape[axis]
        if axis == -1:
            c["F.layer_norm last axis"] = lambda x, g, b: F.layer_norm(x, (cdim,), g, b, EPS)
        else:
            c["permute + F.layer_norm + permute"] = lambda x, g, b: F.layer_norm(
                x.permute(0, 2, 3, 1), (cdim,), g, b, EPS
            ).permute(0, 3, 1, 2)

            def manual(x, g, b):
                var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
                inv = torch.rsqrt(var + EPS) * g.reshape(1, -1, 1, 1)
                return torch.addcmul(b.reshape(1, -1, 1, 1) - mean * inv, x, inv)

            c["var_mean + addcmul over axis 1"] = manual
    if BACKEND == "jax":
        import jax.numpy as jnp
        from jax import lax

        shape = (1, -1, 1, 1) if axis == 1 else (-1,)

        def two_pass(x, g, b):
            mean = jnp.mean(x, axis, keepdims=True)
            d = x - mean
            var = jnp.mean(d * d, axis, keepdims=True)
            return d * (lax.rsqrt(var + EPS) * g.reshape(shape)) + b.reshape(shape)

        def one_pass(x, g, b):
            mean = jnp.mean(x, axis, keepdims=True)
            var = jnp.maximum(jnp.mean(x * x, axis, keepdims=True) - mean * mean, 0.0)
            inv = lax.rsqrt(var + EPS) * g.reshape(shape)
            return x * inv + (b.reshape(shape) - mean * inv)

        c["jnp two-pass (x - mean) * inv + beta"] = two_pass
        c["jnp one-pass E[x^2] - mean^2, folded"] = one_pass
    return c


def _gelu(x):
    return keras.ops.gelu(x, approximate=False)


def mlp_candidates(data_format):
    if data_format == "channels_last":

        def keras_dense(x, w1, b1, w2, b2, gamma):
            h = _gelu(keras.ops.add(keras.ops.matmul(x, w1), b1))
            return keras.ops.multiply(keras.ops.add(keras.ops.matmul(h, w2), b2), gamma)

        c = {"keras Dense, gelu, Dense, * gamma (keras.ops)": keras_dense}
        if BACKEND == "torch":
            import torch.nn.functional as F

            def linear(x, w1, b1, w2, b2, gamma):
                h = F.gelu(F.linear(x, w1.T, b1))
                return F.linear(h, w2.T * gamma[:, None], b2 * gamma)

            c["F.linear, F.gelu, F.linear (gamma folded)"] = linear
            c["oneDNN linear + gelu post-op (gamma folded)"] = _onednn_mlp
        return c

    def cf(t):
        return keras.ops.reshape(t, (1, -1, 1, 1))

    def einsum(x, w1, b1, w2, b2, gamma):
        h = _gelu(keras.ops.einsum("bchw,cd->bdhw", x, w1) + cf(b1))
        return (keras.ops.einsum("bchw,cd->bdhw", h, w2) + cf(b2)) * cf(gamma)

    def permute(x, w1, b1, w2, b2, gamma):
        x = keras.ops.transpose(x, (0, 2, 3, 1))
        h = _gelu(keras.ops.matmul(x, w1) + b1)
        y = (keras.ops.matmul(h, w2) + b2) * gamma
        return keras.ops.transpose(y, (0, 3, 1, 2))

    def conv1x1(x, w1, b1, w2, b2, gamma):
        k1 = keras.ops.reshape(w1, (1, 1) + tuple(w1.shape))
        k2 = keras.ops.reshape(w2, (1, 1) + tuple(w2.shape))
        h = _gelu(zoo_ops.conv2d(x, k1, data_format="channels_first") + cf(b1))
        return (zoo_ops.conv2d(h, k2, data_format="channels_first") + cf(b2)) * cf(gamma)

    c = {
        'einsum "bchw,cd->bdhw" (keras.ops)': einsum,
        "transpose + matmul + transpose (keras.ops)": permute,
        "zoo conv2d 1x1 (auto)": conv1x1,
    }
    if BACKEND == "torch":
        import torch.nn.functional as F

        def conv_torch(x, w1, b1, w2, b2, gamma):
            import torch

            x = x.contiguous(memory_format=torch.channels_last)
            h = F.gelu(F.conv2d(x, w1.T[:, :, None, None], b1))
            w = (w2.T * gamma[:, None])[:, :, None, None]
            return F.conv2d(h, w, b2 * gamma)

        def permute_linear(x, w1, b1, w2, b2, gamma):
            h = F.gelu(F.linear(x.permute(0, 2, 3, 1), w1.T, b1))
            return F.linear(h, w2.T * gamma[:, None], b2 * gamma).permute(0, 3, 1, 2)

        c["F.conv2d 1x1 channels_last memory, gamma folded"] = conv_torch
        c["permute + F.linear (gamma folded) + permute"] = permute_linear
        c["permute + oneDNN linear + gelu post-op + permute"] = (
            lambda x, *p: _onednn_mlp(x.permute(0, 2, 3, 1), *p).permute(0, 3, 1, 2)
        )
    return c


def _onednn_mlp(x, w1, b1, w2, b2, gamma):
    """torch: both Dense layers as oneDNN matmuls, the exact (erf) GELU as
    the first one's post-op, LayerScale folded into the second."""
    import torch

    lin = torch.ops.mkldnn._linear_pointwise
    shape = x.shape
    x = x.reshape(-1, shape[-1])  # a copy only for non-contiguous views
    h = lin(x, w1.T.contiguous(), b1, "gelu", [], "none")
    y = lin(h, (w2.T * gamma[:, None]).contiguous(), b2 * gamma, "none", [], "")
    return y.reshape(shape)


def block_candidates(data_format):
    first = data_format == "channels_first"
    axis = 1 if first else -1

    def cf(t):
        return keras.ops.reshape(t, (1, -1, 1, 1)) if first else t

    def mlp_residual(x, y, w1, b1, w2, b2, gamma):
        # Keras' MLP on the last axis (transposed around it in channels_first).
        if first:
            y = keras.ops.transpose(y, (0, 2, 3, 1))
        y = _gelu(keras.ops.matmul(y, w1) + b1)
        y = (keras.ops.matmul(y, w2) + b2) * gamma
        if first:
            y = keras.ops.transpose(y, (0, 3, 1, 2))
        return x + y

    def keras_block(x, kg, kd, bd, g, b, *mlp):
        # keras.applications' ConvNeXtBlock, op for op (in data_format).
        y = keras.ops.conv(x, kg, padding="same", data_format=data_format) + cf(bd)
        y = keras.ops.layer_normalization(y, g, b, axis=axis, epsilon=EPS)
        return mlp_residual(x, y, *mlp)

    def zoo_block(x, kg, kd, bd, g, b, *mlp):
        y = zoo_ops.depthwise_conv2d(x, kd, padding="same", data_format=data_format) + cf(bd)
        y = zoo_ops.layer_normalization(y, g, b, axis=axis, epsilon=EPS)
        return mlp_residual(x, y, *mlp)

    c = {"keras ops (keras.applications block)": keras_block,
         "zoo depthwise + zoo layer_norm, keras MLP": zoo_block}
    if BACKEND == "torch":
        import torch
        import torch.nn.functional as F

        def torch_block(x, kg, kd, bd, g, b, w1, b1, w2, b2, gamma):
            c = kd.shape[2]
            nchw = x.permute(0, 3, 1, 2) if not first else x
            if not nchw.is_contiguous(memory_format=torch.channels_last):
                nchw = nchw.contiguous(memory_format=torch.channels_last)
            w = kd.permute(2, 3, 0, 1).reshape(c, 1, 7, 7)
            y = F.conv2d(nchw, w, bd, padding=3, groups=c).permute(0, 2, 3, 1)
            y = F.layer_norm(y, (c,), g, b, EPS)
            y = F.gelu(F.linear(y, w1.T, b1))
            y = F.linear(y, w2.T * gamma[:, None], b2 * gamma)
            return x + (y.permute(0, 3, 1, 2) if first else y)

        c["torch: F.conv2d cl, F.layer_norm, F.linear, gamma folded"] = torch_block
    return c


# --- sections -------------------------------------------------------------


def section_dw(args):
    for batch in args.batch:
        for fmt in args.formats:
            for s in args.stages:
                size, ch = STAGES[s]
                x = _x(batch, size, ch, fmt)
                kd_np = _rng(1).standard_normal((7, 7, ch, 1)).astype("float32") * 0.1
                kd, kg, b = _t(kd_np), _t(kd_np.reshape(7, 7, 1, ch)), _t(np.zeros(ch))
                title = f"[dw 7x7] batch {batch} {size}x{size}x{ch} {fmt}"
                cands = dw_candidates(fmt)
                if BACKEND == "torch":
                    cands.update(torch_dw_raw(x, kd, fmt))
                with _no_grad():
                    compare(title, cands, (x, kd, kg, b), args.rounds)


def section_ln(args):
    for batch in args.batch:
        for fmt in args.formats:
            layouts = [None]
            if BACKEND == "torch" and fmt == "channels_first":
                layouts = ["contiguous", "channels_last memory"]
            for s in args.stages:
                size, ch = STAGES[s]
                rng = _rng(2)
                g = _t(1 + 0.1 * rng.standard_normal(ch))
                b = _t(0.1 * rng.standard_normal(ch))
                for layout in layouts:
                    x = _x(batch, size, ch, fmt)
                    if layout == "channels_last memory":
                        import torch

                        x = x.contiguous(memory_format=torch.channels_last)
                    title = f"[layernorm] batch {batch} {size}x{size}x{ch} {fmt}" + (
                        f" ({layout})" if layout else ""
                    )
                    with _no_grad():
                        compare(title, ln_candidates(fmt, x), (x, g, b), args.rounds)


def _mlp_params(ch):
    rng = _rng(3)
    return (
        _t(rng.standard_normal((ch, 4 * ch)) / np.sqrt(ch)),
        _t(0.1 * rng.standard_normal(4 * ch)),
        _t(rng.standard_normal((4 * ch, ch)) / np.sqrt(4 * ch)),
        _t(0.1 * rng.standard_normal(ch)),
        _t(0.5 + rng.random(ch)),
    )


def section_mlp(args):
    for batch in args.batch:
        for fmt in args.formats:
            for s in args.stages:
                size, ch = STAGES[s]
                x = _x(batch, size, ch, fmt)
                title = f"[mlp C->4C->C] batch {batch} {size}x{size}x{ch} {fmt}"
                with _no_grad():
                    compare(title, mlp_candidates(fmt), (x,) + _mlp_params(ch), args.rounds)


def section_block(args):
    totals = {}
    for batch in args.batch:
        for fmt in args.formats:
            for s in args.stages:
                size, ch = STAGES[s]
                x = _x(batch, size, ch, fmt)
                rng = _rng(4)
                kd_np = rng.standard_normal((7, 7, ch, 1)).astype("float32") * 0.1
                params = (
                    _t(kd_np.reshape(7, 7, 1, ch)), _t(kd_np), _t(0.1 * rng.standard_normal(ch)),
                    _t(1 + 0.1 * rng.standard_normal(ch)), _t(0.1 * rng.standard_normal(ch)),
                ) + _mlp_params(ch)
                title = f"[block] batch {batch} {size}x{size}x{ch} {fmt}"
                with _no_grad():
                    res = compare(title, block_candidates(fmt), (x,) + params, args.rounds)
                for name, t in res.items():
                    key = (batch, fmt, name)
                    totals[key] = totals.get(key, 0.0) + t * DEPTHS[s]
    if len(args.stages) == 4:
        print("\n[blocks x depth (3, 3, 9, 3), summed: ConvNeXtTiny's 18 blocks]")
        for (batch, fmt, name), t in totals.items():
            print(f"  batch {batch} {fmt:<15} {name:<46} {t * 1e3:9.1f} ms")


def section_model(args):
    for batch in args.batch:
        model = keras.applications.ConvNeXtTiny(weights=None, input_shape=(224, 224, 3))
        x = _rng(5).standard_normal((batch, 224, 224, 3)).astype("float32") * 50
        model.predict_on_batch(x)
        times = []
        for _ in range(args.rounds):
            t0 = CLOCK()
            model.predict_on_batch(x)
            times.append(CLOCK() - t0)
        med = statistics.median(times)
        print(f"\n[model] keras.applications.ConvNeXtTiny predict_on_batch, batch {batch}: "
              f"{med * 1e3:.1f} ms ({batch / med:.1f} img/s)")
        if BACKEND == "torch":
            import torch
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                with torch.no_grad():
                    model.predict_on_batch(x)
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=14)
            print(table)


@contextlib.contextmanager
def _no_grad():
    if BACKEND == "torch":
        import torch

        with torch.no_grad():
            yield
    else:
        yield


def _machine():
    model = subprocess.run(
        "lscpu | grep 'Model name'", shell=True, capture_output=True, text=True
    ).stdout.strip()
    with open("/proc/cpuinfo") as f:
        flags = set(f.read().split())
    simd = sorted(f for f in flags if f.startswith(("avx512", "amx")))
    load = os.getloadavg()
    print(f"{model}; {os.cpu_count()} cores; flags: {' '.join(simd) or 'no avx512/amx'}")
    print(f"keras {keras.__version__}, backend {BACKEND}, python {platform.python_version()}, "
          f"load {load[0]:.2f}, clock {CLOCK.__name__}, threads {THREADS or 'default'}")
    if BACKEND == "torch":
        import torch

        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    elif BACKEND == "jax":
        import jax

        print(f"jax {jax.__version__}")
    else:
        import tensorflow as tf

        print(f"tensorflow {tf.__version__}")


SECTIONS = {"dw": section_dw, "ln": section_ln, "mlp": section_mlp, "block": section_block,
            "model": section_model}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--formats", nargs="+", default=["channels_last", "channels_first"])
    parser.add_argument("--stages", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--threads", type=int, default=0, help="0: the framework's default")
    parser.add_argument("--clock", choices=["wall", "process"], default="wall")
    args = parser.parse_args(argv)
    if THREADS and BACKEND == "torch":
        import torch

        torch.set_num_threads(THREADS)
    elif THREADS and BACKEND == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(THREADS)
    _machine()
    for name in args.only:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
