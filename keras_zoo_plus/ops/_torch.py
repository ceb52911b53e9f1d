"""PyTorch kernels: native grouped convolutions on channels_last strides,
one-pass batch normalisation and the fused oneDNN Convolution ->
BatchNorm -> ReLU/ReLU6/hard-swish of the inference path (see
:mod:`keras_zoo_plus.ops`).

Hooks: ``IMPLEMENTATIONS``, ``select_implementation``,
``fused_inference_supported``, ``fused_inference_active``,
``depthwise_conv2d``, ``conv2d``, ``batch_normalization``,
``layer_normalization``, ``conv_batchnorm``, ``channel_dense``, ``max_pool2d``, ``average_pool2d``; the rest is :mod:`keras_zoo_plus.ops._portable`.
"""

from __future__ import annotations

import keras

from keras_zoo_plus.ops import _common

IMPLEMENTATIONS = ("channels_last",)


def _device_kind(x=None):
    """``"cpu"``, ``"meta"`` (symbolic build), or the accelerator's name."""
    device = getattr(x, "device", None)
    if device is None:
        from keras.src.backend.torch.core import get_device

        return str(get_device()).split(":")[0]
    # NumPy 2 arrays carry ``device == "cpu"`` (a string).
    return getattr(device, "type", None) or str(device).split(":")[0]


def _exporting():
    """Whether torch is capturing a graph rather than running: TorchScript
    tracing (``torch.onnx.export``'s default exporter, which Keras' ONNX
    export uses with a dynamic batch), ONNX export, or ``torch.export``
    (the dynamo exporter, LiteRT). The kernels below are eager fast paths
    (oneDNN's fused ``mkldnn::_convolution_pointwise`` has no ONNX
    equivalent; shapes read off tensors become traced values), so while
    exporting every op takes the portable Keras formulation and the
    artifact holds the plain graph: Conv, BatchNormalization, Relu...
    Layer normalisation is the exception: Keras' own torch formulation
    passes traced sizes to ``F.layer_norm`` and TorchScript cannot export
    it (``SymbolicValueError ... onnx::Gather``), so ours, which passes
    plain ints, stays (ONNX ``LayerNormalization``). ``export_scope``
    (:func:`keras_zoo_plus.export`) counts as exporting too."""
    import torch

    return bool(torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
                or torch.compiler.is_exporting() or _common.in_export_scope())


# The kernels that stay while exporting: Keras' layer normalisation and
# pooling pass traced sizes where TorchScript needs constants (see
# _exporting, max_pool2d; average_pool2d pads the same way), and Keras'
# batch normalisation exports as Sub, Mul and Add where ours is one ONNX
# BatchNormalization (_exportable_batch_norm).
_EXPORTABLE = ("layer_normalization", "max_pool2d", "average_pool2d", "batch_normalization")


def select_implementation(x=None, data_format=None, op=None):
    """``"channels_last"`` on CPU (and for Keras' symbolic "meta" builds),
    ``"native"`` on accelerators and while :func:`_exporting` (but for
    the kernels of ``_EXPORTABLE``)."""
    if _exporting():
        return "channels_last" if op in _EXPORTABLE else "native"
    return "channels_last" if _device_kind(x) in ("cpu", "meta") else "native"


def fused_inference_supported():
    """Torch has the fused path: its eager layers run one by one."""
    return True


def fused_inference_active(x):
    """CPU, float32, autograd off, not :func:`_exporting`."""
    # Not on "meta" tensors (Keras' symbolic shape inference): the layers'
    # own calls infer the shapes there.
    if _device_kind(x) != "cpu" or _exporting():
        return False
    import torch

    if torch.is_grad_enabled():
        return False
    dtype = getattr(x, "dtype", None)
    return dtype in (None, torch.float32) or str(dtype) in ("float32",)


def depthwise_conv2d(x, kernel, *, strides, padding, data_format, dilation_rate, implementation):
    return _depthwise(x, kernel, strides, padding, data_format, dilation_rate)


