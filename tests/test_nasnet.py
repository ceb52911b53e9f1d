"""NASNetMobile / NASNetLarge: sizes, stages, argument rules, both data
formats, unknown spatial sizes. Numerical parity is in test_parity.py."""

import re

import keras
import numpy as np
import pytest
import zoo_builds

from keras_zoo_plus import registry, synthetic
from keras_zoo_plus.applications import NASNetLarge, NASNetMobile, nasnet

from helpers import load_golden, to_format


@pytest.fixture(scope="module")
def mobile():
    return zoo_builds.build("nasnet_mobile", include_top=True, size=zoo_builds.DEFAULT)


@pytest.fixture(scope="module")
def large():
    # No top and a small input: the stages are the same, the build cheaper.
    return zoo_builds.build("nasnet_large", pooling="avg")  # 32x32


def test_param_counts_mobile(mobile):
    # keras.io applications table (5.3M); exact figure from Keras.
    assert mobile.count_params() == 5_326_716
    assert registry.model_info("nasnet_mobile").params == mobile.count_params()


@pytest.mark.slow
def test_param_counts_large():
    # keras.io applications table (88.9M); exact figure from Keras. A big
    # model, checked at the reduced size: global pooling before the top, so
    # the count does not depend on it; the default input shape is the
    # validated one.
    model = zoo_builds.build("nasnet_large", include_top=True)  # 32x32
    assert model.count_params() == 88_949_818
    assert registry.model_info("NASNetLarge").params == model.count_params()
    assert model.name == "nasnet_large"
    assert zoo_builds.validated(NASNetLarge, weights=None).input_shape == (331, 331, 3)


def test_defaults_and_registry(mobile, large):
    assert mobile.name == "nasnet_mobile" and large.name == "nasnet_large"
    assert mobile.input_shape == (None, 224, 224, 3)
    assert registry.list_models("nasnet*") == ["nasnet_large", "nasnet_mobile"]
    assert registry.model_info("nasnet_mobile").constructor is NASNetMobile
    assert registry.model_info("nasnet_large").default_size == 331
    assert registry.model_info("nasnet_large").preprocess == "tf"


