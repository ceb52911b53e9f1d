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

from keras_zoo_plus import model_table, weights
from keras_zoo_plus.deferred import build_without_initializers

from helpers import (
    CASES,
    LOADER_CASES,
    golden_arrays,
    input_shape_for,
    legacy_entries,
    load_golden,
    write_legacy_h5,
)

#: (case, data_format) -> number of builds in this process.
builds = collections.Counter()
#: (case, data_format) -> how its weights were loaded: "weights_file" or
#: "in_process" (assign_legacy, matched by name or order).
loaded_by = {}

_current = {}  # at most one entry: (case, data_format) -> model
_arrays = {}  # at most one entry: case -> (structure, arrays), for both formats


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
    Kept for the last case asked (NASNetLarge's take 3 s to draw)."""
    if case not in _arrays:
        _arrays.clear()
        _, structure = load_golden(case)
        _arrays[case] = (structure, golden_arrays(structure))
    return _arrays[case]


def built(case, data_format):
    """Our model of ``case`` in ``data_format`` with the case's synthetic
    weights, built on first use and kept until another one is asked for."""
    key = (case, data_format)
    if key not in _current:
        _drop_model()
        _current[key] = _build(case, data_format)
        builds[key] += 1
    return _current[key]


def evict():
    """Drop the kept model and arrays and free what Keras holds for them."""
    _arrays.clear()
    _drop_model()


def _drop_model():
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
    return model
