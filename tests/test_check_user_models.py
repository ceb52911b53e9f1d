"""``keras-zoo-plus check`` on a user's own model (``--model``, a model
file), its JUnit report and exit codes, and the pytest plugin
(``keras_zoo_plus.testing.assert_backend_parity``).

The user's code is a toy package written into a temporary directory (a
convolution, a custom layer with weights, pooling and a dense layer at
32x48), checked from that directory as a user checks from their
repository root. Like tests/test_cli.py, the runs here use the backend of
this session (each nox backend session installs one); the tests marked
slow compare across every installed backend (the slow session installs
all three).

Cost: every ``check`` run starts one worker process per backend and data
format, so the module runs ``check`` as few times as it can and reads one
run's outputs in several tests.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import keras
import numpy as np
import pytest
from test_cli import CELL_KEYS, PROG, TOP_KEYS, _env, error_lines

from keras_zoo_plus import check, cli, synthetic, testing, usermodel

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()
BUILD = "kzp_toy.models:build"
SHAPE = "32,48,3"
ALLOWED_BUILDER = "package.module:function, a module-level function returning a keras.Model"
ALLOWED_FILE = "a .keras or legacy .h5 model file"

TOY_MODELS = '''
import keras


@keras.saving.register_keras_serializable(package="kzp_toy")
class Shift(keras.layers.Layer):
    """A learned shift per channel."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = data_format or keras.config.image_data_format()

    def build(self, input_shape):
        axis = 1 if self.data_format == "channels_first" else -1
        self.shift = self.add_weight(name="shift", shape=(input_shape[axis],))

    def call(self, x):
        shape = (1, -1, 1, 1) if self.data_format == "channels_first" else (1, 1, 1, -1)
        return x + keras.ops.reshape(self.shift, shape)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


OBJECTS = {"Shift": Shift}
NOT_OBJECTS = 5


def build(input_shape):
    # No data_format argument: the layers take Keras' default, which
    # check sets to each cell's data format while this runs.
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv")(inputs)
    x = Shift(name="shift")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def build_two_outputs(input_shape):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, [x, keras.layers.Dense(3, name="logits")(pooled)])


def build_any_size():
    inputs = keras.Input((None, None, 3) if keras.config.image_data_format() == "channels_last"
                         else (3, None, None))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="pool")(x))


def build_vector():
    inputs = keras.Input((8,))
    return keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))


def build_raises(input_shape=None):
    raise RuntimeError("the toy builder is broken")


def build_not_a_model(input_shape=None):
    return {"not": "a model"}
'''

TOY_TESTS = '''
import json
import pathlib

from keras_zoo_plus.testing import assert_backend_parity


def test_parity_of_a_saved_model_through_the_fixture(backend_parity):
    report = backend_parity("toy_cf.keras", None, custom_objects="kzp_toy.models:OBJECTS")
    pathlib.Path("file_report.json").write_text(json.dumps(report))


def test_parity_of_a_function():
    # By name: this process need not import Keras (a function object works
    # too, see test_a_function_is_passed_by_its_import_path).
    assert_backend_parity("kzp_toy.models:build", (32, 48, 3), backends=["{backend}"])
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A user's repository: ``kzp_toy/models.py`` and a test file."""
    root = tmp_path_factory.mktemp("user_repo")
    (root / "kzp_toy").mkdir()
    (root / "kzp_toy" / "__init__.py").write_text("")
    (root / "kzp_toy" / "models.py").write_text(TOY_MODELS)
    (root / "tests").mkdir()
    (root / "tests" / "test_toy_parity.py").write_text(TOY_TESTS.format(backend=BACKEND))
    return root


