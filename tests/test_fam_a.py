"""Xception, InceptionV3, InceptionResNetV2: sizes, parameter counts,
freeze stages, pooling and channels_first shapes, ``ScaledResidual``.

Numerical parity with tf_keras is in test_parity.py (cases ``xception_*``,
``inception_v3_*``, ``inception_resnet_v2_*``).
"""

import re

import keras
import numpy as np
import pytest
import zoo_builds

from keras_zoo_plus import applications, imagenet, layers, registry
from keras_zoo_plus.applications import inception_resnet_v2, inception_v3, xception
from keras_zoo_plus.deferred import build_without_initializers

# Seed table: (constructor, module, parameters with the 1000-class top,
# default size, minimum size, channels of the last feature map).
FAMILIES = {
    "xception": ("Xception", xception, 22_910_480, 299, 71, 2048),
    "inception_v3": ("InceptionV3", inception_v3, 23_851_784, 299, 75, 2048),
    "inception_resnet_v2": ("InceptionResNetV2", inception_resnet_v2, 55_873_736, 299, 75, 1536),
}

# Feature-map size at the minimum input, from the architectures' strides
# and paddings (Xception: 71 -> 35 -> 33 -> 17 -> 9 -> 5 -> 3; Inception:
# 75 -> 37 -> 35 -> 17 -> 15 -> 7 -> 3 -> 1).
MIN_SIZE_FEATURES = {"xception": 3, "inception_v3": 1, "inception_resnet_v2": 1}


def _ctor(family):
    return getattr(applications, FAMILIES[family][0])


def _shape(h, w, data_format):
    return (3, h, w) if data_format == "channels_first" else (h, w, 3)


@pytest.fixture(scope="module", params=list(FAMILIES))
def top_model(request):
    """The model with its top at the default size; a big one
    (InceptionResNetV2) at the reduced size, same layers and parameters
    (global pooling before the top)."""
    family = request.param
    big = registry.model_info(family).is_large
    size = None if big else zoo_builds.DEFAULT
    return family, zoo_builds.build(family, include_top=True, size=size)


def test_param_count_with_top(top_model):
    family, model = top_model
    assert model.count_params() == FAMILIES[family][2]
    assert registry.model_info(family).params == FAMILIES[family][2]
    assert model.output_shape == (None, 1000)
    spec = zoo_builds.validated(_ctor(family), weights=None, data_format="channels_last")
    assert spec.input_shape == (299, 299, 3)
    if not registry.model_info(family).is_large:
        assert model.input_shape == (None, 299, 299, 3)


def _assert_stage_coverage(family, model):
    stages = registry.model_info(family).stages
    assert stages[-1][0] == "top"
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        hits = [name for name, rx in stages if re.match(rx, layer.name)]
        assert len(hits) == 1, f"{family}: layer {layer.name!r} matches stages {hits}"


def test_stages_cover_every_layer_once(top_model):
    family, model = top_model
    _assert_stage_coverage(family, model)
    stages = registry.model_info(family).stages
    # Stages are in network order: the first layer of each stage comes
    # after the first layer of the previous one.
    names = [layer.name for layer in model.layers]
    firsts = [next(i for i, n in enumerate(names) if re.match(rx, n)) for _, rx in stages]
    assert firsts == sorted(firsts)


