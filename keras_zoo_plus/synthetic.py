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


#: Families whose full convolution kernels get a further gain: their
#: synthetic outputs were chaotic at He's. EfficientNetV2's fused blocks (a
#: full 3x3 convolution, swish and a residual add, BatchNormalization
#: statistics that do not normalise) grow the activations block after block:
#: tf_keras in float32 against float64 (max |difference| / max |output|,
#: no top, 64x81), He's gain -> 0.75: EfficientNetV2S 3.2e-2 (outputs up to
#: 2.0e3) -> below 6.6e-7, EfficientNetV2L 0.66 (outputs up to 8.4e6) ->
#: 1.4e-6; B0 at 0.7: 5.9e-7. RegNet and ResNet-RS (residual stacks whose
#: synthetic BatchNormalization does not normalise either), same measure,
#: with the input's effect (max |output(x2) - output(x1)| / max |output|
#: for two synthetic inputs) that the parity tests need well above 1e-5:
#: RegNetY016 He 8.2e-6 (outputs up to 727) -> 0.8: 7.0e-7, input effect
#: 3.0e-3; RegNetX032 -> 7.2e-7, 4.3e-3; RegNetY064 -> 4.5e-7, 3.1e-3.
#: ResNetRS101 He 0.58 (chaotic, outputs up to 4.4e4) -> 0.7: 5.8e-7,
#: 5.1e-4; ResNetRS420 at 0.8 still 0.56, at 0.7 1.3e-6, 4.0e-4 (0.65:
#: input effect 1.0e-4, too faint); ResNetRS50 at 0.7 4.5e-7, 7.3e-4.
#: Keyed by the model table's family, so that no other model's arrays
#: change.
FAMILY_KERNEL_GAIN = {"efficientnet_v2": 0.75, "regnet": 0.8, "resnet_rs": 0.7}


def kernel_gain(family):
    """The extra gain of ``family``'s convolution kernels (1.0 for most)."""
    return FAMILY_KERNEL_GAIN.get(family, 1.0)


#: The variables of an adapted ``Normalization`` layer (EfficientNet's,
#: after a ``Rescaling`` by 1/255).
NORMALIZATION_ROLES = ("mean", "variance", "count")


def _normalization_statistic(rng, role, shape):
    """Statistics of [0, 1] pixels whose normalisation gives back the
    synthetic input's scale: ``(x / 255 - mean) / sqrt(variance)`` with
    ``mean`` ~ N(0, 0.1) / 255 and ``variance`` in [0.6, 1.4] / 255**2 is
    ``x`` per channel, shifted and scaled by O(1) (with ImageNet-like
    statistics the N(0, 1) input would be 1% of the normalised values).
    ``count`` (an int64 in the files) is a positive whole number."""
    if role == "mean":
        return rng.normal(0.0, 0.1, shape) / 255.0
    if role == "variance":
        return rng.uniform(0.6, 1.4, shape) / 255.0**2
    return np.full(shape, 1000.0)


def synthesize_variable(seed, layer_index, var_index, name, shape, family=None):
    """One float32 array, scaled by the variable's role (and, for a
    convolution kernel, by :func:`kernel_gain` of the model's ``family``)
    so that deep networks neither explode nor vanish with
    BatchNormalization in inference mode."""
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
    elif role in NORMALIZATION_ROLES:
        arr = _normalization_statistic(rng, role, shape)
    elif role == "depthwise_kernel" and len(shape) == 4:
        std = DEPTHWISE_GAIN * math.sqrt(2.0 / (shape[0] * shape[1]))
        arr = rng.normal(0.0, std, shape)
    elif len(shape) >= 2:
        fan_in = int(np.prod(shape[:-1]))
        arr = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
        if role == "kernel" and len(shape) == 4:
            arr = arr * kernel_gain(family)
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


def synthesize(specs, seed=0, family=None):
    """Arrays for :func:`layer_specs` output: a list per weighted layer
    (``family``: the model table's family of the model, see
    :func:`kernel_gain`)."""
    return [
        [synthesize_variable(seed, i, j, name, shape, family)
         for j, (name, shape) in enumerate(layer)]
        for i, layer in enumerate(specs)
    ]


def apply_synthetic_weights(model, seed=0, family=None):
    """Set synthetic weights on every weighted layer of ``model`` (of the
    model table's ``family``, if it is a zoo model)."""
    layers = [layer for layer in model.layers if layer.weights]
    for layer, arrays in zip(layers, synthesize(layer_specs(model), seed, family)):
        layer.set_weights(arrays)
    return model


def synthetic_input(shape, seed=0):
    """A float32 input batch (channels_last shape) drawn from N(0, 1)."""
    return np.random.default_rng([seed, 999_999]).normal(0.0, 1.0, shape).astype("float32")
