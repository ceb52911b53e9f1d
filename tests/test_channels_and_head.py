"""Pretrained weights for other input channels and a fresh head.

The weight files are written by the tests (a MobileNet alpha 0.25 at
32x32 with seeded arrays); the expected adapted kernels are computed here
with NumPy from the arrays read back from the file."""

import re
import warnings

import h5py
import keras
import numpy as np
import pytest
import zoo_builds

from keras_zoo_plus import weights as zoo_weights
from keras_zoo_plus.applications import MobileNet, MobileNetV2

from helpers import run_model, write_model_h5

KW = dict(alpha=0.25, include_top=False)


def _name(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _file_arrays(path):
    """``{layer: [arrays]}`` read back from a legacy .h5 file."""
    with h5py.File(path, "r") as f:
        return {
            _name(layer): [np.asarray(f[_name(layer)][_name(w)]) for w in f[_name(layer)].attrs["weight_names"]]
            for layer in f.attrs["layer_names"]
        }


@pytest.fixture(scope="module")
def notop_file(tmp_path_factory):
    """A legacy .h5 file of MobileNet(alpha=0.25) without the top, and its arrays."""
    path = tmp_path_factory.mktemp("weights") / "mobilenet_025_notop.h5"
    source = zoo_builds.structure(MobileNet, weights=None, input_shape=(32, 32, 3), **KW)
    write_model_h5(path, source, seed=11)
    yield str(path), _file_arrays(path)
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def top_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "mobilenet_025_top.h5"
    source = zoo_builds.structure(
        MobileNet, weights=None, alpha=0.25, include_top=True, input_shape=(32, 32, 3)
    )
    write_model_h5(path, source, seed=12)
    yield str(path), _file_arrays(path)
    keras.backend.clear_session()


def _expected_kernel(rgb, channels):
    """The rule, written out per input channel."""
    rgb = rgb.astype("float64")
    if channels == 1:
        return rgb[:, :, 0:1] + rgb[:, :, 1:2] + rgb[:, :, 2:3]
    if channels == 2:
        return np.stack([rgb[:, :, 0] * 1.5, rgb[:, :, 1] * 1.5], axis=2)
    return np.stack([rgb[:, :, c % 3] * 3.0 / channels for c in range(channels)], axis=2)


def _assert_loaded_unchanged(model, arrays, skip=()):
    for layer in model.layers:
        if layer.weights and layer.name not in skip:
            for got, want in zip(layer.get_weights(), arrays[layer.name], strict=True):
                np.testing.assert_array_equal(got, want, err_msg=layer.name)


@pytest.mark.parametrize("channels, data_format", [(1, "channels_last"), (2, "channels_last"), (4, "channels_first")])
def test_first_kernel_is_adapted_and_everything_else_loads_unchanged(notop_file, channels, data_format):
    path, arrays = notop_file
    shape = (channels, 32, 32) if data_format == "channels_first" else (32, 32, channels)
    model = MobileNet(weights=path, input_shape=shape, data_format=data_format, **KW)
    kernel = model.get_layer("conv1").get_weights()[0]
    assert kernel.shape == (3, 3, channels, 8)
    np.testing.assert_allclose(kernel, _expected_kernel(arrays["conv1"][0], channels), rtol=1e-6, atol=0)
    _assert_loaded_unchanged(model, arrays, skip=("conv1",))
    keras.backend.clear_session()


def test_a_grey_model_sees_what_the_rgb_model_sees_on_grey_rgb(notop_file):
    path, _ = notop_file
    rgb = MobileNet(weights=path, input_shape=(32, 32, 3), **KW)
    grey = MobileNet(weights=path, input_shape=(32, 32, 1), **KW)
    g = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")
    want = run_model(rgb, np.repeat(g, 3, axis=-1))
    got = run_model(grey, g)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.max(np.abs(want)))
    keras.backend.clear_session()


def test_keras3_weights_files_and_imagenet_are_adapted_too(notop_file, tmp_path, monkeypatch):
    path, arrays = notop_file
    rgb = MobileNet(weights=path, input_shape=(32, 32, 3), **KW)
    keras3 = str(tmp_path / "rgb.weights.h5")
    rgb.save_weights(keras3)
    model = MobileNet(weights=keras3, input_shape=(32, 32, 5), **KW)
    np.testing.assert_allclose(
        model.get_layer("conv1").get_weights()[0], _expected_kernel(arrays["conv1"][0], 5), rtol=1e-6, atol=0
    )
    _assert_loaded_unchanged(model, arrays, skip=("conv1",))
    # weights="imagenet" goes through the same loader; the official file is ours here.
    fetched = []
    monkeypatch.setattr(zoo_weights, "fetch_official", lambda wf: fetched.append(wf.fname) or path)
    model = MobileNet(weights="imagenet", input_shape=(128, 128, 1), **KW)
    assert fetched == ["mobilenet_2_5_128_tf_no_top.h5"]
    np.testing.assert_allclose(
        model.get_layer("conv1").get_weights()[0], _expected_kernel(arrays["conv1"][0], 1), rtol=1e-6, atol=0
    )
    _assert_loaded_unchanged(model, arrays, skip=("conv1",))
    keras.backend.clear_session()


