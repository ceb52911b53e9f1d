"""Deterministic, non-degenerate synthetic weights.

Used wherever real ImageNet weights cannot be downloaded: the oracle
tests (tf_keras and our models get the same arrays), ``keras-zoo-plus
check`` and the benchmarks. Arrays depend only on the seed, the position
of the weighted layer, the position of the variable in the layer, the
variable's short name and its shape, so models from different Keras
releases (whose layer names may differ) get identical weights as long as
their weighted layers come in the same order.

This module needs only NumPy.
"""

from __future__ import annotations

import math

import numpy as np


def short_name(name):
    """``"conv1/conv/kernel:0"`` or ``"kernel"`` -> ``"kernel"``."""
    return name.split("/")[-1].split(":")[0]


#: Depthwise kernels get this fraction of He's standard deviation. With He's
#: own, stacks of inverted residuals are chaotic under random weights:
#: float32 rounding is amplified through the blocks until the output moves
#: by more than the oracle tolerance. Measured with tf_keras, float32
#: against float64 (max |difference| / max |output|), He's gain -> 0.6:
#: MobileNetV2 no-top 2.3e-5 -> 2.3e-6 (alpha 1.3: 3.6e-5; alpha 0.35:
#: 1.9e-5 -> 1.6e-6), MobileNetV3Large no-top 9.2e-6 (activations up to
#: 194) -> 1.2e-6 (0.707), MobileNet, MobileNetV3Small and Xception no worse
#: (Xception's features: max 7.9e6 -> 225), and every output still O(1).
DEPTHWISE_GAIN = 0.6


def synthesize_variable(seed, layer_index, var_index, name, shape):
    """One float32 array, scaled by the variable's role so that deep
    networks neither explode nor vanish with BatchNormalization in
    inference mode."""
    rng = np.random.default_rng([seed, layer_index, var_index])
    shape = tuple(int(d) for d in shape)
    role = short_name(name)
    if role == "gamma":
        arr = rng.uniform(0.8, 1.2, shape)
    elif role in ("beta", "moving_mean"):
        arr = rng.normal(0.0, 0.1, shape)
    elif role == "moving_variance":
        arr = rng.uniform(0.6, 1.4, shape)
    elif role == "bias":
        arr = rng.normal(0.0, 0.05, shape)
    elif role == "depthwise_kernel" and len(shape) == 4:
        std = DEPTHWISE_GAIN * math.sqrt(2.0 / (shape[0] * shape[1]))
        arr = rng.normal(0.0, std, shape)
    elif len(shape) >= 2:
        fan_in = int(np.prod(shape[:-1]))
        arr = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    else:
        arr = rng.normal(0.0, 0.1, shape)
    return arr.astype("float32")


def layer_specs(model):
    """``[[(variable_name, shape), ...] for each weighted layer]`` of a
    Keras 2 or Keras 3 model, in ``model.layers`` order."""
    return [
        [(w.name, tuple(int(d) for d in w.shape)) for w in layer.weights]
        for layer in model.layers
        if layer.weights
    ]


def synthesize(specs, seed=0):
    """Arrays for :func:`layer_specs` output: a list per weighted layer."""
    return [
        [synthesize_variable(seed, i, j, name, shape) for j, (name, shape) in enumerate(layer)]
        for i, layer in enumerate(specs)
    ]


def apply_synthetic_weights(model, seed=0):
    """Set synthetic weights on every weighted layer of ``model``."""
    layers = [layer for layer in model.layers if layer.weights]
    for layer, arrays in zip(layers, synthesize(layer_specs(model), seed)):
        layer.set_weights(arrays)
    return model


def synthetic_input(shape, seed=0):
    """A float32 input batch (channels_last shape) drawn from N(0, 1)."""
    return np.random.default_rng([seed, 999_999]).normal(0.0, 1.0, shape).astype("float32")
