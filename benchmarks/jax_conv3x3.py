"""ResNet50V2's 3x3 convolutions on JAX/CPU, four formulations side by side.

    python benchmarks/jax_conv3x3.py        # needs jax only

XLA's convolution against an im2col product, nine shifted products and
Winograd F(2x2, 3x3) written in jax.numpy (stride 1, "same"), batch 16,
NHWC, the shapes of ResNet50V2's four stages; then XLA's convolution in
four layouts. Medians of 7 rounds (alternating order), effective GFLOP/s
(direct-convolution FLOPs / time). Every formulation is checked against
XLA's output first (max rel dev <= 1e-5). Results: benchmarks/README.md,
"ResNet50V2 on JAX".
"""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

SHAPES = [(16, 56, 64), (16, 28, 128), (16, 14, 256), (16, 7, 512)]  # n, h = w, c = f
ROUNDS = 7


def xla_conv(x, k):
    return lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _taps(x):
    h, w = x.shape[1:3]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return [xp[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)]


def im2col(x, k):
    n, h, w, c = x.shape
    patches = jnp.concatenate(_taps(x), axis=-1)
    return (patches.reshape(-1, 9 * c) @ k.reshape(9 * c, -1)).reshape(n, h, w, -1)


def shifted(x, k):
    out = 0
    for t, tap in enumerate(_taps(x)):
        out = out + jnp.einsum("nhwc,cf->nhwf", tap, k[t // 3, t % 3])
    return out


# Winograd F(2x2, 3x3): Y = A^T [(G g G^T) * (B^T d B)] A on 4x4 input tiles.
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


def _combine(matrix, values):
    """``matrix @ values`` for a list of arrays, skipping zero coefficients."""
    out = []
    for row in matrix:
        terms = [v if a == 1 else -v if a == -1 else a * v for a, v in zip(row, values) if a]
        acc = terms[0]
        for term in terms[1:]:
            acc = acc + term
        out.append(acc)
    return out


def winograd(x, k):
    n, h, w, c = x.shape
    th, tw = h // 2, w // 2
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    d = [[xp[:, a:a + 2 * th:2, b:b + 2 * tw:2, :] for b in range(4)] for a in range(4)]
    rows = [_combine(BT, [d[a][b] for a in range(4)]) for b in range(4)]
    v = [_combine(BT, [rows[b][i] for b in range(4)]) for i in range(4)]
    vs = jnp.stack([v[i][j] for i in range(4) for j in range(4)]).reshape(16, n * th * tw, c)
    u = jnp.einsum("ai,ijcf,bj->abcf", G, k, G).reshape(16, c, -1)
    m = jnp.matmul(vs, u).reshape(4, 4, n, th, tw, -1)
    cols = [_combine(AT, [m[i, j] for i in range(4)]) for j in range(4)]
    y = [_combine(AT, [cols[j][p] for j in range(4)]) for p in range(2)]
    y = jnp.stack([jnp.stack([y[p][q] for q in range(2)], 3) for p in range(2)], 2)
    return y.reshape(n, h, w, -1)


def _timed(fns, args):
    times = {name: [] for name in fns}
    for name, fn in fns.items():
        fn(*args[name]).block_until_ready()
    for r in range(ROUNDS):
        order = list(fns.items()) if r % 2 == 0 else list(reversed(fns.items()))
        for name, fn in order:
            t0 = time.perf_counter()
            fn(*args[name]).block_until_ready()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    rng = np.random.default_rng(0)
    print("formulations (GFLOP/s):")
    for n, h, c in SHAPES:
        x = jnp.asarray(rng.standard_normal((n, h, h, c), np.float32))
        k = jnp.asarray(rng.standard_normal((3, 3, c, c), np.float32) * 0.05)
        fns = {"xla": xla_conv, "im2col": im2col, "shifted": shifted}
        if h % 2 == 0:
            fns["winograd"] = winograd
        fns = {name: jax.jit(fn) for name, fn in fns.items()}
        ref = np.asarray(fns["xla"](x, k))
        for name, fn in fns.items():
            dev = np.max(np.abs(np.asarray(fn(x, k)) - ref)) / np.max(np.abs(ref))
            assert dev <= 1e-5, (name, dev)
        flops = 2 * n * h * h * c * c * 9
        med = _timed(fns, {name: (x, k) for name in fns})
        print(f"  {h}x{h}x{c}:", "  ".join(f"{m} {flops / t / 1e9:.0f}" for m, t in med.items()))
    print("XLA's convolution by layout (GFLOP/s):")
    for n, h, c in SHAPES[:3]:
        x = rng.standard_normal((n, h, h, c), np.float32)
        k = rng.standard_normal((3, 3, c, c), np.float32) * 0.05
        xc, kc = x.transpose(0, 3, 1, 2).copy(), k.transpose(3, 2, 0, 1).copy()
        layouts = {
            "NHWC/HWIO": (x, k, ("NHWC", "HWIO", "NHWC")),
            "NCHW/OIHW": (xc, kc, ("NCHW", "OIHW", "NCHW")),
            "NHWC/OHWI": (x, k.transpose(3, 0, 1, 2).copy(), ("NHWC", "OHWI", "NHWC")),
            "NCHW/HWIO": (xc, k, ("NCHW", "HWIO", "NCHW")),
        }
        fns = {
            name: jax.jit(lambda a, b, dn=dn: lax.conv_general_dilated(
                a, b, (1, 1), "SAME", dimension_numbers=dn))
            for name, (_, _, dn) in layouts.items()
        }
        args = {name: (jnp.asarray(a), jnp.asarray(b)) for name, (a, b, _) in layouts.items()}
        flops = 2 * n * h * h * c * c * 9
        med = _timed(fns, args)
        print(f"  {h}x{h}x{c}:", "  ".join(f"{m} {flops / t / 1e9:.0f}" for m, t in med.items()))


if __name__ == "__main__":
    main()