def run_check(cwd, *args, **env):
    """``python -m keras_zoo_plus check ...`` from ``cwd`` (the user's
    repository root: the toy package is not on PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "keras_zoo_plus", "check", *args],
        capture_output=True, text=True, env=_env(**env), cwd=cwd, timeout=600,
    )


def _junit(path):
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return root, suites[0]


# --------------------------------------------------------------------------
# One passing run of the builder, every report written


@pytest.fixture(scope="module")
def passing(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("passing")
    proc = run_check(
        toy, "--model", BUILD, "--input-shape", SHAPE, "--backends", BACKEND,
        "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
        "--junit", str(out / "r.xml"),
    )
    return proc, out


def test_builder_check_passes_in_both_formats(passing):
    proc, out = passing
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((out / "r.json").read_text())
    assert report["passed"] is True and report["failures"] == []
    assert report["models"] == [BUILD]
    assert report["backends"] == [BACKEND]
    assert report["formats"] == list(check.DATA_FORMATS)
    cells = {c["data_format"]: c for c in report["cells"]}
    assert cells["channels_last"]["input_shape"] == [2, 32, 48, 3]
    assert cells["channels_first"]["input_shape"] == [2, 3, 32, 48]
    for cell in cells.values():
        assert (cell["model"], cell["backend"], cell["status"]) == (BUILD, BACKEND, "ok")
        assert cell["output_shape"] == [2, 3]
        assert cell["include_top"] is None  # a user's model has no zoo top
        assert 0.0 <= cell["max_rel_dev"] <= check.DEFAULT_TOLERANCE
    assert cells["channels_last"]["reference"] is True
    assert cells["channels_first"]["reference"] is False
    # The same table as for the zoo.
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith(BUILD)]
    assert [r[1:5] for r in rows] == [[BACKEND, "channels_last", "32x48", "-"],
                                       [BACKEND, "channels_first", "32x48", "-"]]
    assert "PASSED: 2/2 cells within 0.0001" in proc.stdout


def test_builder_check_reports_have_the_zoo_schema(passing):
    _, out = passing
    report = json.loads((out / "r.json").read_text())
    assert set(report) == TOP_KEYS
    assert all(set(cell) == CELL_KEYS for cell in report["cells"])
    markdown = (out / "r.md").read_text()
    assert markdown.startswith("# keras-zoo-plus check")
    assert f"| {BUILD} | {BACKEND} | channels_first | 32x48 | - |" in markdown


def test_junit_of_a_passing_run(passing):
    _, out = passing
    root, suite = _junit(out / "r.xml")
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "0", "0")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        (BUILD, f"{BACKEND}/channels_last"), (BUILD, f"{BACKEND}/channels_first")]
    assert all(list(c) == [] for c in cases)  # no failure, error or skipped element
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["tolerance"] == "0.0001"
    assert props[BACKEND].endswith(f"(keras {keras.__version__})")


# --------------------------------------------------------------------------
# A planted discrepancy: exit 1, JUnit failures with deviation and reference


def test_planted_discrepancy_fails_the_run_and_the_junit_cases(toy, tmp_path):
    proc = run_check(
        toy, "--model", BUILD, "--input-shape", SHAPE, "--backends", BACKEND,
        "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"), "--quiet",
        **{check.PERTURB_ENV: f"{BACKEND}:{BUILD}:channels_first"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    bad = next(c for c in report["cells"] if c["data_format"] == "channels_first")
    assert bad["perturbed"] is True and bad["status"] == "fail"
    # Scaling the convolution's kernel by 1.01 moves the logits by about 1%.
    assert 1e-3 < bad["dev_vs_reference"] < 1e-1
    root, suite = _junit(tmp_path / "r.xml")
    # Two cells, no majority: both fail, the perturbed one against the reference.
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "2", "0")
    assert root.get("failures") == "2"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    failure = cases[f"{BACKEND}/channels_first"].find("failure")
    dev = bad["dev_vs_reference"]
    assert failure.get("message") == (
        f"deviation {dev:.3g} from the reference {BACKEND}/channels_last > 0.0001")
    assert failure.get("type") == "deviation"
    assert f"reference cell: {BACKEND}/channels_last" in failure.text
    assert f"deviation from the reference: {dev:.2e}" in failure.text
    other = cases[f"{BACKEND}/channels_last"].find("failure")
    assert other.get("message").endswith(
        f"from {BACKEND}/channels_first > 0.0001 (no majority agrees)")
    assert f"{BUILD} {BACKEND} channels_first: {failure.get('message')}" in proc.stdout
    assert "FAILED: 0/2 cells" in proc.stdout


# --------------------------------------------------------------------------
# A saved model file: its own weights, its own data format


def _save_toy(toy, path, data_format="channels_last"):
    sys.path.insert(0, str(toy))
    try:
        from kzp_toy import models
    finally:
        sys.path.remove(str(toy))
    shape = (32, 48, 3) if data_format == "channels_last" else (3, 32, 48)
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format(data_format)
    try:
        model = models.build(shape)
    finally:
        keras.config.set_image_data_format(previous)
    synthetic.apply_synthetic_weights(model, seed=7)
    model.save(path)
    return model


def test_model_file_runs_only_in_its_saved_format(toy, tmp_path, no_workers):
    path = tmp_path / "toy.keras"
    _save_toy(toy, path, "channels_first")
    err = _cli_error(["check", str(path), "--formats", "channels_last"])
    assert err == (f"--formats channels_last: {str(path)!r} was saved in channels_first, "
                   "the only data format it runs in; choose from channels_first")


def _cell(source, data_format, tmp_path, **kwargs):
    return check.run_cell(source, data_format, batch=2, seed=0, repeat=1, perturb=False,
                          outdir=str(tmp_path), backend=BACKEND, **kwargs)


def test_cells_run_the_file_weights_and_the_synthetic_builder_weights(toy, tmp_path,
                                                                      monkeypatch):
    """In-process (what a worker does): a file's cell computes the saved
    model's output, a builder's cell the output under the synthetic weights
    of the check's seed, not under its random initialisation."""
    monkeypatch.chdir(toy)
    monkeypatch.syspath_prepend(str(toy))  # where the worker puts it
    from kzp_toy import models

    x = synthetic.synthetic_input((2, 32, 48, 3), seed=0)
    saved = _save_toy(toy, tmp_path / "toy.keras")
    saved.save(tmp_path / "toy.h5")  # the legacy HDF5 format, same weights
    expected_file = keras.ops.convert_to_numpy(saved(x, training=False))
    built = synthetic.apply_synthetic_weights(models.build((32, 48, 3)), seed=0)
    expected_builder = keras.ops.convert_to_numpy(built(x, training=False))
    assert np.max(np.abs(expected_file - expected_builder)) > 1e-3  # seeds 7 and 0 differ

    for name in ("toy.keras", "toy.h5"):
        job, data_format = usermodel.file_job(str(tmp_path / name))
        assert data_format == "channels_last"
        cell = _cell(usermodel.UserModel(job), "channels_last", tmp_path)
        assert cell["status"] == "ok", (name, cell["error"])
        np.testing.assert_allclose(np.load(cell["output_file"]), expected_file,
                                   rtol=1e-5, atol=1e-6, err_msg=name)

    job = usermodel.builder_job(BUILD, input_shape=(32, 48, 3))
    cell = _cell(usermodel.UserModel(job), "channels_first", tmp_path)
    assert cell["status"] == "ok", cell["error"]
    np.testing.assert_allclose(np.load(cell["output_file"]), expected_builder,
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "builder, input_shape, data_format, expected",
    [
        ("build_two_outputs", (32, 48, 3), "channels_first", [2, 32 * 48 * 2 + 3]),
        ("build_any_size", (16, 24, 3), "channels_first", [2, 2]),
        ("build_any_size", None, "channels_last",
         "the model's input (None, None, None, 3) has undefined dimensions; give "
         "--input-shape H,W,C"),
        ("build_vector", None, "channels_last",
         "the model's input (None, 8) is not an image batch (batch, H, W, C) or "
         "(batch, C, H, W)"),
        ("build", (32, 48, 4), "channels_last", None),  # the builder takes input_shape
        ("build_not_a_model", None, "channels_last", "it returned a dict, not a keras.Model"),
    ],
    ids=["two-outputs", "undefined-dims-filled", "undefined-dims", "not-an-image",
         "four-channels", "not-a-model"],
)
def test_cell_inputs_and_outputs_of_a_builder(builder, input_shape, data_format, expected,
                                              toy, tmp_path, monkeypatch):
    """In-process, what a worker does with the model's input and outputs:
    undefined dimensions come from the input shape, several outputs are
    flattened and concatenated, and what cannot be fed is a load error."""
    monkeypatch.chdir(toy)
    monkeypatch.syspath_prepend(str(toy))
    job = usermodel.builder_job(f"kzp_toy.models:{builder}", input_shape=input_shape)
    cell = _cell(usermodel.UserModel(job), data_format, tmp_path)
    if isinstance(expected, str):
        assert (cell["status"], cell["error"], cell["error_stage"]) == (
            "error", expected, "load")
    else:
        assert cell["status"] == "ok", cell["error"]
        if expected is not None:
            assert cell["output_shape"] == expected
        h, w, c = input_shape
        assert cell["input_shape"] == ([2, h, w, c] if data_format == "channels_last"
                                       else [2, c, h, w])


