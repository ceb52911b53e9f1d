"""Our convolution layers agree across data formats on every backend,
including the shape Keras 3.15.1's TensorFlow bias_add rewrite gets wrong
(channels_first output whose width equals the number of channels)."""

import numpy as np
import pytest

from keras_zoo_plus import layers as zoo_layers

C = 16


def _make(kind, data_format):
    if kind == "Conv2D":
        return zoo_layers.Conv2D(C, 3, padding="same", data_format=data_format)
    if kind == "DepthwiseConv2D":
        return zoo_layers.DepthwiseConv2D(3, padding="same", data_format=data_format)
    return zoo_layers.SeparableConv2D(C, 3, padding="same", data_format=data_format)


@pytest.mark.parametrize("kind", ["Conv2D", "DepthwiseConv2D", "SeparableConv2D"])
@pytest.mark.parametrize("hw", [(C, C), (9, C), (C, 7)])
def test_channels_first_bias_matches_channels_last(kind, hw):
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *hw, C)).astype("float32")
    last = _make(kind, "channels_last")
    first = _make(kind, "channels_first")
    last.build(x.shape)
    first.build((2, C, *hw))
    values = [rng.normal(size=w.shape).astype("float32") for w in last.weights]
    last.set_weights(values)
    first.set_weights(values)
    y_last = keras.ops.convert_to_numpy(last(x))
    y_first = keras.ops.convert_to_numpy(first(np.transpose(x, (0, 3, 1, 2))))
    np.testing.assert_allclose(np.transpose(y_first, (0, 2, 3, 1)), y_last, rtol=1e-5, atol=1e-5)
    # And the bias really is added per channel.
    bias = values[-1]
    no_bias = values[:-1] + [np.zeros_like(bias)]
    last.set_weights(no_bias)
    y0 = keras.ops.convert_to_numpy(last(x))
    np.testing.assert_allclose(y_last - y0, np.broadcast_to(bias, y0.shape), rtol=1e-5, atol=1e-5)


def test_relu6_clips():
    x = np.array([-3.0, 0.0, 2.5, 6.0, 9.0], "float32")
    import keras

    y = keras.ops.convert_to_numpy(zoo_layers.relu6(x))
    np.testing.assert_array_equal(y, [0.0, 0.0, 2.5, 6.0, 6.0])
