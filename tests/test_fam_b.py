"""MobileNet (v1) and DenseNet121/169/201: argument rules, parameter counts,
official weight file selection, freeze stages, channels_first shapes and
preprocessing. Numerical parity with tf_keras is in test_parity.py."""

import re
import warnings

import keras
import numpy as np
import pytest
import zoo_builds

import keras_zoo_plus
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import (
    DenseNet121,
    DenseNet169,
    DenseNet201,
    MobileNet,
    densenet,
    mobilenet,
)
from keras_zoo_plus.registry import model_info


def mobilenet_full():
    """Built once per worker: construction dominates these tests' time."""
    return zoo_builds.build("mobilenet", include_top=True, size=zoo_builds.DEFAULT)


def densenet121_full():
    return zoo_builds.build("densenet121", include_top=True, size=zoo_builds.DEFAULT)


# --------------------------------------------------------------------------
# Parameter counts (seed table for MobileNet, keras.io for DenseNet)


def test_mobilenet_param_count_seed_table():
    model = mobilenet_full()
    assert model.count_params() == 4_253_864
    assert model.name == "mobilenet_1.00_224"
    assert model.output_shape == (None, 1000)
    assert model_info("mobilenet").params == 4_253_864


def test_densenet121_param_count():
    model = densenet121_full()
    assert model.count_params() == 8_062_504
    assert model_info("densenet121").params == 8_062_504


@pytest.mark.slow
@pytest.mark.parametrize(
    "ctor, expected", [(DenseNet169, 14_307_880), (DenseNet201, 20_242_984)]
)
def test_densenet169_201_param_count_and_stages(ctor, expected):
    model = ctor(weights=None)
    assert model.count_params() == expected
    info = model_info(ctor.__name__)
    assert info.params == expected
    _assert_stage_cover(model, info.stages)


def test_registry_entries():
    assert keras_zoo_plus.list_models("densenet*") == ["densenet121", "densenet169", "densenet201"]
    info = model_info("MobileNet")
    assert (info.default_size, info.min_size, info.preprocess) == (224, 32, "tf")
    assert info.weight_files()["top"].fname == "mobilenet_1_0_224_tf.h5"
    assert info.weight_files()["notop"].fname == "mobilenet_1_0_224_tf_no_top.h5"
    for name in ("densenet121", "densenet169", "densenet201"):
        info = model_info(name)
        assert (info.default_size, info.min_size, info.preprocess) == (224, 32, "torch")
        files = info.weight_files()
        assert files["top"].fname == f"{name}_weights_tf_dim_ordering_tf_kernels.h5"
        assert files["notop"].fname == f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5"


# --------------------------------------------------------------------------
# MobileNet argument rules


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"alpha": 0.3},
            ValueError,
            'With `weights="imagenet"`, `alpha` must be one of 0.25, 0.5, 0.75 or 1.0 '
            "(the values with official weights). Received: alpha=0.3",
        ),
        (
            {"depth_multiplier": 2},
            ValueError,
            'With `weights="imagenet"`, `depth_multiplier` must be 1 (the only value '
            "with official weights). Received: depth_multiplier=2",
        ),
        (
            {"alpha": 0.01, "weights": None},
            ValueError,
            "`alpha` must be at least 1/32 = 0.03125 so that every layer keeps at least "
            "one filter. Received: alpha=0.01",
        ),
        ({"alpha": "1.0"}, TypeError, "`alpha` must be a number. Received: alpha='1.0'"),
        (
            {"depth_multiplier": 1.5, "weights": None},
            TypeError,
            "`depth_multiplier` must be a positive integer. Received: depth_multiplier=1.5",
        ),
        (
            {"depth_multiplier": 0, "weights": None},
            ValueError,
            "`depth_multiplier` must be a positive integer. Received: depth_multiplier=0",
        ),
        (
            {"dropout": 1.0},
            ValueError,
            "`dropout` must be a float in [0, 1) (the dropout rate before the "
            "classifier). Received: dropout=1.0",
        ),
        (
            {"dropout": -0.1},
            ValueError,
            "`dropout` must be a float in [0, 1) (the dropout rate before the "
            "classifier). Received: dropout=-0.1",
        ),
        (
            {"dropout": "0.1"},
            ValueError,
            "`dropout` must be a float in [0, 1) (the dropout rate before the "
            "classifier). Received: dropout='0.1'",
        ),
        (
            {"input_shape": (200, 200, 3)},
            ValueError,
            'When setting `include_top=True` and loading `weights="imagenet"`, '
            "`input_shape` should be (224, 224, 3). Received: input_shape=(200, 200, 3)",
        ),
    ],
)
def test_mobilenet_argument_errors(kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        MobileNet(**kwargs)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty Keras cache with downloads disabled: loading imagenet
    weights fails with an error naming the file it wanted."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")


@pytest.mark.parametrize(
    "kwargs, fname",
    [
        ({"alpha": 0.25, "include_top": False, "input_shape": (128, 128, 3)},
         "mobilenet_2_5_128_tf_no_top.h5"),
        ({"alpha": 0.5, "include_top": True, "input_shape": (160, 160, 3)},
         "mobilenet_5_0_160_tf.h5"),
        ({"alpha": 0.75, "include_top": False, "input_shape": (3, 192, 192),
          "data_format": "channels_first"},
         "mobilenet_7_5_192_tf_no_top.h5"),
        ({"alpha": 0.25, "include_top": False,
          "input_tensor": keras.Input((128, 128, 3)), "data_format": "channels_last"},
         "mobilenet_2_5_128_tf_no_top.h5"),
    ],
)
def test_mobilenet_picks_official_file(offline_cache, kwargs, fname):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an official size must not warn
        with pytest.raises(ValueError, match=re.escape(f"weights file {fname} is missing")):
            MobileNet(**kwargs)


