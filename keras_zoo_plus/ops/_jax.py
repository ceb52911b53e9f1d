"""JAX kernels: shifted multiply-adds on CPU (see the selection table of
:mod:`keras_zoo_plus.ops`).

Hooks: ``IMPLEMENTATIONS``, ``select_implementation``, ``max_pool2d``, ``conv2d``,
``depthwise_conv2d``; the rest is :mod:`keras_zoo_plus.ops._portable`.
"""

from __future__ import annotations

import keras

from keras_zoo_plus.ops import _common

IMPLEMENTATIONS = ("shifted",)


def _device_kind(x=None):
    """The platform jit places ``x`` on: traced values carry no device."""
    import jax

    return jax.default_backend()


def select_implementation(x=None, data_format=None, op=None):
    """``"shifted"`` on CPU under tracing (``jit``: ``predict``, ``fit``,
    jitted functions), and for :func:`~keras_zoo_plus.ops.conv2d` eagerly
    too (a 1x1 convolution is one op either way); ``"native"`` otherwise:
    eagerly one dispatch of the native op beats kh*kw small ones.

    ``"native"`` inside ``export_scope`` too (:func:`keras_zoo_plus.export`):
    jax2onnx converts every slice of the shifted form into ONNX nodes
    (kh*kw per depthwise convolution, one convolution per group): NASNetMobile
    at 32 px had not finished exporting after 16 minutes, Xception took 66 s;
    the native ops become one ONNX Conv each (with a group attribute).

    :func:`~keras_zoo_plus.ops.max_pool2d` is the other way round:
    ``"shifted"`` inside ``export_scope`` only (see :func:`max_pool2d`),
    XLA's reduce_window everywhere else."""
    if op == "max_pool2d":
        return "shifted" if _common.in_export_scope() else "native"
    if _device_kind(x) != "cpu" or _common.in_export_scope():
        return "native"
    import jax

    if op == "conv2d":
        return "shifted"
    traced = x is None or isinstance(x, jax.core.Tracer)
    return "shifted" if traced else "native"


def conv2d(x, kernel, *, strides, padding, data_format, dilation_rate, implementation):
    """1x1 kernels as one matrix product; a grouped convolution with a larger
    kernel and several input channels per group (RegNet's 3x3) as one
    convolution per group, concatenated (:func:`_grouped_split`); other
    kernels decline (XLA's convolution beat shifted and im2col dots there)."""
    channels = x.shape[1 if data_format == "channels_first" else 3]
    if tuple(kernel.shape[:2]) != (1, 1):
        if kernel.shape[2] != channels and kernel.shape[2] > 1:
            return _grouped_split(x, kernel, strides, padding, data_format, dilation_rate)
        return NotImplemented
    return _pointwise_dot(x, kernel, strides, data_format)


def _grouped_split(x, kernel, strides, padding, data_format, dilation_rate):
    """A grouped convolution as one ungrouped ``keras.ops.conv`` per group on
    that group's channels, outputs concatenated in group order: what
    ``feature_group_count`` computes, with the same padding rules. XLA's CPU
    grouped convolution was 2-7.5x slower than the split (JAX 0.10.2,
    RegNet's 3x3 shapes, batch 16: 56x56x24 in 3 groups 61.8 vs 8.2 ms,
    14x14x336 in 14 groups 63.4 vs 9.9 ms, 7x7x1008 in 21 groups 33.5 vs
    10.9 ms; benchmarks/grouped_conv_jax.py, benchmarks/README.md "RegNet
    and ResNet-RS on a quiet machine; grouped convolutions"); a
    block-diagonal dense kernel and a vmap over the groups were no faster
    than XLA's op."""
    import jax.numpy as jnp
    from jax import lax

    axis = 1 if data_format == "channels_first" else 3
    per_group = kernel.shape[2]
    groups = x.shape[axis] // per_group
    filters = kernel.shape[3] // groups
    kernel = jnp.asarray(keras.ops.convert_to_tensor(kernel), dtype=x.dtype)
    outputs = [
        keras.ops.conv(
            lax.slice_in_dim(x, g * per_group, (g + 1) * per_group, axis=axis),
            lax.slice_in_dim(kernel, g * filters, (g + 1) * filters, axis=3),
            strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate)
        for g in range(groups)
    ]
    return jnp.concatenate(outputs, axis=axis)


def depthwise_conv2d(x, kernel, *, strides, padding, data_format, dilation_rate, implementation):
    return _depthwise_shifted(x, kernel, strides, padding, data_format, dilation_rate)