def conv2d(x, kernel, *, strides, padding, data_format, dilation_rate, implementation):
    if max(strides) > 1 and max(dilation_rate) > 1:
        return NotImplemented
    return _conv(x, kernel, strides, padding, data_format, dilation_rate)


def batch_normalization(x, mean, variance, axis, *, offset, scale, epsilon, implementation):
    """``torch.addcmul(b, x, a)`` with the folded multiplier ``a`` and
    shift ``b``: one pass over ``x`` instead of Keras' three."""
    import torch

    x = keras.ops.convert_to_tensor(x)
    if _exporting():
        return _exportable_batch_norm(x, mean, variance, axis, offset, scale, epsilon)
    multiplier, shift = _fold_batchnorm(mean, variance, offset, scale, epsilon)
    axis = axis % x.ndim
    if axis != x.ndim - 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        multiplier = multiplier.reshape(shape)
        shift = shift.reshape(shape)
    return torch.addcmul(shift.to(x.dtype), x, multiplier.to(x.dtype))


def _exportable_batch_norm(x, mean, variance, axis, offset, scale, epsilon):
    """``F.batch_norm`` on the NCHW view: one ONNX BatchNormalization, which
    onnxruntime folds into the convolution before it, where Keras'
    formulation leaves Sub, Mul and Add."""
    import torch.nn.functional as F

    axis = axis % x.ndim
    if x.ndim != 4 or axis not in (1, 3):
        return NotImplemented
    view = x if axis == 1 else x.permute(0, 3, 1, 2)
    y = F.batch_norm(view, _tensor(mean), _tensor(variance),
                     None if scale is None else _tensor(scale),
                     None if offset is None else _tensor(offset), False, 0.0, epsilon)
    return y if axis == 1 else y.permute(0, 2, 3, 1)


def layer_normalization(x, gamma, beta, *, axis, epsilon, implementation):
    """``F.layer_norm`` on the last axis; for ``axis=1`` on the
    channels-last view ``x.permute(0, 2, 3, 1)`` (no copy when ``x`` has
    channels_last strides, as our convolutions' outputs do; otherwise
    ``F.layer_norm`` copies it once), permuted back. Computed in at least
    float32 and cast back, as Keras does."""
    import torch
    import torch.nn.functional as F

    # Conversions only where needed: at 7x7 the op itself takes ~15 us.
    if not isinstance(x, torch.Tensor):
        x = keras.ops.convert_to_tensor(x)
    dtype = x.dtype
    if not dtype.is_floating_point:
        return NotImplemented
    compute = torch.promote_types(dtype, torch.float32)
    if dtype != compute:
        x = x.to(compute)

    def param(value):
        if value is None:
            return None
        if not isinstance(value, torch.Tensor):
            value = keras.ops.convert_to_tensor(value)
        return value if value.dtype == compute else value.to(compute)

    gamma, beta = param(gamma), param(beta)
    if axis == 1:
        # int(): a plain size while tracing too (the channels are static).
        y = F.layer_norm(x.permute(0, 2, 3, 1), (int(x.shape[1]),), gamma, beta, epsilon)
        y = y.permute(0, 3, 1, 2)
    else:
        y = F.layer_norm(x, (int(x.shape[-1]),), gamma, beta, epsilon)
    return y if dtype == compute else y.to(dtype)


