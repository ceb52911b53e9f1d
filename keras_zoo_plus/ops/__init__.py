"""Backend-aware kernels behind keras.ops-shaped functions.

Backend-specific code lives in this package only, in one module per
backend behind the public functions here, with a portable fallback
(``keras.ops``), chosen by measurement and covered by parity tests (value
and gradient) on every backend.

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
one pass instead of three on torch/CPU; :func:`layer_normalization` is
``F.layer_norm`` on torch/CPU, for channels_first data on the
channels-last view (Keras 3.15.1's torch ``LayerNormalization(axis=1)``
fails on 4D inputs); :func:`conv_batchnorm` runs
Convolution -> BatchNormalization -> ReLU/ReLU6/hard-swish as one oneDNN
convolution on torch/CPU without autograd (the inference path of
:mod:`keras_zoo_plus.fusion`, gated by :func:`fused_inference_active`).
Measured figures are in each function's docstring and in
``benchmarks/README.md``.

Layout: the functions here validate and normalise their arguments, then
hand over to the module of the running backend, found once by
:func:`_backend` (``_jax``, ``_torch``, ``_tensorflow``; ``_portable`` for
any other), imported on first use. A backend module may define these
hooks; whatever it leaves out is the default of ``_portable``:

- ``IMPLEMENTATIONS``: the formulations it offers by name.
- ``select_implementation(x, data_format=None, op=None)``: its part of
  the selection rule above (``op`` names the public function asking).
- ``fused_inference_supported()``, ``fused_inference_active(x)``.
- kernel hooks, named like a public function here (``conv2d``,
  ``depthwise_conv2d``, ``separable_conv2d``, ``batch_normalization``,
  ``conv_batchnorm``, ``max_pool2d``, ``average_pool2d``) or like any ``keras.ops`` function. A hook gets the
  function's normalised arguments and ``implementation=`` (never
  ``"auto"`` or ``"native"``) and returns the result, or
  ``NotImplemented`` to leave these arguments to the portable
  formulation; no hook means the portable formulation. Any other
  ``keras.ops`` function is available here by name
  (``keras_zoo_plus.ops.silu``) and runs the backend's hook of that name
  when there is one, so a new kernel touches one backend module.
"""

from __future__ import annotations

import functools
import importlib

import keras

from keras_zoo_plus.imagenet import resolve_data_format
from keras_zoo_plus.ops import _portable
from keras_zoo_plus.ops._common import pair as _pair
from keras_zoo_plus.ops._common import same_padding

IMPLEMENTATIONS = ("auto", "native", "shifted", "channels_last")

# conv_batchnorm's ``activation`` values, by the name its kernels receive
# (Keras registers "hard_swish" as an alias of hard_silu, "swish" of silu).
_CONV_BN_ACTIVATIONS = {None: None, "hard_silu": "hard_silu", "hard_swish": "hard_silu",
                        "silu": "silu", "swish": "silu"}

# keras.backend.backend() -> the module holding that backend's kernels.
_MODULES = {"jax": "_jax", "torch": "_torch", "tensorflow": "_tensorflow"}


@functools.cache
def _module(backend):
    return importlib.import_module(f"{__name__}.{_MODULES.get(backend, '_portable')}")


def _backend():
    """The kernel module of the running backend (the one dispatch point)."""
    return _module(keras.backend.backend())


def _hook(name):
    """The backend module's ``name``, else the portable default."""
    module = _backend()
    return getattr(module, name) if hasattr(module, name) else getattr(_portable, name)


def _kernel(op, implementation):
    """The backend's kernel hook for ``op``, or ``None`` when the
    formulation is the portable one (``"native"``, or no hook)."""
    if implementation == "native":
        return None
    return getattr(_backend(), op, None)


def _select(x, data_format, op):
    return _hook("select_implementation")(x, data_format, op)


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

    return _select(x, data_format, None)


def fused_inference_supported():
    """Whether the current backend has a fused inference path at all
    (:func:`fused_inference_active` can be true): torch. TensorFlow's
    grappler and XLA already fuse Convolution -> BatchNorm -> ReLU in their
    compiled graphs."""

    return _hook("fused_inference_supported")()


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

    return _hook("fused_inference_active")(x)