def test_a_file_for_as_many_channels_loads_unchanged(notop_file, tmp_path):
    path, _ = notop_file
    four = MobileNet(weights=path, input_shape=(32, 32, 4), **KW)
    saved = str(tmp_path / "four.weights.h5")
    four.save_weights(saved)
    again = MobileNet(weights=saved, input_shape=(32, 32, 4), **KW)
    for got, want in zip(again.get_weights(), four.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    keras.backend.clear_session()


def test_other_mismatches_still_raise(notop_file, tmp_path):
    path, _ = notop_file
    two = MobileNet(weights=path, input_shape=(32, 32, 2), **KW)
    saved = str(tmp_path / "two.h5")
    write_model_h5(saved, two, seed=3)
    # A 2-channel kernel is not an RGB kernel: not adapted to 4 channels.
    with pytest.raises(ValueError, match=re.escape(
        "1 shape mismatch(es); first: layer 'conv1' (file: 'conv1') expects [(3, 3, 4, 8)], "
        "file has [(3, 3, 2, 8)]. Nothing was loaded."
    )):
        MobileNet(weights=saved, input_shape=(32, 32, 4), **KW)
    # Another architecture (alpha 0.5) with 1 input channel: refused as before.
    with pytest.raises(ValueError, match=r"into model 'mobilenet_0.50_32' \(matched by name\): 54 shape mismatch\(es\); first: layer 'conv1' \(file: 'conv1'\) expects \[\(3, 3, 1, 16\)\], file has \[\(3, 3, 3, 8\)\]"):
        MobileNet(weights=path, input_shape=(32, 32, 1), alpha=0.5, include_top=False)
    keras.backend.clear_session()


def _glorot_limit(kernel):
    fan_in = int(np.prod(kernel.shape[:-1]))
    return np.sqrt(6.0 / (fan_in + kernel.shape[-1]))


def test_a_new_head_is_initialised_and_named(top_file, monkeypatch):
    path, arrays = top_file
    with pytest.warns(UserWarning) as record:
        model = MobileNet(weights=path, alpha=0.25, include_top=True, classes=10, input_shape=(32, 32, 3))
    messages = [str(w.message) for w in record if "conv_preds" in str(w.message)]
    assert messages == [
        "Layer 'conv_preds' of model 'mobilenet_0.25_32' was not loaded from the weights file "
        f"{path}: the file holds [(1, 1, 256, 1000), (1000,)] for it and the layer has "
        "[(1, 1, 256, 10), (10,)] (classes=10). It is freshly initialised with its initializers."
    ]
    _assert_loaded_unchanged(model, arrays, skip=("conv_preds",))
    kernel, bias = model.get_layer("conv_preds").get_weights()
    limit = _glorot_limit(kernel)  # Glorot uniform: U(-limit, limit), std limit / sqrt(3)
    assert np.all(np.abs(kernel) <= limit) and np.count_nonzero(kernel) == kernel.size
    assert abs(kernel.std() / (limit / np.sqrt(3)) - 1) < 0.1
    np.testing.assert_array_equal(bias, np.zeros(10, "float32"))
    # The same from weights="imagenet" (the official top file, ours here), 1 channel too.
    monkeypatch.setattr(zoo_weights, "fetch_official", lambda wf: path)
    with pytest.warns(UserWarning, match="'conv_preds'"):
        model = MobileNet(weights="imagenet", alpha=0.25, classes=3, input_shape=(224, 224, 1))
    kernel = model.get_layer("conv_preds").get_weights()[0]
    assert kernel.shape == (1, 1, 256, 3) and np.count_nonzero(kernel) == kernel.size
    assert np.all(np.abs(kernel) <= _glorot_limit(kernel))
    np.testing.assert_allclose(
        model.get_layer("conv1").get_weights()[0], _expected_kernel(arrays["conv1"][0], 1), rtol=1e-6, atol=0
    )
    keras.backend.clear_session()


def test_a_dense_head_is_initialised(tmp_path):
    source = zoo_builds.structure(MobileNetV2, weights=None, alpha=0.35, input_shape=(32, 32, 3))
    path, _, _ = write_model_h5(tmp_path / "v2.h5", source, seed=5)
    arrays = _file_arrays(path)
    with pytest.warns(UserWarning, match="Layer 'predictions' of model"):
        model = MobileNetV2(weights=path, alpha=0.35, classes=7, input_shape=(32, 32, 3))
    _assert_loaded_unchanged(model, arrays, skip=("predictions",))
    kernel, bias = model.get_layer("predictions").get_weights()
    limit = _glorot_limit(kernel)
    assert kernel.shape == (1280, 7) and np.count_nonzero(kernel) == kernel.size
    assert np.all(np.abs(kernel) <= limit) and abs(kernel.std() / (limit / np.sqrt(3)) - 1) < 0.1
    np.testing.assert_array_equal(bias, np.zeros(7, "float32"))
    keras.backend.clear_session()


def test_a_head_file_with_as_many_classes_loads_without_warning(top_file, tmp_path):
    path, _ = top_file
    with pytest.warns(UserWarning):
        ten = MobileNet(weights=path, alpha=0.25, include_top=True, classes=10, input_shape=(32, 32, 3))
    saved = str(tmp_path / "ten.weights.h5")
    ten.save_weights(saved)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        again = MobileNet(weights=saved, alpha=0.25, include_top=True, classes=10, input_shape=(32, 32, 3))
    assert not [w for w in record if "was not loaded" in str(w.message)]
    for got, want in zip(again.get_weights(), ten.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    keras.backend.clear_session()


def test_a_notop_file_still_does_not_fill_a_top(notop_file):
    path, _ = notop_file
    with pytest.raises(ValueError, match="the file has no weights for 1 layers of the model; first: layer 'conv_preds'"):
        MobileNet(weights=path, alpha=0.25, include_top=True, classes=10, input_shape=(32, 32, 3))
    keras.backend.clear_session()


def test_adapt_kernel_rejects_a_kernel_that_is_not_rgb():
    with pytest.raises(ValueError, match=re.escape("Expected an RGB kernel (rows, cols, 3, filters). Received shape (3, 3, 2, 8)")):
        zoo_weights.adapt_kernel(np.zeros((3, 3, 2, 8), "float32"), 4)
