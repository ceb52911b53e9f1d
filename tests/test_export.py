"""keras_zoo_plus.export and ``keras-zoo-plus export``: the artifact runs in
the runtime that serves it and computes what Keras computes.

Each backend session (which installs its exporter and runtimes, see
noxfile.EXPORT_PACKAGES) exports the smallest model of every family to
ONNX, alternating the data format between families (the other backends
take the other one), and verifies it in onnxruntime. TensorFlow also
exports SavedModel and LiteRT. One oracle case per backend checks the
artifact against tf_keras' golden output directly, so a Keras bug that the
artifact reproduced faithfully would still fail. Every registered model,
both data formats, every format: ``nox -s export``
(benchmarks/export_coverage.py), reported in the closing notes.

The argument checks, the staging of the artifact (nothing reaches the
path unless verified) and the command line's error paths are backend-free
Python: ``backend_independent``, checked in the torch session (whose
exporter is the fastest); each backend session still exports through the
command line once (:func:`test_cli_exports_a_zoo_model`).
"""

import ctypes
import ctypes.util
import gc
import json
import os
import pathlib

import keras
import numpy as np
import pytest

import keras_zoo_plus as kz
from keras_zoo_plus import check, cli, exporting, registry

from helpers import CASES, golden_input, legacy_entries, load_golden, rel_error

BACKEND = keras.backend.backend()
ROOT = pathlib.Path(__file__).resolve().parents[1]
FAMILIES = check.quick_models()  # the smallest model of each family
_OFFSET = {"tensorflow": 0, "torch": 1, "jax": 0}
# Not exported here, and why (reported in the closing notes; the export
# session's table records them as "timeout").
UNFINISHED = {
    # jax2onnx 0.17.1 had not finished converting NASNetMobile (32 px) after
    # 16 minutes, with the native convolutions as after 10; every other
    # family exports from JAX in 5-80 s.
    ("jax", "nasnet_mobile"): "jax2onnx does not finish",
}
# The format each family exports in here: alternate between families, and
# torch takes the other one from tensorflow and jax.
# Families whose turn is swapped on every backend: tf2onnx converts
# NASNetMobile in 52 s channels_last against 86 s channels_first (measured
# 2026-12-02, its transposes), so tensorflow takes channels_last and torch,
# whose exporter is fast either way, channels_first.
_SWAPPED = {"nasnet_mobile"}


def _family_format(i, name):
    turn = i + _OFFSET[BACKEND] + (name in _SWAPPED)
    return ("channels_last", "channels_first")[turn % 2]


FAMILY_CASES = [
    pytest.param(name, _family_format(i, name), id=f"{name}-{_family_format(i, name)}")
    for i, name in enumerate(FAMILIES) if (BACKEND, name) not in UNFINISHED
]
# The oracle case each backend exports (one family per backend, each
# exercising what is peculiar to its exporter: tf2onnx and the grouped
# convolution Keras compiles with XLA on TensorFlow, TorchScript with
# layer normalisation, jax2onnx's hard-swish and squeeze-excite).
ORACLE_CASE = {"tensorflow": "regnetx002_top", "torch": "convnext_tiny_top",
               "jax": "mobilenet_v3_small_top"}[BACKEND]
EXT = {"onnx": ".onnx", "saved_model": "", "litert": ".tflite"}
# One worker runs this module's tests, one after another. tf2onnx's peak
# is about 60 times the model's weights (measured 2026-12-02 on
# TensorFlow: VGG16 at 32 px, 151 MB of weights, 8.5 GB resident;
# InceptionResNetV2 at 75 px, 10.1 GB): two workers exporting at once took
# a worker past the memory of a 24 GB machine, and the kernel killed it
# (CI of stop 33, and here).
pytestmark = pytest.mark.xdist_group("export")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


@pytest.fixture(autouse=True)
def _return_memory():
    """After each test, hand the exporter's freed memory back to the
    system: glibc keeps freed heap pages, and a worker's resident memory
    grew export after export (11.2 GB after VGG16, the 15th family, on
    TensorFlow; 0.95 GB with this)."""
    yield
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def _shape(name, data_format):
    size = max(32, int(registry.model_info(name).min_size))
    return (size, size, 3) if data_format == "channels_last" else (3, size, size)


