"""Constructor behaviour of the foundation families (VGG, ResNet): shapes,
tops, pooling, input tensors, and every documented argument error."""

import keras
import numpy as np
import pytest
import zoo_builds

import keras_zoo_plus as kzp
from keras_zoo_plus.applications import (
    VGG16,
    VGG19,
    ResNet50,
    ResNet101,
    ResNet152,
    resnet50,
    vgg16,
)

from helpers import run_model

SMALL = {"channels_last": (32, 48, 3), "channels_first": (3, 32, 48)}
SMALL_HW = (32, 48)


def _count_at_default_size(info):
    """``count_params()`` of ``info``'s model with its top at the default
    input size. Big models (``is_large``) are built at the reduced test size:
    only VGG's fc1 depends on the input size (its input is the flattened
    7x7x512 feature map at 224 pixels, 1x1x512 at 32), the rest is
    counted as built. The default input shape is the validated one."""
    ctor = info.constructor
    spec = zoo_builds.validated(ctor, weights=None)
    assert spec.input_shape == (info.default_size, info.default_size, 3)
    if not info.is_large:
        return ctor(weights=None).count_params()
    model = zoo_builds.build(info.name, include_top=True)
    count = model.count_params()
    if info.family == "vgg":
        side = zoo_builds.size(info) // 32
        assert model.get_layer("fc1").kernel.shape == (side * side * 512, 4096)
        count += ((info.default_size // 32) ** 2 - side * side) * 512 * 4096
    return count


@pytest.mark.parametrize(
    "ctor, params",
    [(VGG16, 138_357_544), (VGG19, 143_667_240), (ResNet50, 25_636_712)],
)
def test_seed_table_parameter_counts(ctor, params):
    assert _count_at_default_size(kzp.model_info(ctor.__name__)) == params
    assert kzp.model_info(ctor.__name__).params == params


@pytest.mark.parametrize("ctor, params", [(ResNet101, 44_707_176), (ResNet152, 60_419_944)])
def test_deeper_resnet_parameter_counts(ctor, params):
    # keras.applications' published counts for the same architectures.
    assert _count_at_default_size(kzp.model_info(ctor.__name__)) == params


@pytest.mark.parametrize(
    "ctor, channels, spatial", [(VGG16, 512, (1, 1)), (ResNet50, 2048, (1, 2))]
)
@pytest.mark.parametrize("pooling", [None, "avg", "max"])
def test_no_top_output_shapes(ctor, channels, spatial, pooling, data_format):
    # Shared with test_pooling_matches_manual_reduction (one build per worker).
    model = zoo_builds.build(ctor.__name__, pooling=pooling, size=SMALL_HW, data_format=data_format)
    if pooling is None:
        expected = (None, channels, *spatial) if data_format == "channels_first" else (
            None, *spatial, channels)
    else:
        expected = (None, channels)
    assert model.output_shape == expected
    x = np.zeros((2, *SMALL[data_format]), "float32")
    assert run_model(model, x).shape == (2, *expected[1:])


def test_pooling_matches_manual_reduction(data_format):
    base, avg, mx = (
        zoo_builds.build("resnet50", pooling=p, size=SMALL_HW, data_format=data_format)
        for p in (None, "avg", "max")
    )
    with zoo_builds.borrowed(avg, weights=True), zoo_builds.borrowed(mx, weights=True):
        avg.set_weights(base.get_weights())
        mx.set_weights(base.get_weights())
        x = np.random.default_rng(0).normal(size=(2, *SMALL[data_format])).astype("float32")
        fmap = run_model(base, x)
        axes = (2, 3) if data_format == "channels_first" else (1, 2)
        # Three compiled programs on JAX, each fusing the body its own way:
        # float32 rounding apart (values up to ~50 with the synthetic
        # weights); a wrong pooling is off by far more.
        np.testing.assert_allclose(run_model(avg, x), fmap.mean(axis=axes), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(run_model(mx, x), fmap.max(axis=axes), rtol=1e-5, atol=1e-5)


def test_classes_and_classifier_activation():
    model = ResNet50(weights=None, classes=7, classifier_activation=None, input_shape=(32, 32, 3))
    assert model.output_shape == (None, 7)
    assert model.get_layer("predictions").get_config()["activation"] == "linear"
    soft = ResNet50(weights=None, classes=7, input_shape=(32, 32, 3))
    soft.set_weights(model.get_weights())
    x = np.random.default_rng(1).normal(size=(1, 32, 32, 3)).astype("float32")
    logits = run_model(model, x)
    probs = run_model(soft, x)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-7)


def test_input_tensor_is_used_and_predecessors_kept(data_format):
    raw = keras.Input(shape=SMALL[data_format], name="raw")
    scaled = keras.layers.Rescaling(1 / 255.0, name="scale")(raw)
    model = VGG16(weights=None, include_top=False, input_tensor=scaled, data_format=data_format)
    assert model.inputs[0].name == raw.name
    assert "scale" in [layer.name for layer in model.layers]


def test_input_tensor_shape_conflict():
    t = keras.Input(shape=(64, 64, 3))
    with pytest.raises(ValueError, match=r"`input_tensor` has shape \(64, 64, 3\) but `input_shape` is \(32, 32, 3\)"):
        ResNet50(weights=None, include_top=False, input_tensor=t, input_shape=(32, 32, 3))


def test_dynamic_spatial_size_without_top(data_format):
    shape = (3, None, None) if data_format == "channels_first" else (None, None, 3)
    model = ResNet50(weights=None, include_top=False, pooling="avg", input_shape=shape,
                     data_format=data_format)
    for size in (57,):
        x = np.zeros((1, 3, size, size) if data_format == "channels_first" else (1, size, size, 3),
                     "float32")
        assert run_model(model, x).shape == (1, 2048)


def test_layer_names_are_deterministic():
    # One build shared with other tests (built whenever this worker first
    # needed it), one new: names must not depend on what was built between.
    a = zoo_builds.build("resnet50")  # no top, 32x32
    b = zoo_builds.fresh("resnet50")
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    assert a.layers[1].name == "conv1_pad"


def test_data_format_default_follows_global_config():
    old = keras.config.image_data_format()
    try:
        keras.config.set_image_data_format("channels_first")
        model = VGG16(weights=None, include_top=False, input_shape=(3, 32, 32))
        assert model.output_shape == (None, 512, 1, 1)
    finally:
        keras.config.set_image_data_format(old)


def test_module_aliases():
    assert vgg16.VGG16 is VGG16
    assert resnet50.ResNet50 is ResNet50
    x = np.full((1, 2, 2, 3), 255.0, "float32")
    expected = 255.0 - np.array([103.939, 116.779, 123.68])
    np.testing.assert_allclose(resnet50.preprocess_input(x)[0, 0, 0], expected, rtol=1e-6)


# -- argument errors: raised before any layer is built ---------------------

ERRORS = [
    (dict(weights="nope"), ValueError,
     r"`weights` must be None, 'imagenet' or the path to an existing weights file .* Received: weights='nope'"),
    (dict(weights=3), TypeError, r"`weights` must be None, 'imagenet' or the path to a weights file. Received: weights=3 of type int"),
    (dict(weights=None, classes=0), ValueError, r"`classes` must be a positive integer. Received: classes=0"),
    (dict(weights=None, classes=2.5), ValueError, r"`classes` must be a positive integer. Received: classes=2.5"),
    (dict(weights=None, include_top="yes"), TypeError, r"`include_top` must be a bool. Received: include_top='yes'"),
    (dict(weights=None, include_top=False, pooling="mean"), ValueError,
     r"`pooling` must be one of None, 'avg' or 'max'. Received: pooling='mean'"),
    (dict(weights=None, data_format="NCHW"), ValueError,
     r"`data_format` must be one of 'channels_last', 'channels_first' or None. Received: data_format='NCHW'"),
    (dict(weights=None, include_top=False, input_shape=(31, 64, 3)), ValueError,
     r"Input size must be at least 32x32. Received: input_shape=\(31, 64, 3\)"),
    (dict(weights=None, include_top=False, input_shape=(64, 64)), ValueError,
     r"`input_shape` must be a tuple of three integers \(rows, cols, channels\). Received: input_shape=\(64, 64\)"),
    (dict(weights=None, include_top=False, input_shape=(64, -1, 3)), ValueError,
     r"`input_shape` entries must be positive integers or None. Received: input_shape=\(64, -1, 3\)"),
    (dict(weights="imagenet", input_shape=(200, 200, 3)), ValueError,
     r'When setting `include_top=True` and loading `weights="imagenet"`, `input_shape` should be \(224, 224, 3\). Received: input_shape=\(200, 200, 3\)'),
    (dict(weights=None, input_shape=(None, None, 3)), ValueError,
     r"With `include_top=True` the spatial size must be static. Received: input_shape=\(None, None, 3\)"),
    (dict(weights="imagenet", classifier_activation="relu"), ValueError,
     r'Only None and "softmax" are allowed for `classifier_activation` with `weights="imagenet"`'),
    (dict(weights=None, classifier_activation="not_an_activation"), ValueError,
     r"`classifier_activation` must be None, 'softmax' or the name of a Keras activation. Received: classifier_activation='not_an_activation'"),
    (dict(weights=None, input_tensor=np.zeros((1, 32, 32, 3))), TypeError,
     r"`input_tensor` must be a Keras symbolic tensor"),
]


@pytest.mark.parametrize("ctor", [VGG16, ResNet50])
@pytest.mark.parametrize("kwargs, exc, message", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_argument_errors(ctor, kwargs, exc, message, monkeypatch):
    # Fail loudly if an error path would touch the network.
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")
    with pytest.raises(exc, match=message):
        ctor(**kwargs)


# Accepted since pretrained weights adapt to them (an adapted first
# convolution, a fresh classifier: tests/test_channels_and_head.py loads
# them); validation only here, nothing is built or fetched.
IMAGENET_ACCEPTED = [
    (dict(weights="imagenet", classes=10), "classes", 10),
    (dict(weights="imagenet", include_top=False, input_shape=(64, 64, 1)), "input_shape", (64, 64, 1)),
    (dict(weights="imagenet", input_shape=(224, 224, 4), classes=2), "input_shape", (224, 224, 4)),
]


@pytest.mark.parametrize("ctor", [VGG16, ResNet50])
@pytest.mark.parametrize("kwargs, field, value", IMAGENET_ACCEPTED)
def test_imagenet_weights_accept_other_classes_and_channels(ctor, kwargs, field, value, monkeypatch):
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")
    spec = zoo_builds.validated(ctor, **kwargs)
    assert getattr(spec, field) == value
    assert spec.weights == "imagenet"


def test_channels_first_shape_rules():
    with pytest.raises(ValueError, match=r"Input size must be at least 32x32. Received: input_shape=\(3, 16, 64\)"):
        VGG16(weights=None, include_top=False, input_shape=(3, 16, 64), data_format="channels_first")
    model = VGG16(weights=None, include_top=False, input_shape=(3, 32, 64), data_format="channels_first")
    assert model.output_shape == (None, 512, 1, 2)
