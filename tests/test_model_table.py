"""The model table against the models it describes: one build per model
(default size, ImageNet top, no variable values) checks the parameter
count, every feature level (layer, stride, channels), the freeze stages
and the JSON config round trip; the keras-free facts (signatures, weight
files, modes) need no build.

The built-model tests are ``backend_independent`` (run in the torch session
only, tests/conftest.py): the graph, its layer names, configs and variable
shapes come from our constructors' Python, which branches on no backend
(keras_zoo_plus.applications and .layers never ask which backend runs:
test_constructors_branch_on_no_backend). What a
backend does decide is covered on each backend elsewhere: every variable's
shape against the oracle's arrays and the outputs (tests/test_parity.py,
every model, both formats), the feature levels' shapes at the minimum size
(tests/test_features.py), and a saved model's round trip
(tests/test_saving.py). On tensorflow these builds cost 398 s of worker
time, and 345 s on jax, the longest session."""

import inspect
import json
import math
import re

import keras
import pytest
import zoo_builds

from keras_zoo_plus import applications, model_table

ENTRIES = model_table.entries()
IDS = [e.name for e in ENTRIES]


def _stride(input_size, output_size):
    """The power of two nearest to ``input_size / output_size`` (valid
    padding makes Inception's 299 -> 8 a stride-32 level)."""
    return 2 ** round(math.log2(input_size / output_size))


@pytest.fixture(scope="module", params=ENTRIES, ids=IDS)
def built(request):
    entry = request.param
    # Only shapes and names are read: no variable needs a value.
    model = zoo_builds.structure(entry.constructor, weights=None)
    yield entry, model
    del model
    keras.backend.clear_session()


#: Families whose stem has stride 4 (a 4x4/4 patchify convolution).
STRIDE_4_STEMS = frozenset({"convnext"})


@pytest.mark.backend_independent
def test_parameter_count_feature_levels_and_stages(built):
    entry, model = built
    assert model.count_params() == entry.params
    # Every stride from 2 to 32, but 2 where the stem has stride 4 (ConvNeXt).
    first = 2 if entry.family in STRIDE_4_STEMS else 1
    assert [lv.name for lv in entry.feature_levels] == [f"P{n}" for n in range(first, 6)]
    size = entry.default_size
    for level in entry.feature_levels:
        assert level.stride == 2 ** int(level.name[1:])
        shape = model.get_layer(level.layer).output.shape
        assert shape[-1] == level.channels, (level, shape)
        assert _stride(size, shape[1]) == level.stride, (level, shape)
        assert _stride(size, shape[2]) == level.stride, (level, shape)
    # Every layer but the input belongs to exactly one freeze stage.
    stages = [(name, re.compile(rx)) for name, rx in entry.stages]
    assert stages and stages[-1][0] == "top"
    for layer in model.layers[1:]:
        hits = [name for name, rx in stages if rx.search(layer.name)]
        assert len(hits) == 1, f"{entry.name}: layer {layer.name!r} matches stages {hits}"


@pytest.mark.backend_independent
def test_config_round_trips_through_json(built):
    # The same build (default size, the ImageNet top): every layer of the
    # no-top model is in it, config and inputs unchanged (tests/model_cache.py
    # checks that for every oracle case), so one trip covers both.
    _, model = built
    text = json.dumps(keras.saving.serialize_keras_object(model))
    rebuilt = zoo_builds.structure(keras.saving.deserialize_keras_object, json.loads(text))
    assert type(rebuilt) is type(model)
    # Compared as JSON, where Keras' tuples and lists are alike.
    assert json.loads(json.dumps(keras.saving.serialize_keras_object(rebuilt))) == (
        json.loads(text))
    assert [type(la) for la in rebuilt.layers] == [type(la) for la in model.layers]
    assert [tuple(w.shape) for w in rebuilt.weights] == [tuple(w.shape) for w in model.weights]


def test_constructors_branch_on_no_backend():
    """What makes the built-model tests above backend-independent."""
    import pathlib

    import keras_zoo_plus

    root = pathlib.Path(keras_zoo_plus.__file__).parent
    sources = [root / "layers.py", root / "deferred.py", *sorted((root / "applications").glob("*.py"))]
    assert len(sources) > 10
    asks = re.compile(r"backend\.backend\(|config\.backend\(|KERAS_BACKEND|import (torch|jax|tensorflow)")
    for path in sources:
        hits = [line for line in path.read_text().splitlines() if asks.search(line)]
        assert not hits, (path.name, hits)