def _model(name, data_format="channels_last", **kwargs):
    """The model with ``check``'s synthetic weights: tame activations in
    every family (a random initialisation of a deep one can be chaotic,
    see benchmarks/export_coverage.py)."""
    from keras_zoo_plus import synthetic

    model = kz.create_model(name, weights=None, input_shape=_shape(name, data_format),
                            data_format=data_format, classifier_activation=None, **kwargs)
    family = registry.model_info(name).family
    return synthetic.apply_synthetic_weights(model, seed=0, family=family)


def _onnx_run(path, x):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    return session.run(None, {spec.name: x})


@pytest.mark.backend_independent
def test_family_list_covers_every_family():
    families = {registry.model_info(n).family for n in registry.list_models()}
    assert {registry.model_info(n).family for n in FAMILIES} == families
    assert len(FAMILIES) == len(families)


@pytest.mark.parametrize("name, data_format", FAMILY_CASES)
def test_onnx_export_verified(name, data_format, tmp_path):
    model = _model(name, data_format)
    path = tmp_path / f"{name}.onnx"
    result = kz.export(model, path)
    assert result.passed, result.summary()
    assert result.deviation <= 1e-5 and result.deviation_single <= 1e-5
    assert result.dynamic_batch
    assert result.input_shape == _shape(name, data_format)
    assert path.is_file()
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no partial files left
    # The file on disk, run here by ourselves on three images, a batch size
    # the export did not verify. Keras' reference runs the batch of 2 it
    # already ran (on JAX a new batch size is a new XLA program: one more
    # compile of the whole model per family).
    x2 = np.random.default_rng(7).normal(size=(2, *result.input_shape)).astype("float32")
    (got,) = _onnx_run(path, np.concatenate([x2, x2[1:]]))
    want = check.run_inference(model, x2)
    assert got.shape == (3, 1000) and want.shape == (2, 1000)
    assert rel_error(got, want[[0, 1, 1]]) <= 1e-5


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_onnx_artifact_matches_the_oracle(data_format, tmp_path):
    """The artifact against tf_keras' golden output (not only against our
    Keras model): the oracle case's synthetic weights and input."""
    from model_cache import constructor_kwargs, synthetic_arrays

    from keras_zoo_plus import model_table, weights
    from keras_zoo_plus.deferred import build_without_initializers

    constructor = model_table.get(CASES[ORACLE_CASE].model).constructor
    model = build_without_initializers(constructor, weights=None,
                                       **constructor_kwargs(ORACLE_CASE, data_format))
    structure, arrays = synthetic_arrays(ORACLE_CASE)
    weights.assign_legacy(model, legacy_entries(structure, arrays))
    path = tmp_path / "oracle.onnx"
    assert kz.export(model, path).passed
    (got,) = _onnx_run(path, golden_input(ORACLE_CASE, data_format))
    expected, _ = load_golden(ORACLE_CASE)
    assert got.shape == expected.shape
    assert rel_error(got, expected) <= 1e-5


@pytest.mark.only_backend("torch")
def test_torch_export_under_no_grad_is_the_plain_graph(tmp_path):
    """Under no_grad the torch backend runs the fused oneDNN path
    (keras_zoo_plus.fusion); the exported graph must hold only standard
    ONNX operators (Conv, BatchNormalization folded or not), none of
    oneDNN's, and still match Keras."""
    import onnx
    import torch

    model = _model("mobilenet")
    path = tmp_path / "m.onnx"
    with torch.no_grad():
        assert kz.export(model, path).passed
    graph = onnx.load(str(path)).graph
    assert {n.domain for n in graph.node} <= {"", "ai.onnx"}
    ops = {n.op_type for n in graph.node}
    assert "Conv" in ops
    assert not any("mkldnn" in op.lower() or "pointwise" in op.lower() for op in ops)


