"""Shared test helpers: golden data, legacy HDF5 files, comparisons."""

from __future__ import annotations

import contextlib
import functools
import json
import pathlib
import sys

import h5py
import numpy as np

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))

from keras_zoo_plus import check, synthetic  # noqa: E402

import cases as golden_cases  # noqa: E402

CASES = golden_cases.CASES
EXTRA_CASES = golden_cases.EXTRA_CASES
FLOAT32_FLOOR = golden_cases.FLOAT32_FLOOR
LOADER_CASES = golden_cases.LOADER_CASES
SEED = golden_cases.SEED
REL_TOL = 1e-5

#: The backend whose session runs what backend-free Python decides, once
#: instead of three times: the ``backend_independent`` tests (conftest.py)
#: and the no-top-prefix check of the parity builds (model_cache.py). torch:
#: the cheapest session. Measured on a 2-core AMD EPYC (2026-12-01) the
#: non-slow sessions took 1020 s (tensorflow), 979 s (torch) and 2731 s
#: (jax) of wall time, and the model table's builds alone cost 398 s of
#: tensorflow worker time and 345 s of jax's.
BACKEND_INDEPENDENT_ON = "torch"


def load_golden(case):
    with np.load(GOLDEN / f"{case}.npz") as data:
        return data["output"], json.loads(str(data["structure"]))


def write_legacy_h5(path, structure, arrays, *, backend="tensorflow", keras_version="2.21.0"):
    """Write a weights file in the layout tf_keras' ``save_weights(".h5")``
    produces (and the official files use): root attrs ``layer_names``,
    one group per layer with attr ``weight_names`` and a dataset per
    weight at that (possibly nested) path."""
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = backend.encode("utf8")
        f.attrs["keras_version"] = keras_version.encode("utf8")
        f.attrs["layer_names"] = [name.encode("utf8") for name, _, _ in structure]
        for (name, wnames, _), layer_arrays in zip(structure, arrays):
            g = f.create_group(name)
            g.attrs["weight_names"] = [w.encode("utf8") for w in wnames]
            for wname, arr in zip(wnames, layer_arrays):
                g.create_dataset(wname, data=arr)
    return path


def golden_arrays(structure, seed=SEED, family=None):
    """Synthetic arrays for a legacy layout (``family``: the model's, for
    its kernel gain; see keras_zoo_plus.synthetic.kernel_gain)."""
    specs = [list(zip(wnames, shapes)) for _, wnames, shapes in structure]
    return synthetic.synthesize(specs, seed, family)


def legacy_entries(structure, arrays):
    """``[(layer_name, [arrays]), ...]``: what ``weights.read_legacy_h5``
    returns for the file ``write_legacy_h5(path, structure, arrays)``
    writes, the input of ``weights.assign_legacy``."""
    return [(name, list(layer_arrays)) for (name, _, _), layer_arrays in zip(structure, arrays)]


def golden_input(case, data_format="channels_last"):
    c = CASES[case]
    x = synthetic.synthetic_input((c.batch, *c.size, 3), seed=SEED)
    return to_format(x, data_format)


def to_format(x, data_format):
    if data_format == "channels_first" and x.ndim == 4:
        return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    return x


def from_format(y, data_format):
    if data_format == "channels_first" and y.ndim == 4:
        return np.transpose(y, (0, 2, 3, 1))
    return y


@functools.cache
def keras_runs_nchw_conv():
    """Whether Keras' own channels_first convolution runs here. TensorFlow's
    CPU Conv2D refuses NCHW without oneDNN (on by default only on CPUs with
    AVX-512 features); our ops transpose around it there (ops module
    docstring). Probed once, on first use."""
    import keras

    try:
        keras.ops.conv(
            np.ones((1, 1, 3, 3), "float32"), np.ones((1, 1, 1, 1), "float32"),
            data_format="channels_first",
        )
    except Exception as exc:  # TensorFlow's UnimplementedError
        if "NHWC" not in str(exc):
            raise
        return False
    return True


def keras_reference(op, data_format):
    """``op(x, *args, data_format=data_format)`` for ``x`` in
    ``data_format``: Keras' op itself, or, where Keras' channels_first
    convolution cannot run (see ``keras_runs_nchw_conv``), Keras' channels_last
    op between transposes, still Keras' kernel and not ours."""
    import keras

    if data_format == "channels_last" or keras_runs_nchw_conv():
        return lambda x, *args: op(x, *args, data_format=data_format)

    def via_nhwc(x, *args):
        y = op(keras.ops.transpose(x, (0, 2, 3, 1)), *args, data_format="channels_last")
        return keras.ops.transpose(y, (0, 3, 1, 2))

    return via_nhwc


def rel_error(actual, expected):
    """max |actual - expected| / max |expected|."""
    actual = np.asarray(actual, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def input_shape_for(case, data_format):
    h, w = CASES[case].size
    return (3, h, w) if data_format == "channels_first" else (h, w, 3)


# Inference as NumPy: compiled on JAX, eager elsewhere; ``compiled=False``
# forces the eager path (see keras_zoo_plus.check.run_inference).
run_model = check.run_inference


@contextlib.contextmanager
def default_xla_optimizations():
    """On JAX, compile at XLA's default optimization level inside the block,
    whatever ``JAX_DISABLE_MOST_OPTIMIZATIONS`` says (the noxfile sets it:
    LLVM at -O0 took a fifth to a third off every compilation, and its
    outputs differ from the default pipeline's by about 1e-6; see the
    noxfile's ENV). The noxfile's jax session also turns XLA's CPU fusion
    emitters off (BACKEND_ENV), which this cannot undo: XLA reads its flags
    once per process. Elsewhere it does nothing. Yields whether the setting
    was changed."""
    import keras

    if keras.backend.backend() != "jax":
        yield False
        return
    import jax

    previous = jax.config.values["jax_disable_most_optimizations"]
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield previous
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)


def structure_of_model(model):
    """The legacy HDF5 layout (``[name, weight_names, shapes]`` per weighted
    layer) of a Keras 3 model, in the form :func:`write_legacy_h5` takes."""
    return [
        [
            layer.name,
            [f"{layer.name}/{w.name}:0" for w in layer.weights],
            [list(int(d) for d in w.shape) for w in layer.weights],
        ]
        for layer in model.layers
        if layer.weights
    ]


def write_model_h5(path, model, seed=SEED):
    """Write synthetic weights for ``model``'s own structure as a legacy .h5
    file; returns ``(path, md5, arrays)`` with arrays flat in
    ``model.get_weights()`` order."""
    import hashlib

    structure = structure_of_model(model)
    arrays = golden_arrays(structure, seed)
    write_legacy_h5(path, structure, arrays)
    md5 = hashlib.md5(pathlib.Path(path).read_bytes()).hexdigest()
    return str(path), md5, [a for layer in arrays for a in layer]
