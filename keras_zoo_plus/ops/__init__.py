"""Backend-aware kernels behind keras.ops-shaped functions.

Backend-specific code lives here only, behind one function with a portable
fallback (``keras.ops``), chosen by measurement and covered by parity tests
(value and gradient) on every backend.

Selection rule for :func:`depthwise_conv2d` (``implementation="auto"``),
measured on a 2-core AMD EPYC CPU with a (16, 112, 112, 64) input and a 3x3
kernel (see ``benchmarks/README.md``):

========== ======== ===================================================
backend    device   formulation
========== ======== ===================================================
jax        cpu      ``"shifted"`` under tracing (``jit``: ``predict``,
                    ``fit``, jitted functions): kh*kw strided slices of
                    the padded input, each scaled by one kernel tap and
                    summed. XLA fuses them into one loop; its grouped
                    convolution on CPU is 5-10x slower, forward and
                    backward. On concrete arrays (eager calls,
                    ``model(x)``) each of those ops is a separate dispatch,
                    so ``"native"`` is used there (eager NASNetMobile at
                    224: ~4x faster with native).
torch      cpu      ``"channels_last"``: ``torch.nn.functional.conv2d``
                    with ``groups=C`` on a channels_last-strided tensor
                    (for ``channels_last`` data the NHWC buffer is reused
                    as is, no copy). Keras copies the input to NCHW and
                    back, and torch's NCHW depthwise kernel is ~3x slower.
tensorflow any      ``"native"``: ``tf.nn.depthwise_conv2d`` is already
                    fast.
any        non-CPU  ``"native"``: cuDNN/XLA GPU depthwise kernels are the
                    best known formulation there; we do not second-guess
                    them without a measurement.
========== ======== ===================================================

``"native"`` is ``keras.ops.depthwise_conv`` itself and is always
available.

On TensorFlow with only CPU devices, :func:`conv2d` (and so
:func:`separable_conv2d` and :func:`conv_batchnorm`) given ``"auto"`` runs
``channels_first`` data as ``"channels_last"``: the NHWC convolution
between two transposes. TensorFlow's CPU ``Conv2D`` kernel accepts NCHW
only when TensorFlow runs with oneDNN, which it enables by default only on
CPUs with AVX-512 features (or with ``TF_ENABLE_ONEDNN_OPTS=1``);
elsewhere ``keras.ops.conv`` in channels_first fails with "The Conv2D op
currently only supports the NHWC tensor format on the CPU", and so does
every keras.applications model built channels_first. Keras already
transposes its depthwise convolution there.

The same names select the other kernels here: :func:`conv2d` runs 1x1
kernels as one matrix product on JAX/CPU (``"shifted"``, eagerly too) and
on channels_last strides on torch/CPU; :func:`batch_normalization` makes
one pass instead of three on torch/CPU; :func:`conv_batchnorm` runs
Convolution -> BatchNormalization -> ReLU as one oneDNN convolution on
torch/CPU without autograd (the inference path of
:mod:`keras_zoo_plus.fusion`, gated by :func:`fused_inference_active`).
Measured figures are in each function's docstring and in
``benchmarks/README.md``.
"""

from __future__ import annotations

import functools

import keras

from keras_zoo_plus.imagenet import resolve_data_format

IMPLEMENTATIONS = ("auto", "native", "shifted", "channels_last")


def _pair(value, name):
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"`{name}` must be an int or a pair of ints; received {value!r}.")
    return value


