"""``preprocess_input`` and ``decode_predictions`` with good and bad input.

* Numbers equal keras.applications' ``imagenet_utils.preprocess_input``
  (run on a copy, since Keras modifies NumPy float input in place) for
  every mode, both data formats, rank 3 and 4, float and integer input.
* Our ``preprocess_input`` never modifies NumPy input in place.
* Wrong shapes, dtypes, data formats and modes raise clear errors.
"""

import keras
import numpy as np
import pytest
from keras.applications import imagenet_utils

from keras_zoo_plus import imagenet

MODES = ("caffe", "tf", "torch")


def _image(shape, dtype):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, shape).astype(dtype)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "uint8"])
@pytest.mark.parametrize("rank", [3, 4])
def test_preprocess_matches_keras_and_never_modifies_input(mode, dtype, rank, data_format):
    shape = (5, 4, 3) if data_format == "channels_last" else (3, 5, 4)
    if rank == 4:
        shape = (2, *shape)
    x = _image(shape, dtype)
    pristine = x.copy()
    ours = imagenet.preprocess_input(x, data_format=data_format, mode=mode)
    np.testing.assert_array_equal(x, pristine)  # not modified in place
    assert ours is not x
    theirs = imagenet_utils.preprocess_input(x.copy(), data_format=data_format, mode=mode)
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("mode", MODES)
def test_preprocess_tensor_equals_numpy(mode, data_format):
    shape = (2, 4, 5, 3) if data_format == "channels_last" else (2, 3, 4, 5)
    x = _image(shape, "float32")
    want = imagenet.preprocess_input(x, data_format=data_format, mode=mode)
    got = imagenet.preprocess_input(keras.ops.convert_to_tensor(x), data_format=data_format,
                                    mode=mode)
    assert keras.ops.is_tensor(got)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-6, atol=1e-5)


BAD_PREPROCESS = [
    # (x, kwargs, exception, message fragment)
    (np.zeros((4, 3)), {}, ValueError, "rank 3"),
    (np.zeros((1, 1, 4, 4, 3)), {}, ValueError, "rank 3"),
    (np.zeros((1, 4, 4, 4)), {"data_format": "channels_last"}, ValueError, "3 channels on axis 3"),
    (np.zeros((1, 4, 4, 1)), {"data_format": "channels_last"}, ValueError, "3 channels"),
    (np.zeros((1, 3, 4, 4)), {"data_format": "channels_last"}, ValueError, "3 channels on axis 3"),
    (np.zeros((1, 4, 4, 3)), {"data_format": "channels_first"}, ValueError, "3 channels on axis 1"),
    (np.zeros((4, 4, 3)), {"data_format": "channels_first"}, ValueError, "3 channels on axis 0"),
    (np.zeros((1, 4, 4, 3)), {"data_format": "channels_lst"}, ValueError, "`data_format` must be"),
    (np.zeros((1, 4, 4, 3)), {"data_format": "NHWC"}, ValueError, "`data_format` must be"),
    (np.zeros((1, 4, 4, 3)), {"data_format": 1}, ValueError, "`data_format` must be"),
    (np.zeros((1, 4, 4, 3)), {"mode": "caffee"}, ValueError, "`mode` must be one of"),
    (np.zeros((1, 4, 4, 3)), {"mode": None}, ValueError, "`mode` must be one of"),
    (np.zeros((1, 4, 4, 3)), {"mode": "TF"}, ValueError, "`mode` must be one of"),
    (np.full((1, 2, 2, 3), "a"), {}, TypeError, "must hold numbers"),
    (np.zeros((1, 2, 2, 3), bool), {}, TypeError, "must hold numbers"),
    (np.zeros((1, 2, 2, 3), complex), {}, TypeError, "must hold numbers"),
    (np.zeros((1, 2, 2, 3), object), {}, TypeError, "must hold numbers"),
    (None, {}, TypeError, "must be a NumPy array or a backend tensor"),
    ("image.jpg", {}, TypeError, "must be a NumPy array or a backend tensor"),
    ({"x": 1}, {}, TypeError, "must be a NumPy array or a backend tensor"),
    ([[1, 2, 3], [1, 2]], {}, ValueError, "rectangular"),
]


@pytest.mark.parametrize("case", range(len(BAD_PREPROCESS)))
def test_preprocess_bad_input(case):
    x, kw, exc, text = BAD_PREPROCESS[case]
    with pytest.raises(exc, match=text):
        imagenet.preprocess_input(x, **kw)


def test_preprocess_bad_tensor_dtype_and_shape():
    with pytest.raises(TypeError, match="must hold numbers"):
        imagenet.preprocess_input(keras.ops.zeros((1, 2, 2, 3), dtype="bool"))
    with pytest.raises(ValueError, match="3 channels"):
        imagenet.preprocess_input(keras.ops.zeros((1, 2, 2, 5)), data_format="channels_last")
    with pytest.raises(ValueError, match="rank 3"):
        imagenet.preprocess_input(keras.ops.zeros((2, 3)))


BAD_DECODE = [
    (np.zeros(1000), {}, ValueError, r"shape \(samples, 1000\).*\(1000,\)"),
    (np.zeros((1, 999)), {}, ValueError, r"\(1, 999\)"),
    (np.zeros((2, 1000, 1)), {}, ValueError, r"\(2, 1000, 1\)"),
    (np.zeros((1000, 1)), {}, ValueError, r"\(1000, 1\)"),
    (np.full((1, 1000), "x"), {}, TypeError, "must hold real numbers"),
    (np.zeros((1, 1000), bool), {}, TypeError, "must hold real numbers"),
    (np.zeros((1, 1000), complex), {}, TypeError, "must hold real numbers"),
    (np.full((1, 1000), np.nan), {}, ValueError, "NaN"),
    (None, {}, TypeError, "must hold real numbers"),
    ("preds", {}, TypeError, "must hold real numbers"),
    (np.zeros((1, 1000)), {"top": 0}, ValueError, "`top` must be an integer between 1 and 1000"),
    (np.zeros((1, 1000)), {"top": 1001}, ValueError, "`top` must be"),
    (np.zeros((1, 1000)), {"top": 1.5}, ValueError, "`top` must be"),
    (np.zeros((1, 1000)), {"top": "5"}, ValueError, "`top` must be"),
    (np.zeros((1, 1000)), {"top": True}, ValueError, "`top` must be"),
    (np.zeros((1, 1000)), {"top": -1}, ValueError, "`top` must be"),
]


@pytest.mark.parametrize("case", range(len(BAD_DECODE)))
def test_decode_bad_input_fails_before_any_download(case, keras_home, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")
    monkeypatch.setattr(imagenet, "_class_index_cache", {})
    preds, kw, exc, text = BAD_DECODE[case]
    with pytest.raises(exc, match=text):
        imagenet.decode_predictions(preds, **kw)
