"""A plain-PyTorch program of a zoo model, the peer of ``keras-zoo-plus
bench --peer torch``.

A PyTorch user compares our torch backend with plain PyTorch, not with
keras.applications. torchvision and timm cannot be installed here (their
wheels pull CUDA), so the peer is written here: :func:`plain_torch_module`
turns a functional Keras model into an ordinary ``torch.nn.Module`` of
``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.ReLU``/``nn.ReLU6``/``nn.SiLU``,
``nn.MaxPool2d``, ``nn.Linear``... with the model's weights copied, run in
the graph's order on NCHW tensors. It is what a PyTorch user writes for
the same graph, the way torchvision does:

* ``eval()`` and ``torch.no_grad()``; ``channels_last`` memory
  (:func:`to_channels_last`), which oneDNN prefers;
* no BatchNormalization folding, no fused post-ops, no compilation: one
  module per Keras layer, in-place activations where nothing else reads
  their input (as torchvision's ``ReLU(inplace=True)``);
* TensorFlow's "same" padding is symmetric ``padding=`` when it can be,
  an ``F.pad`` before the convolution where it is not (stride 2 on an even
  size), as a PyTorch port of a TensorFlow model has to do.

The output equals the Keras model's (``bench`` checks it before timing).
Layers outside :data:`SUPPORTED` raise ``ValueError`` naming them.

Example:
    >>> model = keras_zoo_plus.applications.ResNet50(weights=None)
    >>> peer = plain_torch_module(model)   # eval mode, channels_last
    >>> with torch.no_grad():
    ...     y = peer(to_channels_last(x_nhwc))
"""

from __future__ import annotations

import functools
import types

import keras
import numpy as np

#: Keras layer classes (and subclasses) the peer knows.
SUPPORTED = (
    "InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Activation",
    "ZeroPadding2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "Dense",
    "Add", "Multiply", "Reshape", "Flatten", "Rescaling", "Normalization", "Dropout",
)


def to_channels_last(x_nhwc):
    """An NHWC array (NumPy or torch) as the NCHW tensor with channels_last
    memory that the peer takes: the same buffer, permuted (no copy for a
    contiguous torch tensor)."""
    import torch

    x = torch.as_tensor(np.asarray(x_nhwc) if not isinstance(x_nhwc, torch.Tensor) else x_nhwc)
    return x.permute(0, 3, 1, 2)


def plain_torch_module(model):
    """``model`` (functional, channels_last, built) as a plain
    ``torch.nn.Module`` in eval mode with its weights; its input is NCHW
    (:func:`to_channels_last`), its output what the model outputs (a 4-D
    output is returned NHWC, like the model's).

    Raises:
        TypeError: if ``model`` is not a functional ``keras.Model``.
        ValueError: if a layer is not one of :data:`SUPPORTED`, or is in
            channels_first.
    """
    import torch

    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise TypeError(f"`model` must be a functional keras.Model; received {model!r}.")
    steps, readers = [], {}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            if type(layer).__name__ == "InputLayer" or isinstance(layer, keras.layers.InputLayer):
                continue
            inputs = [id(t) for t in node.input_tensors]
            for key in inputs:
                readers[key] = readers.get(key, 0) + 1
            steps.append((layer, node, inputs, [id(t) for t in node.outputs]))
    modules = torch.nn.ModuleList()
    program = []
    for layer, node, inputs, outputs in steps:
        shape = tuple(node.input_tensors[0].shape)
        inplace = all(readers.get(k, 0) == 1 for k in inputs) and not any(
            k in {id(t) for t in model.inputs} for k in inputs)
        module = _module(layer, shape, inplace)
        modules.append(module)
        program.append((len(modules) - 1, inputs, outputs))
    peer = _classes().Program(modules, program, [id(t) for t in model.inputs],
                              [id(t) for t in model.outputs])
    return peer.eval().to(memory_format=torch.channels_last)


def _same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's "same" padding of one spatial axis: (before, after)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial_padding(layer, shape):
    """``(symmetric (ph, pw) or None, F.pad tuple or None)`` for a
    convolution or pooling layer on NHWC ``shape``."""
    kernel = getattr(layer, "kernel_size", None) or layer.pool_size
    strides = layer.strides
    dilation = getattr(layer, "dilation_rate", (1, 1))
    if layer.padding == "valid":
        return (0, 0), None
    (top, bottom) = _same_padding(shape[1], kernel[0], strides[0], dilation[0])
    (left, right) = _same_padding(shape[2], kernel[1], strides[1], dilation[1])
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), (left, right, top, bottom)


def _check_format(layer):
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise ValueError(
            f"plain_torch_module: layer {layer.name!r} is in {layer.data_format}; the peer is "
            "built from a channels_last model.")