def test_stage_names():
    assert [s for s, _ in registry.model_info("xception").stages] == [
        *(f"block{b}" for b in range(1, 15)), "top"
    ]
    assert [s for s, _ in registry.model_info("inception_v3").stages] == [
        "stem", *(f"mixed{i}" for i in range(11)), "top"
    ]
    assert [s for s, _ in registry.model_info("inception_resnet_v2").stages] == [
        "stem", "mixed_5b", "block35", "mixed_6a", "block17", "mixed_7a", "block8",
        "conv_7b", "top",
    ]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_registry_entry(family):
    info = registry.model_info(family)
    ctor, _, _, default, minimum, _ = FAMILIES[family]
    assert info.constructor is getattr(applications, ctor)
    assert (info.default_size, info.min_size, info.preprocess) == (default, minimum, "tf")
    files = info.weight_files()
    assert set(files) == {"top", "notop"}
    assert files["top"].fname == f"{family}_weights_tf_dim_ordering_tf_kernels.h5"
    assert files["notop"].fname == f"{family}_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_below_min_size_is_refused(family, data_format):
    minimum = FAMILIES[family][4]
    shape = _shape(minimum - 1, minimum, data_format)
    with pytest.raises(ValueError) as err:
        _ctor(family)(
            weights=None, include_top=False, input_shape=shape, data_format=data_format
        )
    assert str(err.value) == (
        f"Input size must be at least {minimum}x{minimum}. Received: input_shape={shape}"
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_imagenet_top_requires_default_shape(family):
    with pytest.raises(ValueError, match=r"`input_shape` should be \(299, 299, 3\)"):
        _ctor(family)(weights="imagenet", input_shape=(224, 224, 3), data_format="channels_last")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_max_pooling_output_shape(family):
    minimum, channels = FAMILIES[family][4], FAMILIES[family][5]
    # Shapes and names only: no initializer needs to run.
    model = build_without_initializers(
        _ctor(family), weights=None, include_top=False, pooling="max",
        input_shape=(minimum, minimum, 3), data_format="channels_last",
    )
    assert model.output_shape == (None, channels)
    assert model.layers[-1].name == "max_pool"
    _assert_stage_coverage(family, model)
    x = np.zeros((1, minimum, minimum, 3), "float32")
    assert keras.ops.convert_to_numpy(model(x)).shape == (1, channels)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_channels_first_features_and_avg_pooling(family):
    minimum, channels = FAMILIES[family][4], FAMILIES[family][5]
    side = MIN_SIZE_FEATURES[family]
    # Shapes and axes only: no initializer needs to run.
    model = build_without_initializers(
        _ctor(family), weights=None, include_top=False, pooling="avg",
        input_shape=(3, minimum, None),
        data_format="channels_first",
    )
    assert model.input_shape == (None, 3, minimum, None)
    assert model.output_shape == (None, channels)
    assert model.layers[-1].name == "avg_pool"
    assert tuple(model.layers[-2].output.shape) == (None, channels, side, None)
    _assert_stage_coverage(family, model)
    # Every channel axis follows the format: BatchNormalization and
    # Concatenate on axis 1, spatial layers told channels_first.
    for layer in model.layers:
        if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Concatenate)):
            assert layer.axis in (1, [1]), layer.name
        if hasattr(layer, "data_format"):
            assert layer.data_format == "channels_first", layer.name
    x = np.zeros((1, 3, minimum, minimum + 1), "float32")
    assert keras.ops.convert_to_numpy(model(x)).shape == (1, channels)
    features = keras.Model(model.inputs, model.layers[-2].output)
    assert keras.ops.convert_to_numpy(features(x)).shape[:3] == (1, channels, side)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_preprocess_input_is_tf_mode(family):
    module = FAMILIES[family][1]
    x = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    before = x.copy()
    out = module.preprocess_input(x)
    np.testing.assert_allclose(out, [[[[-1.0, 0.0, 1.0]]]], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(x, before)
    assert module.decode_predictions is imagenet.decode_predictions


def test_scaled_residual_values_and_config():
    layer = layers.ScaledResidual(0.17, name="block35_1")
    a = np.arange(6, dtype="float32").reshape(1, 1, 2, 3)
    b = np.full((1, 1, 2, 3), 2.0, "float32")
    out = keras.ops.convert_to_numpy(layer([a, b]))
    np.testing.assert_allclose(out, a + np.float32(0.17) * b, rtol=1e-7)
    assert layer.weights == []
    clone = layers.ScaledResidual.from_config(layer.get_config())
    assert (clone.scale, clone.name) == (0.17, "block35_1")
    assert layers.custom_objects()["ScaledResidual"] is layers.ScaledResidual
    with pytest.raises(TypeError, match=r"`scale` must be a float. Received: scale='x'"):
        layers.ScaledResidual("x")


def test_scaled_residual_round_trips_through_keras_file(tmp_path):
    inp = keras.Input((4, 5, 2))
    out = layers.ScaledResidual(0.5, name="res")([inp, inp])
    model = keras.Model(inp, out)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("res"), layers.ScaledResidual)
    x = np.random.default_rng(0).normal(size=(2, 4, 5, 2)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), 1.5 * x, rtol=1e-6
    )