def test_custom_objects_must_be_a_dict(toy, tmp_path, monkeypatch):
    monkeypatch.chdir(toy)
    monkeypatch.syspath_prepend(str(toy))
    job = usermodel.builder_job(BUILD, input_shape=(32, 48, 3),
                                custom_objects="kzp_toy.models:NOT_OBJECTS")
    cell = _cell(usermodel.UserModel(job), "channels_last", tmp_path)
    assert (cell["status"], cell["error"]) == ("error", (
        "--custom-objects 'kzp_toy.models:NOT_OBJECTS' is of type int, not a dict of "
        "custom objects"))


def test_file_with_unknown_custom_objects_names_them(toy, tmp_path, monkeypatch):
    """The file's custom layer is unknown (its class registered under
    another name here): the cell's error names it and the argument that
    supplies it."""
    monkeypatch.syspath_prepend(str(toy))
    _save_toy(toy, tmp_path / "toy.keras")
    with zipfile.ZipFile(tmp_path / "toy.keras") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["config.json"] = files["config.json"].replace(b"Shift", b"Shifted")
    with zipfile.ZipFile(tmp_path / "renamed.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    job, _ = usermodel.file_job(str(tmp_path / "renamed.keras"))
    cell = _cell(usermodel.UserModel(job), "channels_last", tmp_path)
    assert (cell["status"], cell["error_stage"]) == ("error", "load")
    assert cell["error"] == (
        "it uses the object 'Shifted', which is neither built into Keras nor one of "
        "keras_zoo_plus.custom_objects(); give yours with --custom-objects package.module:NAME")


def test_input_shape_accepts_integers_of_any_type():
    assert usermodel.validate_input_shape((np.int64(32), 48, 3)) == (32, 48, 3)
    assert usermodel.validate_input_shape([32, 48, 3]) == (32, 48, 3)
    with pytest.raises(ValueError, match=r"received input_shape=\(32, True, 3\)"):
        usermodel.validate_input_shape((32, True, 3))


def test_junit_error_element_for_a_cell_that_did_not_run(tmp_path):
    path = tmp_path / "y.npy"
    np.save(path, np.arange(1.0, 5.0, dtype="float32"))
    cells = [
        {"model": "m:f", "backend": "jax", "data_format": "channels_last", "status": "ok",
         "output_file": str(path), "error": None, "build_s": 0.5},
        {"model": "m:f", "backend": "torch", "data_format": "channels_last",
         "status": "error", "error": "ValueError: no such op"},
    ]
    failures = check.compare(cells, 1e-4)
    report = check.build_report(cells, failures, {}, [{"model": "m:f"}], ["jax", "torch"],
                                ["channels_last"], tolerance=1e-4, batch=2, seed=0,
                                started=0.0, wall_s=1.0)
    path = tmp_path / "r.xml"
    path.write_text(check.render_junit(report))
    _, suite = _junit(path)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    ok, bad = suite.findall("testcase")
    assert (ok.get("name"), ok.get("time"), list(ok)) == ("jax/channels_last", "0.500", [])
    [error] = list(bad)
    assert (error.tag, error.get("message")) == ("error", "ValueError: no such op")
    assert "reference cell: jax/channels_last" in error.text


# --------------------------------------------------------------------------
# Bad input: one line on stderr, exit 2, before any worker where the parent
# can tell.


def _cli_error(argv):
    """``(exit code, stderr)`` of ``cli.main`` in-process, stdout empty."""
    import contextlib
    import io

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code
    assert rc == 2, (rc, err.getvalue())
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    prefix = f"{PROG}: error: "
    assert lines[0].startswith(prefix)
    return lines[0][len(prefix):]


@pytest.fixture
def no_workers(monkeypatch):
    """Fails the test if a worker process would start."""

    def refuse(*args, **kwargs):
        raise AssertionError("a worker started")

    monkeypatch.setattr(check, "_run_backend", refuse)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "kzp_toy.models.build"],
         "--model 'kzp_toy.models.build': no ':' between the module and the name; "
         f"expected {ALLOWED_BUILDER}"),
        (["--model", "resnet50"],
         "--model 'resnet50': no ':' between the module and the name (resnet50 is a zoo "
         f"model: check it with --models resnet50); expected {ALLOWED_BUILDER}"),
        (["--model", "kzp_toy.nosuch:build"],
         "--model 'kzp_toy.nosuch:build': module 'kzp_toy.nosuch' is not importable from the "
         "current directory ({cwd}) or PYTHONPATH; expected " + ALLOWED_BUILDER),
        (["--model", "kzp_toy/models:build"],
         f"--model 'kzp_toy/models:build': not a module path and a name; expected "
         f"{ALLOWED_BUILDER}"),
        (["--model", BUILD, "--models", "vgg16"],
         f"--model {BUILD!r} checks your model instead of the zoo; give either it or "
         "--models vgg16, not both"),
        (["--model", BUILD, "--quick"],
         f"--model {BUILD!r} checks your model instead of the zoo; give either it or "
         "--quick, not both"),
        (["missing.keras", "--models", "vgg16", "resnet50"],
         "model file 'missing.keras' checks your model instead of the zoo; give either it "
         "or --models vgg16 resnet50, not both"),
        (["--backends", BACKEND, "toy.keras"],
         "unknown backend 'toy.keras'; choose from tensorflow, torch, jax (give the model "
         "file before --backends)"),
        (["--model", "nosuch.models:build"],
         "--model 'nosuch.models:build': module 'nosuch.models' is not importable from the "
         "current directory ({cwd}) or PYTHONPATH (ModuleNotFoundError: No module named "
         "'nosuch'); expected " + ALLOWED_BUILDER),
        (["--model", BUILD, "resnet50"],
         "model file 'resnet50': no such file; resnet50 is a zoo model: check it with "
         "--models resnet50, not with --model"),
        (["--model", BUILD, "--size", "64"],
         "--size 64x64 applies to zoo models; give your model's input as --input-shape H,W,C"),
        (["--models", "vgg16", "--input-shape", SHAPE],
         "--input-shape 32,48,3 applies to --model or a model file; zoo models take --size"),
        (["--models", "vgg16", "--custom-objects", "kzp_toy.models:OBJECTS"],
         "--custom-objects 'kzp_toy.models:OBJECTS' applies to --model or a model file; the "
         "zoo's own are always in scope"),
        (["--model", BUILD, "--input-shape", "32,48"],
         "argument --input-shape: expected H,W,C: 3 positive integers, channels last, "
         "got '32,48' (2 values)"),
        (["--model", BUILD, "--input-shape", "32,48,3,1"],
         "argument --input-shape: expected H,W,C: 3 positive integers, channels last, "
         "got '32,48,3,1' (4 values)"),
        (["--model", BUILD, "--input-shape", "32,0,3"],
         "argument --input-shape: expected H,W,C: 3 positive integers, channels last, "
         "got '32,0,3'"),
        (["--model", BUILD, "--input-shape", "32,-48,3"],
         "argument --input-shape: expected H,W,C: 3 positive integers, channels last, "
         "got '32,-48,3'"),
        (["--model", BUILD, "--input-shape", "32,4.5,3"],
         "argument --input-shape: expected H,W,C: 3 positive integers, channels last, "
         "got '32,4.5,3'"),
        (["--model", BUILD, "--custom-objects", "kzp_toy.models"],
         "--custom-objects 'kzp_toy.models': no ':' between the module and the name; "
         "expected package.module:NAME, a dict of custom objects or a function returning "
         "one"),
        (["missing.keras"],
         f"model file 'missing.keras': no such file; expected {ALLOWED_FILE}"),
        (["kzp_toy/models.py"],
         f"model file 'kzp_toy/models.py': unknown file type; expected {ALLOWED_FILE}"),
        (["notes.keras"],
         f"model file 'notes.keras': not a .keras archive; expected {ALLOWED_FILE}"),
        (["toy.weights.h5"],
         f"model file 'toy.weights.h5': no model in it (a weights-only file?); expected "
         f"{ALLOWED_FILE}"),
    ],
    ids=["no-colon", "zoo-name", "module-missing", "not-a-module", "with-models",
         "with-quick", "file-with-models", "file-after-backends", "package-missing", "with-zoo-name", "with-size",
         "zoo-input-shape", "zoo-custom-objects", "shape-rank-2",
         "shape-rank-4", "shape-zero", "shape-negative", "shape-float", "objects-no-colon",
         "file-missing", "file-type", "file-not-keras", "file-weights-only"],
)
def test_bad_user_model_arguments_fail_before_any_worker(argv, message, toy, monkeypatch,
                                                         no_workers):
    monkeypatch.chdir(toy)
    (toy / "notes.keras").write_text("not a model")
    _save_toy_weights(toy / "toy.weights.h5")
    extra = [] if "--backends" in argv else ["--backends", BACKEND]
    assert _cli_error(["check", *argv, *extra]) == message.format(cwd=toy)


