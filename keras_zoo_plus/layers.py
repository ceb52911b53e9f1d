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

import keras
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
    on every backend (see the module docstring)."""

    def call(self, inputs):
        outputs = zoo_ops.conv2d(
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
    bias. Accepts the ``groups: 1`` key of Keras 2 configs.

    Raises:
        ValueError: if ``groups`` is given and is not 1.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **_accept_legacy_groups("SeparableConv2D", kwargs))

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
        return ops.cast(outputs, self.compute_dtype)


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


def custom_objects():
    """Every object a saved model of our families may name, by the names
    Keras 2 era files use (``relu6``, ``DepthwiseConv2D``, ...).

    Returns:
        A new dict ``{name: object}`` for ``custom_objects=`` of
        ``keras.models.load_model`` (``keras_zoo_plus.load_model`` passes it
        for you). ``Conv2D`` maps to our subclass, which only fixes the
        channels_first bias on TensorFlow and computes the same function.

    Example:
        >>> model = keras.models.load_model("mobilenet.h5", custom_objects=custom_objects())
    """
    return {
        "relu6": relu6,
        "Conv2D": Conv2D,
        "DepthwiseConv2D": DepthwiseConv2D,
        "SeparableConv2D": SeparableConv2D,
        "ScaledResidual": ScaledResidual,
    }
