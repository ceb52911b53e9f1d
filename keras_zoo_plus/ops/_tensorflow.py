"""TensorFlow kernels: channels_first convolutions on a CPU-only
TensorFlow run NHWC between two transposes (see :mod:`keras_zoo_plus.ops`:
the CPU ``Conv2D`` kernel accepts NCHW only with oneDNN).

Hooks: ``IMPLEMENTATIONS``, ``select_implementation``, ``conv2d``,
``depthwise_conv2d``; the rest is :mod:`keras_zoo_plus.ops._portable`
(grappler and XLA already fuse Convolution -> BatchNorm -> ReLU).
"""

from __future__ import annotations

import functools

import keras

from keras_zoo_plus.ops import _common

# "channels_last": the native op on NHWC data between two transposes.
IMPLEMENTATIONS = ("channels_last",)


@functools.cache
def _cpu_only():
    """Whether TensorFlow sees CPU devices only (fixed once it starts)."""
    import tensorflow as tf

    return all(d.device_type == "CPU" for d in tf.config.list_logical_devices())


def select_implementation(x=None, data_format=None, op=None):
    """``"channels_last"`` for channels_first convolutions on a CPU-only
    TensorFlow, ``"native"`` otherwise (``tf.nn.depthwise_conv2d`` is
    already fast; ``data_format=None`` never asks). Convolutions take
    ``"channels_last"`` inside ``export_scope`` too, where :func:`conv2d`
    gives grouped ones an exportable form."""
    if op == "conv2d" and _common.in_export_scope():
        return "channels_last"
    if data_format == "channels_first" and _cpu_only():
        # Without oneDNN the CPU Conv2D kernel refuses NCHW; with it, NHWC
        # plus transposes measured 115 vs 150 ms on four 56x56x64 3x3
        # convolutions, batch 16 (module docstring of keras_zoo_plus.ops).
        return "channels_last"
    return "native"


def _nhwc(op, x, data_format):
    """``op(x, "channels_last")`` for ``x`` in ``data_format``, returned in
    that format (transposed in and out for channels_first)."""
    if data_format == "channels_last":
        return op(x, data_format)
    y = op(keras.ops.transpose(x, (0, 2, 3, 1)), "channels_last")
    return keras.ops.transpose(y, (0, 3, 1, 2))


def depthwise_conv2d(x, kernel, *, strides, padding, data_format, dilation_rate, implementation):
    def native(x, data_format):
        return keras.ops.depthwise_conv(
            x, kernel, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate,
        )

    return _nhwc(native, x, data_format)


def conv2d(x, kernel, *, strides, padding, data_format, dilation_rate, implementation):
    def native(x, data_format):
        if _common.in_export_scope() and x.shape[-1] != kernel.shape[-2]:
            # A grouped convolution: Keras runs it inside a nested
            # tf.function(jit_compile=True) ("broken on CPU without XLA";
            # TensorFlow 2.21's CPU kernel runs it, with oneDNN or not),
            # which tf2onnx leaves as a StatefulPartitionedCall node that
            # onnxruntime cannot run (RegNet). While exporting, the plain
            # op: ONNX Conv with a group attribute.
            import tensorflow as tf

            return tf.nn.convolution(x, kernel, strides=strides, padding=padding.upper(),
                                     dilations=dilation_rate, data_format="NHWC")
        return keras.ops.conv(
            x, kernel, strides=strides, padding=padding, data_format=data_format,
            dilation_rate=dilation_rate,
        )

    return _nhwc(native, x, data_format)