def _save_toy_weights(path):
    if not path.exists():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.save_weights(path)


@pytest.mark.parametrize(
    "builder, message",
    [
        ("kzp_toy.models:build_raises",
         "calling it raised RuntimeError: the toy builder is broken"),
        ("kzp_toy.models:build_not_a_model", "it returned a dict, not a keras.Model"),
    ],
    ids=["raises", "not-a-model"],
)
def test_builder_that_fails_everywhere_is_a_usage_error(builder, message, toy):
    """Through the entry point: the builder runs in the worker (one here,
    one data format), and a model no cell could build is exit 2, not a
    failed matrix."""
    proc = run_check(toy, "--model", builder, "--input-shape", SHAPE, "--backends", BACKEND,
                     "--formats", "channels_last", "--quiet")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert error_lines(proc) == [
        f"{PROG}: error: --model {builder!r}: {message} (in the only cell); "
        f"expected {ALLOWED_BUILDER}"]
    assert proc.stdout == ""


def test_a_cell_that_fails_on_some_cells_only_is_an_incompatibility():
    """raise_if_unusable: load errors in every cell are the caller's; in
    some cells only, the matrix reports them (exit 1)."""
    job = {"model": "m:f", "source": "builder", "argument": "--model", "allowed": "X"}
    broken = {"model": "m:f", "status": "error", "error": "calling it raised E: x",
              "error_stage": "load"}
    with pytest.raises(usermodel.UserModelError) as info:
        usermodel.raise_if_unusable([job], [dict(broken), dict(broken)])
    assert str(info.value) == ("--model 'm:f': calling it raised E: x (in all 2 cells); "
                               "expected X")
    usermodel.raise_if_unusable([job], [dict(broken), {"model": "m:f", "status": "ok"}])
    usermodel.raise_if_unusable([job], [dict(broken, error_stage="run")] * 2)