@pytest.mark.parametrize("which", ["mobile", "large"])
def test_every_layer_is_in_exactly_one_stage(which, request):
    model = request.getfixturevalue(which)
    stages = registry.model_info(f"nasnet_{which}").stages
    names = [name for name, _ in stages]
    assert names[0] == "stem" and names[-1] == "top"
    assert names[1:3] == ["stem_1", "stem_2"]
    counts = dict.fromkeys(names, 0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        hits = [n for n, rx in stages if re.search(rx, layer.name)]
        assert len(hits) == 1, (layer.name, hits)
        counts[hits[0]] += 1
    assert all(counts.values()), [n for n, c in counts.items() if not c]
    # Stages come in network order: each stage's first layer comes after the
    # previous stage's first layer in the topologically ordered layer list.
    first = {}
    for i, layer in enumerate(model.layers):
        for n, rx in stages:
            if re.search(rx, layer.name):
                first.setdefault(n, i)
    assert [first[n] for n in names] == sorted(first[n] for n in names)


def test_cells_in_network_order():
    assert [b for _, b in nasnet.cell_ids(4)] == [
        "stem_1", "stem_2", "0", "1", "2", "3", "reduce_4",
        "5", "6", "7", "8", "reduce_8", "9", "10", "11", "12",
    ]


def test_every_layer_has_an_explicit_name():
    model = zoo_builds.build("nasnet_mobile")  # no top, 32x32
    auto = re.compile(r"^(activation|add|concatenate|zero_padding2d|cropping2d|conv2d|"
                      r"separable_conv2d|batch_normalization|global_\w+)(_\d+)?$")
    assert [layer.name for layer in model.layers if auto.match(layer.name)] == []


@pytest.mark.parametrize(
    "ctor, kwargs, message",
    [
        (
            NASNetMobile,
            dict(include_top=False, input_shape=(None, None, 3)),
            'With `weights="imagenet"` the input shape must be static (no None entries). '
            "Received: input_shape=(None, None, 3)",
        ),
        (
            NASNetLarge,
            dict(include_top=False, input_shape=(3, None, 96), data_format="channels_first"),
            'With `weights="imagenet"` the input shape must be static (no None entries). '
            "Received: input_shape=(3, None, 96)",
        ),
        (
            NASNetLarge,
            dict(input_shape=(224, 224, 3)),
            'When setting `include_top=True` and loading `weights="imagenet"`, '
            "`input_shape` should be (331, 331, 3). Received: input_shape=(224, 224, 3)",
        ),
        (
            NASNetMobile,
            dict(input_shape=(3, 331, 331), data_format="channels_first"),
            'When setting `include_top=True` and loading `weights="imagenet"`, '
            "`input_shape` should be (3, 224, 224). Received: input_shape=(3, 331, 331)",
        ),
        (
            NASNetMobile,
            dict(weights=None, include_top=False, input_shape=(31, 64, 3)),
            "Input size must be at least 32x32. Received: input_shape=(31, 64, 3)",
        ),
        (
            NASNetLarge,
            dict(weights=None, include_top=False, input_shape=(3, 64, 31),
                 data_format="channels_first"),
            "Input size must be at least 32x32. Received: input_shape=(3, 64, 31)",
        ),
    ],
)
def test_argument_errors(ctor, kwargs, message, monkeypatch):
    # The rules fire before anything is built or downloaded.
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")
    with pytest.raises(ValueError) as info:
        ctor(**kwargs)
    assert str(info.value) == message


def test_imagenet_with_other_classes_passes_validation():
    # A fresh head with the pretrained body (tests/test_channels_and_head.py
    # loads one); keras.applications refuses classes != 1000 here.
    spec = zoo_builds.validated(NASNetMobile, classes=10)
    assert (spec.weights, spec.include_top, spec.classes) == ("imagenet", True, 10)


def test_dynamic_input_tensor_with_imagenet_weights_is_refused(monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"must be static .* input_shape=\(None, None, 3\)"):
        NASNetMobile(include_top=False, input_tensor=keras.Input((None, None, 3)))


def _shapes(model, data_format):
    out = []
    for layer in model.layers:
        shape = tuple(layer.output.shape)
        if data_format == "channels_first" and len(shape) == 4:
            shape = (shape[0], shape[2], shape[3], shape[1])
        out.append((layer.name, shape))
    return out


def test_channels_first_is_the_transpose_of_channels_last():
    kw = dict(weights=None, include_top=False)
    last = NASNetMobile(input_shape=(63, 72, 3), data_format="channels_last", **kw)
    first = NASNetMobile(input_shape=(3, 63, 72), data_format="channels_first", **kw)
    assert _shapes(first, "channels_first") == _shapes(last, "channels_last")
    # The oracle (tf_keras) gives the final feature map's shape.
    expected, _ = load_golden("nasnet_mobile_notop")
    assert last.output_shape[1:] == expected.shape[1:]
    assert first.output_shape == (None, 1056) + expected.shape[1:3]
    for layer in first.layers:
        if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Concatenate)):
            assert layer.axis == 1, layer.name
        if hasattr(layer, "data_format"):
            assert layer.data_format == "channels_first", layer.name


@pytest.mark.parametrize("pooling, shape", [("avg", (None, 1056)), ("max", (None, 1056))])
def test_pooling(pooling, shape):
    model = zoo_builds.build("nasnet_mobile", pooling=pooling)  # 32x32
    assert model.output_shape == shape


@pytest.mark.slow
def test_unknown_spatial_size_builds_a_working_model(data_format):
    """keras.applications builds 1x1 projections instead of reductions when
    the spatial size is unknown (a model that fails on its first call); ours
    reduces and equals the static model. 65 keeps every strided stage even
    (32, 16, 8, 4, 2), the case the unknown-size padding assumes."""
    shape = (None, None, 3) if data_format == "channels_last" else (3, None, None)
    static = (65, 65, 3) if data_format == "channels_last" else (3, 65, 65)
    kw = dict(weights=None, include_top=False, data_format=data_format)
    dynamic = NASNetMobile(input_shape=shape, **kw)
    fixed = NASNetMobile(input_shape=static, **kw)
    assert [layer.name for layer in dynamic.layers] == [layer.name for layer in fixed.layers]
    assert [w.shape for w in dynamic.weights] == [w.shape for w in fixed.weights]
    synthetic.apply_synthetic_weights(fixed, seed=3)
    dynamic.set_weights(fixed.get_weights())
    x = to_format(synthetic.synthetic_input((1, 65, 65, 3), seed=3), data_format)
    a = keras.ops.convert_to_numpy(dynamic(x, training=False))
    b = keras.ops.convert_to_numpy(fixed(x, training=False))
    assert a.shape == b.shape == ((1, 2, 2, 1056) if data_format == "channels_last"
                                  else (1, 1056, 2, 2))
    assert np.max(np.abs(a - b)) <= 1e-5 * np.max(np.abs(b))


def test_preprocess_input_is_tf_mode():
    x = np.array([[[[0.0, 127.5, 255.0]]]], "float32")
    np.testing.assert_allclose(nasnet.preprocess_input(x), [[[[-1.0, 0.0, 1.0]]]])
    assert nasnet.decode_predictions is not None