def _tensor(value):
    import torch

    return torch.as_tensor(np.array(keras.ops.convert_to_numpy(value), dtype="float32"))


def _module(layer, shape, inplace):
    import torch
    from torch import nn

    _check_format(layer)
    kinds = [cls.__name__ for cls in type(layer).__mro__]
    if "DepthwiseConv2D" in kinds:
        padding, pad = _spatial_padding(layer, shape)
        kernel = _tensor(layer.kernel)  # (kh, kw, C, multiplier)
        channels, multiplier = kernel.shape[2], kernel.shape[3]
        conv = nn.Conv2d(channels, channels * multiplier, tuple(layer.kernel_size),
                         stride=tuple(layer.strides), padding=padding,
                         dilation=tuple(layer.dilation_rate), groups=channels,
                         bias=layer.use_bias)
        conv.weight.data = kernel.permute(2, 3, 0, 1).reshape(
            channels * multiplier, 1, *kernel.shape[:2]).contiguous()
        if layer.use_bias:
            conv.bias.data = _tensor(layer.bias)
        return _with_activation(_padded(conv, pad), layer.activation)
    if "Conv2D" in kinds:
        padding, pad = _spatial_padding(layer, shape)
        kernel = _tensor(layer.kernel)  # (kh, kw, C_in / groups, C_out)
        groups = getattr(layer, "groups", 1)
        conv = nn.Conv2d(kernel.shape[2] * groups, kernel.shape[3], tuple(layer.kernel_size),
                         stride=tuple(layer.strides), padding=padding,
                         dilation=tuple(layer.dilation_rate), groups=groups,
                         bias=layer.use_bias)
        conv.weight.data = kernel.permute(3, 2, 0, 1).contiguous()
        if layer.use_bias:
            conv.bias.data = _tensor(layer.bias)
        return _with_activation(_padded(conv, pad), layer.activation)
    if "BatchNormalization" in kinds:
        if layer.axis not in (-1, len(shape) - 1):
            raise ValueError(f"plain_torch_module: {layer.name!r} normalises axis {layer.axis}.")
        n = shape[-1]
        bn = nn.BatchNorm2d(n, eps=layer.epsilon) if len(shape) == 4 else nn.BatchNorm1d(
            n, eps=layer.epsilon)
        bn.running_mean.data = _tensor(layer.moving_mean)
        bn.running_var.data = _tensor(layer.moving_variance)
        bn.weight.data = _tensor(layer.gamma) if layer.scale else torch.ones(n)
        bn.bias.data = _tensor(layer.beta) if layer.center else torch.zeros(n)
        return bn
    if "ReLU" in kinds:
        if float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
            raise ValueError(f"plain_torch_module: leaky ReLU {layer.name!r} is not supported.")
        cap = layer.max_value
        if cap is None:
            return nn.ReLU(inplace=inplace)
        if float(cap) == 6.0:
            return nn.ReLU6(inplace=inplace)
        return nn.Hardtanh(0.0, float(cap), inplace=inplace)
    if "Activation" in kinds:
        return _activation(layer.activation, inplace, layer.name)
    if "ZeroPadding2D" in kinds:
        (top, bottom), (left, right) = layer.padding
        return nn.ZeroPad2d((left, right, top, bottom))
    if "MaxPooling2D" in kinds or "AveragePooling2D" in kinds:
        padding, pad = _spatial_padding(layer, shape)
        if "MaxPooling2D" in kinds:
            pool = nn.MaxPool2d(tuple(layer.pool_size), tuple(layer.strides), padding=padding)
            return _padded(pool, pad, value=float("-inf"))
        if layer.padding != "valid":
            raise ValueError(f"plain_torch_module: 'same' average pooling {layer.name!r}.")
        return nn.AvgPool2d(tuple(layer.pool_size), tuple(layer.strides))
    if "GlobalAveragePooling2D" in kinds:
        return _classes().GlobalAverage(layer.keepdims)
    if "Dense" in kinds:
        if len(shape) != 2:
            raise ValueError(f"plain_torch_module: Dense {layer.name!r} on a {len(shape)}-D input.")
        kernel = _tensor(layer.kernel)
        dense = nn.Linear(kernel.shape[0], kernel.shape[1], bias=layer.use_bias)
        dense.weight.data = kernel.t().contiguous()
        if layer.use_bias:
            dense.bias.data = _tensor(layer.bias)
        return _with_activation(dense, layer.activation)
    if "Add" in kinds:
        return _classes().Sum()
    if "Multiply" in kinds:
        return _classes().Product()
    if "Reshape" in kinds or "Flatten" in kinds:
        target = tuple(layer.target_shape) if "Reshape" in kinds else (-1,)
        return _classes().Reshape(target)
    if "Rescaling" in kinds:
        scale, offset = np.asarray(layer.scale, "float32"), np.asarray(layer.offset, "float32")
        return _classes().Affine(_channel_vector(scale), _channel_vector(offset))
    if "Normalization" in kinds:
        mean = _tensor(layer.mean).reshape(-1)
        std = torch.clamp(torch.sqrt(_tensor(layer.variance).reshape(-1)),
                          min=keras.config.epsilon())
        return _classes().Affine(_channel_vector(1.0 / std), _channel_vector(-mean / std))
    if "Dropout" in kinds:
        return nn.Identity()
    raise ValueError(
        f"plain_torch_module: layer {layer.name!r} ({type(layer).__name__}) is not supported; "
        f"supported: {', '.join(SUPPORTED)}.")