def test_exit_codes_are_documented(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("Exit codes: 0 success, 1 ``check`` found a deviation above the tolerance or a "
            "cell that failed") in text
    assert ("2 bad arguments (one line on stderr), a user's model included that no cell "
            "could build or load") in text
    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    out = capsys.readouterr().out
    assert ("Exit codes: 0 every cell within the tolerance, 1 a cell deviates or fails to "
            "build or run, 2 bad arguments (a model of yours that no cell could build or load "
            "included).") in " ".join(out.split())
    for flag in ("--model", "--input-shape", "--custom-objects", "--junit", "MODEL_FILE"):
        assert flag in out


# --------------------------------------------------------------------------
# The library function and the pytest plugin


def test_plugin_and_testing_module_import_no_keras():
    code = ("import sys, keras_zoo_plus.pytest_plugin, keras_zoo_plus.testing\n"
            "print([m for m in ('keras', 'tensorflow', 'torch', 'jax', 'numpy') "
            "if m in sys.modules])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_plugin_is_registered_as_pytest11_entry_point():
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="pytest11") if ep.name == "keras_zoo_plus"]
    assert [ep.value for ep in found] == ["keras_zoo_plus.pytest_plugin"]


def test_a_function_is_passed_by_its_import_path(toy, monkeypatch):
    monkeypatch.syspath_prepend(str(toy))
    from kzp_toy import models

    assert testing._target(models.build) == BUILD


