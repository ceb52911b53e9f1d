"""feature_extractor: the levels of every model in both formats, the level
selection and its errors, zoo models nested in a user's model, the
create_model shortcut, and freeze/unfreeze on an extractor.

Level shapes are checked against the spatial sizes each family's
downsampling gives, written out below from its padding rules (not read
from a built model): "same"-like padding rounds up, VGG's and DenseNet's
2x2 pools and MobileNet's bottom/right-padded depthwise convolutions
round down, and Inception's and Xception's ``valid`` stems shrink.
The per-model builds are structure-only (no variable values)."""

import re

import keras
import numpy as np
import pytest
import zoo_builds

import keras_zoo_plus as kzp
from keras_zoo_plus import model_table, synthetic

ENTRIES = model_table.entries()
LEVELS = ["P1", "P2", "P3", "P4", "P5"]


def _up(n):  # stride 2, rounding up ("same" padding, correct_pad)
    return -(-n // 2)


def _down(n):  # stride 2, rounding down (2x2 pools, pad bottom/right by one)
    return n // 2


def _valid3(n):  # 3x3, stride 2, "valid"
    return (n - 3) // 2 + 1


def _chain(first, *steps):
    out = [first]
    for step in steps:
        out.append(step(out[-1]))
    return out


#: family -> input size -> [P1, ..., P5] spatial sizes along that axis.
SIZES = {
    # 3x3 "same" convolutions, 2x2 "valid" max pools; P1 is block2 (after block1_pool).
    "vgg": lambda n: _chain(_down(n), _down, _down, _down, _down),
    # zero-padded stride-2 7x7 conv, padded 3x3 pool, stride-2 convs: all round up.
    "resnet": lambda n: _chain(_up(n), _up, _up, _up, _up),
    "resnet_v2": lambda n: _chain(_up(n), _up, _up, _up, _up),
    # stride-2 "same" first conv; then depthwise convs padded bottom/right by one, "valid".
    "mobilenet": lambda n: _chain(_up(n), _down, _down, _down, _down),
    "mobilenet_v2": lambda n: _chain(_up(n), _up, _up, _up, _up),
    "mobilenet_v3": lambda n: _chain(_up(n), _up, _up, _up, _up),
    # padded 7x7 conv and 3x3 pool round up; the 2x2 transition pools round down.
    "densenet": lambda n: _chain(_up(n), _up, _down, _down, _down),
    # 3x3/2 "valid" then 3x3 "valid" stem; "same" blocks after.
    "xception": lambda n: _chain(_valid3(n) - 2, _up, _up, _up, _up),
    # stem: 3x3/2 valid, 3x3 valid (P1); 3x3/2 pool, 1x1, 3x3 valid (P2); then
    # 3x3/2 valid pool and reductions.
    "inception_v3": lambda n: _chain(_valid3(n) - 2, lambda m: _valid3(m) - 2, _valid3, _valid3, _valid3),
    "inception_resnet_v2": lambda n: _chain(_valid3(n) - 2, lambda m: _valid3(m) - 2, _valid3, _valid3, _valid3),
    # 3x3/2 "valid" stem conv; reduction cells pad as correct_pad (round up).
    "nasnet": lambda n: _chain(_valid3(n), _up, _up, _up, _up),
    # 4x4/4 "valid" stem (no stride-2 level: P2 first), 2x2/2 "valid" downsampling.
    "convnext": lambda n: _chain(n // 4, _down, _down, _down),
    # EfficientNet: stride-2 stem and depthwise convs padded as correct_pad
    # (round up); V2: "same" stride-2 convolutions (round up).
    "efficientnet": lambda n: _chain(_up(n), _up, _up, _up, _up),
    "efficientnet_v2": lambda n: _chain(_up(n), _up, _up, _up, _up),
    # RegNet: "same" stride-2 3x3 convolutions, 1x1 stride-2 "valid"
    # shortcuts (ceil(n / 2) too). ResNet-RS: stride-2 3x3 convolutions
    # padded by one on each side, then "valid"; 2x2 "same" average pools on
    # the shortcuts.
    "regnet": lambda n: _chain(_up(n), _up, _up, _up, _up),
    "resnet_rs": lambda n: _chain(_up(n), _up, _up, _up, _up),
}


def _expected(entry, rows, cols, data_format):
    out = {}
    for level, r, c in zip(entry.feature_levels, SIZES[entry.family](rows), SIZES[entry.family](cols)):
        out[level.name] = (None, level.channels, r, c) if data_format == "channels_first" else (None, r, c, level.channels)
    return out


def _check_levels(entry, model, rows, cols, data_format):
    # Shapes only: the extractor of a structure-only model is built the same way
    # (on torch, wrapping variables without values would draw their initializers).
    features = zoo_builds.structure(kzp.feature_extractor, model)
    assert features.inputs[0] is model.inputs[0]
    shapes = {name: tuple(t.shape) for name, t in features.output.items()}
    assert shapes == _expected(entry, rows, cols, data_format)
    # Consecutive levels up to P5 (ConvNeXt's stride-4 stem starts at P2).
    first = 6 - len(entry.feature_levels)
    for n, level in enumerate(entry.feature_levels, first):
        assert (level.name, level.stride) == (f"P{n}", 2**n)
        assert features.output[level.name] is model.get_layer(level.layer).output


def _assert_shapes_come_from_python(model):
    """Every operation of ``model`` (nested models' included) computes its
    output shape in Python, ``compute_output_shape``: Keras traces an
    operation's ``call`` through the backend (jax.eval_shape, torch's meta
    tensors, a TensorFlow graph) only when that method is left at Layer's
    default (``Layer.compute_output_spec``). So the symbolic shapes read
    here are the same on every backend."""
    from keras.src.utils.python_utils import is_default

    traced, stack = set(), list(model.operations)
    while stack:
        op = stack.pop()
        stack.extend(getattr(op, "operations", ()))
        if not isinstance(op, keras.layers.InputLayer) and is_default(op.compute_output_shape):
            traced.add(type(op).__name__)
    assert not traced, f"{model.name}: output shapes traced through the backend: {sorted(traced)}"


def _structure(entry, data_format, rows, cols):
    shape = (3, rows, cols) if data_format == "channels_first" else (rows, cols, 3)
    return zoo_builds.structure(
        entry.constructor, weights=None, include_top=False, input_shape=shape, data_format=data_format
    )


def test_every_family_has_its_sizes():
    assert set(SIZES) == {entry.family for entry in ENTRIES}


@pytest.mark.backend_independent
def test_shape_check_names_an_operation_whose_shape_the_backend_traces():
    class Traced(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, Traced()(keras.layers.ReLU()(inputs)), name="toy")
    with pytest.raises(AssertionError,
                       match=r"toy: output shapes traced through the backend: \['Traced'\]"):
        _assert_shapes_come_from_python(model)


@pytest.mark.backend_independent
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_levels_of_every_model_at_its_minimum_size(entry, data_format):
    """Symbolic shapes only, which Python computes (asserted here), so one
    backend's session checks every model (it cost 120 worker-s on
    tensorflow and jax, 2026-12-02). The shapes each backend computes at
    run time are checked in every session by the oracle-parity tests (the
    no-top output is the P5 level; shapes compared with tf_keras') and by
    test_fam_a's channels_first feature tests."""
    m = entry.min_size
    model = _structure(entry, data_format, m, m)
    _assert_shapes_come_from_python(model)
    _check_levels(entry, model, m, m, data_format)


SMALLEST = model_table.smallest_of_each_family()
# One build per family, the data formats alternating (both are covered).
NON_SQUARE = [
    (entry, "channels_first" if i % 2 else "channels_last")
    for i, entry in enumerate(SMALLEST.values())
]


@pytest.mark.parametrize("entry, data_format", NON_SQUARE, ids=list(SMALLEST))
def test_levels_at_a_non_square_size(entry, data_format):
    # Two different odd sizes, where rounding up and rounding down differ.
    rows, cols = entry.min_size | 1, 2 * entry.min_size + 7
    model = _structure(entry, data_format, rows, cols)
    _check_levels(entry, model, rows, cols, data_format)


def test_inception_v3_sizes_are_the_published_ones():
    # 299 -> 147, 71, 35, 17, 8 (valid padding; the builds above check the rule).
    assert SIZES["inception_v3"](299) == [147, 71, 35, 17, 8]


@pytest.fixture(scope="module")
def resnet50():
    model = zoo_builds.structure(
        kzp.applications.ResNet50, weights=None, include_top=True, input_shape=(64, 64, 3)
    )
    yield model
    keras.backend.clear_session()


def test_selected_levels(resnet50):
    features = kzp.feature_extractor(resnet50, levels=["P5", "P3"])
    assert sorted(features.output) == ["P3", "P5"]
    assert tuple(features.output["P3"].shape) == (None, 8, 8, 512)
    assert tuple(features.output["P5"].shape) == (None, 2, 2, 2048)
    assert features.output["P3"] is resnet50.get_layer("conv3_block4_out").output
    one = kzp.feature_extractor(resnet50, levels="P4")
    assert list(one.output) == ["P4"]


def test_unknown_levels_are_refused_with_the_models_levels(resnet50):
    with pytest.raises(ValueError) as exc:
        kzp.feature_extractor(resnet50, levels=["P3", "P6", "C5"])
    assert str(exc.value) == (
        "Unknown feature level(s) 'P6', 'C5' for resnet50. Received: levels=['P3', 'P6', 'C5']. "
        "Levels of resnet50: P1 (conv1_relu, stride 2), P2 (conv2_block3_out, stride 4), "
        "P3 (conv3_block4_out, stride 8), P4 (conv4_block6_out, stride 16), "
        "P5 (conv5_block3_out, stride 32)"
    )
    with pytest.raises(ValueError, match=re.escape("`levels` must name at least one level. Received: levels=[]. Levels of resnet50: P1, P2, P3, P4, P5")):
        kzp.feature_extractor(resnet50, levels=[])
    with pytest.raises(TypeError, match=re.escape("`levels` must be None or a list of level names such as ['P3', 'P4']. Received: levels=3")):
        kzp.feature_extractor(resnet50, levels=3)


def test_models_without_a_zoo_model_are_refused():
    with pytest.raises(TypeError, match=re.escape("`model` must be a keras.Model. Received: model='resnet50'")):
        kzp.feature_extractor("resnet50")
    inputs = keras.Input((8, 8, 3))
    plain = keras.Model(inputs, keras.layers.ReLU(name="conv1_relu")(inputs), name="mine")
    with pytest.raises(ValueError, match=re.escape("Cannot find a zoo model in model 'mine': neither it nor a model nested in it has the feature-level layers of a registered model")):
        kzp.feature_extractor(plain)


def test_deeper_model_of_a_family_wins_over_a_shallower_one():
    # ResNet101 also has ResNet50's conv4_block6_out; renamed, it must not be taken for ResNet50.
    model = zoo_builds.structure(
        kzp.applications.ResNet101, weights=None, include_top=False, input_shape=(32, 32, 3), name="mine"
    )
    features = zoo_builds.structure(kzp.feature_extractor, model)
    assert features.output["P4"] is model.get_layer("conv4_block23_out").output
    assert features.output["P2"] is model.get_layer("conv2_block3_out").output


@pytest.fixture(scope="module")
def mobilenet():
    base = zoo_builds.build("mobilenet", alpha=0.25)  # synthetic weights, 32x32, no top
    return base


def _run(model, x):
    """A dict-output model's outputs on ``x`` as NumPy: one compiled call on
    JAX (eager JAX compiles op by op) and torch, eager on TensorFlow."""
    if keras.backend.backend() in ("jax", "torch"):
        y = model.predict_on_batch(x)
    else:
        y = model(x, training=False)
    return {k: keras.ops.convert_to_numpy(v) for k, v in y.items()}


def test_a_zoo_model_nested_in_a_sequential_classifier(mobilenet):
    classifier = keras.Sequential(
        [mobilenet, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)]
    )
    features = kzp.feature_extractor(classifier, levels=["P4", "P5"])
    x = synthetic.synthetic_input((2, 32, 32, 3), seed=3)
    got = _run(features, x)
    want = _run(kzp.feature_extractor(mobilenet), x)
    assert sorted(got) == ["P4", "P5"]
    for name in got:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6, atol=1e-6)
    base_ids = {id(v) for v in mobilenet.weights}
    assert features.weights and all(id(v) in base_ids for v in features.weights)