def _pointwise_dot(x, kernel, strides, data_format):
    """1x1 convolution as one matrix product. With a 1x1 kernel "same" and
    "valid" padding agree (no padding) and dilation has no effect; strides
    pick every ``s``-th row/column (``ceil(size / s)`` of them) first."""
    import jax.numpy as jnp

    x = jnp.asarray(x)
    kernel = jnp.asarray(keras.ops.convert_to_tensor(kernel), dtype=x.dtype)
    # Sums in at least float32, as XLA's convolution accumulates, so a
    # 16-bit input (mixed precision) rounds once, at the end.
    acc = jnp.promote_types(x.dtype, jnp.float32)
    channels, filters = kernel.shape[2], kernel.shape[3]
    if kernel.shape[2] != x.shape[1 if data_format == "channels_first" else 3]:
        # Grouped 1x1 convolution: not a single product; keep Keras' op.
        return keras.ops.conv(x, kernel, strides=strides, data_format=data_format)
    weight = kernel.reshape(channels, filters)
    sh, sw = strides
    if data_format == "channels_first":
        x = x[:, :, ::sh, ::sw]
        n, _, h, w = x.shape
        y = jnp.matmul(weight.T, x.reshape(n, channels, h * w), preferred_element_type=acc)
        return y.reshape(n, filters, h, w).astype(x.dtype)
    x = x[:, ::sh, ::sw, :]
    n, h, w, _ = x.shape
    y = jnp.dot(x.reshape(n * h * w, channels), weight, preferred_element_type=acc)
    return y.reshape(n, h, w, filters).astype(x.dtype)


def _depthwise_shifted(x, kernel, strides, padding, data_format, dilation_rate):
    import jax.numpy as jnp
    from jax import lax

    x = jnp.asarray(x)
    dtype = x.dtype
    kernel = jnp.asarray(keras.ops.convert_to_tensor(kernel), dtype=dtype)
    # Products and sums in at least float32, rounded to a 16-bit input's
    # dtype once at the end (mixed precision), as XLA's convolution
    # accumulates: summed in bfloat16, MobileNetV2's logits under
    # mixed_bfloat16 were 2.7e-2 (rel) off the float32 oracle's.
    acc = jnp.promote_types(dtype, jnp.float32)
    kh, kw, channels, multiplier = kernel.shape
    first = data_format == "channels_first"
    h_axis, w_axis = (2, 3) if first else (1, 2)
    size_h, size_w = x.shape[h_axis], x.shape[w_axis]
    (sh, sw), (dh, dw) = strides, dilation_rate
    out_h = _common.output_size(size_h, kh, sh, dh, padding)
    out_w = _common.output_size(size_w, kw, sw, dw, padding)
    if padding == "same":
        pads = [(0, 0)] * 4
        pads[h_axis] = _common.same_padding(size_h, kh, sh, dh)
        pads[w_axis] = _common.same_padding(size_w, kw, sw, dw)
        x = jnp.pad(x, pads)
    if multiplier == 1:
        taps = kernel.reshape(kh, kw, channels)
    else:
        # Broadcast each input channel against its `multiplier` taps; the
        # (C, M) pair flattens to output channel c * M + m, Keras' order.
        taps = kernel
        x = x[:, :, None] if first else x[..., None]
        if first:
            h_axis, w_axis = 3, 4
    if first:
        taps = taps[..., None, None]
    start = [0] * x.ndim
    step = [1] * x.ndim
    step[h_axis], step[w_axis] = sh, sw
    out = None
    for i in range(kh):
        for j in range(kw):
            start[h_axis], start[w_axis] = i * dh, j * dw
            limit = list(x.shape)
            limit[h_axis] = start[h_axis] + (out_h - 1) * sh + 1
            limit[w_axis] = start[w_axis] + (out_w - 1) * sw + 1
            term = (lax.slice(x, tuple(start), tuple(limit), tuple(step)).astype(acc)
                    * taps[i, j].astype(acc))
            out = term if out is None else out + term
    if multiplier > 1:
        shape = list(out.shape)
        if first:
            out = out.reshape(shape[:1] + [channels * multiplier] + shape[3:])
        else:
            out = out.reshape(shape[:3] + [channels * multiplier])
    return out.astype(dtype)


def max_pool2d(x, *, pool_size, strides, padding, data_format, implementation):
    """The maximum of the pool's kh*kw strided slices of the input padded
    by -inf: the same values as ``lax.reduce_window``. jax2onnx 0.17 turns
    reduce_window into an ONNX MaxPool that onnxruntime refuses
    ("Unsupported pooling size": ResNet50, VGG16, DenseNet121), and the
    slices into Slice and Max nodes it runs; selected inside
    ``export_scope`` only (reduce_window is XLA's own pooling)."""
    import jax.numpy as jnp
    from jax import lax

    x = jnp.asarray(x)
    h_axis, w_axis = (2, 3) if data_format == "channels_first" else (1, 2)
    (kh, kw), (sh, sw) = pool_size, strides
    if padding == "same":
        pads = [(0, 0)] * 4
        pads[h_axis] = _common.same_padding(x.shape[h_axis], kh, sh, 1)
        pads[w_axis] = _common.same_padding(x.shape[w_axis], kw, sw, 1)
        x = jnp.pad(x, pads, constant_values=-jnp.inf)
    out_h = _common.output_size(x.shape[h_axis], kh, sh, 1, "valid")
    out_w = _common.output_size(x.shape[w_axis], kw, sw, 1, "valid")
    start, step = [0] * 4, [1] * 4
    step[h_axis], step[w_axis] = sh, sw
    out = None
    for i in range(kh):
        for j in range(kw):
            start[h_axis], start[w_axis] = i, j
            limit = list(x.shape)
            limit[h_axis] = i + (out_h - 1) * sh + 1
            limit[w_axis] = j + (out_w - 1) * sw + 1
            tap = lax.slice(x, tuple(start), tuple(limit), tuple(step))
            out = tap if out is None else jnp.maximum(out, tap)
    return out