def test_testing_default_tolerance_is_checks():
    assert testing.DEFAULT_TOLERANCE == check.DEFAULT_TOLERANCE


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((lambda s: None, (32, 32, 3)), {}, TypeError,
         "`build_fn_or_path` must be importable by the backend worker processes"),
        ((BUILD, (32, 32)), {}, ValueError,
         "`input_shape` must be (H, W, C), 3 positive integers, channels last; received "
         "input_shape=(32, 32)"),
        ((BUILD, "32,32,3"), {}, TypeError,
         "`input_shape` must be (H, W, C), 3 positive integers, channels last; received "
         "input_shape='32,32,3'"),
        (("missing.keras", None), {}, ValueError,
         f"build_fn_or_path 'missing.keras': no such file; expected {ALLOWED_FILE}"),
        ((BUILD, (32, 32, 3)), {"tolerance": 0}, ValueError,
         "`tolerance` must be a positive number; received tolerance=0"),
        ((BUILD, (32, 32, 3)), {"backends": ["mxnet"]}, ValueError,
         "`backends` must name installed backends"),
        ((BUILD, (32, 32, 3)), {"formats": ["channels_middle"]}, ValueError,
         "`formats` must be among channels_last, channels_first for this model; received "
         "formats=['channels_middle']"),
    ],
    ids=["lambda", "shape-rank", "shape-string", "file-missing", "tolerance", "backend",
         "format"],
)
def test_assert_backend_parity_bad_arguments(args, kwargs, error, message, toy, monkeypatch,
                                             no_workers):
    monkeypatch.chdir(toy)
    with pytest.raises(error) as info:
        testing.assert_backend_parity(*args, **kwargs)
    assert str(info.value).startswith(message)