def test_a_zoo_model_called_by_a_functional_classifier_after_preprocessing(mobilenet):
    inputs = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(mobilenet(scaled))
    classifier = keras.Model(inputs, keras.layers.Dense(5)(pooled))
    features = kzp.feature_extractor(classifier)
    assert features.inputs[0] is classifier.inputs[0]
    x = synthetic.synthetic_input((2, 32, 32, 3), seed=4) * 100.0
    got = _run(features, x)
    want = _run(kzp.feature_extractor(mobilenet), x / 127.5 - 1)
    assert sorted(got) == LEVELS
    for name in LEVELS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5)


def test_create_model_features_only():
    features = zoo_builds.structure(
        kzp.create_model, "mobilenet", features_only=True, levels=["P2", "P5"], weights=None,
        alpha=0.25, input_shape=(32, 48, 3),
    )
    assert sorted(features.output) == ["P2", "P5"]
    assert tuple(features.output["P2"].shape) == (None, 8, 12, 32)
    assert tuple(features.output["P5"].shape) == (None, 1, 1, 256)
    assert "conv_preds" not in [layer.name for layer in features.layers]  # no top by default
    with pytest.raises(TypeError, match=re.escape("`levels` is only taken with `features_only=True`. Received: levels=['P5']")):
        kzp.create_model("mobilenet", levels=["P5"], weights=None)
    # Refused before anything is built (imagenet would need a download here).
    with pytest.raises(ValueError, match=re.escape("Unknown feature level(s) 'P6' for mobilenet. Received: levels=['P6']")):
        kzp.create_model("mobilenet", features_only=True, levels=["P6"], weights="imagenet")
    with pytest.raises(TypeError, match=re.escape("`features_only` must be a bool. Received: features_only='yes'")):
        kzp.create_model("mobilenet", features_only="yes")
    keras.backend.clear_session()


