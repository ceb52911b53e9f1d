"""Backend-aware kernels behind keras.ops-shaped functions.

Backend-specific code lives here only, behind one function with a portable
fallback, chosen by measurement and covered by parity tests on every
backend.
"""

from __future__ import annotations

import keras


def depthwise_conv2d(x, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Depthwise 2D convolution; same contract as ``keras.ops.depthwise_conv``."""
    return keras.ops.depthwise_conv(
        x, kernel, strides=strides, padding=padding, data_format=data_format,
        dilation_rate=dilation_rate,
    )


def separable_conv2d(
    x, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None,
    dilation_rate=1,
):
    """Depthwise then 1x1 pointwise convolution; same contract as
    ``keras.ops.separable_conv``."""
    x = depthwise_conv2d(
        x, depthwise_kernel, strides=strides, padding=padding, data_format=data_format,
        dilation_rate=dilation_rate,
    )
    return keras.ops.conv(x, pointwise_kernel, strides=1, padding="valid", data_format=data_format)