def conv_batchnorm(
    x, kernel, *, mean, variance, offset, scale, epsilon, bias, pointwise_kernel, kind,
    max_value, strides, padding, data_format, dilation_rate, implementation, activation=None,
):
    """The normalisation folded into the kernel and bias; without autograd
    the convolution, bias and clamp (or hard-swish, oneDNN's ``hardswish``
    post-op: ``y * min(max(y / 6 + 1/2, 0), 1)``; or swish, its ``swish``
    post-op ``y * sigmoid(y)``) run as one oneDNN primitive."""
    if max(strides) > 1 and max(dilation_rate) > 1:
        return NotImplemented  # the unfused native chain keeps Keras' error
    import torch
    import torch.nn.functional as F

    x = _to_nchw(x, data_format)
    kernel = _tensor(kernel)
    if kernel.dtype != x.dtype:
        kernel = kernel.to(x.dtype)
    kh, kw = kernel.shape[:2]
    if kind == "separable":
        x = _depthwise(x, kernel, strides, padding, "channels_first", dilation_rate)
        strides, dilation_rate, groups, torch_padding = (1, 1), (1, 1), 1, (0, 0)
    else:
        groups = kernel.shape[2] if kind == "depthwise" else x.shape[1] // kernel.shape[2]
        x, torch_padding = _padding(x, (kh, kw), strides, padding, dilation_rate)
        torch_padding = (torch_padding,) * 2 if isinstance(torch_padding, int) else torch_padding
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    pointwise = not torch.is_grad_enabled() and _mkldnn_pointwise_ok(x)
    geometry = (tuple(torch_padding), tuple(strides), tuple(dilation_rate), groups)
    weight, shift = _folded(kind, kernel, pointwise_kernel, bias, mean, variance, offset, scale,
                            epsilon, x.dtype, pack=(geometry, tuple(x.shape)) if pointwise else None)
    if pointwise:
        if activation == "hard_silu":
            attr, scalars = "hardswish", []
        elif activation == "silu":
            attr, scalars = "swish", []
        elif max_value is None:
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
        if activation == "hard_silu":
            y = F.hardswish(y)
        elif activation == "silu":
            y = F.silu(y)
        elif max_value == float("inf"):
            y = torch.relu(y)
        elif max_value is not None:
            y = torch.clamp(y, 0.0, float(max_value))
    return _from_nchw(y, data_format)


# --- helpers ---------------------------------------------------------------


def _tensor(value):
    """``value`` as a torch tensor: a tensor as it is, a Keras variable's
    ``value`` (which honours a stateless scope and autocasting), anything
    else through ``keras.ops.convert_to_tensor``. The inference path calls
    this a few hundred times per image, where ``convert_to_tensor``'s
    checks cost about 10 us each."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, keras.Variable):
        return value.value
    return keras.ops.convert_to_tensor(value)


def _to_nchw(x, data_format):
    """A logical-NCHW view with channels_last strides, copying only when the
    input is not already laid out that way."""
    import torch

    x = _tensor(x)
    if data_format == "channels_last":
        # The permuted view of a contiguous NHWC tensor *is* channels_last.
        x = x.permute(0, 3, 1, 2)
    if not x.is_contiguous(memory_format=torch.channels_last):
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _from_nchw(y, data_format):
    if data_format == "channels_last":
        return y.permute(0, 2, 3, 1)
    return y


def _depthwise_weight(kernel):
    """(kh, kw, C, M) -> (C * M, 1, kh, kw): output c * M + m in Keras' order."""
    kh, kw, channels, multiplier = kernel.shape
    return kernel.permute(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)


def _conv_weight(kernel):
    """(kh, kw, Cin/g, Cout) -> (Cout, Cin/g, kh, kw)."""
    return kernel.permute(3, 2, 0, 1)


def _fold_batchnorm(mean, variance, offset, scale, epsilon, dtype=None):
    """BatchNormalization as ``x * multiplier + shift``: ``multiplier =
    scale / sqrt(variance + epsilon)``, ``shift = offset - mean *
    multiplier`` (1D torch tensors, cast to ``dtype`` when given)."""
    import torch

    def tensor(value):
        value = _tensor(value)
        return value if dtype is None else value.to(dtype)

    multiplier = torch.rsqrt(tensor(variance) + epsilon)
    if scale is not None:
        multiplier = multiplier * tensor(scale)
    shift = -tensor(mean) * multiplier
    if offset is not None:
        shift = shift + tensor(offset)
    return multiplier, shift


#: The attribute of a kernel tensor that holds its folded weight and shift
#: (see :func:`_folded`).
_FOLDED = "_keras_zoo_plus_folded"