def test_freeze_and_unfreeze_on_an_extractor(resnet50):
    with zoo_builds.borrowed(resnet50):
        features = kzp.feature_extractor(resnet50)
        weighted = [layer for layer in features.layers if layer.weights]
        frozen = kzp.freeze(features)
        assert frozen == [layer.name for layer in features.layers[1:]]
        assert not any(layer.trainable for layer in weighted)
        # The base model's layers are the same objects.
        assert not resnet50.get_layer("conv5_block3_3_conv").trainable
        kzp.unfreeze(features, stages=1)
        trainable = {layer.name for layer in weighted if layer.trainable}
        expected = {
            layer.name for layer in weighted
            if layer.name.startswith("conv5_")
            and not isinstance(layer, keras.layers.BatchNormalization)
        }
        assert trainable == expected
        assert len(expected) == 10  # 3 blocks x 3 convolutions + the shortcut


def test_readme_levels_table_is_the_model_table():
    """README's levels table (layer, channels, size at the default input)
    says what the model table and the padding rules say, for every model,
    so they cannot drift apart."""
    import pathlib

    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text("utf8")
    head = "| model | input | P1 (stride 2) | P2 (4) | P3 (8) | P4 (16) | P5 (32) |"
    rows = text.split(head, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    cell = re.compile(r"`([^`]+)` (\d+), (\d+)")
    readme = {}
    for row in rows:
        name, size, *levels = [c.strip() for c in row.strip("|").split("|")]
        # A stride the network skips (ConvNeXt's P1) is a dash.
        readme[name] = (int(size), [cell.fullmatch(c).groups() for c in levels if c != "-"])
    # Sizes at the default input: the padding rules of SIZES above.
    assert readme == {
        e.name: (e.default_size, [
            (lv.layer, str(lv.channels), str(n))
            for lv, n in zip(e.feature_levels, SIZES[e.family](e.default_size))
        ])
        for e in ENTRIES
    }
