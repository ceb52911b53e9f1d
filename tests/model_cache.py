"""The oracle cases' models, built once per pytest worker and reused.

``built(case, data_format)`` returns our model for a golden case
(tests/golden/cases.py) in ``data_format``, with the case's synthetic
weights and ``classifier_activation=None`` for tops, so every test that
needs that model (parity, the eager double checks, the weights-file
loader check) shares one build.

Weights reach the model in one of two ways, both ending in
``keras_zoo_plus.weights.assign_legacy`` (matching by name, falling back
to order, shapes checked):

* the loader cases (``cases.LOADER_CASES``, one per family) go through the
  public ``weights="<legacy .h5>"`` argument, the file written in the
  layout tf_keras writes (``helpers.write_legacy_h5``) and deleted right
  after the build;
* every other case gets the same arrays in-process: no HDF5 file (VGG19's
  top alone was 575 MB at 224 px), the same matching, and the model is
  built without running its initializers, whose values would be
  replaced (``keras_zoo_plus.deferred.build_without_initializers``).

A no-top case and the top case of the same arguments (``resnet50_notop``
and ``resnet50_top``, ``mobilenet_v2_035_notop`` and ``..._top``) share one
build (:data:`PARTNER`): the top model is given a second output, the
layer the no-top model ends with, so one build, one inference and, on
JAX, one compilation serve both oracle cases. That is only the same test
because the no-top model *is* that prefix of the top model, and the builds of
the torch session (``helpers.BACKEND_INDEPENDENT_ON``) check it for every
pair and data format (:func:`check_prefix`; what it reads is decided by
backend-free Python): every layer of the no-top
model, with its config and its inputs, appears unchanged in the top model,
and its weighted layers come first there, in the same order, with the
same variables and shapes, so the synthetic arrays (drawn by position,
name and shape) are the ones the oracle's no-top model had. The loader
cases (their weights come from a no-top file) and :data:`UNPAIRED` are
built on their own.

Memory stays bounded: one model (and one case's weight arrays) is kept
at a time, the previous one is dropped (and Keras' session cleared) when
another is asked for; test_parity evicts the last one when it ends. Tests run
in collection order on each worker, and test_parity orders its tests by
(case, data format), so each model is built at most once per worker;
:data:`builds` counts builds so that the tests can check it.
"""

from __future__ import annotations

import collections
import pathlib
import tempfile

import zoo_builds

from keras_zoo_plus import fusion, model_table, synthetic, weights
from keras_zoo_plus.deferred import build_without_initializers

from helpers import (
    BACKEND_INDEPENDENT_ON,
    CASES,
    LOADER_CASES,
    SEED,
    golden_input,
    input_shape_for,
    legacy_entries,
    load_golden,
    run_model,
    write_legacy_h5,
)

#: (case, data_format) -> number of builds in this process.
builds = collections.Counter()
#: (case, data_format) -> how its weights were loaded: "weights_file" or
#: "in_process" (assign_legacy, matched by name or order).
loaded_by = {}

_current = {}  # at most one entry: (case, data_format) -> model
_arrays = {}  # at most one entry: case -> (structure, arrays), for both formats
_outputs = {}  # at most one entry: (build case, data_format, compiled) -> [outputs]


#: No-top cases built on their own although a top case of the same
#: arguments exists: families whose no-top graph is not a prefix of their
#: top graph (check_prefix says so). ConvNeXt's no-top model ends with a
#: LayerNormalization of the feature map that its top model does not have
#: (the head normalises after pooling).
UNPAIRED_FAMILIES = frozenset({"convnext"})
UNPAIRED = frozenset(
    name for name, c in CASES.items()
    if not c.kwargs.get("include_top", True)
    and model_table.get(c.model).family in UNPAIRED_FAMILIES
)


def _same_but_top(c):
    """What a case and its partner share: all but ``include_top``."""
    args = sorted((k, v) for k, v in c.kwargs.items() if k != "include_top")
    return (c.ctor, repr(args), c.size, c.batch, c.marks)


def _partners():
    tops = {_same_but_top(c): name for name, c in CASES.items()
            if c.kwargs.get("include_top", True)}
    return {
        name: tops[_same_but_top(c)]
        for name, c in CASES.items()
        if not c.kwargs.get("include_top", True)
        and name not in LOADER_CASES and name not in UNPAIRED
        and _same_but_top(c) in tops
    }