def _channel_vector(value):
    """A scalar, or a per-channel vector shaped to broadcast over NCHW."""
    import torch

    t = torch.as_tensor(np.asarray(value, "float32"))
    return t if t.dim() == 0 else t.reshape(1, -1, 1, 1)


def _padded(module, pad, value=0.0):
    from torch import nn

    if pad is None:
        return module
    if value == 0.0:
        return nn.Sequential(nn.ZeroPad2d(pad), module)
    return nn.Sequential(nn.ConstantPad2d(pad, value), module)


def _with_activation(module, activation):
    from torch import nn

    name = getattr(activation, "__name__", str(activation))
    if name == "linear":
        return module
    return nn.Sequential(module, _activation(name, True, name))


def _activation(activation, inplace, where):
    from torch import nn

    name = getattr(activation, "__name__", activation)
    table = {
        "relu": lambda: nn.ReLU(inplace=inplace),
        "relu6": lambda: nn.ReLU6(inplace=inplace),
        "swish": lambda: nn.SiLU(inplace=inplace),
        "silu": lambda: nn.SiLU(inplace=inplace),
        "sigmoid": nn.Sigmoid,
        "hard_sigmoid": lambda: _classes().HardSigmoid(),
        "hard_silu": lambda: nn.Hardswish(inplace=inplace),
        "hard_swish": lambda: nn.Hardswish(inplace=inplace),
        "softmax": lambda: nn.Softmax(dim=-1),
        "linear": nn.Identity,
    }
    if name not in table:
        raise ValueError(f"plain_torch_module: activation {name!r} of {where!r} is not supported.")
    return table[name]()


@functools.cache
def _classes():
    """The peer's own small modules (torch is imported on first use only)."""
    import torch

    class Program(torch.nn.Module):
        """The modules, run in the Keras graph's order."""

        def __init__(self, modules, program, inputs, outputs):
            super().__init__()
            self.layers = modules
            self._program = program
            self._inputs = inputs
            self._outputs = outputs

        def forward(self, *xs):
            values = dict(zip(self._inputs, xs))
            for index, inputs, outputs in self._program:
                values[outputs[0]] = self.layers[index](*[values[k] for k in inputs])
            ys = [values[k] for k in self._outputs]
            ys = [y.permute(0, 2, 3, 1) if y.dim() == 4 else y for y in ys]
            return ys[0] if len(ys) == 1 else ys

    class GlobalAverage(torch.nn.Module):
        def __init__(self, keepdims):
            super().__init__()
            self.keepdims = keepdims

        def forward(self, x):
            y = torch.nn.functional.adaptive_avg_pool2d(x, 1)
            return y if self.keepdims else torch.flatten(y, 1)

    class Sum(torch.nn.Module):
        def forward(self, *xs):
            y = xs[0] + xs[1]
            for x in xs[2:]:
                y = y + x
            return y

    class Product(torch.nn.Module):
        def forward(self, *xs):
            y = xs[0] * xs[1]
            for x in xs[2:]:
                y = y * x
            return y

    class Reshape(torch.nn.Module):
        """Keras' NHWC target shape, on NCHW tensors."""

        def __init__(self, target):
            super().__init__()
            self.target = target

        def forward(self, x):
            if x.dim() == 4:
                x = x.permute(0, 2, 3, 1)
            y = x.reshape(x.shape[0], *self.target)
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y

    class Affine(torch.nn.Module):
        def __init__(self, scale, offset):
            super().__init__()
            self.register_buffer("scale", scale)
            self.register_buffer("offset", offset)

        def forward(self, x):
            return x * self.scale + self.offset

    class HardSigmoid(torch.nn.Module):
        """Keras' hard sigmoid: relu6(x + 3) / 6."""

        def forward(self, x):
            return torch.nn.functional.relu6(x + 3.0) / 6.0

    return types.SimpleNamespace(
        Program=Program, GlobalAverage=GlobalAverage, Sum=Sum, Product=Product,
        Reshape=Reshape, Affine=Affine, HardSigmoid=HardSigmoid)