def same_padding(size, kernel, stride, dilation):
    """``(before, after)`` padding of Keras' ``padding="same"`` for one axis.

    The output has ``ceil(size / stride)`` positions; any odd total padding
    puts the extra pixel after (bottom/right), as TensorFlow, JAX and Keras'
    torch backend all do.
    """
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _output_size(size, kernel, stride, dilation, padding):
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return -(-size // stride)
    return (size - effective) // stride + 1


def _device_kind(x):
    """``"cpu"``, ``"meta"`` (symbolic build), or the accelerator's name."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        # Traced values carry no device; jit places them on the default one.
        return jax.default_backend()
    if backend == "torch":
        device = getattr(x, "device", None)
        if device is None:
            from keras.src.backend.torch.core import get_device

            return str(get_device()).split(":")[0]
        # NumPy 2 arrays carry ``device == "cpu"`` (a string).
        return getattr(device, "type", None) or str(device).split(":")[0]
    return "any"


def select_implementation(x=None, data_format=None):
    """The formulation ``implementation="auto"`` picks for ``x`` (see the
    module docstring): ``"shifted"``, ``"channels_last"`` or ``"native"``.

    Args:
        x: The input tensor (its device decides on torch); ``None`` uses the
            backend's default device.
        data_format: The layout of ``x`` when a convolution asks: on a
            CPU-only TensorFlow, ``"channels_first"`` convolutions run as
            ``"channels_last"`` (NHWC between two transposes). ``None``
            (normalisation and every non-convolution caller) never asks.

    Returns:
        str: one of ``"native"``, ``"shifted"``, ``"channels_last"``.
    """
    backend = keras.backend.backend()
    device = _device_kind(x)
    if backend == "jax" and device == "cpu":
        import jax

        # Eager: one dispatch of the native op beats kh*kw small ones.
        traced = x is None or isinstance(x, jax.core.Tracer)
        return "shifted" if traced else "native"
    if backend == "torch" and device in ("cpu", "meta"):
        return "channels_last"
    if backend == "tensorflow" and data_format == "channels_first" and _tf_cpu_only():
        # Without oneDNN the CPU Conv2D kernel refuses NCHW; with it, NHWC
        # plus transposes measured 115 vs 150 ms on four 56x56x64 3x3
        # convolutions, batch 16 (module docstring).
        return "channels_last"
    return "native"


@functools.cache
def _tf_cpu_only():
    """Whether TensorFlow sees CPU devices only (fixed once it starts)."""
    import tensorflow as tf

    return all(d.device_type == "CPU" for d in tf.config.list_logical_devices())


def fused_inference_supported():
    """Whether the current backend has a fused inference path at all
    (:func:`fused_inference_active` can be true): torch. TensorFlow's
    grappler and XLA already fuse Convolution -> BatchNorm -> ReLU in their
    compiled graphs."""
    return keras.backend.backend() == "torch"


def fused_inference_active(x):
    """Whether :func:`keras_zoo_plus.fusion.enable_fused_inference`'s
    fused path runs for input ``x``: torch on CPU, float32, autograd off
    (``predict``, ``predict_on_batch``, ``evaluate`` and calls under
    ``torch.no_grad()``). Elsewhere the model runs its layers one by one:
    TensorFlow's graphs and XLA fuse on their own, and with autograd on
    the unfused layers keep Keras' exact gradients.

    Args:
        x: The model's (first) input tensor.

    Returns:
        bool.
    """
    # Not on "meta" tensors (Keras' symbolic shape inference): the layers'
    # own calls infer the shapes there.
    if keras.backend.backend() != "torch" or _device_kind(x) != "cpu":
        return False
    import torch

    if torch.is_grad_enabled():
        return False
    dtype = getattr(x, "dtype", None)
    return dtype in (None, torch.float32) or str(dtype) in ("float32",)


def _check_implementation(implementation):
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}; received {implementation!r}."
        )
    backend = keras.backend.backend()
    if implementation == "shifted" and backend != "jax":
        raise ValueError(
            f"`implementation='shifted'` needs the jax backend; the backend is {backend!r}."
        )
    if implementation == "channels_last" and backend not in ("torch", "tensorflow"):
        raise ValueError(
            "`implementation='channels_last'` needs the torch or tensorflow backend; "
            f"the backend is {backend!r}."
        )


def _tf_nhwc(op, x, data_format):
    """``op(x, "channels_last")`` for ``x`` in ``data_format``, returned in
    that format (transposed in and out for channels_first)."""
    if data_format == "channels_last":
        return op(x, data_format)
    y = op(keras.ops.transpose(x, (0, 2, 3, 1)), "channels_last")
    return keras.ops.transpose(y, (0, 3, 1, 2))


def depthwise_conv2d(
    x,
    kernel,
    strides=1,
    padding="valid",
    data_format=None,
    dilation_rate=1,
    implementation="auto",
):
    """Depthwise 2D convolution; same contract as ``keras.ops.depthwise_conv``.

    Output channel ``c * depth_multiplier + m`` is input channel ``c``
    convolved with ``kernel[:, :, c, m]``.

    Args:
        x: 4D input, ``(N, H, W, C)`` or ``(N, C, H, W)`` per ``data_format``.
        kernel: ``(kh, kw, C, depth_multiplier)``.
        strides: int or pair.
        padding: ``"valid"`` or ``"same"`` (Keras semantics: extra pixel of
            an odd total padding goes after).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``
            (the Keras default).
        dilation_rate: int or pair. Keras (and TensorFlow) refuse strides
            and dilation both > 1; so do we.
        implementation: ``"auto"`` (the measured rule of the module
            docstring), ``"native"`` (``keras.ops.depthwise_conv``), or a
            backend's fast path by name (``"shifted"`` for jax,
            ``"channels_last"`` for torch, and for tensorflow, where it
            is the native op on NHWC data between two transposes).

    Returns:
        The convolved tensor in ``data_format``.

    Raises:
        ValueError: for an unknown ``padding``, ``data_format`` or
            ``implementation``, or a fast path requested on another backend.

    Example:
        >>> y = depthwise_conv2d(x, kernel, strides=2, padding="same")
    """
    data_format = resolve_data_format(data_format)
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'; received {padding!r}.")
    _check_implementation(implementation)
    strides = _pair(strides, "strides")
    dilation_rate = _pair(dilation_rate, "dilation_rate")
    if implementation == "auto":
        implementation = select_implementation(x, data_format)
    if max(strides) > 1 and max(dilation_rate) > 1:
        # Keep the native op's error for this unsupported combination.
        implementation = "native"
    if implementation == "shifted":
        return _depthwise_shifted(x, kernel, strides, padding, data_format, dilation_rate)
    if implementation == "channels_last" and keras.backend.backend() == "torch":
        return _depthwise_torch(x, kernel, strides, padding, data_format, dilation_rate)

    def native(x, data_format):
        return keras.ops.depthwise_conv(
            x, kernel, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate,
        )

    if implementation == "channels_last":  # tensorflow
        return _tf_nhwc(native, x, data_format)
    return native(x, data_format)


def separable_conv2d(
    x,
    depthwise_kernel,
    pointwise_kernel,
    strides=1,
    padding="valid",
    data_format=None,
    dilation_rate=1,
    implementation="auto",
):
    """Depthwise then 1x1 pointwise convolution; same contract as
    ``keras.ops.separable_conv``.

    Args:
        x: 4D input in ``data_format``.
        depthwise_kernel: ``(kh, kw, C, depth_multiplier)``.
        pointwise_kernel: ``(1, 1, C * depth_multiplier, filters)``.
        strides, padding, data_format, dilation_rate, implementation: as for
            :func:`depthwise_conv2d` (they apply to the depthwise step).

    Returns:
        The ``filters``-channel output in ``data_format``.

    Raises:
        ValueError: as for :func:`depthwise_conv2d`.

    Example:
        >>> y = separable_conv2d(x, dw, pw, padding="same")
    """
    data_format = resolve_data_format(data_format)
    _check_implementation(implementation)
    # "auto" goes down as is: each step picks for itself (on TensorFlow/CPU
    # the pointwise step of channels_first data runs NHWC, see conv2d).
    y = depthwise_conv2d(
        x,
        depthwise_kernel,
        strides=strides,
        padding=padding,
        data_format=data_format,
        dilation_rate=dilation_rate,
        implementation=implementation,
    )
    return conv2d(y, pointwise_kernel, data_format=data_format, implementation=implementation)


def conv2d(
    x,
    kernel,
    strides=1,
    padding="valid",
    data_format=None,
    dilation_rate=1,
    implementation="auto",
):
    """2D convolution; same contract as ``keras.ops.conv`` for 4D inputs.

    On torch/CPU (``implementation="channels_last"``) the convolution runs
    on a channels_last-strided view: for ``channels_last`` data Keras copies
    the input to NCHW and back to channels_last memory around every
    convolution, which costs about as much as a 1x1 convolution itself.

    On JAX/CPU (``implementation="shifted"``, chosen by ``"auto"`` there
    eagerly and under ``jit``) a 1x1 kernel is one matrix product over the
    (strided) input, the one-tap case of the shifted formulation: XLA's CPU
    convolution took 1.4-2x longer than its dot for MobileNet's pointwise
    shapes (16x56x56x128 -> 128: 48.9 vs 23.9 ms). Larger kernels stay
    ``keras.ops.conv``: nine shifted dots or an im2col dot were slower than
    XLA's 3x3 convolution (56x56x64: 85 vs 181 / 236 ms).

    TensorFlow and accelerators use ``keras.ops.conv``, except
    ``channels_first`` data on a CPU-only TensorFlow, which ``"auto"`` runs
    as ``"channels_last"`` (NHWC between two transposes; see the module
    docstring: TensorFlow's CPU kernel refuses NCHW without oneDNN).

    Args:
        x: 4D input in ``data_format``.
        kernel: ``(kh, kw, C_in / groups, C_out)``.
        strides, padding, data_format, dilation_rate, implementation: as for
            :func:`depthwise_conv2d`.

    Returns:
        The convolved tensor in ``data_format``.

    Raises:
        ValueError: as for :func:`depthwise_conv2d`.

    Example:
        >>> y = conv2d(x, kernel, strides=2, padding="same")
    """
    data_format = resolve_data_format(data_format)
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'; received {padding!r}.")
    _check_implementation(implementation)
    strides = _pair(strides, "strides")
    dilation_rate = _pair(dilation_rate, "dilation_rate")
    if implementation == "auto":
        implementation = select_implementation(x, data_format)
        if implementation == "native" and _jax_cpu(x):
            implementation = "shifted"  # eagerly too: a 1x1 conv is one op either way
    torch = keras.backend.backend() == "torch"
    if (
        implementation == "channels_last" and torch
        and not (max(strides) > 1 and max(dilation_rate) > 1)
    ):
        return _conv_torch(x, kernel, strides, padding, data_format, dilation_rate)
    if implementation == "shifted" and tuple(kernel.shape[:2]) == (1, 1):
        return _pointwise_dot(x, kernel, strides, data_format)

    def native(x, data_format):
        return keras.ops.conv(
            x, kernel, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate,
        )

    if implementation == "channels_last" and not torch:  # tensorflow
        return _tf_nhwc(native, x, data_format)
    return native(x, data_format)


def batch_normalization(
    x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3, implementation="auto"
):
    """Normalise ``x`` with given statistics; same contract as
    ``keras.ops.batch_normalization``.

    On torch/CPU (``implementation="channels_last"``, the ``"auto"`` choice
    there) the affine map is folded into one per-channel multiplier
    ``a = scale / sqrt(variance + epsilon)`` and offset
    ``b = offset - mean * a`` and applied in one pass, ``torch.addcmul(b, x,
    a)``; Keras' torch backend makes three passes over ``x`` (subtract,
    multiply, add), which took a third of MobileNet's inference time there.
    The folded form is the one TensorFlow's ``tf.nn.batch_normalization``
    computes, and it is differentiable in every argument. Every other
    backend/device uses ``keras.ops.batch_normalization`` (XLA and
    TensorFlow's graphs fuse it already).

    Args:
        x: Input tensor.
        mean, variance: 1D statistics of length ``x.shape[axis]``.
        axis: The channel axis of ``x`` (negative counts from the end).
        offset, scale: Optional 1D ``beta`` and ``gamma``.
        epsilon: Added to ``variance``.
        implementation: ``"auto"``, ``"native"`` or ``"channels_last"``
            (torch only; the name is shared with the convolutions).

    Returns:
        The normalised tensor, shaped and laid out as ``x``.

    Raises:
        ValueError: for an unknown ``implementation`` or a fast path
            requested on another backend.

    Example:
        >>> y = batch_normalization(x, mean, var, axis=-1, offset=beta, scale=gamma)
    """
    _check_implementation(implementation)
    if implementation == "shifted":
        implementation = "native"  # the jax convolution path; nothing to do here
    if implementation == "auto":
        implementation = select_implementation(x)
    if implementation != "channels_last" or keras.backend.backend() != "torch":
        return keras.ops.batch_normalization(
            x, mean, variance, axis, offset=offset, scale=scale, epsilon=epsilon
        )
    import torch

    x = keras.ops.convert_to_tensor(x)
    multiplier, shift = _fold_batchnorm_torch(mean, variance, offset, scale, epsilon)
    axis = axis % x.ndim
    if axis != x.ndim - 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        multiplier = multiplier.reshape(shape)
        shift = shift.reshape(shape)
    return torch.addcmul(shift.to(x.dtype), x, multiplier.to(x.dtype))


def conv_batchnorm(
    x,
    kernel,
    *,
    mean,
    variance,
    offset=None,
    scale=None,
    epsilon=1e-3,
    bias=None,
    pointwise_kernel=None,
    kind="conv",
    max_value=None,
    strides=1,
    padding="valid",
    data_format=None,
    dilation_rate=1,
    implementation="auto",
):
    """``relu(batch_normalization(conv(x) + bias), max_value)`` as one
    convolution where the backend allows it: the inference-time chain
    Convolution -> BatchNormalization (moving statistics) -> ReLU/ReLU6 of
    MobileNet, ResNet, Xception, Inception, DenseNet and NASNet.

    On torch/CPU (``"channels_last"``, the ``"auto"`` choice there) the
    normalisation is folded into the kernel and bias (``kernel * a``,
    ``bias * a + b`` with ``a = scale / sqrt(variance + epsilon)``,
    ``b = offset - mean * a``) and, without autograd, the convolution,
    bias and clamp run as one oneDNN primitive
    (``torch.ops.mkldnn._convolution_pointwise``), as TensorFlow's
    grappler does for its graphs; with autograd enabled ``F.conv2d`` plus
    a clamp keeps gradients. On MobileNet (batch 16, 224) this took torch
    inference from 1.5x to over 3x keras.applications (``benchmarks/``).
    Everywhere else it is the unfused chain of :func:`conv2d` /
    :func:`depthwise_conv2d` / :func:`separable_conv2d`, bias,
    :func:`batch_normalization` and ``keras.ops.relu``/``relu6``.

    Args:
        x: 4D input in ``data_format``.
        kernel: The convolution's kernel: ``(kh, kw, C_in / groups,
            C_out)`` for ``kind="conv"``, the depthwise kernel
            ``(kh, kw, C, M)`` for ``"depthwise"`` and ``"separable"``.
        mean, variance, offset, scale, epsilon: the BatchNormalization's
            moving statistics, ``beta``, ``gamma`` and epsilon (1D, one
            value per output channel).
        bias: Optional convolution bias (per output channel).
        pointwise_kernel: ``(1, 1, C * M, C_out)`` for ``"separable"``.
        kind: ``"conv"``, ``"depthwise"`` or ``"separable"``.
        max_value: ``None`` for no activation, ``float("inf")`` for ReLU,
            a positive number for ReLU capped there (6 for ReLU6).
        strides, padding, data_format, dilation_rate, implementation: as
            for :func:`conv2d`.

    Returns:
        The activated, normalised convolution in ``data_format``.

    Raises:
        ValueError: for an unknown ``kind``, a ``"separable"`` call without
            ``pointwise_kernel``, a non-positive ``max_value``, or as for
            :func:`conv2d`.

    Example:
        >>> y = conv_batchnorm(x, k, mean=m, variance=v, offset=b, scale=g,
        ...                    epsilon=1e-3, max_value=6.0, padding="same")
    """
    if kind not in ("conv", "depthwise", "separable"):
        raise ValueError(
            f"`kind` must be 'conv', 'depthwise' or 'separable'; received {kind!r}."
        )
    if kind == "separable" and pointwise_kernel is None:
        raise ValueError("`pointwise_kernel` is required when kind='separable'.")
    if max_value is not None and not max_value > 0:
        raise ValueError(f"`max_value` must be None or > 0; received {max_value!r}.")
    data_format = resolve_data_format(data_format)
    padding = str(padding).lower()
    _check_implementation(implementation)
    strides = _pair(strides, "strides")
    dilation_rate = _pair(dilation_rate, "dilation_rate")
    conv_args = dict(
        strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation_rate
    )
    chosen = select_implementation(x) if implementation == "auto" else implementation
    if keras.backend.backend() == "torch" and chosen == "channels_last":
        if not (max(strides) > 1 and max(dilation_rate) > 1):
            return _conv_batchnorm_torch(
                x, kernel, pointwise_kernel, kind, bias, (mean, variance, offset, scale, epsilon),
                max_value, **conv_args,
            )
        implementation = "native"
    if kind == "conv":
        y = conv2d(x, kernel, implementation=implementation, **conv_args)
    elif kind == "depthwise":
        y = depthwise_conv2d(x, kernel, implementation=implementation, **conv_args)
    else:
        y = separable_conv2d(x, kernel, pointwise_kernel, implementation=implementation, **conv_args)
    axis = 1 if data_format == "channels_first" else -1
    if bias is not None:
        # Bias first: Keras' TensorFlow ``add(y, bias)`` may turn into an
        # NHWC ``bias_add`` on channels_first data (see layers.py).
        shape = (1, -1, 1, 1) if axis == 1 else (-1,)
        y = keras.ops.add(keras.ops.reshape(keras.ops.convert_to_tensor(bias), shape), y)
    y = batch_normalization(
        y, mean, variance, axis, offset=offset, scale=scale, epsilon=epsilon,
        implementation=implementation,
    )
    if max_value is None:
        return y
    if max_value == float("inf"):
        return keras.ops.relu(y)
    return keras.ops.clip(y, 0.0, max_value)


# --- jax: shifted multiply-adds -------------------------------------------


def _jax_cpu(x):
    return keras.backend.backend() == "jax" and _device_kind(x) == "cpu"


def _pointwise_dot(x, kernel, strides, data_format):
    """1x1 convolution as one matrix product. With a 1x1 kernel "same" and
    "valid" padding agree (no padding) and dilation has no effect; strides
    pick every ``s``-th row/column (``ceil(size / s)`` of them) first."""
    import jax.numpy as jnp

    x = jnp.asarray(x)
    kernel = jnp.asarray(keras.ops.convert_to_tensor(kernel), dtype=x.dtype)
    channels, filters = kernel.shape[2], kernel.shape[3]
    if kernel.shape[2] != x.shape[1 if data_format == "channels_first" else 3]:
        # Grouped 1x1 convolution: not a single product; keep Keras' op.
        return keras.ops.conv(x, kernel, strides=strides, data_format=data_format)
    weight = kernel.reshape(channels, filters)
    sh, sw = strides
    if data_format == "channels_first":
        x = x[:, :, ::sh, ::sw]
        n, _, h, w = x.shape
        y = jnp.matmul(weight.T, x.reshape(n, channels, h * w))
        return y.reshape(n, filters, h, w)
    x = x[:, ::sh, ::sw, :]
    n, h, w, _ = x.shape
    return jnp.dot(x.reshape(n * h * w, channels), weight).reshape(n, h, w, filters)


def _depthwise_shifted(x, kernel, strides, padding, data_format, dilation_rate):
    import jax.numpy as jnp
    from jax import lax

    x = jnp.asarray(x)
    kernel = jnp.asarray(keras.ops.convert_to_tensor(kernel), dtype=x.dtype)
    kh, kw, channels, multiplier = kernel.shape
    first = data_format == "channels_first"
    h_axis, w_axis = (2, 3) if first else (1, 2)
    size_h, size_w = x.shape[h_axis], x.shape[w_axis]
    (sh, sw), (dh, dw) = strides, dilation_rate
    out_h = _output_size(size_h, kh, sh, dh, padding)
    out_w = _output_size(size_w, kw, sw, dw, padding)
    if padding == "same":
        pads = [(0, 0)] * 4
        pads[h_axis] = same_padding(size_h, kh, sh, dh)
        pads[w_axis] = same_padding(size_w, kw, sw, dw)
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
            term = lax.slice(x, tuple(start), tuple(limit), tuple(step)) * taps[i, j]
            out = term if out is None else out + term
    if multiplier > 1:
        shape = list(out.shape)
        if first:
            out = out.reshape(shape[:1] + [channels * multiplier] + shape[3:])
        else:
            out = out.reshape(shape[:3] + [channels * multiplier])
    return out


# --- torch: native grouped conv on channels_last strides -------------------


def _to_torch_nchw(x, data_format):
    """A logical-NCHW view with channels_last strides, copying only when the
    input is not already laid out that way."""
    import torch

    x = keras.ops.convert_to_tensor(x)
    if data_format == "channels_last":
        # The permuted view of a contiguous NHWC tensor *is* channels_last.
        x = x.permute(0, 3, 1, 2)
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _from_torch_nchw(y, data_format):
    if data_format == "channels_last":
        return y.permute(0, 2, 3, 1)
    return y


def _torch_depthwise_weight(kernel):
    """(kh, kw, C, M) -> (C * M, 1, kh, kw): output c * M + m in Keras' order."""
    kh, kw, channels, multiplier = kernel.shape
    return kernel.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)


