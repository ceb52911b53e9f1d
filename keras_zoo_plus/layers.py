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
    the backend) with a channels_first-safe bias."""

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
    bias."""

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


def custom_objects():
    """Every object a saved model of our families may name, by the names
    Keras 2 era files use (``relu6``, ``DepthwiseConv2D``, ...)."""
    return {
        "relu6": relu6,
        "Conv2D": Conv2D,
        "DepthwiseConv2D": DepthwiseConv2D,
        "SeparableConv2D": SeparableConv2D,
    }
