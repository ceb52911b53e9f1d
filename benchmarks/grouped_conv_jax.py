"""RegNet's grouped 3x3 convolutions on JAX/CPU, four formulations: XLA's
``feature_group_count`` (what ``keras.ops.conv`` runs), one convolution per
group concatenated (what ``keras_zoo_plus.ops.conv2d`` runs there), a
block-diagonal dense kernel, and ``vmap`` over the groups. Each is
``jax.jit``-ed; medians of 7 calls in ms, and each output's max relative
difference from XLA's op. Results: benchmarks/README.md, "RegNet and
ResNet-RS on a quiet machine; grouped convolutions".

    .nox/jax/bin/python benchmarks/grouped_conv_jax.py
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")
# (label, batch, H = W, channels, channels per group, stride)
SHAPES = [("x002 s1", 16, 56, 24, 8, 1), ("x002 s2", 16, 28, 56, 8, 1),
          ("x002 s3", 16, 14, 152, 8, 1), ("x002 s4", 16, 7, 368, 8, 1),
          ("y016 s3", 16, 14, 336, 24, 1), ("x032 s4", 16, 7, 1008, 48, 1),
          ("x002 s2 down", 16, 56, 56, 8, 2), ("y016 s2 b1", 1, 28, 120, 24, 1)]


def native(x, k, groups, s):
    return lax.conv_general_dilated(x, k, (s, s), "SAME", dimension_numbers=DN,
                                    feature_group_count=groups)


def split(x, k, groups, s):
    pairs = zip(jnp.split(x, groups, axis=3), jnp.split(k, groups, axis=3))
    return jnp.concatenate([lax.conv_general_dilated(a, b, (s, s), "SAME", dimension_numbers=DN)
                            for a, b in pairs], axis=3)


def blockdiag(x, k, groups, s):
    kh, kw, per_group, filters = k.shape
    kk = k.reshape(kh, kw, per_group, groups, filters // groups)
    full = jnp.einsum("hwcgf,ag->hwacgf", kk, jnp.eye(groups, dtype=k.dtype))
    full = full.reshape(kh, kw, groups * per_group, filters)
    return lax.conv_general_dilated(x, full, (s, s), "SAME", dimension_numbers=DN)


def vmapped(x, k, groups, s):
    n, h, w, c = x.shape
    filters = k.shape[3]
    xg = x.reshape(n, h, w, groups, c // groups).transpose(3, 0, 1, 2, 4)
    kg = k.reshape(3, 3, c // groups, groups, filters // groups).transpose(3, 0, 1, 2, 4)
    y = jax.vmap(lambda a, b: lax.conv_general_dilated(a, b, (s, s), "SAME",
                                                       dimension_numbers=DN))(xg, kg)
    return y.transpose(1, 2, 3, 0, 4).reshape(n, y.shape[2], y.shape[3], filters)


def bench(f, *args, rounds=7):
    f(*args).block_until_ready()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        f(*args).block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    rng = np.random.default_rng(0)
    print(jax.__version__, jax.default_backend())
    candidates = {name: jax.jit(fn, static_argnums=(2, 3)) for name, fn in
                  (("native", native), ("split", split), ("blockdiag", blockdiag),
                   ("vmap", vmapped))}
    for label, n, hw, c, per_group, s in SHAPES:
        groups = c // per_group
        x = jnp.asarray(rng.standard_normal((n, hw, hw, c), np.float32))
        k = jnp.asarray(rng.standard_normal((3, 3, per_group, c), np.float32) * 0.1)
        ref = np.asarray(candidates["native"](x, k, groups, s))
        cells = []
        for name, f in candidates.items():
            err = float(np.max(np.abs(np.asarray(f(x, k, groups, s)) - ref)) / np.max(np.abs(ref)))
            cells.append(f"{name} {bench(f, x, k, groups, s):7.2f} ms ({err:.0e})")
        print(f"{label:13s} groups={groups:3d} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
