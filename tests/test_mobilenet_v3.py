"""MobileNetV3Small/Large: argument rules, the official weight files (every
variant with keras' md5, file selection, loading by the tf.keras names),
the top, ``include_preprocessing``, the activations and preprocessing.
Numerical parity with tf_keras (both models with and without the top,
Small minimalistic, Small alpha 0.75, both formats) is in test_parity.py;
parameter counts, feature levels and freeze stages of the default
variants in test_model_table.py."""

import functools
import re
import warnings

import keras
import numpy as np
import pytest
import zoo_builds

from keras_zoo_plus import imagenet, model_table, weights
from keras_zoo_plus.applications import MobileNetV3Large, MobileNetV3Small, mobilenet_v3
from keras_zoo_plus.deferred import build_without_initializers

from helpers import (
    golden_arrays,
    legacy_entries,
    load_golden,
    rel_error,
    run_model,
    structure_of_model,
)

_VARIANTS = (
    "must be one of (1.0, False), (0.75, False) or (1.0, True) (the variants with official weights)"
)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"alpha": 0.5}, ValueError,
         f'With `weights="imagenet"`, (`alpha`, `minimalistic`) {_VARIANTS}. '
         "Received: alpha=0.5, minimalistic=False"),
        ({"alpha": 0.75, "minimalistic": True}, ValueError,
         f'With `weights="imagenet"`, (`alpha`, `minimalistic`) {_VARIANTS}. '
         "Received: alpha=0.75, minimalistic=True"),
        ({"alpha": "1.0"}, TypeError, "`alpha` must be a number. Received: alpha='1.0'"),
        ({"alpha": 0, "weights": None}, ValueError,
         "`alpha` must be a positive finite number (the width multiplier). Received: alpha=0"),
        ({"minimalistic": 1}, TypeError, "`minimalistic` must be a bool. Received: minimalistic=1"),
        ({"include_preprocessing": "yes"}, TypeError,
         "`include_preprocessing` must be a bool. Received: include_preprocessing='yes'"),
        ({"dropout_rate": 1.0}, ValueError,
         "`dropout_rate` must be a float in [0, 1) (the dropout rate before the classifier). "
         "Received: dropout_rate=1.0"),
        ({"dropout_rate": True}, ValueError,
         "`dropout_rate` must be a float in [0, 1) (the dropout rate before the classifier). "
         "Received: dropout_rate=True"),
        ({"input_shape": (192, 192, 3)}, ValueError,
         'When setting `include_top=True` and loading `weights="imagenet"`, `input_shape` '
         "should be (224, 224, 3). Received: input_shape=(192, 192, 3)"),
        ({"input_shape": (31, 64, 3), "weights": None, "include_top": False}, ValueError,
         "Input size must be at least 32x32. Received: input_shape=(31, 64, 3)"),
    ],
)
@pytest.mark.parametrize("ctor", [MobileNetV3Small, MobileNetV3Large])
def test_argument_errors(ctor, kwargs, error, message):
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        ctor(**kwargs)


def test_make_divisible_is_keras_rule():
    from keras.src.applications.mobilenet_v3 import _depth

    for value in np.arange(0.25, 2000.0, 0.35):
        assert mobilenet_v3.make_divisible(value) == _depth(value), value


@pytest.mark.parametrize("name, model_type", [("mobilenet_v3_small", "small"),
                                              ("mobilenet_v3_large", "large")])
def test_every_official_file_is_in_the_table(name, model_type):
    from keras.src.applications import mobilenet_v3 as keras_v3

    entry = model_table.get(name)
    keys = [k for k in keras_v3.WEIGHTS_HASHES if k.startswith(f"{model_type}_")]
    assert len(keys) == 3 and len(entry.weights) == 6
    for alpha, minimalistic in ((1.0, False), (0.75, False), (1.0, True)):
        key = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
        top = entry.weight_file(True, alpha=alpha, minimalistic=minimalistic)
        notop = entry.weight_file(False, alpha=alpha, minimalistic=minimalistic)
        assert model_table.DEFAULT_BASE_URL + top.path == (
            f"{keras_v3.BASE_WEIGHT_PATH}weights_mobilenet_v3_{key}.h5")
        assert model_table.DEFAULT_BASE_URL + notop.path == (
            f"{keras_v3.BASE_WEIGHT_PATH}weights_mobilenet_v3_{key}_no_top_v2.h5")
        assert (top.md5, notop.md5) == keras_v3.WEIGHTS_HASHES[key]
        keys.remove(key)
    assert keys == []
    assert entry.weight_files()["top"].fname == f"weights_mobilenet_v3_{model_type}_224_1.0_float.h5"
    with pytest.raises(ValueError, match=re.escape(
            f"No official imagenet weights for {name} with include_top=True, alpha=0.5, "
            "minimalistic=False. Variants with official files: alpha=0.75, minimalistic=False; "
            "alpha=1.0, minimalistic=False; alpha=1.0, minimalistic=True.")):
        entry.weight_file(True, alpha=0.5, minimalistic=False)