#: Keyword arguments after ``data_format`` beyond keras.applications'
#: signature, with their defaults: ConvNeXt's stochastic depth and layer
#: scale (the arguments of Keras' private ConvNeXt builder, whose public
#: constructors fix them at these values).
EXTRA_ARGUMENTS = {
    "convnext": {"drop_path_rate": 0.0, "layer_scale_init_value": 1e-6},
    "efficientnet": {"drop_connect_rate": 0.2, "depth_divisor": 8},
    "efficientnet_v2": {"drop_connect_rate": 0.2, "depth_divisor": 8},
}


#: The public constructors of the families Keras 3 dropped, as tf_keras
#: 2.21 defines them (tf_keras/src/applications/regnet.py and resnet_rs.py;
#: tf_keras is not installed beside Keras 3 here): (name, default) in order.
#: Ours add ``name`` (Keras 3's spelling; tf_keras' RegNet calls it
#: ``model_name``, its ResNetRS takes none) and ``data_format``.
TF_KERAS_ONLY = {
    "regnet": lambda entry: [
        ("model_name", entry.name), ("include_top", True), ("include_preprocessing", True),
        ("weights", "imagenet"), ("input_tensor", None), ("input_shape", None),
        ("pooling", None), ("classes", 1000), ("classifier_activation", "softmax"),
    ],
    "resnet_rs": lambda entry: [
        ("include_top", True), ("weights", "imagenet"), ("classes", 1000),
        ("input_shape", None), ("input_tensor", None), ("pooling", None),
        ("classifier_activation", "softmax"), ("include_preprocessing", True),
    ],
}
#: Our ``name`` default where tf_keras has none (its model name).
TF_KERAS_ONLY_NAME = {"regnet": lambda entry: None,
                      "resnet_rs": lambda entry: f"resnet-rs-{entry.name[len('resnetrs'):]}"}


def _theirs(entry):
    if entry.family in TF_KERAS_ONLY:
        return {name: inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=default)
                for name, default in TF_KERAS_ONLY[entry.family](entry)}
    return inspect.signature(getattr(keras.applications, entry.constructor_name)).parameters


def test_the_families_keras_3_dropped_are_not_in_keras_applications():
    # The day Keras 3 brings one back, its real signature is the reference.
    for entry in ENTRIES:
        if entry.family in TF_KERAS_ONLY:
            assert not hasattr(keras.applications, entry.constructor_name), entry.name


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_signature_is_keras_applications_plus_data_format(entry):
    ours = inspect.signature(entry.constructor).parameters
    theirs = _theirs(entry)
    if entry.family in TF_KERAS_ONLY:
        assert ours["name"].default == TF_KERAS_ONLY_NAME[entry.family](entry)
        theirs = {**theirs, "name": ours["name"]}
    extra = EXTRA_ARGUMENTS.get(entry.family, {})
    assert list(ours) == [*theirs, "data_format", *extra]
    assert {name: ours[name].default for name in extra} == extra
    for name, param in theirs.items():
        if name == "name" and entry.name == "mobilenet":
            continue  # ours documents None -> "mobilenet_{alpha}_{rows}" explicitly
        assert ours[name].default == param.default, name
    assert ours["data_format"].default is None
    assert getattr(applications, entry.constructor_name) is entry.constructor


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_table_facts(entry):
    assert entry.module in model_table.FAMILY_MODULES
    assert 0 < entry.min_size <= entry.default_size
    assert entry.preprocess in model_table.PREPROCESS_MODES
    module = __import__(f"keras_zoo_plus.applications.{entry.module}", fromlist=["x"])
    assert module.preprocess_input.__doc__.startswith(
        f"Preprocess a batch of RGB images in [0, 255] ({entry.preprocess!r} mode)"
    )
    files = entry.weights
    assert files, entry.name
    variants = {wf.variant for wf in files}
    for variant in variants:
        tops = sorted(wf.include_top for wf in files if wf.variant == variant)
        assert tops == [False, True], (entry.name, variant)
    for wf in files:
        # EfficientNet B0-B7's files are outside the usual base URL (their
        # root is keras.applications.efficientnet's BASE_WEIGHTS_PATH).
        assert wf.url == (wf.root or model_table.base_url()) + wf.path
        assert wf.path == wf.fname if wf.root else wf.path.endswith("/" + wf.fname)
        assert wf.file_hash is None or re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", wf.file_hash)
        assert wf.md5 == (wf.file_hash if wf.hash_algorithm == "md5" else None)
        assert entry.weight_file(wf.include_top, **dict(wf.variant)) is wf
    assert len({wf.fname for wf in files}) == len(files)
