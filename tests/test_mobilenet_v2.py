"""MobileNetV2: argument rules, the channel rounding rule, official weight
file selection, the default name and preprocessing. Numerical parity with
tf_keras (default, alpha 0.35 and 1.3, top and no top, both formats) is
in test_parity.py; parameter count, feature levels and freeze stages in
test_model_table.py; fused chains in test_fusion.py."""

import re
import warnings

import keras
import numpy as np
import pytest

from keras_zoo_plus import imagenet, model_table
from keras_zoo_plus.applications import MobileNetV2, mobilenet_v2


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"alpha": 0.25},
            ValueError,
            'With `weights="imagenet"`, `alpha` must be one of 0.35, 0.5, 0.75, 1.0, 1.3 '
            "or 1.4 (the values with official weights). Received: alpha=0.25",
        ),
        ({"alpha": "1.0"}, TypeError, "`alpha` must be a number. Received: alpha='1.0'"),
        ({"alpha": True, "weights": None}, TypeError,
         "`alpha` must be a number. Received: alpha=True"),
        (
            {"alpha": 0, "weights": None},
            ValueError,
            "`alpha` must be a positive finite number (the width multiplier). Received: alpha=0",
        ),
        (
            {"alpha": float("inf"), "weights": None},
            ValueError,
            "`alpha` must be a positive finite number (the width multiplier). "
            "Received: alpha=inf",
        ),
        (
            {"input_shape": (200, 200, 3)},
            ValueError,
            'When setting `include_top=True` and loading `weights="imagenet"`, '
            "`input_shape` should be (224, 224, 3). Received: input_shape=(200, 200, 3)",
        ),
    ],
)
def test_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        MobileNetV2(**kwargs)


def test_make_divisible_is_keras_rule():
    from keras.src.applications.mobilenet_v2 import _make_divisible

    for value in np.arange(0.25, 2000.0, 0.35):
        assert mobilenet_v2.make_divisible(value) == _make_divisible(value, 8), value
    # The cases the official alphas hit: 32 * 0.35 = 11.2 -> 16 (8 would lose
    # over 10%), int(16 * 0.35) = 5 -> 8, 1280 * 1.3 = 1664.
    assert [mobilenet_v2.make_divisible(v) for v in (11.2, 5, 1664.0, 12)] == [16, 8, 1664, 16]


def test_every_official_file_is_in_the_table():
    entry = model_table.get("mobilenet_v2")
    prefix = "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels"
    assert len(entry.weights) == 6 * 5 * 2
    for alpha in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
        for rows in (96, 128, 160, 192, 224):
            top = entry.weight_file(True, alpha=alpha, rows=rows)
            notop = entry.weight_file(False, alpha=alpha, rows=rows)
            assert top.path == f"{prefix}_{alpha}_{rows}.h5"
            assert notop.path == f"{prefix}_{alpha}_{rows}_no_top.h5"
            assert top.md5 is None and notop.md5 is None  # Keras publishes none
    assert entry.weight_files()["top"].fname.endswith("_1.0_224.h5")
    assert mobilenet_v2.IMAGENET_ALPHAS == (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    assert mobilenet_v2.IMAGENET_ROWS == (96, 128, 160, 192, 224)


@pytest.fixture
def offline_cache(keras_home, monkeypatch):
    """An empty Keras cache with downloads disabled: loading imagenet
    weights fails with an error naming the file it wanted."""
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")


@pytest.mark.parametrize(
    "kwargs, fname",
    [
        ({"alpha": 0.35, "include_top": False, "input_shape": (96, 96, 3)},
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"),
        ({"alpha": 0.5, "include_top": True, "input_shape": (3, 128, 128),
          "data_format": "channels_first"},
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_128.h5"),
        ({"alpha": 0.75, "include_top": False,
          "input_tensor": keras.Input((160, 160, 3)), "data_format": "channels_last"},
         "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.75_160_no_top.h5"),
    ],
)
def test_picks_official_file(offline_cache, kwargs, fname):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an official size must not warn
        with pytest.raises(ValueError, match=re.escape(f"weights file {fname} is missing")):
            MobileNetV2(**kwargs)


def test_other_size_warns_and_uses_224(offline_cache):
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    with pytest.warns(UserWarning, match=r"not in \[96, 128, 160, 192, 224\]\. Weights for "
                                         r"input shape \(224, 224\) will be loaded"):
        with pytest.raises(ValueError, match=re.escape(f"weights file {fname} is missing")):
            MobileNetV2(alpha=0.35, include_top=False, input_shape=(96, 128, 3))


def test_default_name_and_channels_first_shapes():
    model = MobileNetV2(
        alpha=0.35, weights=None, classes=7, input_shape=(3, 96, 104),
        data_format="channels_first",
    )
    assert model.name == "mobilenetv2_0.35_96"
    assert model.output_shape == (None, 7)
    # alpha < 1 keeps the 1280-channel head; the stem is 16 channels.
    assert model.get_layer("Conv1").output.shape == (None, 16, 48, 52)
    assert model.get_layer("out_relu").output.shape == (None, 1280, 3, 4)
    # Before a stride-2 depthwise convolution an odd size is padded on both
    # sides, an even one only after (TensorFlow's "same" windows): at
    # block_6 the map is 12 x 13.
    assert model.get_layer("block_1_pad").padding == ((0, 1), (0, 1))
    assert model.get_layer("block_6_pad").padding == ((0, 1), (1, 1))


def test_preprocess_input_and_decode_predictions(data_format):
    shape = (2, 3, 5, 4) if data_format == "channels_first" else (2, 5, 4, 3)
    x = np.random.default_rng(1).uniform(0, 255, shape).astype("float32")
    keep = x.copy()
    got = mobilenet_v2.preprocess_input(x, data_format=data_format)
    want = keras.applications.mobilenet_v2.preprocess_input(x.copy(), data_format=data_format)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got, x / 127.5 - 1.0, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x, keep)
    assert mobilenet_v2.decode_predictions is imagenet.decode_predictions


@pytest.mark.parametrize(
    "shape, kernel, data_format, pads",
    [
        ((64, 81, 3), 3, "channels_last", ((0, 1), (1, 1))),
        ((3, 64, 81), 5, "channels_first", ((1, 2), (2, 2))),
        ((65, None, 3), 3, "channels_last", ((1, 1), (0, 1))),
        # keras.applications' correct_pad: an unknown height pads both axes
        # as even sizes, whatever the width.
        ((None, 81, 3), 3, "channels_last", ((0, 1), (0, 1))),
        ((None, 81, 3), 5, "channels_last", ((1, 2), (1, 2))),
    ],
)
def test_stride2_padding_is_keras_correct_pad(shape, kernel, data_format, pads):
    from keras_zoo_plus.applications import _common

    assert _common.correct_pad(keras.Input(shape), kernel, data_format) == pads