def _folded(kind, kernel, pointwise_kernel, bias, mean, variance, offset, scale, epsilon, dtype,
            pack=None):
    """``(weight, shift)``: the convolution weight (torch layout, channels_last
    memory) with the normalisation folded in, and the shift; with ``pack``
    (``(geometry, input shape)``, the oneDNN path), the weight reordered
    once into oneDNN's own blocked layout for that geometry. Computed once
    and reused while none of the tensors they come from changed.

    Measured on ResNet50, one 224x224 image (AMD EPYC, 2 cores): folding
    on every call took a quarter of the call (its 25M weights read, scaled
    and copied), and an OIHW-contiguous weight made oneDNN reorder it on
    every call, slowest for 3x3 kernels with many channels (512->512 at
    7x7: 9.1 ms, 1.9 ms from channels_last, 0.9 ms prepacked). A packed
    weight serves any batch size with the same result, bit for bit.

    A tensor changes in place under ``assign``/``set_weights``, an
    optimizer step or a weights load (torch bumps its ``_version``), or is
    replaced (another object): the key holds each source's identity and
    version, so any change refolds. Kept on the kernel tensor itself (it
    goes when the tensor goes), with strong references to the other
    sources, so that their identities cannot be reused while it lives.
    Nothing is kept while autograd records."""
    import torch

    sources = tuple(
        None if v is None else _tensor(v)
        for v in (pointwise_kernel, bias, mean, variance, offset, scale)
    )
    key = (kind, float(epsilon), dtype, kernel._version) + tuple(
        None if t is None else (id(t), t._version) for t in sources
    )
    cache = not torch.is_grad_enabled()
    entry = getattr(kernel, _FOLDED, None) if cache else None
    if entry is None or entry["key"] != key:
        pointwise_kernel, bias, mean, variance, offset, scale = sources
        multiplier, shift = _fold_batchnorm(mean, variance, offset, scale, epsilon, dtype=dtype)
        if bias is not None:
            shift = shift + bias.to(dtype) * multiplier
        if kind == "separable":
            weight = _conv_weight(pointwise_kernel.to(dtype))
        elif kind == "depthwise":
            weight = _depthwise_weight(kernel)
        else:
            weight = _conv_weight(kernel)
        weight = (weight * multiplier.reshape(-1, 1, 1, 1)).contiguous(
            memory_format=torch.channels_last)
        entry = {"key": key, "sources": sources, "weight": weight, "shift": shift, "packed": {}}
        if cache:
            setattr(kernel, _FOLDED, entry)
    if pack is None:
        return entry["weight"], entry["shift"]
    geometry, input_shape = pack
    if geometry not in entry["packed"]:
        entry["packed"][geometry] = _prepacked(entry["weight"], geometry, input_shape)
    return entry["packed"][geometry], entry["shift"]


def _prepacked(weight, geometry, input_shape):
    """``weight`` in oneDNN's blocked layout for a convolution of this
    geometry (padding, strides, dilation, groups), chosen for
    ``input_shape`` and valid for any batch; ``weight`` itself where this
    torch build cannot pack it."""
    import torch

    padding, strides, dilation, groups = geometry
    try:
        return torch.ops.mkldnn._reorder_convolution_weight(
            weight, list(padding), list(strides), list(dilation), groups, list(input_shape))
    except (AttributeError, RuntimeError):
        return weight


def _depthwise(x, kernel, strides, padding, data_format, dilation_rate):
    import torch.nn.functional as F

    x = _to_nchw(x, data_format)
    kernel = _tensor(kernel).to(x.dtype)
    kh, kw, channels, _ = kernel.shape
    weight = _depthwise_weight(kernel)
    x, torch_padding = _padding(x, (kh, kw), strides, padding, dilation_rate)
    y = F.conv2d(
        x,
        weight,
        stride=strides,
        padding=torch_padding,
        dilation=dilation_rate,
        groups=channels,
    )
    return _from_nchw(y, data_format)


