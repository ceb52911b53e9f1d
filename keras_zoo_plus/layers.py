"""Custom layers and activations, registered serializable under the
``keras_zoo_plus`` package so ``.keras`` files load after
``import keras_zoo_plus``.

The convolution layers are drop-in subclasses of their ``keras.layers``
namesakes that differ in one respect: the bias is added so that it is
correct on every backend in ``channels_first``. Keras 3.15.1's TensorFlow
``ops.add(x, bias)`` rewrites an add whose second operand squeezes to a
vector into ``tf.nn.bias_add`` and picks NHWC whenever the last dimension
equals the channel count, so a ``channels_first`` convolution whose output
width equals its number of filters (VGG16 at 64x64, block1_conv1) gets its
bias added along the width axis in eager mode. Putting the bias first
avoids that rewrite.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from keras_zoo_plus import ops as zoo_ops

PACKAGE = "keras_zoo_plus"


@keras.saving.register_keras_serializable(package=PACKAGE, name="relu6")
def relu6(x):
    """ReLU capped at 6 (MobileNet), ``min(max(x, 0), 6)``."""
    return ops.relu6(x)


def _accept_legacy_groups(layer_name, kwargs):
    """Drop the ``groups`` key Keras 2 writes into every convolution config.

    Keras 2 (tf.keras / tf_keras) stores ``groups: 1`` for
    ``DepthwiseConv2D`` and ``SeparableConv2D``; Keras 3 rejects the key
    (``Unrecognized keyword arguments ... {'groups': 1}``), which makes
    every Keras 2 era MobileNet file unloadable. ``groups=1`` means "no
    grouping" and is what these layers compute anyway; any other value
    describes a computation they cannot perform, so it is an error.
    """
    groups = kwargs.pop("groups", 1)
    if isinstance(groups, bool) or groups != 1:
        raise ValueError(
            f"{layer_name} does not support grouped convolution: `groups` must be 1 "
            f"(the value Keras 2 writes into its configs). Received: groups={groups!r}"
        )
    return kwargs


def add_bias(outputs, bias, data_format, rank=2):
    """``outputs + bias`` along the channel axis of ``data_format``."""
    if data_format == "channels_first":
        return ops.add(ops.reshape(bias, (1, -1) + (1,) * rank), outputs)
    return ops.add(outputs, bias)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with a bias that is correct in channels_first
    on every backend (see the module docstring).

    A grouped convolution with one input channel per group and one filter
    per group (``groups == filters ==`` input channels: ConvNeXt's 7x7
    "depthwise" Conv2D, kernel ``(kh, kw, 1, C)``) is the depthwise
    convolution of the same kernel reshaped to ``(kh, kw, C, 1)``, and runs
    as :func:`keras_zoo_plus.ops.depthwise_conv2d`: XLA's grouped
    convolution took 152 ms where the depthwise op took 10 (JAX, batch 8,
    56x56x96, 7x7), TensorFlow's 437 against 5 (benchmarks/README.md,
    "ConvNeXt ops"). Weights and config are Keras'.
    """

    def _is_depthwise(self):
        return self.groups > 1 and self.groups == self.filters and self.kernel.shape[2] == 1

    def call(self, inputs):
        op, kernel = zoo_ops.conv2d, self.kernel
        if self._is_depthwise():
            kh, kw = self.kernel_size
            op, kernel = zoo_ops.depthwise_conv2d, ops.reshape(kernel, (kh, kw, self.filters, 1))
        outputs = op(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs = add_bias(outputs, self.bias, self.data_format)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` computed by
    :func:`keras_zoo_plus.ops.depthwise_conv2d` (the fastest formulation for
    the backend) with a channels_first-safe bias.

    Also accepts the configs Keras 2 wrote (``groups: 1``), so legacy
    MobileNet ``.h5`` models load; see :func:`keras_zoo_plus.load_model`.

    Raises:
        ValueError: if ``groups`` is given and is not 1.

    Example:
        >>> layer = DepthwiseConv2D.from_config({"kernel_size": 3, "groups": 1})
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_accept_legacy_groups("DepthwiseConv2D", kwargs))

    def call(self, inputs):
        outputs = zoo_ops.depthwise_conv2d(
            inputs,
            self.kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs = add_bias(outputs, self.bias, self.data_format)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class SeparableConv2D(keras.layers.SeparableConv2D):
    """``keras.layers.SeparableConv2D`` computed by
    :func:`keras_zoo_plus.ops.separable_conv2d` with a channels_first-safe
    bias. Accepts the configs Keras 2 wrote: ``groups: 1``, and the unused
    ``kernel_initializer``/``kernel_regularizer``/``kernel_constraint``.

    Raises:
        ValueError: if ``groups`` is given and is not 1.
    """

    def __init__(self, *args, **kwargs):
        kwargs = _accept_legacy_groups("SeparableConv2D", kwargs)
        # Keras 2 writes its convolution base's kernel_* settings into the
        # config too; its separable layer never uses them (its kernels are
        # the depthwise_* and pointwise_* ones), Keras 3 rejects them.
        for key in ("kernel_initializer", "kernel_regularizer", "kernel_constraint"):
            kwargs.pop(key, None)
        super().__init__(*args, **kwargs)

    def call(self, inputs):
        outputs = zoo_ops.separable_conv2d(
            inputs,
            self.depthwise_kernel,
            self.pointwise_kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        if self.use_bias:
            outputs = add_bias(outputs, self.bias, self.data_format)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaxPooling2D(keras.layers.MaxPooling2D):
    """``keras.layers.MaxPooling2D`` computed by
    :func:`keras_zoo_plus.ops.max_pool2d`, which the torch and JAX
    exporters can convert: torch pads by the static size (Keras' traced
    "same" padding made TorchScript's ONNX export refuse Xception), and
    inside ``keras_zoo_plus.ops.export_scope`` JAX takes the maximum of
    strided slices (onnxruntime refuses jax2onnx's MaxPool). Weights,
    config and the function computed are Keras' own.

    Example:
        >>> layer = MaxPooling2D(3, strides=2, padding="same")
    """

    def call(self, inputs):
        return zoo_ops.max_pool2d(inputs, self.pool_size, self.strides, self.padding,
                                  self.data_format)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AveragePooling2D(keras.layers.AveragePooling2D):
    """``keras.layers.AveragePooling2D`` computed by
    :func:`keras_zoo_plus.ops.average_pool2d`: on torch/CPU the
    channels_last data is pooled without Keras' two copies, and "same"
    padding is left out of each window's count on every backend. Weights
    (none), config and the function computed are Keras' own.

    Example:
        >>> layer = AveragePooling2D(3, strides=1, padding="same")
    """

    def call(self, inputs):
        return zoo_ops.average_pool2d(inputs, self.pool_size, self.strides, self.padding,
                                      self.data_format)


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose inference pass (moving
    statistics: ``training`` false, or a frozen layer) goes through
    :func:`keras_zoo_plus.ops.batch_normalization`, one pass over the
    input on torch/CPU instead of Keras' three. Training-mode calls,
    ``renorm`` and every other backend are Keras' own code path; weights,
    config and the function computed are the same.

    Example:
        >>> layer = BatchNormalization(axis=-1, epsilon=1.001e-5, name="conv1_bn")
    """

    def call(self, inputs, training=None, mask=None):
        if (
            (training and self.trainable)
            or getattr(self, "renorm", False)  # Keras 3.8 has no renorm
            or not zoo_ops.has_kernel("batch_normalization", inputs)
        ):
            return super().call(inputs, training=training, mask=mask)
        dtype = keras.backend.result_type(inputs.dtype, "float32")
        if keras.backend.standardize_dtype(inputs.dtype) != dtype:
            inputs = ops.cast(inputs, dtype)
        outputs = zoo_ops.batch_normalization(
            inputs,
            ops.cast(self.moving_mean, dtype),
            ops.cast(self.moving_variance, dtype),
            axis=self.axis,
            offset=ops.cast(self.beta, dtype) if self.center else None,
            scale=ops.cast(self.gamma, dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        if keras.backend.standardize_dtype(outputs.dtype) == self.compute_dtype:
            return outputs  # no Cast node in an exported graph
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Normalization(keras.layers.Normalization):
    """``keras.layers.Normalization`` that reads its adapted mean and
    variance from its variables at every call.

    Keras computes the tensors it normalises with when the layer is adapted
    or its weights are loaded (``finalize_state``); its ``.h5`` loader
    calls that only for the layers it loads directly, so a Normalization
    inside a nested model kept mean 0 and variance 1 (measured with Keras
    3.15.1: a tf.keras EfficientNetB0 inside a transfer-learning classifier
    gave logits off by 31% of their largest). Reading the variables instead
    needs no finalisation. With ``mean``/``variance`` given as arguments
    (no variables; ConvNeXt, EfficientNetV2, ResNetRS) Keras keeps them as
    tensors made at build time, which a traced function captures from
    outside: tf2onnx turned those captures into two extra graph inputs
    (measured with tf2onnx 1.17, TensorFlow ConvNeXtTiny), an ONNX model
    onnxruntime cannot run without them. This layer keeps NumPy copies and
    makes them constants of the call instead, so every exporter inlines
    them. The function computed is Keras'
    ``(x - mean) / max(sqrt(variance), epsilon)`` either way.

    Example:
        >>> layer = Normalization(axis=-1)  # then adapt(), or load weights
    """

    def build(self, input_shape):
        super().build(input_shape)
        if self.input_mean is not None:
            self._constant_mean = np.asarray(keras.ops.convert_to_numpy(self.mean))
            self._constant_variance = np.asarray(keras.ops.convert_to_numpy(self.variance))

    def call(self, inputs):
        if not self.built:
            return super().call(inputs)
        if self.input_mean is not None:
            inputs = ops.cast(inputs, self.compute_dtype)
            mean = ops.convert_to_tensor(self._constant_mean, dtype=self.compute_dtype)
            variance = ops.convert_to_tensor(self._constant_variance, dtype=self.compute_dtype)
            scale = ops.maximum(ops.sqrt(variance), keras.backend.epsilon())
            if self.invert:
                return ops.add(mean, ops.multiply(inputs, scale))
            return ops.divide(ops.subtract(inputs, mean), scale)
        inputs = ops.cast(inputs, self.compute_dtype)
        rank = len(inputs.shape)
        keep = sorted(axis % rank for axis in self.axis)
        shape = [1] * rank
        for axis, size in zip(keep, self.adapt_mean.shape):
            shape[axis] = size
        mean = ops.cast(ops.reshape(self.adapt_mean, shape), self.compute_dtype)
        variance = ops.cast(ops.reshape(self.adapt_variance, shape), self.compute_dtype)
        scale = ops.maximum(ops.sqrt(variance), keras.backend.epsilon())
        if self.invert:
            return ops.add(mean, ops.multiply(inputs, scale))
        return ops.divide(ops.subtract(inputs, mean), scale)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledResidual(keras.layers.Layer):
    """``shortcut + scale * residual`` (the Inception-ResNet residual).

    keras.applications builds this with a ``Lambda`` (tf_keras) or an
    unregistered ``CustomScaleLayer`` (Keras 3); this layer serialises,
    has no weights (so the order of weighted layers stays the official
    one) and is elementwise, hence the same in both data formats.

    Args:
        scale: the float applied to the residual branch.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Raises:
        TypeError: when ``scale`` is not a real number.

    Example:
        >>> layer = ScaledResidual(0.17, name="block35_1")
        >>> y = layer([shortcut, residual])  # shortcut + 0.17 * residual
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(
                f"`scale` must be a float. Received: scale={scale!r}"
            )
        self.scale = float(scale)

    def call(self, inputs):
        shortcut, residual = inputs
        return ops.add(shortcut, ops.multiply(residual, self.scale))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config["scale"] = self.scale
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class LayerScale(keras.layers.Layer):
    """``x * gamma``, one learned scale per channel (ConvNeXt's layer
    scale, https://arxiv.org/abs/2103.17239).

    The layer tf.keras' ConvNeXt files name ``LayerScale``: same config
    (``init_values``, ``projection_dim``), same weight (``gamma`` of shape
    ``(projection_dim,)``, initialised to ``init_values``), same function.
    ``axis`` (not in tf.keras' config, which means the last axis) puts the
    channels elsewhere: ``axis=1`` for channels_first feature maps.

    Args:
        init_values: the initial value of every scale.
        projection_dim: the number of channels (size of ``axis``).
        axis: the channel axis, ``-1`` (default) or ``1``.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Raises:
        TypeError: if ``init_values`` is not a real number or
            ``projection_dim`` is not an integer.
        ValueError: if ``projection_dim`` is not positive or ``axis`` is
            neither -1 nor 1.

    Example:
        >>> layer = LayerScale(1e-6, 96, name="stage_0_block_0_layer_scale")
        >>> y = layer(x)  # x: (..., 96)
    """

    def __init__(self, init_values, projection_dim, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or axis not in (-1, 1):
            raise ValueError(
                f"`axis` must be -1 (channels last) or 1 (channels first). Received: axis={axis!r}"
            )
        if isinstance(init_values, bool) or not isinstance(init_values, (int, float)):
            raise TypeError(
                f"`init_values` must be a float. Received: init_values={init_values!r}"
            )
        if isinstance(projection_dim, bool) or not isinstance(projection_dim, int):
            raise TypeError(
                "`projection_dim` must be a positive integer. "
                f"Received: projection_dim={projection_dim!r}"
            )
        if projection_dim < 1:
            raise ValueError(
                "`projection_dim` must be a positive integer. "
                f"Received: projection_dim={projection_dim!r}"
            )
        self.init_values = float(init_values)
        self.projection_dim = projection_dim
        self.axis = axis

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(self.projection_dim,),
            initializer=keras.initializers.Constant(self.init_values),
            trainable=True,
        )

    def call(self, inputs):
        gamma = ops.cast(self.gamma, inputs.dtype)
        if self.axis == 1 and len(inputs.shape) > 2:
            gamma = ops.reshape(gamma, (-1,) + (1,) * (len(inputs.shape) - 2))
        return ops.multiply(inputs, gamma)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(init_values=self.init_values, projection_dim=self.projection_dim)
        if self.axis != -1:  # tf.keras' config (no axis) stays as it was
            config["axis"] = self.axis
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class StochasticDepth(keras.layers.Layer):
    """Drops a whole residual branch per sample while training (ConvNeXt's
    stochastic depth); the identity otherwise.

    The layer tf.keras' ConvNeXt files name ``StochasticDepth`` (written
    when ``drop_path_rate > 0``). In training each sample's branch is kept
    with probability ``1 - drop_path_rate`` and scaled by
    ``1 / (1 - drop_path_rate)``, tf.keras' rule
    (``x / keep * floor(keep + uniform)``); the random draws are Keras'
    own, so they differ from TensorFlow's.

    Args:
        drop_path_rate: the probability to drop, in ``[0, 1)``.
        seed: optional seed of the random draws.
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Raises:
        TypeError: if ``drop_path_rate`` is not a real number.
        ValueError: if ``drop_path_rate`` is not in ``[0, 1)``.

    Example:
        >>> branch = StochasticDepth(0.1, name="block_0_stochastic_depth")(branch)
    """

    def __init__(self, drop_path_rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(drop_path_rate, bool) or not isinstance(drop_path_rate, (int, float)):
            raise TypeError(
                "`drop_path_rate` must be a float in [0, 1). "
                f"Received: drop_path_rate={drop_path_rate!r}"
            )
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(
                "`drop_path_rate` must be a float in [0, 1). "
                f"Received: drop_path_rate={drop_path_rate!r}"
            )
        self.drop_path_rate = float(drop_path_rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.drop_path_rate == 0.0:
            return inputs
        keep = 1.0 - self.drop_path_rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = ops.floor(
            keep + keras.random.uniform(shape, dtype=inputs.dtype, seed=self.seed_generator)
        )
        return ops.multiply(ops.divide(inputs, keep), mask)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(drop_path_rate=self.drop_path_rate, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class LayerNormalization(keras.layers.LayerNormalization):
    """``keras.layers.LayerNormalization`` computed by
    :func:`keras_zoo_plus.ops.layer_normalization` when it normalises over
    one axis (ConvNeXt's channel axis): the fastest formulation measured
    for the backend, and correct for ``axis=1`` on torch, where Keras
    3.15.1 hands any single axis to ``torch.nn.functional.layer_norm``,
    which normalises the *last* axis (a channels_first map of shape
    ``(2, 96, 16, 20)`` raised "expected input with shape [*, 96]").
    Several axes and ``rms_scaling`` are Keras' own path. Weights, config
    and the function computed are Keras'.

    Example:
        >>> layer = LayerNormalization(axis=1, epsilon=1e-6, name="stem_layernorm")
    """

    def call(self, inputs):
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        if len(axes) != 1 or self.rms_scaling:
            return super().call(inputs)
        outputs = zoo_ops.layer_normalization(
            inputs, self.gamma if self.scale else None, self.beta if self.center else None,
            axis=axes[0], epsilon=self.epsilon,
        )
        return ops.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelDense(keras.layers.Dense):
    """``keras.layers.Dense`` over the channel axis of a feature map: the
    last axis in ``channels_last`` (where it is Keras' Dense), axis 1 in
    ``channels_first``. ConvNeXt's pointwise convolutions are Dense layers
    on channels-last maps; this keeps their weights (``kernel`` of shape
    ``(in_channels, units)``, ``bias``) and names for both data formats, so
    the official files load into either.

    Args:
        units: output channels.
        data_format: ``"channels_last"`` or ``"channels_first"`` (resolved
            by the caller; None means the global default).
        **kwargs: ``keras.layers.Dense`` arguments.

    Raises:
        ValueError: for another ``data_format``, or a channels_first input
            of rank other than 4.

    Example:
        >>> y = ChannelDense(384, data_format="channels_first", name="pw")(x)  # x: (B, 96, H, W)
    """

    def __init__(self, units, data_format=None, **kwargs):
        super().__init__(units, **kwargs)
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                '`data_format` must be "channels_last" or "channels_first". '
                f"Received: data_format={data_format!r}"
            )
        self.data_format = data_format

    def _first(self, shape):
        return self.data_format == "channels_first" and len(shape) != 2

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if not self._first(input_shape):
            return super().build(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} with channels_first takes 4D inputs "
                f"(batch, channels, rows, cols). Received: input_shape={input_shape}"
            )
        super().build((input_shape[0], input_shape[2], input_shape[3], input_shape[1]))
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={1: input_shape[1]})

    def call(self, inputs, training=None):
        if not self._first(inputs.shape):
            return super().call(inputs, training=training)
        # The one channels_first formulation, also what fused inference runs.
        outputs = zoo_ops.channel_dense(
            inputs, self.kernel, self.bias if self.use_bias else None,
            data_format=self.data_format,
        )
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if not self._first(input_shape):
            return super().compute_output_shape(input_shape)
        return (input_shape[0], self.units) + input_shape[2:]

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config



# --------------------------------------------------------------------------
# TensorFlow ops in tf.keras graphs (TFOpLambda)
# --------------------------------------------------------------------------

class TFOp(NamedTuple):
    """How a TensorFlow op is computed with ``keras.ops``.

    Attributes:
        function: the ``keras.ops`` function.
        params: TensorFlow's parameters, in TensorFlow's order, as
            ``(name, default)``; :data:`REQUIRED` marks one without a default.
        args: the TensorFlow parameters passed positionally to ``function``.
        kwargs: ``(keras_keyword, tensorflow_parameter)`` pairs passed by
            keyword.
        operands: the TensorFlow parameters that are tensors: a constant
            there (a number list tf.keras wrote for a constant tensor) becomes
            an array of the layer's dtype.
    """

    function: str
    params: tuple
    args: tuple
    kwargs: tuple
    operands: frozenset


REQUIRED = "<required>"


def _tf_op(call, signature, operands=None):
    """``_tf_op("mean(input_tensor, axis=axis)", "input_tensor, axis=None,
    name=None")``: the ``keras.ops`` call on the left, TensorFlow's
    signature on the right. Parameters the call does not use may only hold
    their TensorFlow default (``name`` is the op's name: ignored)."""
    function, inner = call.rstrip(")").split("(")
    args, kwargs = [], []
    for item in (part.strip() for part in inner.split(",")):
        if "=" in item:
            key, value = item.split("=")
            kwargs.append((key, value))
        else:
            args.append(item)
    params = []
    for item in (part.strip() for part in signature.split(",")):
        name, _, default = item.partition("=")
        params.append((name, ast.literal_eval(default) if default else REQUIRED))
    names = [name for name, _ in params]
    used = args + [value for _, value in kwargs]
    assert set(used) <= set(names), (call, signature)
    if operands is None:  # elementwise ops: every positional argument
        operands = args
    return TFOp(function, tuple(params), tuple(args), tuple(kwargs), frozenset(operands))


_BINARY = "x, y, name=None"
_UNARY = "x, name=None"

#: TensorFlow op (the ``function`` of a tf.keras ``TFOpLambda`` config, i.e.
#: the symbol without ``tf.``) -> its ``keras.ops`` computation. The
#: parameter names are TensorFlow's (tf.keras writes the op's arguments by
#: those names); tests/test_legacy_families.py checks them against
#: TensorFlow and every entry's result against tf.keras.
TF_OPS = {
    "__operators__.add": _tf_op("add(x, y)", _BINARY),
    "math.add": _tf_op("add(x, y)", _BINARY),
    "math.subtract": _tf_op("subtract(x, y)", _BINARY),
    "math.multiply": _tf_op("multiply(x, y)", _BINARY),
    "math.truediv": _tf_op("true_divide(x, y)", _BINARY),
    "math.pow": _tf_op("power(x, y)", _BINARY),
    "math.maximum": _tf_op("maximum(x, y)", _BINARY),
    "math.minimum": _tf_op("minimum(x, y)", _BINARY),
    "math.negative": _tf_op("negative(x)", _UNARY),
    "math.abs": _tf_op("absolute(x)", _UNARY),
    "math.square": _tf_op("square(x)", _UNARY),
    "math.sqrt": _tf_op("sqrt(x)", _UNARY),
    "math.rsqrt": _tf_op("rsqrt(x)", _UNARY),
    "math.exp": _tf_op("exp(x)", _UNARY),
    "math.log": _tf_op("log(x)", _UNARY),
    "math.sigmoid": _tf_op("sigmoid(x)", _UNARY),
    "math.tanh": _tf_op("tanh(x)", _UNARY),
    "nn.relu": _tf_op("relu(features)", "features, name=None"),
    "nn.relu6": _tf_op("relu6(features)", "features, name=None"),
    # tf.nn.swish is the same op (TensorFlow writes it as nn.silu).
    "nn.silu": _tf_op("silu(features)", "features, beta=1.0"),
    "nn.gelu": _tf_op(
        "gelu(features, approximate=approximate)", "features, approximate=False, name=None"
    ),
    # TensorFlow's axis=None means the last axis.
    "nn.softmax": _tf_op("softmax(logits, axis=axis)", "logits, axis=-1, name=None"),
    "math.reduce_mean": _tf_op(
        "mean(input_tensor, axis=axis, keepdims=keepdims)",
        "input_tensor, axis=None, keepdims=False, name=None",
    ),
    "math.reduce_sum": _tf_op(
        "sum(input_tensor, axis=axis, keepdims=keepdims)",
        "input_tensor, axis=None, keepdims=False, name=None",
    ),
    "math.reduce_max": _tf_op(
        "max(input_tensor, axis=axis, keepdims=keepdims)",
        "input_tensor, axis=None, keepdims=False, name=None",
    ),
    "reshape": _tf_op("reshape(tensor, shape)", "tensor, shape, name=None", ["tensor"]),
    "concat": _tf_op("concatenate(values, axis=axis)", "values, axis, name=None", ["values"]),
    # tf.transpose and tf.squeeze reach the graph as their v1 versions.
    "compat.v1.transpose": _tf_op(
        "transpose(a, axes=perm)", "a, perm=None, name='transpose', conjugate=False", ["a"]
    ),
    "expand_dims": _tf_op("expand_dims(input, axis)", "input, axis, name=None", ["input"]),
    "compat.v1.squeeze": _tf_op(
        "squeeze(input, axis=axis)", "input, axis=None, name=None, squeeze_dims=None", ["input"]
    ),
    "clip_by_value": _tf_op(
        "clip(t, clip_value_min, clip_value_max)", "t, clip_value_min, clip_value_max, name=None"
    ),
    "linalg.matmul": _tf_op(
        "matmul(a, b)",
        "a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False, "
        "a_is_sparse=False, b_is_sparse=False, output_type=None, grad_a=False, grad_b=False, "
        "name=None",
    ),
}

#: How a tensor input stands in :class:`TFOpLambda`'s ``arguments``:
#: ``{INPUT_KEY: i}`` is the layer's ``i``-th input.
INPUT_KEY = "__input__"


def _is_input(value):
    return isinstance(value, dict) and set(value) == {INPUT_KEY}


def _resolve(value, tensors):
    if _is_input(value):
        return tensors[value[INPUT_KEY]]
    if isinstance(value, dict):
        return {key: _resolve(item, tensors) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_resolve(item, tensors) for item in value]
    return value


def _as_tuple(value):
    """Attribute lists (an axis list, a shape) as tuples, which every
    backend's ``keras.ops`` accepts."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuple(item) for item in value)
    return value


def _is_number_list(value):
    if isinstance(value, (list, tuple)):
        return all(_is_number_list(item) for item in value)
    return isinstance(value, (int, float))


def _count_inputs(value):
    if _is_input(value):
        return [value[INPUT_KEY]]
    if isinstance(value, dict):
        return [i for item in value.values() for i in _count_inputs(item)]
    if isinstance(value, (list, tuple)):
        return [i for item in value for i in _count_inputs(item)]
    return []


def tf_op_arguments(function, arguments, layer_name):
    """Check a TensorFlow op call against :data:`TF_OPS`; return the
    arguments with TensorFlow's defaults filled in.

    Args:
        function: the op, as tf.keras writes it (``"math.multiply"``).
        arguments: ``{tensorflow_parameter: value}``; ``None`` values stand
            for the default, as in TensorFlow.
        layer_name: the layer, for the messages.

    Returns:
        ``{tensorflow_parameter: value}`` for every parameter but ``name``.

    Raises:
        ValueError: naming the layer and the op when the op is not in
            :data:`TF_OPS`, when an argument is not one of its parameters,
            when a required one is missing, or when one that ``keras.ops``
            cannot express holds a value other than TensorFlow's default.
    """
    spec = TF_OPS.get(function)
    if spec is None:
        raise ValueError(
            f"Cannot load the layer {layer_name!r}: it is a TFOpLambda calling the TensorFlow "
            f"op `tf.{function}`, which keras_zoo_plus does not map onto keras.ops. Mapped "
            f"ops: {', '.join('tf.' + name for name in sorted(TF_OPS))}."
        )
    if not isinstance(arguments, dict):
        raise ValueError(
            f"The layer {layer_name!r} (TFOpLambda, `tf.{function}`) needs `arguments`, a dict "
            f"of the op's arguments by TensorFlow parameter name. Received: "
            f"arguments={arguments!r}. A tf.keras config is converted by "
            "keras_zoo_plus.load_model."
        )
    defaults = dict(spec.params)
    unknown = sorted(set(arguments) - set(defaults))
    if unknown:
        raise ValueError(
            f"The layer {layer_name!r} calls `tf.{function}` with {unknown}, which are not "
            f"parameters of that op ({', '.join(defaults)})."
        )
    used = set(spec.args) | {tf_name for _, tf_name in spec.kwargs}
    resolved = {}
    for name, default in spec.params:
        if name == "name":
            continue
        value = arguments.get(name)
        if value is None:
            value = default
        if value is REQUIRED:
            raise ValueError(
                f"The layer {layer_name!r} calls `tf.{function}` without its argument {name!r}."
            )
        if name not in used and value != default:
            raise ValueError(
                f"The layer {layer_name!r} calls `tf.{function}` with {name}={value!r}; "
                f"keras_zoo_plus maps `tf.{function}` onto keras.ops.{spec.function} only "
                f"with {name}={default!r} (TensorFlow's default)."
            )
        resolved[name] = value
    return resolved


@keras.saving.register_keras_serializable(package=PACKAGE)
class TFOpLambda(keras.layers.Layer):
    """A TensorFlow op of a tf.keras (Keras 2) graph, computed with
    ``keras.ops`` on every backend.

    tf.keras records ``x + y``, ``x * 0.5``, ``tf.nn.silu(x)``, ... applied
    to symbolic tensors as ``TFOpLambda`` layers that call the TensorFlow
    op named by ``function``. This layer computes the same op by the rule
    of :data:`TF_OPS`: TensorFlow's arguments by parameter name, the
    ``keras.ops`` function and which of them it receives.
    :func:`keras_zoo_plus.load_model` (and ``keras.saving.load_model``
    with :func:`custom_objects`) turns tf.keras' configs into this one.

    Args:
        function: the TensorFlow op without ``tf.`` (``"math.multiply"``).
        arguments: ``{tensorflow_parameter: value}``; the value
            ``{"__input__": i}`` stands for the ``i``-th input of the
            layer, anything else is a constant (numbers, lists, ``None``
            for TensorFlow's default).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ...).

    Raises:
        ValueError: when the op is not mapped or its arguments cannot be
            expressed (see :func:`tf_op_arguments`); the message names the
            layer and the op.

    Example:
        >>> add = TFOpLambda("__operators__.add", {"x": {"__input__": 0}, "y": 3.0})
        >>> y = add(x)  # x + 3.0
    """

    def __init__(self, function, arguments=None, **kwargs):
        kwargs.pop("autocast", None)
        # TensorFlow ops keep their inputs' dtypes, as tf.keras' layer does.
        super().__init__(autocast=False, **kwargs)
        self._arguments = tf_op_arguments(function, arguments, self.name)
        self.function = function
        self.arguments = arguments
        self._spec = TF_OPS[function]
        self._inputs = sorted(set(_count_inputs(arguments)))
        if self._inputs != list(range(len(self._inputs))) or not self._inputs:
            raise ValueError(
                f"The layer {self.name!r} (TFOpLambda, `tf.{function}`) must use its inputs "
                f"0..n-1 in `arguments`, each at least once. Received: arguments={arguments!r}"
            )

    def _value(self, name, value):
        if name not in self._spec.operands:
            return _as_tuple(value)
        if isinstance(value, (list, tuple)) and _is_number_list(value):
            # A constant tensor tf.keras wrote as a number list.
            array = np.asarray(value)
            return array.astype(self.compute_dtype) if array.dtype.kind == "f" else array
        return value

    def call(self, inputs):
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(tensors) != len(self._inputs):
            raise ValueError(
                f"The layer {self.name!r} (TFOpLambda, `tf.{self.function}`) takes "
                f"{len(self._inputs)} input(s). Received: {len(tensors)}"
            )
        values = {
            name: self._value(name, _resolve(value, tensors))
            for name, value in self._arguments.items()
        }
        args = [values[name] for name in self._spec.args]
        kwargs = {key: values[name] for key, name in self._spec.kwargs}
        return getattr(ops, self._spec.function)(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(function=self.function, arguments=self.arguments)
        return config


def custom_objects():
    """Every object a saved model of our families, or a tf.keras (Keras 2)
    model of any ``tf_keras.applications`` family, may name, by the names
    those files use (``relu6``, ``DepthwiseConv2D``, ``LayerScale``, ...).

    Besides our layers it holds:

    - ``TFOpLambda`` (:class:`TFOpLambda`) and ``LayerScale``,
      ``StochasticDepth`` and ``Custom>CustomScaleLayer``/``CustomScaleLayer``
      (the Inception-ResNet residual, :class:`ScaledResidual`), the layers
      tf.keras files name;
    - ``Normalization`` (:class:`Normalization`), which keeps its adapted
      statistics when nested (Keras' own loses them on load);
    - ``Functional``: :class:`keras_zoo_plus.saving.Keras2Functional`,
      which turns a tf.keras functional config into one Keras 3 can build
      (``TFOpLambda`` nodes, ``/`` in layer names, nested models) and
      leaves Keras 3 configs alone. It is what lets
      ``keras.saving.load_model`` load those ``.h5`` files.

    Returns:
        A new dict ``{name: object}`` for ``custom_objects=`` of
        ``keras.saving.load_model`` (``keras_zoo_plus.load_model`` passes it
        for you). ``Conv2D`` maps to our subclass, which only fixes the
        channels_first bias on TensorFlow and computes the same function.

    Example:
        >>> model = keras.saving.load_model("mobilenet.h5", custom_objects=custom_objects())
    """
    from keras_zoo_plus.saving import Keras2Functional  # saving imports this module

    return {
        "relu6": relu6,
        "Conv2D": Conv2D,
        "DepthwiseConv2D": DepthwiseConv2D,
        "SeparableConv2D": SeparableConv2D,
        "MaxPooling2D": MaxPooling2D,
        "AveragePooling2D": AveragePooling2D,
        "ScaledResidual": ScaledResidual,
        "Normalization": Normalization,
        # tf.keras writes the registered name in a flat model's config, the
        # class name (beside registered_name) in a nested one's.
        "Custom>CustomScaleLayer": ScaledResidual,
        "CustomScaleLayer": ScaledResidual,
        "LayerScale": LayerScale,
        "StochasticDepth": StochasticDepth,
        "ChannelDense": ChannelDense,
        "TFOpLambda": TFOpLambda,
        "Functional": Keras2Functional,
    }