#: no-top case -> the top case whose build also gives its output.
PARTNER = _partners()


def build_key(case):
    """The case whose model serves ``case``: its top partner or itself."""
    return PARTNER.get(case, case)


def constructor_kwargs(case, data_format):
    """The constructor arguments of ``case`` in ``data_format``, but
    ``weights``."""
    c = CASES[case]
    kw = dict(c.kwargs)
    kw.update(input_shape=input_shape_for(case, data_format), data_format=data_format)
    if kw.get("include_top", True):
        kw["classifier_activation"] = None
    return kw


def synthetic_arrays(case):
    """The case's synthetic weights, per weighted layer in file order,
    with the file's layout (``[name, weight_names, shapes]`` per layer).
    Kept for the last case asked (NASNetLarge's take 3 s to draw).

    An array depends only on the seed, the model's family (its kernel
    gain), its layer's position, its own position, its short name and its
    shape (keras_zoo_plus.synthetic), so
    the arrays of the previous case that share all of these with this
    case's are reused as they are: a no-top case built on its own after
    its top case (ConvNeXt, :data:`UNPAIRED`) draws only its last layer
    (ConvNeXtXLarge's 350M parameters took 10 s to draw)."""
    if case not in _arrays:
        previous = {}
        for old_case, (old_structure, old_arrays) in _arrays.items():
            old_family = model_table.get(CASES[old_case].model).family
            previous = {
                _array_key(old_family, i, j, wname, shape): array
                for i, ((_, wnames, shapes), layer) in enumerate(zip(old_structure, old_arrays))
                for j, (wname, shape, array) in enumerate(zip(wnames, shapes, layer))
            }
        _arrays.clear()
        _, structure = load_golden(case)
        family = model_table.get(CASES[case].model).family

        def array(i, j, wname, shape):
            key = _array_key(family, i, j, wname, shape)
            if key in previous:
                return previous[key]
            return synthetic.synthesize_variable(SEED, i, j, wname, shape, family)

        arrays = [
            [array(i, j, wname, shape) for j, (wname, shape) in enumerate(zip(wnames, shapes))]
            for i, (_, wnames, shapes) in enumerate(structure)
        ]
        _arrays[case] = (structure, arrays)
    return _arrays[case]


def _array_key(family, layer_index, var_index, weight_name, shape):
    return (synthetic.kernel_gain(family), layer_index, var_index,
            synthetic.short_name(weight_name), tuple(shape))


def built(case, data_format):
    """Our model of ``case`` in ``data_format`` with the case's synthetic
    weights, built on first use and kept until another one is asked for.
    For a case with partners (see :data:`PARTNER`) that model has one
    output per case, the top's first; :func:`output` picks a case's."""
    key = (build_key(case), data_format)
    if key not in _current:
        _drop_model()
        _current[key] = _build(key[0], data_format)
        builds[key] += 1
    return _current[key]


def output(case, data_format, *, compiled=None):
    """``case``'s output of :func:`built`'s model on the golden input, as
    NumPy; one inference (per path) serves all the cases of a build."""
    key = (build_key(case), data_format, compiled)
    if key not in _outputs:
        _outputs.clear()
        y = run_model(built(case, data_format), golden_input(case, data_format),
                      compiled=compiled)
        _outputs[key] = y if isinstance(y, (list, tuple)) else [y]
    return _outputs[key][1 if case in PARTNER else 0]


def evict():
    """Drop the kept model and arrays and free what Keras holds for them."""
    _arrays.clear()
    _drop_model()


def _drop_model():
    _outputs.clear()
    if not _current:
        return
    _current.clear()
    import keras

    # Drops Keras' global graph state (TensorFlow's default graph, name
    # counters; our models name every layer, so nothing depends on them)
    # and collects the dropped model's cycles.
    keras.backend.clear_session()


