"""RegNet's grouped 3x3 convolutions on torch/CPU: oneDNN's grouped
convolution on NCHW and on channels_last memory against an unfold +
batched-matmul (im2col) formulation; medians of 9 calls in ms, no autograd.
Results: benchmarks/README.md, "RegNet and ResNet-RS on a quiet machine;
grouped convolutions".

    .nox/torch/bin/python benchmarks/grouped_conv_torch.py
"""

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

# (label, batch, H = W, channels, channels per group, stride)
SHAPES = [("x002 s1", 16, 56, 24, 8, 1), ("x002 s2", 16, 28, 56, 8, 1),
          ("x002 s3", 16, 14, 152, 8, 1), ("x002 s4", 16, 7, 368, 8, 1),
          ("y016 s3", 16, 14, 336, 24, 1), ("x032 s4", 16, 7, 1008, 48, 1),
          ("x002 s4 b1", 1, 7, 368, 8, 1), ("y016 s2 b1", 1, 28, 120, 24, 1)]


def native(x, w, groups, stride):
    return F.conv2d(x, w, stride=stride, padding=1, groups=groups)


def im2col(x, w, groups, stride):
    n, c, h, _ = x.shape
    filters = w.shape[0]
    cols = F.unfold(x, 3, padding=1, stride=stride)  # n, c*9, L (channel-major)
    cols = cols.view(n, groups, c // groups * 9, cols.shape[-1])
    y = torch.matmul(w.view(groups, filters // groups, -1).unsqueeze(0), cols)
    return y.reshape(n, filters, (h - 1) // stride + 1, -1)


def bench(f, *args, rounds=9):
    f(*args)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main():
    torch.set_grad_enabled(False)
    rng = np.random.default_rng(0)
    print(torch.__version__, "threads", torch.get_num_threads())
    for label, n, hw, c, per_group, stride in SHAPES:
        groups = c // per_group
        x = torch.from_numpy(rng.standard_normal((n, c, hw, hw), np.float32))
        w = torch.from_numpy(rng.standard_normal((c, per_group, 3, 3), np.float32) * 0.1)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        w_cl = w.contiguous(memory_format=torch.channels_last)
        ref = native(x, w, groups, stride)
        err = float((im2col(x, w, groups, stride) - ref).abs().max() / ref.abs().max())
        times = {"nchw": bench(native, x, w, groups, stride),
                 "channels_last": bench(native, x_cl, w_cl, groups, stride),
                 "im2col": bench(im2col, x, w, groups, stride)}
        print(f"{label:12s} groups={groups:3d} "
              + "  ".join(f"{k} {v:7.2f} ms" for k, v in times.items())
              + f"  (im2col err {err:.1e})", flush=True)


if __name__ == "__main__":
    main()