def has_kernel(op, x=None, data_format=None):
    """Whether :mod:`keras_zoo_plus.ops`' function ``op`` called with
    ``implementation="auto"`` on ``x`` goes to a kernel of the running
    backend rather than the portable formulation (the kernel may still
    decline unusual arguments). Lets a layer skip its own preparation for
    the fast path (e.g. :class:`keras_zoo_plus.layers.BatchNormalization`)
    without asking which backend runs.

    Args:
        op: A public function's name, e.g. ``"batch_normalization"``.
        x: The input tensor (its device decides on torch); ``None`` uses
            the backend's default device.
        data_format: As for :func:`select_implementation`.

    Returns:
        bool.

    Example:
        >>> has_kernel("batch_normalization", x)  # True on torch/CPU
    """
    return _kernel(op, _select(x, data_format, op)) is not None


def _check_implementation(implementation):
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {IMPLEMENTATIONS}; received {implementation!r}."
        )
    if implementation in ("auto", "native") or implementation in _hook("IMPLEMENTATIONS"):
        return
    offered = [name for name in _MODULES if implementation in _module(name).IMPLEMENTATIONS]
    raise ValueError(
        f"`implementation={implementation!r}` needs the {' or '.join(offered)} backend; "
        f"the backend is {keras.backend.backend()!r}."
    )


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
        implementation = _select(x, data_format, "depthwise_conv2d")
    if max(strides) > 1 and max(dilation_rate) > 1:
        # Keep the native op's error for this unsupported combination.
        implementation = "native"
    args = dict(
        strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation_rate
    )
    kernel_fn = _kernel("depthwise_conv2d", implementation)
    if kernel_fn is not None:
        y = kernel_fn(x, kernel, implementation=implementation, **args)
        if y is not NotImplemented:
            return y
    return keras.ops.depthwise_conv(x, kernel, **args)


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
    XLA's 3x3 convolution (56x56x64: 85 vs 181 / 236 ms), except a grouped
    one with several input channels per group (RegNet's), which runs as one
    convolution per group, concatenated: XLA's CPU grouped convolution was
    2-7.5x slower at RegNet's shapes (14x14x336 in 14 groups, batch 16:
    63.4 vs 9.9 ms).

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
        implementation = _select(x, data_format, "conv2d")
    args = dict(
        strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation_rate
    )
    kernel_fn = _kernel("conv2d", implementation)
    if kernel_fn is not None:
        y = kernel_fn(x, kernel, implementation=implementation, **args)
        if y is not NotImplemented:
            return y
    return keras.ops.conv(x, kernel, **args)


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
    if implementation == "auto":
        implementation = _select(x, None, "batch_normalization")
    args = dict(offset=offset, scale=scale, epsilon=epsilon)
    kernel_fn = _kernel("batch_normalization", implementation)
    if kernel_fn is not None:
        y = kernel_fn(x, mean, variance, axis, implementation=implementation, **args)
        if y is not NotImplemented:
            return y
    return keras.ops.batch_normalization(x, mean, variance, axis, **args)


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
    activation=None,
):
    """``relu(batch_normalization(conv(x) + bias), max_value)`` (or
    ``hard_silu(...)``) as one convolution where the backend allows it: the
    inference-time chain Convolution -> BatchNormalization (moving
    statistics) -> ReLU/ReLU6 of MobileNet(V2), ResNet, Xception,
    Inception, DenseNet and NASNet, and -> hard-swish of MobileNetV3.

    On torch/CPU (``"channels_last"``, the ``"auto"`` choice there) the
    normalisation is folded into the kernel and bias (``kernel * a``,
    ``bias * a + b`` with ``a = scale / sqrt(variance + epsilon)``,
    ``b = offset - mean * a``) and, without autograd, the convolution,
    bias and clamp (or hard-swish) run as one oneDNN primitive
    (``torch.ops.mkldnn._convolution_pointwise``), as TensorFlow's
    grappler does for its graphs; with autograd enabled ``F.conv2d`` plus
    a clamp (``hardswish``) keeps gradients. On MobileNet (batch 16, 224)
    this took torch inference from 1.5x to over 3x keras.applications
    (``benchmarks/``). Everywhere else it is the unfused chain of
    :func:`conv2d` / :func:`depthwise_conv2d` / :func:`separable_conv2d`,
    bias, :func:`batch_normalization` and ``keras.ops.relu``/``clip``/
    ``hard_silu``.

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
        activation: ``None`` (the activation is what ``max_value`` says),
            ``"hard_silu"`` (alias ``"hard_swish"``: ``y * relu6(y + 3)
            / 6``, Keras' ``hard_silu``) or ``"silu"`` (alias ``"swish"``:
            ``y * sigmoid(y)``, EfficientNet's), which need ``max_value=None``.

    Returns:
        The activated, normalised convolution in ``data_format``.

    Raises:
        ValueError: for an unknown ``kind``, a ``"separable"`` call without
            ``pointwise_kernel``, a non-positive ``max_value``, an unknown
            ``activation`` or one given with ``max_value``, or as for
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
    if not (activation is None or isinstance(activation, str)) or (
        activation not in _CONV_BN_ACTIVATIONS
    ):
        raise ValueError(
            "`activation` must be None, 'hard_silu', 'hard_swish', 'silu' or 'swish'; "
            f"received {activation!r}."
        )
    activation = _CONV_BN_ACTIVATIONS[activation]
    if activation is not None and max_value is not None:
        raise ValueError(
            f"`max_value` must be None with activation={activation!r}; "
            f"received max_value={max_value!r}."
        )
    data_format = resolve_data_format(data_format)
    padding = str(padding).lower()
    _check_implementation(implementation)
    strides = _pair(strides, "strides")
    dilation_rate = _pair(dilation_rate, "dilation_rate")
    conv_args = dict(
        strides=strides, padding=padding, data_format=data_format, dilation_rate=dilation_rate
    )
    chosen = _select(x, None, "conv_batchnorm") if implementation == "auto" else implementation
    kernel_fn = _kernel("conv_batchnorm", chosen)
    if kernel_fn is not None:
        y = kernel_fn(
            x, kernel, mean=mean, variance=variance, offset=offset, scale=scale,
            epsilon=epsilon, bias=bias, pointwise_kernel=pointwise_kernel, kind=kind,
            max_value=max_value, activation=activation, implementation=chosen, **conv_args,
        )
        if y is not NotImplemented:
            return y
        # Declined: the backend's fused formulation does not fit these
        # arguments, so neither do its single steps; the chain runs native.
        implementation = "native"
    # No fused kernel: the chain, each step picking its own formulation.
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
    if activation == "hard_silu":
        return keras.ops.hard_silu(y)
    if activation == "silu":
        return keras.ops.silu(y)
    if max_value is None:
        return y
    if max_value == float("inf"):
        return keras.ops.relu(y)
    return keras.ops.clip(y, 0.0, max_value)


def layer_normalization(
    x, gamma=None, beta=None, *, axis=-1, epsilon=1e-3, implementation="auto"
):
    """Layer normalisation over one axis; the computation of
    ``keras.layers.LayerNormalization(axis=axis, epsilon=epsilon)`` with
    weights ``gamma`` and ``beta``: ``(x - mean) / sqrt(var + epsilon) *
    gamma + beta``, statistics over ``axis`` (population variance),
    computed in at least float32 and cast back to ``x``'s dtype.

    On torch/CPU (``"channels_last"``, the ``"auto"`` choice there) it is
    ``torch.nn.functional.layer_norm`` on the last axis; for ``axis=1``
    (channels_first) on the channels-last view ``x.permute(0, 2, 3, 1)``,
    which is free when ``x`` has channels_last strides (the output of our
    torch convolutions), permuted back. Keras 3.15.1's own torch path
    cannot do ``axis=1``: it hands a single axis to ``F.layer_norm``,
    which normalises the *last* axis, so ``LayerNormalization(axis=1)``
    fails on 4D inputs (or is silently wrong when width == channels).
    Everywhere else, and for ``implementation="native"``, it is
    ``keras.ops.layer_normalization`` for the last axis and Keras' own
    generic formula (``keras.ops.moments``, folded scale and shift) for
    ``axis=1``: on JAX and TensorFlow exactly what Keras runs (XLA and
    grappler fuse it; hand-written ``jnp`` versions under ``jit`` won
    nowhere by a clear margin, see ``benchmarks/README.md``, "ConvNeXt
    ops"). Measured on torch/CPU, one thread, batch 8: 1.93 ms at
    56x56x96 channels_first (channels_last strides) where a mean/var
    formulation over axis 1 took 29 ms; on the last axis it matches
    Keras' own ``F.layer_norm`` call minus Keras' conversions.

    Args:
        x: Input tensor: 4D with ``axis`` -1 (channels_last) or 1
            (channels_first), or any rank with ``axis`` -1 (e.g. 2D, the
            head's normalisation after pooling).
        gamma: Optional 1D scale of length ``x.shape[axis]``.
        beta: Optional 1D offset of length ``x.shape[axis]``.
        axis: One int, the normalised axis (negative counts from the
            end); ``x.ndim - 1`` is the same as -1, and 3 on 4D inputs.
        epsilon: Added to the variance.
        implementation: ``"auto"``, ``"native"`` or ``"channels_last"``
            (torch only; the name is shared with the convolutions).

    Returns:
        The normalised tensor, shaped and typed as ``x``.

    Raises:
        ValueError: for an ``axis`` other than the last one or, on 4D
            inputs, 1; for an unknown ``implementation`` or a fast path
            requested on another backend.
        TypeError: for an ``axis`` that is not an int.

    Example:
        >>> y = layer_normalization(x, gamma, beta, axis=1, epsilon=1e-6)
    """

    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"`axis` must be an int; received {axis!r}.")
    ndim = len(x.shape)
    allowed = {ndim - 1, 1} if ndim == 4 else {ndim - 1}
    if not -ndim <= axis < ndim or axis % ndim not in allowed:
        raise ValueError(
            f"`axis` must be -1 (the last axis) or, for 4D inputs, 1; received {axis!r} "
            f"for a {ndim}D input."
        )
    axis = -1 if axis % ndim == ndim - 1 else 1
    _check_implementation(implementation)
    if implementation == "auto":
        implementation = _select(x, None, "layer_normalization")
    kernel_fn = _kernel("layer_normalization", implementation)
    if kernel_fn is not None:
        y = kernel_fn(
            x, gamma, beta, axis=axis, epsilon=epsilon, implementation=implementation
        )
        if y is not NotImplemented:
            return y
    if axis == -1:
        return keras.ops.layer_normalization(x, gamma, beta, axis=-1, epsilon=epsilon)
    return _layer_normalization_generic(x, gamma, beta, axis, epsilon)


def _layer_normalization_generic(x, gamma, beta, axis, epsilon):
    """Keras 3.15.1's ``_layer_normalization`` (its non-torch branch) in
    ``keras.ops``: on JAX and TensorFlow the very ops Keras runs."""
    x = keras.ops.convert_to_tensor(x)
    dtype = keras.backend.standardize_dtype(x.dtype)
    x = keras.ops.cast(x, keras.backend.result_type(dtype, "float32"))
    shape = [1] * len(x.shape)
    shape[axis] = x.shape[axis]
    mean, variance = keras.ops.moments(x, axes=[axis], keepdims=True)
    inv = keras.ops.rsqrt(variance + epsilon)
    if gamma is not None:
        inv = inv * keras.ops.reshape(keras.ops.cast(gamma, x.dtype), shape)
    res = -mean * inv
    if beta is not None:
        res = res + keras.ops.reshape(keras.ops.cast(beta, x.dtype), shape)
    return keras.ops.cast(x * inv + res, dtype)


#: channel_dense's ``activation`` values.
_DENSE_ACTIVATIONS = (None, "gelu")


def channel_dense(
    x, kernel, bias=None, *, data_format=None, activation=None, scale=None,
    implementation="auto",
):
    """A Dense layer over the channel axis of a feature map, with an
    optional exact GELU and per-channel scale after it:
    ``act(x . kernel + bias) * scale``, the contraction over the last axis
    (``channels_last``) or axis 1 (``channels_first``). ConvNeXt's
    ``pointwise_conv_1 -> gelu`` and ``pointwise_conv_2 -> layer_scale``
    pairs in inference (:mod:`keras_zoo_plus.fusion`).

    On torch/CPU (``"channels_last"``), float32 without autograd, a scale
    without activation is folded into the kernel and bias and the product is one oneDNN
    linear with GELU as its post-op (``torch.ops.mkldnn._linear_pointwise``;
    ``F.linear`` then ``F.gelu`` where that op is missing), on the
    channels-last view for ``channels_first`` data: ConvNeXtTiny's MLP at
    56x56, batch 8, took 43.9 ms there against 57.7 with Keras' ops
    (benchmarks/README.md, "ConvNeXt ops"). Elsewhere, and for
    ``"native"``, it is ``keras.ops``: matmul (einsum in channels_first),
    add, ``gelu(approximate=False)``, multiply.

    Args:
        x: 4D feature map in ``data_format``, or any rank >= 2 with
            ``channels_last`` (the last axis).
        kernel: ``(in_channels, units)``.
        bias: optional ``(units,)``.
        data_format: ``"channels_last"``, ``"channels_first"`` or None.
        activation: None or ``"gelu"`` (exact, erf).
        scale: optional ``(units,)`` multiplier applied last.
        implementation: ``"auto"``, ``"native"`` or ``"channels_last"``
            (torch only).

    Returns:
        The result, ``units`` channels on the channel axis.

    Raises:
        ValueError: for another ``activation`` or ``data_format``, a
            channels_first input that is not 4D, or an unknown
            ``implementation``.

    Example:
        >>> y = channel_dense(x, k1, b1, data_format="channels_first", activation="gelu")
    """
    data_format = resolve_data_format(data_format)
    if activation not in _DENSE_ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {list(_DENSE_ACTIVATIONS)}. "
            f"Received: activation={activation!r}"
        )
    if data_format == "channels_first" and len(x.shape) != 4:
        raise ValueError(
            "With data_format='channels_first' `x` must be 4D (batch, channels, rows, "
            f"cols). Received: x.shape={tuple(x.shape)}"
        )
    _check_implementation(implementation)
    if implementation == "auto":
        implementation = _select(x, data_format, "channel_dense")
    kernel_fn = _kernel("channel_dense", implementation)
    if kernel_fn is not None:
        y = kernel_fn(x, kernel, bias, data_format=data_format, activation=activation,
                      scale=scale, implementation=implementation)
        if y is not NotImplemented:
            return y
    first = data_format == "channels_first"
    kernel = keras.ops.cast(kernel, x.dtype)
    y = keras.ops.einsum("bchw,cd->bdhw", x, kernel) if first else keras.ops.matmul(x, kernel)

    def along_channels(v):
        v = keras.ops.cast(v, y.dtype)
        return keras.ops.reshape(v, (-1, 1, 1)) if first else v

    if bias is not None:
        y = keras.ops.add(along_channels(bias), y) if first else keras.ops.add(y, bias)
    if activation == "gelu":
        y = keras.ops.gelu(y, approximate=False)
    if scale is not None:
        y = keras.ops.multiply(y, along_channels(scale))
    return y


def max_pool2d(x, pool_size, strides=None, padding="valid", data_format=None,
               implementation="auto"):
    """2D max pooling; same contract as ``keras.ops.max_pool`` on 4D inputs.

    Its kernels exist for the exporters as much as for speed:

    - torch (``"channels_last"``, on CPU and while torch exports): the
      NCHW view of channels_last data is pooled as it lies (Keras copies it
      to NCHW and back), and the ``"same"`` padding is computed from the
      static size. Keras computes it from ``x.shape``, which TorchScript
      traces: where it comes out symmetric Keras hands ``max_pool2d`` a list
      of traced values, which the ONNX exporter refuses ("Failed to export
      a node ... because it is not constant"; Xception failed at every
      size).
    - jax (``"shifted"``, inside ``export_scope`` only): the maximum of the
      pool's kh*kw strided slices of the input padded by -inf. jax2onnx
      0.17 turns ``lax.reduce_window`` into an ONNX MaxPool that
      onnxruntime refuses ("Unsupported pooling size"; ResNet50, VGG16,
      DenseNet121). Outside an export XLA's own reduce_window stays.
    - tensorflow: Keras' (tf2onnx and the TFLite converter take it).

    Args:
        x: 4D input in ``data_format``.
        pool_size: int or pair.
        strides: int or pair; ``None`` means ``pool_size``.
        padding: ``"valid"`` or ``"same"`` (Keras semantics: the extra pixel
            of an odd total padding goes after; padded pixels never win).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        implementation: ``"auto"``, ``"native"`` (``keras.ops.max_pool``), or
            the backend's formulation by name.

    Returns:
        The pooled tensor in ``data_format``.

    Raises:
        ValueError: for an unknown ``padding``, ``data_format`` or
            ``implementation``, or a bad ``pool_size``/``strides``.

    Example:
        >>> y = max_pool2d(x, 3, strides=2, padding="same")
    """

    return _pool2d("max_pool2d", keras.ops.max_pool, x, pool_size, strides, padding,
                   data_format, implementation)


def average_pool2d(x, pool_size, strides=None, padding="valid", data_format=None,
                   implementation="auto"):
    """2D average pooling; same contract as ``keras.ops.average_pool`` on 4D
    inputs: with ``"same"`` padding the padded pixels are left out of each
    window's count, as TensorFlow and JAX compute it.

    On torch/CPU (``"channels_last"``) the NCHW view of channels_last data is
    pooled as it lies; Keras copies it to NCHW and back (see the torch
    kernel for the figures). Its asymmetric "same" padding there
    (Keras pads by replicating the edge) counts an edge pixel twice where a
    3x3/2 window meets the border; ours leaves the padding out on every
    backend. Elsewhere it is Keras' op.

    Args:
        x: 4D input in ``data_format``.
        pool_size: int or pair.
        strides: int or pair; ``None`` means ``pool_size``.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        implementation: ``"auto"``, ``"native"`` (``keras.ops.average_pool``),
            or the backend's formulation by name.

    Returns:
        The pooled tensor in ``data_format``.

    Raises:
        ValueError: for an unknown ``padding``, ``data_format`` or
            ``implementation``, or a bad ``pool_size``/``strides``.

    Example:
        >>> y = average_pool2d(x, 3, strides=1, padding="same")
    """

    return _pool2d("average_pool2d", keras.ops.average_pool, x, pool_size, strides, padding,
                   data_format, implementation)


def _pool2d(op, portable, x, pool_size, strides, padding, data_format, implementation):
    """The pooling functions' common part: arguments checked and
    normalised, the backend's kernel ``op`` when one runs, else
    ``portable`` (the ``keras.ops`` function)."""
    data_format = resolve_data_format(data_format)
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'; received {padding!r}.")
    _check_implementation(implementation)
    pool_size = _pair(pool_size, "pool_size")
    strides = pool_size if strides is None else _pair(strides, "strides")
    if implementation == "auto":
        implementation = _select(x, data_format, op)
    kernel_fn = _kernel(op, implementation)
    if kernel_fn is not None:
        y = kernel_fn(x, pool_size=pool_size, strides=strides, padding=padding,
                      data_format=data_format, implementation=implementation)
        if y is not NotImplemented:
            return y
    return portable(x, pool_size, strides, padding, data_format)


def __getattr__(name):
    """Any other ``keras.ops`` function by name, running the backend
    module's hook of that name when it has one (module docstring), with an
    extra keyword ``implementation="auto"`` as the functions above."""
    portable = None if name.startswith("_") else getattr(keras.ops, name, None)
    if not callable(portable):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

    @functools.wraps(portable)
    def op(*args, implementation="auto", **kwargs):
        _check_implementation(implementation)
        if implementation == "auto":
            x = args[0] if args else None
            implementation = _select(x, kwargs.get("data_format"), name)
        kernel_fn = _kernel(name, implementation)
        if kernel_fn is not None:
            y = kernel_fn(*args, implementation=implementation, **kwargs)
            if y is not NotImplemented:
                return y
        return portable(*args, **kwargs)

    globals()[name] = op  # built once per name
    return op


__all__ = [
    "IMPLEMENTATIONS",
    "average_pool2d",
    "batch_normalization",
    "channel_dense",
    "conv2d",
    "conv_batchnorm",
    "depthwise_conv2d",
    "fused_inference_active",
    "fused_inference_supported",
    "has_kernel",
    "layer_normalization",
    "max_pool2d",
    "same_padding",
    "select_implementation",
    "separable_conv2d",
]