def test_pytest_plugin_in_a_users_test_suite(toy):
    """A user's test run (pytest in their repository, keras-zoo-plus
    installed): the ``backend_parity`` fixture from the entry point checks
    a saved channels_first model with its custom objects and passes; a
    function whose channels_first cell deviates (planted) fails its test
    with the cell table."""
    _save_toy(toy, toy / "toy_cf.keras", "channels_first")
    env = _env(PYTHONPATH=os.pathsep.join([str(toy), str(ROOT)]),
               **{check.PERTURB_ENV: f"{BACKEND}:kzp_toy.models:build:channels_first"})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_toy_parity.py"],
        capture_output=True, text=True, env=env, cwd=toy, timeout=600,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "1 failed, 1 passed" in out
    assert "FAILED tests/test_toy_parity.py::test_parity_of_a_function - " in out
    assert "AssertionError: backend parity of kzp_toy.models:build failed:" in out
    table = [line.split() for line in out.splitlines()
             if re.match(r"E\s+kzp_toy\.models:build {2,}", line)]
    assert [row[2:4] for row in table] == [[BACKEND, "channels_last"],
                                          [BACKEND, "channels_first"]]
    assert [row[-1] for row in table] == ["FAIL", "FAIL"]
    assert "FAILED: 0/2 cells within 0.0001" in out
    # The saved model: one cell per installed backend (the fixture's
    # default; one in a backend session, three where all are installed),
    # in the format it was saved in, its own weights.
    report = json.loads((toy / "file_report.json").read_text())
    assert report["passed"] is True
    assert report["formats"] == ["channels_first"]
    assert [(c["model"], c["backend"], c["input_shape"], c["status"])
            for c in report["cells"]] == [("toy_cf.keras", backend, [2, 3, 32, 48], "ok")
                                          for backend in check.installed_backends()]