def _build(case, data_format):
    constructor = model_table.get(CASES[case].model).constructor
    kw = constructor_kwargs(case, data_format)
    structure, arrays = synthetic_arrays(case)
    if case in LOADER_CASES:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_legacy_h5(pathlib.Path(tmp) / f"{case}.h5", structure, arrays)
            model = constructor(weights=str(path), **kw)
        loaded_by[(case, data_format)] = "weights_file"
    else:
        # Every weight is assigned next: skip the initializers (most of a
        # build on every backend; keras_zoo_plus.deferred).
        model = build_without_initializers(constructor, weights=None, **kw)
        weights.assign_legacy(model, legacy_entries(structure, arrays),
                              source=f"synthetic weights of {case}")
        loaded_by[(case, data_format)] = "in_process"
    partners = [n for n, top in PARTNER.items() if top == case]
    if partners:
        (notop,) = partners
        model = _with_notop_output(model, notop, case, data_format)
        loaded_by[(notop, data_format)] = "in_process"
    return model


def _with_notop_output(top_model, notop, top, data_format):
    """``top_model`` with a second output: the one of ``notop``'s model,
    after :func:`check_prefix` has shown that model to be its prefix."""
    import keras

    entry = model_table.get(CASES[notop].model)
    # The no-top model ends with the model table's last feature level (its
    # P5 layer) in every family that has partners.
    last = entry.feature_levels[-1].layer
    if keras.backend.backend() == BACKEND_INDEPENDENT_ON:
        # What check_prefix reads (configs, names, variable shapes) is
        # decided by backend-free Python (test_model_table.
        # test_constructors_branch_on_no_backend), so one backend's session
        # checks it for every partner pair and data format; on the others
        # the no-top build cost a fifth to a third of each parity build.
        notop_model = zoo_builds.structure(
            entry.constructor, weights=None, **constructor_kwargs(notop, data_format))
        check_prefix(notop_model, top_model, load_golden(notop)[1], load_golden(top)[1])
        ends_with = output_layer_name(notop_model)
        assert ends_with == last, (notop, ends_with, last)
        del notop_model
    features = top_model.get_layer(last).output
    both = keras.Model(top_model.input, [top_model.outputs[0], features],
                       name=top_model.name)
    # The same inference path as the top model's (on torch the fused
    # chains, keras_zoo_plus.fusion): the extra output reads an
    # activation's output, which a fused chain produces as well.
    fused = fusion.enable_fused_inference(top_model)
    assert fusion.enable_fused_inference(both) == fused, (top, fused)
    return both


def output_layer_name(model):
    """The layer that produces ``model``'s (single) output."""
    (history,) = [model.output._keras_history]
    return history.operation.name


def check_prefix(notop_model, top_model, notop_structure, top_structure):
    """Assert that ``notop_model`` computes what the layer it ends with
    computes inside ``top_model``, with the weights the oracle gave it.

    * every layer of ``notop_model`` is in ``top_model`` with an equal
      serialized config: class, arguments and inbound nodes (so the same
      inputs, in the same order), the input layer's shape included;
    * ``notop_model`` has one output;
    * its weighted layers are the first weighted layers of ``top_model``,
      in the same order, with the same variable names and shapes: the
      synthetic arrays of the oracle's two files (structures given by the
      golden files) are drawn by position, name and shape, so these layers
      get the very arrays the oracle's no-top model had.
    """
    top_layers = {entry["name"]: entry for entry in top_model.get_config()["layers"]}
    config = notop_model.get_config()
    for entry in config["layers"]:
        assert entry["name"] in top_layers, (
            f"{notop_model.name}: no-top layer {entry['name']!r} is not in the top model")
        assert entry == top_layers[entry["name"]], (
            f"{notop_model.name}: layer {entry['name']!r} differs between the no-top "
            f"and the top model")
    # One output (Keras writes a single output as [name, node, tensor]).
    assert config["output_layers"] == [output_layer_name(notop_model), 0, 0], (
        config["output_layers"])
    assert top_structure[: len(notop_structure)] == notop_structure, (
        f"{notop_model.name}: the no-top file's weighted layers are not the first of "
        "the top file's")
    ours = [(layer.name, [tuple(w.shape) for w in layer.weights])
            for layer in notop_model.layers if layer.weights]
    theirs = [(layer.name, [tuple(w.shape) for w in layer.weights])
              for layer in top_model.layers if layer.weights][: len(ours)]
    assert ours == theirs, f"{notop_model.name}: weighted layers differ from the top model's"