@pytest.fixture
def offline_cache(keras_home, monkeypatch):
    """An empty Keras cache with downloads disabled: loading imagenet
    weights fails with an error naming the file it wanted."""
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")


@pytest.mark.parametrize(
    "ctor, kwargs, fname",
    [
        (MobileNetV3Small, {}, "weights_mobilenet_v3_small_224_1.0_float.h5"),
        # alpha=1 (an int) is the 1.0 variant (keras.applications looks up
        # a "large_minimalistic_224_1_float" file that does not exist).
        (MobileNetV3Large, {"alpha": 1, "minimalistic": True, "include_top": False,
                            "input_shape": (3, 224, 224), "data_format": "channels_first"},
         "weights_mobilenet_v3_large_minimalistic_224_1.0_float_no_top_v2.h5"),
        (MobileNetV3Small, {"alpha": 0.75, "include_top": False,
                            "input_tensor": keras.Input((224, 224, 3)),
                            "data_format": "channels_last"},
         "weights_mobilenet_v3_small_224_0.75_float_no_top_v2.h5"),
    ],
)
def test_picks_official_file(offline_cache, ctor, kwargs, fname):
    # The file is wanted after the build (without initializers: the
    # constructor skips them when given weights).
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 224x224 must not warn
        with pytest.raises(ValueError, match=re.escape(f"weights file {fname} is missing")):
            ctor(**kwargs)


def test_other_size_warns_and_uses_224(offline_cache):
    fname = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"
    with pytest.warns(UserWarning, match=r"or `rows` is not 224\. Weights for input shape "
                                         r"\(224, 224\) will be loaded as the default"):
        with pytest.raises(ValueError, match=re.escape(f"weights file {fname} is missing")):
            MobileNetV3Small(include_top=False, input_shape=(96, 128, 3))


@functools.cache
def _large_top():
    """Built once per worker, at the smallest size, weights zero until a
    test sets them (inside ``zoo_builds.borrowed``)."""
    return build_without_initializers(
        MobileNetV3Large, weights=None, include_top=True, input_shape=(32, 32, 3))


@functools.cache
def _small_minimalistic():
    return build_without_initializers(
        MobileNetV3Small, weights=None, minimalistic=True, include_top=False,
        input_shape=(32, 32, 3))


@pytest.mark.parametrize("case, build", [("mobilenet_v3_large_top", _large_top),
                                         ("mobilenet_v3_small_minimalistic_notop",
                                          _small_minimalistic)])
def test_official_names_load_by_name(case, build):
    """The layout tf.keras writes (the official files' names, with '/'):
    our weighted layers carry the same names with '/' -> '_', in the same
    order, so the loader matches them by name."""
    model = build()
    _, structure = load_golden(case)
    names = [name for name, _, _ in structure]
    assert "Conv/BatchNorm" in names and "expanded_conv/depthwise" in names
    ours = [layer.name for layer in weights.weighted_layers(model)]
    assert ours == [n.replace("/", "_") for n in names]
    with zoo_builds.borrowed(model, weights=True):
        entries = legacy_entries(structure, golden_arrays(structure))
        assert weights.assign_legacy(model, entries) == "name"
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model.get_layer("Conv_BatchNorm").gamma),
            dict(entries)["Conv/BatchNorm"][0],
        )


def test_top_pooling_classes_alpha_and_padding():
    # pooling is ignored with the top (as keras.applications); alpha > 1
    # widens Conv_2; dropout_rate=0 leaves the dropout layer out.
    model = build_without_initializers(
        MobileNetV3Small, alpha=1.5, weights=None, classes=7, pooling="max", dropout_rate=0.0,
        classifier_activation=None, input_shape=(3, 64, 81), data_format="channels_first",
    )
    assert model.output_shape == (None, 7)
    names = [layer.name for layer in model.layers]
    assert "dropout" not in names and "max_pool" not in names
    assert names[-6:] == ["avg_pool", "Conv_2", "Conv_2_activation", "Logits", "flatten",
                          "Predictions"]
    assert model.get_layer("Conv_1_activation").output.shape == (None, 864, 2, 3)
    assert tuple(model.get_layer("Conv_2").kernel.shape) == (1, 1, 864, 1536)
    assert tuple(model.get_layer("Logits").kernel.shape) == (1, 1, 1536, 7)
    # TensorFlow's "same" windows before a stride-2 depthwise convolution:
    # one pixel less at the start of an even size (3x3 at 32x41, 5x5 at 16x21).
    assert model.get_layer("expanded_conv_depthwise_pad").padding == ((0, 1), (1, 1))
    assert model.get_layer("expanded_conv_3_depthwise_pad").padding == ((1, 2), (2, 2))