# --------------------------------------------------------------------------
# Across backends (the slow session installs all three)


def _other_backends():
    """Every installed backend, this session's first (the reference)."""
    installed = check.installed_backends()
    assert len(installed) >= 2, f"the slow session installs every backend; found {installed}"
    return [BACKEND] + [b for b in installed if b != BACKEND]


def _backend_pair():
    """This session's backend and the next installed one: the slow session
    runs pytest once per backend, so the three runs cover the three pairs."""
    installed = check.installed_backends()
    assert len(installed) >= 2, f"the slow session installs every backend; found {installed}"
    return [BACKEND, installed[(installed.index(BACKEND) + 1) % len(installed)]]


@pytest.mark.slow
def test_builder_across_backends_names_the_deviating_cell(toy, tmp_path):
    backends = _other_backends()
    planted = backends[-1]
    # One data format (one worker per backend): the formats are compared
    # on each backend by the tests above.
    proc = run_check(
        toy, "--model", BUILD, "--input-shape", SHAPE, "--backends", *backends,
        "--formats", "channels_last", "--json", str(tmp_path / "r.json"),
        "--junit", str(tmp_path / "r.xml"), "--quiet",
        **{check.PERTURB_ENV: f"{planted}:{BUILD}"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    status = {c["backend"]: c["status"] for c in report["cells"]}
    assert status == {b: "fail" if b == planted else "ok" for b in backends}
    ref = next(c for c in report["cells"] if c["reference"])
    assert (ref["backend"], ref["data_format"]) == (BACKEND, "channels_last")
    _, suite = _junit(tmp_path / "r.xml")
    n = len(backends)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(n), "1", "0")
    failures = [(c.get("name"), c.find("failure")) for c in suite.findall("testcase")
                if c.find("failure") is not None]
    [(name, failure)] = failures
    assert name == f"{planted}/channels_last"
    assert failure.get("message").endswith(
        f"from the reference {BACKEND}/channels_last > 0.0001")


@pytest.mark.slow
def test_model_file_across_backends(toy, tmp_path):
    # .keras: a legacy .h5 loads through the same keras_zoo_plus.load_model
    # (tests/test_saving.py, tests/test_legacy_families.py) but imports
    # TensorFlow in every worker, 5 s more per worker here.
    backends = _backend_pair()
    path = tmp_path / "toy.keras"
    _save_toy(toy, path)
    proc = run_check(toy, str(path), "--custom-objects", "kzp_toy.models:OBJECTS",
                     "--backends", *backends, "--json", str(tmp_path / "r.json"), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [(c["backend"], c["data_format"], c["status"]) for c in report["cells"]] == [
        (b, "channels_last", "ok") for b in backends]
    assert report["max_deviation"] <= check.DEFAULT_TOLERANCE
