"""What RegNet and ResNet-RS (the tf_keras families Keras 3 dropped) add
to the table-driven suites: ResNet-RS's weight files per training
resolution, RegNet's two spellings of the model's name, the head's
activation tf_keras ignores, and the recursion limit of the deepest models.
Their oracle parity, feature levels, stages and signatures are in the
table-driven suites (test_parity, test_model_table)."""

import dataclasses
import hashlib
import pathlib
import sys

import keras
import numpy as np
import pytest

from keras_zoo_plus import model_table, weights
from keras_zoo_plus.applications import regnet, resnet_rs

from helpers import golden_arrays, load_golden, write_legacy_h5

#: tf_keras' WEIGHT_HASHES and DEPTH_TO_WEIGHT_VARIANTS (resnet_rs.py of
#: tf_keras 2.21), per depth: the files ``weights="imagenet-i<N>"`` loads.
TF_KERAS_FILES = {
    101: {160: "82d5b90c5ce9d710da639d6216d0f979", 192: "f9a0f6b85faa9c3db2b6e233c4eebb5b"},
    152: {192: "5fbf7ac2155cb4d5a6180ee9e3aa8704", 224: "dc8b2cba2005552eafa3167f00dc2133",
          256: "fa79794252dbe47c89130f65349d654a"},
    350: {256: "6e44b55025bbdff8f51692a023143d66", 320: "ab0c1f9079d2f85a9facbd2c88aa6079"},
}


@pytest.mark.parametrize("depth", sorted(TF_KERAS_FILES))
def test_resnet_rs_weights_name_tf_keras_files_per_resolution(depth):
    entry = model_table.get(f"resnetrs{depth}")
    for resolution, md5 in TF_KERAS_FILES[depth].items():
        wf = entry.weight_file(include_top=False, resolution=resolution)
        assert (wf.fname, wf.md5) == (f"resnet-rs-{depth}-i{resolution}_notop.h5", md5)
        assert wf.url.endswith(f"/keras-applications/resnet_rs/resnet-rs-{depth}-i{resolution}"
                               "_notop.h5")
        assert resnet_rs.resolve_weights(depth, f"imagenet-i{resolution}") == (
            "imagenet", resolution)
    # "imagenet" is the highest resolution, as in tf_keras.
    assert resnet_rs.resolve_weights(depth, "imagenet") == (
        "imagenet", max(TF_KERAS_FILES[depth]))
    assert entry.weight_files()["notop"].fname == (
        f"resnet-rs-{depth}-i{max(TF_KERAS_FILES[depth])}_notop.h5")


def test_resnet_rs_refuses_a_resolution_without_a_file():
    with pytest.raises(ValueError) as info:
        resnet_rs.ResNetRS101(weights="imagenet-i224", include_top=False)
    assert str(info.value) == (
        "ResNetRS101 has official weights for `weights` in 'imagenet' (the highest "
        "resolution), 'imagenet-i192', 'imagenet-i160', None or the path to a weights file. "
        "Received: weights='imagenet-i224'")
    with pytest.raises(ValueError, match="Received: weights='imagenet-i'"):
        resnet_rs.ResNetRS50(weights="imagenet-i", include_top=False)


def test_resnet_rs_downloads_the_file_of_the_resolution_asked_for(
        keras_home, http_server, tmp_path, monkeypatch):
    """``ResNetRS101(weights="imagenet-i160")`` fetches resnet-rs-101-i160
    (not the default i192, which the server does not hold) and loads it. The
    served file has the official layout (tf_keras' names, recorded by the
    golden generator) with synthetic values; only its md5 in the table is
    the generated file's."""
    entry = model_table.get("resnetrs101")
    official = entry.weight_file(include_top=False, resolution=160)
    _, structure = load_golden("resnetrs101_notop")
    arrays = golden_arrays(structure, seed=7, family="resnet_rs")
    path = write_legacy_h5(tmp_path / official.fname, structure, arrays)
    data = pathlib.Path(path).read_bytes()
    http_server.add(official.path, data)
    served = dataclasses.replace(official, file_hash=hashlib.md5(data).hexdigest())
    monkeypatch.setitem(model_table._load(), "resnetrs101", dataclasses.replace(
        entry, weights=tuple(served if wf == official else wf for wf in entry.weights)))
    monkeypatch.setenv(weights.BASE_URL_ENV, http_server.url())
    model = resnet_rs.ResNetRS101(include_top=False, weights="imagenet-i160",
                                  input_shape=(32, 32, 3))
    assert http_server.count(official.path) == 1
    got = [w for layer in weights.weighted_layers(model) for w in layer.get_weights()]
    want = [a for layer in arrays for a in layer]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_regnet_takes_tf_keras_model_name_or_keras_name():
    shape = {"weights": None, "include_top": False, "input_shape": (32, 32, 3)}
    assert regnet.RegNetX002(**shape).name == "regnetx002"
    assert regnet.RegNetX002("mine", **shape).name == "mine"  # tf_keras' positional call
    assert regnet.RegNetX002(name="theirs", **shape).name == "theirs"
    with pytest.raises(ValueError) as info:
        regnet.RegNetX002(model_name="a", name="b", **shape)
    assert str(info.value) == (
        "Give the model's name once: `name` (Keras 3) or `model_name` (tf_keras). "
        "Received: model_name='a', name='b'")
    # Layer names keep the table entry's prefix whatever the model is called.
    model = regnet.RegNetX002(name="theirs", **shape)
    assert model.get_layer("regnetx002_Stage_0_XBlock_0_conv_3x3").groups == 3


def test_regnet_applies_the_classifier_activation_tf_keras_ignores():
    kwargs = {"weights": None, "input_shape": (32, 32, 3), "classes": 7}
    probs = regnet.RegNetY002(**kwargs)
    assert probs.get_layer("regnety002_head_dense").activation is keras.activations.softmax
    logits = regnet.RegNetY002(classifier_activation=None, **kwargs)
    assert logits.get_layer("regnety002_head_dense").activation is keras.activations.linear
    logits.set_weights(probs.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    p = keras.ops.convert_to_numpy(probs.predict_on_batch(x))
    z = keras.ops.convert_to_numpy(logits.predict_on_batch(x))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=-1, keepdims=True), rtol=1e-4, atol=1e-7)


def test_deep_resnet_rs_raise_the_recursion_limit_only_upwards():
    before = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(1000)
        resnet_rs.allow_deep_graph(270)
        assert sys.getrecursionlimit() == 2000
        resnet_rs.allow_deep_graph(50)  # shallow: unchanged
        assert sys.getrecursionlimit() == 2000
        sys.setrecursionlimit(5000)
        resnet_rs.allow_deep_graph(420)  # never lowered
        assert sys.getrecursionlimit() == 5000
    finally:
        sys.setrecursionlimit(before)