def _torch_conv_weight(kernel):
    """(kh, kw, Cin/g, Cout) -> (Cout, Cin/g, kh, kw)."""
    return kernel.permute(3, 2, 0, 1)


def _fold_batchnorm_torch(mean, variance, offset, scale, epsilon, dtype=None):
    """BatchNormalization as ``x * multiplier + shift``: ``multiplier =
    scale / sqrt(variance + epsilon)``, ``shift = offset - mean *
    multiplier`` (1D torch tensors, cast to ``dtype`` when given)."""
    import torch

    def tensor(value):
        value = keras.ops.convert_to_tensor(value)
        return value if dtype is None else value.to(dtype)

    multiplier = torch.rsqrt(tensor(variance) + epsilon)
    if scale is not None:
        multiplier = multiplier * tensor(scale)
    shift = -tensor(mean) * multiplier
    if offset is not None:
        shift = shift + tensor(offset)
    return multiplier, shift


def _depthwise_torch(x, kernel, strides, padding, data_format, dilation_rate):
    import torch.nn.functional as F

    x = _to_torch_nchw(x, data_format)
    kernel = keras.ops.convert_to_tensor(kernel).to(x.dtype)
    kh, kw, channels, _ = kernel.shape
    weight = _torch_depthwise_weight(kernel)
    x, torch_padding = _torch_padding(x, (kh, kw), strides, padding, dilation_rate)
    y = F.conv2d(
        x,
        weight,
        stride=strides,
        padding=torch_padding,
        dilation=dilation_rate,
        groups=channels,
    )
    return _from_torch_nchw(y, data_format)