def _conv(x, kernel, strides, padding, data_format, dilation_rate):
    import torch.nn.functional as F

    x = _to_nchw(x, data_format)
    kernel = keras.ops.convert_to_tensor(kernel).to(x.dtype)
    kh, kw, cin_per_group, _ = kernel.shape
    weight = _conv_weight(kernel)
    x, torch_padding = _padding(x, (kh, kw), strides, padding, dilation_rate)
    y = F.conv2d(
        x,
        weight,
        stride=strides,
        padding=torch_padding,
        dilation=dilation_rate,
        groups=x.shape[1] // cin_per_group,
    )
    return _from_nchw(y, data_format)


def channel_dense(x, kernel, bias, *, data_format, activation, scale, implementation):
    """One linear over the channels with the scale folded into its weights
    (when no GELU comes between them) and GELU as oneDNN's post-op (``F.linear`` + ``F.gelu`` without that
    op); channels_first data on its channels-last view. Float32 without
    autograd only (folding the scale would otherwise change the weights'
    gradients' graph); anything else is left to the portable path."""
    import torch
    import torch.nn.functional as F

    if not isinstance(x, torch.Tensor):
        x = keras.ops.convert_to_tensor(x)
    if x.dtype != torch.float32 or torch.is_grad_enabled() or x.device.type != "cpu":
        return NotImplemented
    first = data_format == "channels_first"
    weight = keras.ops.convert_to_tensor(kernel)
    b = None if bias is None else keras.ops.convert_to_tensor(bias)
    gamma = None if scale is None else keras.ops.convert_to_tensor(scale)
    # oneDNN's linear reads its input as a dense row-major matrix: a
    # channels_first map that is not channels_last-strided (its permuted
    # view is not contiguous) gave wrong values, so it is copied then.
    h = (x.permute(0, 2, 3, 1) if first else x).contiguous()
    rows = h.numel() // h.shape[-1]
    # A scale right after the product folds into the weights (not one after
    # GELU) when that is the cheaper pass: kernel-sized against output-sized
    # (ConvNeXtTiny, batch 8: 12.4 against 18.4 ms at 56x56, 14.3 against
    # 10.0 at 7x7).
    if gamma is not None and activation is None and rows > weight.shape[0]:
        weight = weight * gamma
        b = None if b is None else b * gamma
        gamma = None
    weight = weight.t()  # (units, in_channels): a view, both linears take it as is
    lin = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if activation == "gelu" and lin is not None and torch.backends.mkldnn.is_available():
        y = lin(h, weight, b, "gelu", [], "none")
    else:
        y = F.linear(h, weight, b)
        if activation == "gelu":
            y = F.gelu(y)
    if gamma is not None:
        y = y * gamma
    return y.permute(0, 3, 1, 2) if first else y


def _mkldnn_pointwise_ok(x):
    """oneDNN's fused convolution + post-op: float32 CPU tensors, in torch
    builds that ship the op (every official x86/ARM CPU build since 2.0)."""
    import torch

    if x.dtype != torch.float32 or x.device.type != "cpu":
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    return hasattr(torch.ops.mkldnn, "_convolution_pointwise")


def max_pool2d(x, *, pool_size, strides, padding, data_format, implementation):
    """``F.max_pool2d`` on the NCHW view of the input as it lies (Keras
    copies channels_last data to NCHW and back), with the "same" padding
    from the static size: symmetric padding goes to the pool, asymmetric
    padding is -inf padding first (a max never picks it). Static sizes keep
    it exportable: Keras' padding, computed from traced sizes, made
    TorchScript's ONNX export refuse Xception ("not constant").

    Measured against Keras' (``implementation="native"``) on a contiguous
    channels_last input, batch 16, one thread, medians of 7 alternating
    calls in one process, quiet machine (AMD EPYC, AVX2; 2026-12-02):
    ResNet's 113x113x64 3x3/2 pool 230 -> 11 ms, Xception's 147x147x128
    "same" pool 779 -> 134 ms, 56x56x256 2x2/2 185 -> 8.5 ms; channels_first
    data (no copy either way) 249 -> 237 ms. Inside a model the input is
    often laid out for the pool already: ResNet50's predict_on_batch,
    batch 16, two threads, went 1.48 -> 1.44 s; Xception against
    keras.applications 2.12x -> 2.86x (``bench``)."""
    import torch.nn.functional as F

    prepared = _pool_input(x, pool_size, strides, padding, data_format)
    if prepared is None:  # a symbolic build: Keras' path handles "meta"
        return NotImplemented
    x, first, pad, box = prepared
    if box is not None:
        x = F.pad(x, box, value=float("-inf"))
    y = F.max_pool2d(x, pool_size, strides, pad)
    return y if first else y.permute(0, 2, 3, 1)