def test_default_top_dropout_and_preprocessing_layer():
    model = _large_top()
    assert model.name == "MobileNetV3Large"
    assert model.get_layer("dropout").rate == 0.2
    rescaling = model.layers[1]
    assert rescaling.name == "rescaling" and isinstance(rescaling, keras.layers.Rescaling)
    assert (rescaling.scale, rescaling.offset) == (1.0 / 127.5, -1.0)


def test_include_preprocessing_false_expects_inputs_in_minus_one_one():
    with_pre = _small_minimalistic()
    without = build_without_initializers(
        MobileNetV3Small, weights=None, minimalistic=True, include_top=False,
        include_preprocessing=False, input_shape=with_pre.input_shape[1:])
    assert without.layers[1].name == "Conv"
    assert "rescaling" not in [layer.name for layer in without.layers]
    with zoo_builds.borrowed(with_pre, weights=True):
        arrays = golden_arrays(structure_of_model(with_pre))
        with_pre.set_weights([a for layer in arrays for a in layer])
        without.set_weights(with_pre.get_weights())
        x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
        got = run_model(without, x / 127.5 - 1.0)
        want = run_model(with_pre, x)
        assert rel_error(got, want) <= 1e-5
        # Not vacuous: the same pixels unscaled give another output.
        assert rel_error(run_model(without, x), want) > 1e-3


def test_hard_swish_is_one_activation_after_batchnorm():
    model = _large_top()
    hard = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)
            and layer.activation is keras.activations.hard_silu]
    # Stem, expansion and depthwise of blocks 6-14, Conv_1 and Conv_2.
    assert len(hard) == 1 + 2 * 9 + 2
    for layer in hard:
        source = layer._inbound_nodes[0].input_tensors[0]._keras_history.operation
        if layer.name == "Conv_2_activation":
            assert source.name == "Conv_2"
        else:
            assert isinstance(source, keras.layers.BatchNormalization), layer.name
            assert source.name == layer.name.replace("_activation", "_BatchNorm")
    gates = [layer for layer in model.layers if layer.name.endswith("_squeeze_excite_HardSigmoid")]
    assert len(gates) == 8  # blocks 3-5 and 10-14
    assert all(layer.activation is keras.activations.hard_sigmoid for layer in gates)
    minimal = _small_minimalistic()
    assert not any(isinstance(layer, keras.layers.Activation)
                   and layer.activation is not keras.activations.linear
                   for layer in minimal.layers)
    assert not any("squeeze_excite" in layer.name for layer in minimal.layers)


def test_keras_hard_sigmoid_is_tf_keras_formula():
    """tf.keras builds both from ``relu6(x + 3) * (1 / 6)``; ours are
    Keras' hard_sigmoid and hard_silu, equal to it on this backend."""
    x = np.concatenate([np.linspace(-8, 8, 2001), [-3.0, 3.0, -2.9999998, 2.9999998]])
    x = x.astype("float32")
    gate = np.minimum(np.maximum(x + np.float32(3), 0), 6) * np.float32(1 / 6)
    sig = keras.ops.convert_to_numpy(keras.activations.hard_sigmoid(x))
    silu = keras.ops.convert_to_numpy(keras.activations.hard_silu(x))
    np.testing.assert_allclose(sig, gate, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(silu, x * gate, rtol=1e-6, atol=1e-6)


def test_preprocess_input_is_the_identity_and_decode_predictions(data_format):
    shape = (2, 3, 5, 4) if data_format == "channels_first" else (2, 5, 4, 3)
    x = np.random.default_rng(1).uniform(0, 255, shape).astype("float32")
    keep = x.copy()
    got = mobilenet_v3.preprocess_input(x, data_format=data_format)
    want = keras.applications.mobilenet_v3.preprocess_input(x.copy(), data_format=data_format)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, keep)
    assert mobilenet_v3.decode_predictions is imagenet.decode_predictions