def _conv_torch(x, kernel, strides, padding, data_format, dilation_rate):
    import torch.nn.functional as F

    x = _to_torch_nchw(x, data_format)
    kernel = keras.ops.convert_to_tensor(kernel).to(x.dtype)
    kh, kw, cin_per_group, _ = kernel.shape
    weight = _torch_conv_weight(kernel)
    x, torch_padding = _torch_padding(x, (kh, kw), strides, padding, dilation_rate)
    y = F.conv2d(
        x,
        weight,
        stride=strides,
        padding=torch_padding,
        dilation=dilation_rate,
        groups=x.shape[1] // cin_per_group,
    )
    return _from_torch_nchw(y, data_format)


def _conv_batchnorm_torch(
    x, kernel, pointwise_kernel, kind, bias, stats, max_value, strides, padding,
    data_format, dilation_rate,
):
    import torch
    import torch.nn.functional as F

    convert = keras.ops.convert_to_tensor
    x = _to_torch_nchw(x, data_format)
    multiplier, shift = _fold_batchnorm_torch(*stats, dtype=x.dtype)
    if bias is not None:
        shift = shift + convert(bias).to(x.dtype) * multiplier
    kernel = convert(kernel).to(x.dtype)
    kh, kw = kernel.shape[:2]
    if kind == "separable":
        x = _depthwise_torch(x, kernel, strides, padding, "channels_first", dilation_rate)
        weight = _torch_conv_weight(convert(pointwise_kernel).to(x.dtype))
        strides, dilation_rate, groups, torch_padding = (1, 1), (1, 1), 1, (0, 0)
    else:
        if kind == "depthwise":
            weight, groups = _torch_depthwise_weight(kernel), kernel.shape[2]
        else:
            weight, groups = _torch_conv_weight(kernel), x.shape[1] // kernel.shape[2]
        x, torch_padding = _torch_padding(x, (kh, kw), strides, padding, dilation_rate)
        torch_padding = (torch_padding,) * 2 if isinstance(torch_padding, int) else torch_padding
    weight = (weight * multiplier.reshape(-1, 1, 1, 1)).contiguous()
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    if not torch.is_grad_enabled() and _mkldnn_pointwise_ok(x):
        if max_value is None:
            attr, scalars = "none", []
        elif max_value == float("inf"):
            attr, scalars = "relu", []
        else:
            attr, scalars = "hardtanh", [0.0, float(max_value)]
        y = torch.ops.mkldnn._convolution_pointwise(
            x, weight, shift, list(torch_padding), list(strides), list(dilation_rate),
            groups, attr, scalars, "",
        )
    else:
        y = F.conv2d(
            x, weight, shift, stride=strides, padding=torch_padding,
            dilation=dilation_rate, groups=groups,
        )
        if max_value == float("inf"):
            y = torch.relu(y)
        elif max_value is not None:
            y = torch.clamp(y, 0.0, float(max_value))
    return _from_torch_nchw(y, data_format)


def _mkldnn_pointwise_ok(x):
    """oneDNN's fused convolution + post-op: float32 CPU tensors, in torch
    builds that ship the op (every official x86/ARM CPU build since 2.0)."""
    import torch

    if x.dtype != torch.float32 or x.device.type != "cpu":
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    return hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def _torch_padding(x, kernel_size, strides, padding, dilation_rate):
    """``(x, padding for conv2d)``: symmetric "same" padding goes to the
    kernel, asymmetric padding is applied to ``x`` explicitly."""
    import torch.nn.functional as F

    if padding != "same":
        return x, 0
    ph = same_padding(x.shape[2], kernel_size[0], strides[0], dilation_rate[0])
    pw = same_padding(x.shape[3], kernel_size[1], strides[1], dilation_rate[1])
    if ph[0] == ph[1] and pw[0] == pw[1]:
        return x, (ph[0], pw[0])
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1])), 0


__all__ = [
    "IMPLEMENTATIONS",
    "batch_normalization",
    "conv2d",
    "conv_batchnorm",
    "depthwise_conv2d",
    "fused_inference_active",
    "fused_inference_supported",
    "same_padding",
    "select_implementation",
    "separable_conv2d",
]