def test_mobilenet_other_size_warns_and_uses_224(offline_cache):
    with pytest.warns(UserWarning, match=r"Weights for input shape \(224, 224\) will be loaded"):
        with pytest.raises(ValueError, match=re.escape("mobilenet_2_5_224_tf_no_top.h5 is missing")):
            MobileNet(alpha=0.25, include_top=False, input_shape=(96, 128, 3))


def test_mobilenet_default_name_and_dropout():
    model = MobileNet(
        alpha=0.25, weights=None, include_top=True, dropout=0.5, classes=7,
        input_shape=(3, 128, 128), data_format="channels_first",
    )
    assert model.name == "mobilenet_0.25_128"
    assert model.get_layer("dropout").rate == 0.5
    assert model.output_shape == (None, 7)


# --------------------------------------------------------------------------
# relu6 / DepthwiseConv2D (issue 4 needs them on the module)


def test_mobilenet_reexports_custom_objects():
    assert mobilenet.relu6 is zoo_layers.relu6
    assert mobilenet.DepthwiseConv2D is zoo_layers.DepthwiseConv2D
    model = mobilenet_full()
    dws = [layer for layer in model.layers if layer.name.startswith("conv_dw_")
           and not layer.name.endswith(("_bn", "_relu"))]
    assert len(dws) == 13
    assert all(type(layer) is zoo_layers.DepthwiseConv2D for layer in dws)
    x = np.array([-1.0, 0.5, 7.0], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mobilenet.relu6(x)), [0.0, 0.5, 6.0])


# --------------------------------------------------------------------------
# Freeze stages: every layer but the input in exactly one stage


def _assert_stage_cover(model, stages):
    patterns = [(name, re.compile(rx)) for name, rx in stages]
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        hits = [name for name, rx in patterns if rx.search(layer.name)]
        assert len(hits) == 1, f"{model.name}: layer {layer.name!r} matches stages {hits}"


def test_mobilenet_stages_cover_every_layer():
    stages = model_info("mobilenet").stages
    assert [s for s, _ in stages] == ["conv1"] + [f"block{i}" for i in range(1, 14)] + ["top"]
    full = mobilenet_full()
    _assert_stage_cover(full, stages)
    used = {name for name, rx in stages for layer in full.layers if re.search(rx, layer.name)}
    assert used == {s for s, _ in stages}
    for pooling in ("avg", "max"):
        model = MobileNet(
            alpha=0.25, weights=None, include_top=False, pooling=pooling, input_shape=(32, 32, 3)
        )
        _assert_stage_cover(model, stages)


def test_densenet_stages_cover_every_layer():
    stages = model_info("densenet121").stages
    assert [s for s, _ in stages] == [
        "conv1", "conv2", "pool2", "conv3", "pool3", "conv4", "pool4", "conv5", "top",
    ]
    full = densenet121_full()
    _assert_stage_cover(full, stages)
    used = {name for name, rx in stages for layer in full.layers if re.search(rx, layer.name)}
    assert used == {s for s, _ in stages}
    assert model_info("densenet169").stages == stages == model_info("densenet201").stages


# --------------------------------------------------------------------------
# channels_first (keras.applications refuses it for DenseNet)


def test_mobilenet_channels_first_shapes():
    df = "channels_first"
    model = MobileNet(
        alpha=0.5, depth_multiplier=2, weights=None, include_top=False,
        input_shape=(3, 64, 96), data_format=df,
    )
    assert model.output_shape == (None, 512, 2, 3)
    pooled = MobileNet(
        alpha=0.25, weights=None, include_top=False, pooling="max",
        input_shape=(3, 32, 32), data_format=df,
    )
    assert pooled.output_shape == (None, 256)


@pytest.mark.slow  # numerics in channels_first are covered by the parity cases
def test_densenet_channels_first_shapes():
    df = "channels_first"
    model = DenseNet121(
        weights=None, include_top=False, input_shape=(3, 64, 96), data_format=df
    )
    assert model.output_shape == (None, 1024, 2, 3)
    assert model.get_layer("conv2_block1_concat").output.shape[1] == 96
    assert model.get_layer("pool2_conv").output.shape[1:] == (128, 16, 24)


# --------------------------------------------------------------------------
# preprocess_input modes match keras.applications' modules


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (mobilenet.preprocess_input, keras.applications.mobilenet.preprocess_input),
        (densenet.preprocess_input, keras.applications.densenet.preprocess_input),
    ],
)
def test_preprocess_input_matches_keras(ours, theirs, data_format):
    shape = (2, 3, 5, 4) if data_format == "channels_first" else (2, 5, 4, 3)
    x = np.random.default_rng(1).uniform(0, 255, shape).astype("float32")
    keep = x.copy()
    got = ours(x, data_format=data_format)
    want = theirs(x.copy(), data_format=data_format)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(x, keep)  # ours never works in place


def test_decode_predictions_is_the_imagenet_one():
    from keras_zoo_plus import imagenet

    assert mobilenet.decode_predictions is imagenet.decode_predictions
    assert densenet.decode_predictions is imagenet.decode_predictions
    assert DenseNet169.__name__ == "DenseNet169" and DenseNet201.__name__ == "DenseNet201"
