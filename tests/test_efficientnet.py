"""EfficientNet and EfficientNetV2 beyond the oracle cases: the graph
``weights="imagenet"`` builds (the extra ``rescaling_1``, from files served
under the mirror), input-channel adaptation of the in-graph Normalization,
stochastic depth (training only; rates as keras.applications'), the
V2 preprocessing and argument errors (mixed precision: every model's, in
tests/test_mixed_precision.py).

Oracle parity of every variant, top and no-top, both data formats, is in
tests/test_parity.py; the tf.keras-saved models in
tests/test_legacy_families.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import pathlib

import keras
import numpy as np
import pytest
import zoo_builds

from keras_zoo_plus import model_table, synthetic, weights
from keras_zoo_plus.applications import efficientnet, efficientnet_v2
from keras_zoo_plus.deferred import build_without_initializers

from helpers import (
    REL_TOL,
    golden_arrays,
    load_golden,
    rel_error,
    write_legacy_h5,
)

BACKEND = keras.backend.backend()


def _names(model):
    return [layer.name for layer in model.layers]


# --------------------------------------------------------------------------
# weights="imagenet": the official file under the mirror, and its graph


@pytest.fixture
def served_b0(keras_home, http_server, tmp_path, monkeypatch):
    """EfficientNetB0's no-top file in the official layout (tf_keras' names,
    recorded by the golden harness) with synthetic values, served under the
    mirror; the table entry's md5 replaced by the generated file's."""
    entry = model_table.get("efficientnet_b0")
    official = entry.weight_file(include_top=False)
    _, structure = load_golden("efficientnet_b0_notop")
    arrays = golden_arrays(structure, seed=7, family="efficientnet")
    path = write_legacy_h5(tmp_path / official.fname, structure, arrays)
    data = pathlib.Path(path).read_bytes()
    http_server.add(official.path, data)
    served_wf = dataclasses.replace(official, file_hash=hashlib.md5(data).hexdigest())
    monkeypatch.setitem(model_table._load(), "efficientnet_b0", dataclasses.replace(
        entry, weights=tuple(served_wf if wf == official else wf for wf in entry.weights)))
    monkeypatch.setenv(weights.BASE_URL_ENV, http_server.url())
    by_name = {name: layer for (name, _, _), layer in zip(structure, arrays)}
    return {"path": path, "official": official, "layers": by_name}


def test_files_live_under_their_own_root_unless_a_mirror_is_set(monkeypatch):
    monkeypatch.delenv(weights.BASE_URL_ENV, raising=False)
    v1 = model_table.get("efficientnet_b3").weight_file(include_top=False)
    v2 = model_table.get("efficientnet_v2_s").weight_file(include_top=True)
    assert v1.url == "https://storage.googleapis.com/keras-applications/efficientnetb3_notop.h5"
    assert v2.url == ("https://storage.googleapis.com/tensorflow/keras-applications/"
                      "efficientnet_v2/efficientnetv2-s.h5")
    monkeypatch.setenv(weights.BASE_URL_ENV, "http://mirror.example/zoo")
    assert v1.url == "http://mirror.example/zoo/efficientnetb3_notop.h5"
    assert v2.url == "http://mirror.example/zoo/efficientnet_v2/efficientnetv2-s.h5"


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_imagenet_graph_divides_by_the_stddev_once_more(served_b0, http_server, data_format):
    """keras.applications' ``weights="imagenet"`` graph: Normalization, then
    ``rescaling_1`` by 1/sqrt(stddev) per channel (tensorflow#49930). The
    model given the same file by path has no such layer; fed the input
    that makes its normalised values those of the imagenet graph, it must
    give the same output (on the channel axis of either format: Keras'
    3-vector would scale the width under channels_first)."""
    shape = (3, 40, 45) if data_format == "channels_first" else (40, 45, 3)
    model = efficientnet.EfficientNetB0(include_top=False, weights="imagenet",
                                        input_shape=shape, data_format=data_format)
    assert http_server.count(served_b0["official"].path) == 1
    plain = efficientnet.EfficientNetB0(include_top=False, weights=served_b0["path"],
                                        input_shape=shape, data_format=data_format)
    assert _names(model)[:4] == ["input", "rescaling", "normalization", "rescaling_1"]
    assert _names(plain) == [n for n in _names(model) if n != "rescaling_1"]
    mean, variance, _ = served_b0["layers"]["normalization"]
    assert np.all(variance > 0) and not np.allclose(mean, 0)
    c = np.array([1 / math.sqrt(s) for s in efficientnet.IMAGENET_STDDEV_RGB])
    x = synthetic.synthetic_input((2, 40, 45, 3), seed=4)
    equivalent = 255.0 * (c * (x / 255.0 - mean) + mean)
    if data_format == "channels_first":
        x, equivalent = (np.ascontiguousarray(a.transpose(0, 3, 1, 2)) for a in (x, equivalent))
    got = model.predict_on_batch(x)  # one compiled program on JAX (eager: one per op)
    want = plain.predict_on_batch(equivalent.astype("float32"))
    assert rel_error(got, want) <= REL_TOL
    # The factor itself, on the channel axis: the full model's output hardly
    # depends on its input under synthetic weights (see the closing note of
    # this family), so the layer is checked on its own.
    probe = keras.Model(model.input, [model.get_layer("normalization").output,
                                      model.get_layer("rescaling_1").output])
    normalised, rescaled = probe.predict_on_batch(x)
    factors = c.reshape((3, 1, 1) if data_format == "channels_first" else (3,))
    np.testing.assert_allclose(rescaled, normalised * factors, rtol=1e-6, atol=1e-6)


def test_one_channel_input_adapts_the_normalization_and_the_stem(served_b0):
    """A grey input with imagenet weights: the stem's RGB kernel summed over
    R, G and B (as for every model), the Normalization's statistics the mean
    of the RGB ones."""
    model = efficientnet.EfficientNetB0(include_top=False, weights="imagenet",
                                        input_shape=(40, 45, 1))
    mean, variance, count = served_b0["layers"]["normalization"]
    got = model.get_layer("normalization").get_weights()
    np.testing.assert_allclose(got[0], [mean.mean()], rtol=1e-6)
    np.testing.assert_allclose(got[1], [variance.mean()], rtol=1e-6)
    assert int(got[2]) == int(count)
    (kernel,) = served_b0["layers"]["stem_conv"]
    np.testing.assert_allclose(model.get_layer("stem_conv").get_weights()[0],
                               kernel.sum(axis=2, keepdims=True), rtol=1e-6)
    factors = model.get_layer("rescaling_1").scale
    assert np.allclose(factors, [np.mean([1 / math.sqrt(s) for s in (0.229, 0.224, 0.225)])])
    y = model.predict_on_batch(np.ones((1, 40, 45, 1), "float32"))
    assert y.shape == (1, 2, 2, 1280) and np.all(np.isfinite(y))


# --------------------------------------------------------------------------
# Stochastic depth


def _drop_rates(model):
    return {layer.name: layer.rate for layer in model.layers
            if isinstance(layer, keras.layers.Dropout) and layer.name.endswith("_drop")}


@pytest.mark.parametrize("name", ["efficientnet_b1", "efficientnet_v2_b1"])
def test_stochastic_depth_rates_are_keras_applications(name):
    """Every residual branch's drop rate as keras.applications sets it
    (V1: over the rounded block count; V2: over the table's unrounded
    repeats), with depth coefficient 1.1 so the two differ."""
    entry = model_table.get(name)
    shape = (64, 64, 3)
    ours = zoo_builds.structure(entry.constructor, weights=None, include_top=False,
                                input_shape=shape)
    theirs = zoo_builds.structure(getattr(keras.applications, entry.constructor_name),
                                  weights=None, include_top=False, input_shape=shape)
    assert _drop_rates(ours) == _drop_rates(theirs)
    assert len(_drop_rates(ours)) > 10


def test_stochastic_depth_drops_whole_samples_in_training_only():
    kwargs = dict(include_top=False, weights=None, input_shape=(32, 40, 3))
    model = build_without_initializers(efficientnet.EfficientNetB0, drop_connect_rate=0.5,
                                       **kwargs)
    synthetic.apply_synthetic_weights(model, seed=2, family="efficientnet")
    none = build_without_initializers(efficientnet.EfficientNetB0, drop_connect_rate=0.0,
                                      **kwargs)
    none.set_weights(model.get_weights())
    assert not _drop_rates(none)
    x = synthetic.synthetic_input((2, 32, 40, 3), seed=3)
    np.testing.assert_array_equal(model.predict_on_batch(x), none.predict_on_batch(x))
    layer = model.get_layer("block6d_drop")
    assert layer.rate == pytest.approx(0.5 * 14 / 16)
    y = keras.ops.convert_to_numpy(layer(np.ones((64, 3, 4, 8), "float32"), training=True))
    per_sample = y.reshape(64, -1)
    kept = np.all(per_sample == per_sample[:, :1], axis=1)
    assert kept.all()  # each sample dropped or kept whole
    values = {round(float(v), 5) for v in per_sample[:, 0]}
    assert values == {0.0, round(1 / (1 - layer.rate), 5)}


# --------------------------------------------------------------------------
# EfficientNetV2's preprocessing follows the constructor, not `name`


def test_v2_preprocessing_follows_the_variant_whatever_the_name():
    b0 = zoo_builds.structure(efficientnet_v2.EfficientNetV2B0, weights=None,
                              include_top=False, input_shape=(32, 32, 3), name="my_backbone")
    assert b0.name == "my_backbone"
    assert _names(b0)[1:3] == ["rescaling", "normalization"]
    norm = b0.get_layer("normalization")
    np.testing.assert_allclose(np.ravel(norm.mean), efficientnet_v2.IMAGENET_MEAN)
    s = zoo_builds.structure(efficientnet_v2.EfficientNetV2S, weights=None,
                             include_top=False, input_shape=(32, 32, 3))
    rescaling = s.get_layer("rescaling")
    assert (rescaling.scale, rescaling.offset) == (1.0 / 128.0, -1)
    assert "normalization" not in _names(s)
    raw = zoo_builds.structure(efficientnet_v2.EfficientNetV2B0, weights=None,
                               include_top=False, input_shape=(32, 32, 3),
                               include_preprocessing=False)
    assert _names(raw)[1] == "stem_conv"


# --------------------------------------------------------------------------
# Arguments


@pytest.mark.parametrize("ctor", [efficientnet.EfficientNetB0, efficientnet_v2.EfficientNetV2B0])
def test_bad_arguments(ctor):
    cases = [
        (dict(drop_connect_rate=1.0), ValueError,
         "`drop_connect_rate` must be a float in [0, 1) (the stochastic depth rate of the "
         "last block). Received: drop_connect_rate=1.0"),
        (dict(drop_connect_rate="0.2"), ValueError,
         "Received: drop_connect_rate='0.2'"),
        (dict(depth_divisor=0), ValueError,
         "`depth_divisor` must be a positive int (channels are rounded to multiples of "
         "it). Received: depth_divisor=0"),
        (dict(depth_divisor=8.0), TypeError, "Received: depth_divisor=8.0"),
        (dict(depth_divisor=4, weights="imagenet"), ValueError,
         "`depth_divisor` must be 8 with `weights=\"imagenet\"` (the official files' channel "
         "counts). Received: depth_divisor=4"),
    ]
    if ctor is efficientnet_v2.EfficientNetV2B0:
        cases.append((dict(include_preprocessing=1), TypeError,
                      "`include_preprocessing` must be a bool. Received: include_preprocessing=1"))
    for kwargs, error, message in cases:
        kwargs.setdefault("weights", None)
        with pytest.raises(error) as info:
            ctor(include_top=False, input_shape=(32, 32, 3), **kwargs)
        assert message in str(info.value), (kwargs, str(info.value))


def test_depth_divisor_rounds_every_width():
    model = zoo_builds.structure(efficientnet.EfficientNetB0, weights=None, include_top=False,
                                 input_shape=(32, 32, 3), depth_divisor=16)
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)
             and not la.name.endswith(("se_reduce", "se_expand"))]
    assert all(la.filters % 16 == 0 for la in convs)
    assert model.get_layer("stem_conv").filters == 32
    assert model.get_layer("block1a_project_conv").filters == 16
    assert model.get_layer("block2a_project_conv").filters == 32  # 24 -> 32