@pytest.mark.only_backend("torch")
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_torch_export_keeps_each_batch_normalization_one_node(data_format, tmp_path):
    """Each BatchNormalization layer becomes one ONNX BatchNormalization,
    which onnxruntime folds into the convolution before it; Keras' torch
    formulation left Sub, Mul and Add between two Casts (MobileNet,
    224 px, batch 16: 1.67x the onnxruntime throughput, see the
    CHANGELOG)."""
    import onnx

    model = _model("mobilenet", data_format)
    path = tmp_path / "m.onnx"
    assert kz.export(model, path).passed
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    layers = [la for la in model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert len(layers) == 27
    assert ops.count("BatchNormalization") == len(layers)


@pytest.mark.only_backend("tensorflow")
@pytest.mark.parametrize("format", ["saved_model", "litert"])
@pytest.mark.parametrize("name, data_format", [
    ("mobilenet", "channels_last"), ("efficientnet_b0", "channels_first"),
    ("convnext_tiny", "channels_last"), ("regnetx002", "channels_first"),
])
def test_tensorflow_formats_verified(format, name, data_format, tmp_path):
    model = _model(name, data_format)
    path = tmp_path / f"{name}{EXT[format]}"
    result = kz.export(model, path, format=format)
    assert result.passed, result.summary()
    assert result.worst <= exporting.TOLERANCES[format]
    assert result.dynamic_batch
    assert path.exists()


def test_features_model_exports_every_level(tmp_path):
    """A feature pyramid (dict of outputs) exports its levels in sorted key
    order, each checked."""
    model = kz.create_model("mobilenet_v2", features_only=True, weights=None,
                            input_shape=(64, 64, 3))
    path = tmp_path / "features.onnx"
    assert kz.export(model, path).passed
    x = np.random.default_rng(1).normal(size=(1, 64, 64, 3)).astype("float32")
    got = _onnx_run(path, x)
    want = model.predict_on_batch(x)
    assert [g.shape for g in got] == [tuple(want[k].shape) for k in sorted(want)]
    for g, k in zip(got, sorted(want)):
        assert rel_error(g, keras.ops.convert_to_numpy(want[k])) <= 1e-5


# --- errors ---------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    return _model("mobilenet")


@pytest.mark.backend_independent
def test_unknown_format(small, tmp_path):
    with pytest.raises(ValueError) as e:
        kz.export(small, tmp_path / "m.onnx", format="coreml")
    assert str(e.value) == ("format must be one of 'onnx', 'saved_model', 'litert'; "
                            "received 'coreml'")
    with pytest.raises(TypeError, match=r"format must be a string.*received 3 of type int"):
        kz.export(small, tmp_path / "m.onnx", format=3)


@pytest.mark.backend_independent
def test_aliases_of_keras_names():
    assert exporting.normalize_format("tf_saved_model") == "saved_model"
    assert exporting.normalize_format("TFLite") == "litert"


@pytest.mark.backend_independent
def test_bad_arguments(small, tmp_path):
    with pytest.raises(TypeError, match="model must be a keras.Model; received str"):
        kz.export("mobilenet", tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"batch must be a positive int; received 0"):
        kz.export(small, tmp_path / "m.onnx", batch=0)
    with pytest.raises(TypeError, match=r"seed must be an int; received '0' of type str"):
        kz.export(small, tmp_path / "m.onnx", seed="0")
    with pytest.raises(TypeError, match=r"verify must be True or False; received 'yes'"):
        kz.export(small, tmp_path / "m.onnx", verify="yes")
    with pytest.raises(ValueError, match=r"tolerance must be a positive number; received -1"):
        kz.export(small, tmp_path / "m.onnx", tolerance=-1)
    with pytest.raises(ValueError, match=r"input_shape \(64, 64, 3\) does not fit 'mobilenet_1.00_32"):
        kz.export(small, tmp_path / "m.onnx", input_shape=(64, 64, 3))
    with pytest.raises(TypeError, match=r"input_shape must be a tuple of positive ints"):
        kz.export(small, tmp_path / "m.onnx", input_shape=(32, 32, "3"))
    with pytest.raises(ValueError, match="opset applies to format 'onnx'"):
        kz.export(small, tmp_path / "m", format="saved_model", opset=13)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.backend_independent
def test_undefined_size_needs_input_shape(tmp_path):
    model = kz.create_model("mobilenet", weights=None, include_top=False,
                            input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=rf"input_shape: '{model.name}' takes inputs of "
                       r"shape \('batch', None, None, 3\), with undefined dimensions; give the "
                       r"image shape the artifact serves"):
        kz.export(model, tmp_path / "m.onnx")


@pytest.mark.backend_independent
def test_unwritable_output(small, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match=r"cannot create its directory"):
        kz.export(small, blocker / "sub" / "m.onnx")
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(ValueError, match=r"is a directory; an onnx artifact is one file"):
        kz.export(small, tmp_path / "dir.onnx")
    with pytest.raises(ValueError, match=r"a LiteRT artifact is a '.tflite' file"):
        kz.export(small, tmp_path / "m.onnx", format="litert")


@pytest.mark.backend_independent
def test_missing_dependency_names_the_package_and_the_extra(small, tmp_path, monkeypatch):
    real = exporting.importlib.util.find_spec
    monkeypatch.setattr(exporting.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.raises(exporting.ExportDependencyError) as e:
        kz.export(small, tmp_path / "m.onnx")
    assert str(e.value) == (f"format 'onnx' on the {BACKEND} backend needs onnxruntime, not "
                            "installed: pip install 'keras-zoo-plus[export]'")
    assert isinstance(e.value, ImportError)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.backend_independent
def test_export_extra_matches_pyproject():
    import re

    line = re.search(r"(?m)^export = \[(.*)\]$", (ROOT / "pyproject.toml").read_text())
    names = [re.split(r"[<>=!~ ]", req.strip().strip('"'), maxsplit=1)[0]
             for req in line.group(1).split(",")]
    assert tuple(names) == exporting.EXPORT_EXTRA
    needed = {pip for reqs in exporting._REQUIREMENTS.values() for _, pip in reqs}
    assert needed - {"tensorflow"} == set(names)


@pytest.mark.backend_independent
def test_a_package_outside_the_extra_gets_its_own_hint(monkeypatch):
    monkeypatch.setattr(exporting.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(exporting.ExportDependencyError) as e:
        exporting.check_requirements("saved_model", "jax")
    assert str(e.value) == ("format 'saved_model' on the jax backend needs tensorflow, not "
                            "installed: pip install tensorflow")


@pytest.mark.backend_independent
def test_keras_without_the_exporter(small, tmp_path, monkeypatch):
    real = exporting.importlib.util.find_spec
    monkeypatch.setattr(exporting.importlib.util, "find_spec",
                        lambda name, *a: None if name == "keras.src.export.onnx"
                        else real(name, *a))
    with pytest.raises(exporting.ExportError, match=rf"format 'onnx': Keras {keras.__version__} "
                       "has no onnx exporter taking an input_signature"):
        kz.export(small, tmp_path / "m.onnx")


@pytest.mark.only_backend("torch", "jax")  # every format exports from TensorFlow
@pytest.mark.parametrize("format", {"torch": ["saved_model", "litert"],
                                    "jax": ["litert"]}.get(BACKEND, ["litert"]))
def test_unsupported_pair_says_why(small, format, tmp_path):
    with pytest.raises(exporting.ExportError) as e:
        kz.export(small, tmp_path / f"m{EXT[format]}", format=format)
    assert str(e.value).startswith(f"format {format!r} on the {BACKEND} backend: ")
    assert "KERAS_BACKEND=tensorflow" in str(e.value) or "tensorflow or jax" in str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.backend_independent
def test_deviation_above_tolerance_leaves_the_path_untouched(small, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous artifact")
    with pytest.raises(exporting.ExportVerificationError) as e:
        kz.export(small, path, tolerance=1e-12)
    result = e.value.result
    assert result.deviation is not None and result.worst > 1e-12
    assert not result.passed
    assert f"above the tolerance 1e-12; {path} was not written" in str(e.value)
    assert path.read_bytes() == b"previous artifact"
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]


@pytest.mark.backend_independent
def test_export_without_verification(small, tmp_path):
    result = kz.export(small, tmp_path / "m.onnx", verify=False)
    assert result.deviation is None and not result.passed
    assert result.summary().endswith("; not verified")
    assert (tmp_path / "m.onnx").is_file()


# --- command line ---------------------------------------------------------


def _cli(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_exports_a_zoo_model(capsys, tmp_path):
    out_path, report = tmp_path / "m.onnx", tmp_path / "r.json"
    rc, out, err = _cli(capsys, "export", "mobilenet", "--format", "onnx", "--output",
                        str(out_path), "--weights", "none", "--size", "32x40",
                        "--data-format", "channels_first", "--json", str(report))
    assert rc == 0, err
    assert out.startswith(f"{out_path}: onnx from {BACKEND}, input 3x32x40, dynamic batch")
    assert out.rstrip().endswith(": ok")
    data = json.loads(report.read_text())
    assert data["passed"] and data["input_shape"] == [3, 32, 40] and data["deviation"] <= 1e-5
    assert out_path.is_file()


@pytest.mark.backend_independent
def test_cli_exports_a_model_file_with_its_weights(capsys, tmp_path):
    model = _model("mobilenet")
    for v in model.trainable_variables[:3]:
        v.assign(np.random.default_rng(3).normal(size=v.shape).astype("float32"))
    saved = tmp_path / "mine.keras"
    model.save(saved)
    out_path = tmp_path / "mine.onnx"
    rc, out, err = _cli(capsys, "export", str(saved), "--format", "onnx", "--output",
                        str(out_path))
    assert rc == 0, err
    x = np.random.default_rng(5).normal(size=(2, 32, 32, 3)).astype("float32")
    (got,) = _onnx_run(out_path, x)
    assert rel_error(got, check.run_inference(model, x)) <= 1e-5


@pytest.mark.backend_independent
@pytest.mark.parametrize("args, message", [
    (["mobilenet", "--format", "coreml"],
     "--format 'coreml': choose from onnx, saved_model, litert"),
    (["no_such_model", "--format", "onnx"],
     "'no_such_model' is neither a registered model nor a model file; known models: "),
    (["mobilenet", "--format", "onnx", "--weights", "nowhere.h5"],
     "--weights 'nowhere.h5': expected 'imagenet', 'none' or an existing weights file"),
    # Not a .tflite path (tensorflow) or no LiteRT exporter (torch, jax):
    # refused before the model is built.
    (["mobilenet", "--format", "litert"], None),
])
def test_cli_errors_are_one_line(capsys, tmp_path, args, message):
    rc, out, err = _cli(capsys, "export", *args, "--output", str(tmp_path / "m.onnx"),
                        "--size", "32")
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keras-zoo-plus: error: ")
    if message is not None:
        assert lines[0][len("keras-zoo-plus: error: "):].startswith(message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.backend_independent
def test_cli_unwritable_output(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, out, err = _cli(capsys, "export", "mobilenet", "--format", "onnx", "--weights", "none",
                        "--size", "32", "--output", str(blocker / "m.onnx"))
    assert rc == 2
    assert err.startswith("keras-zoo-plus: error: path ")
    assert "cannot create its directory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.backend_independent
def test_cli_missing_dependency(capsys, tmp_path, monkeypatch):
    real = exporting.importlib.util.find_spec
    monkeypatch.setattr(exporting.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    rc, out, err = _cli(capsys, "export", "mobilenet", "--format", "onnx", "--weights", "none",
                        "--output", str(tmp_path / "m.onnx"))
    assert rc == 2
    assert err == (f"keras-zoo-plus: error: format 'onnx' on the {BACKEND} backend needs onnx, "
                   "not installed: pip install 'keras-zoo-plus[export]'\n")


@pytest.mark.backend_independent
def test_cli_deviation_exits_1(capsys, tmp_path, small):
    saved = tmp_path / "logits.keras"
    small.save(saved)  # logits: a randomly initialised softmax is uniform, exact anywhere
    rc, out, err = _cli(capsys, "export", str(saved), "--format", "onnx", "--tolerance", "1e-12",
                        "--output", str(tmp_path / "m.onnx"))
    assert rc == 1
    assert "ABOVE TOLERANCE" in out
    assert "was not written" in err
    assert not (tmp_path / "m.onnx").exists()