def _pool_input(x, pool_size, strides, padding, data_format):
    """``(view, first, pad, box)`` for a pool kernel, or ``None`` for a
    symbolic ("meta") tensor: ``view`` is the NCHW view of ``x`` as it
    lies, ``first`` whether ``x`` was channels_first, ``pad`` the pool's
    own padding (symmetric "same" padding, else 0) and ``box`` the
    ``F.pad`` box of asymmetric "same" padding (else ``None``), from
    static sizes."""
    x = _tensor(x)
    if x.device.type == "meta":
        return None
    first = data_format == "channels_first"
    x = x if first else x.permute(0, 3, 1, 2)
    if padding != "same":
        return x, first, 0, None
    ph = _common.same_padding(int(x.shape[2]), pool_size[0], strides[0], 1)
    pw = _common.same_padding(int(x.shape[3]), pool_size[1], strides[1], 1)
    if ph[0] == ph[1] and pw[0] == pw[1]:
        return x, first, (ph[0], pw[0]), None
    return x, first, 0, (pw[0], pw[1], ph[0], ph[1])


def average_pool2d(x, *, pool_size, strides, padding, data_format, implementation):
    """``F.avg_pool2d`` on the NCHW view of the input as it lies, the padded
    pixels left out of each window's count (TensorFlow's and JAX's "same").
    Symmetric padding goes to the pool (``count_include_pad=False``);
    asymmetric padding is zeros, and each window's sum is divided by the
    count of real pixels in it.

    Measured against Keras' (``implementation="native"``) on a contiguous
    channels_last input, batch 16, one thread, medians of 7 alternating
    calls, quiet machine (AMD EPYC, AVX2; 2026-12-02): DenseNet's
    56x56x256 2x2/2 transition 109 -> 4.0 ms, 28x28x512 35 -> 2.3 ms,
    Inception's 35x35x192 3x3/1 "same" 52 -> 3.4 ms. InceptionV3 against
    keras.applications (``bench``, batch 16): 1.35x -> 2.02x."""
    import torch.nn.functional as F

    prepared = _pool_input(x, pool_size, strides, padding, data_format)
    if prepared is None:  # a symbolic build: Keras' path handles "meta"
        return NotImplemented
    x, first, pad, box = prepared
    if box is not None:
        area = pool_size[0] * pool_size[1]
        ones = x.new_ones((1, 1, int(x.shape[2]), int(x.shape[3])))
        count = F.avg_pool2d(F.pad(ones, box), pool_size, strides) * area
        y = F.avg_pool2d(F.pad(x, box), pool_size, strides) * area / count
        return y if first else y.permute(0, 2, 3, 1)
    y = F.avg_pool2d(x, pool_size, strides, pad, count_include_pad=False)
    return y if first else y.permute(0, 2, 3, 1)


def _padding(x, kernel_size, strides, padding, dilation_rate):
    """``(x, padding for conv2d)``: symmetric "same" padding goes to the
    kernel, asymmetric padding is applied to ``x`` explicitly."""
    import torch.nn.functional as F

    if padding != "same":
        return x, 0
    ph = _common.same_padding(x.shape[2], kernel_size[0], strides[0], dilation_rate[0])
    pw = _common.same_padding(x.shape[3], kernel_size[1], strides[1], dilation_rate[1])
    if ph[0] == ph[1] and pw[0] == pw[1]:
        return x, (ph[0], pw[0])
    return F.pad(x, (pw[0], pw[1], ph[0], ph[1])), 0
