"""The ``keras-zoo-plus`` command line, run through its entry points in
subprocesses (``python -m keras_zoo_plus`` and the console script).

``check`` runs only on the backend of this test session (each nox backend
session installs one); ``nox -s parity`` runs it across all three.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_zoo_plus import check, registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKEND = keras.backend.backend()
PROG = "keras-zoo-plus"
# Small inputs keep each check cell to a few seconds; 32 is the seed
# models' minimum size, the width differs so height/width swaps show.
SMALL = "32x48"


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.pop(check.PERTURB_ENV, None)
    env.update(extra)
    return env


def run_cli(*args, timeout=600, **env):
    return subprocess.run(
        [sys.executable, "-m", "keras_zoo_plus", *args],
        capture_output=True, text=True, env=_env(**env), cwd=ROOT, timeout=timeout,
    )


# TensorFlow 2.21 writes these native (absl) lines to stderr whenever it is
# imported, whatever TF_CPP_MIN_LOG_LEVEL says; under the tensorflow backend
# `import keras` imports it. They are not ours: every other line is.
_TF_STARTUP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] .*)$"
)


def error_lines(proc):
    """stderr lines of the CLI, without TensorFlow's native startup lines."""
    return [line for line in proc.stderr.splitlines()
            if line.strip() and not _TF_STARTUP.match(line)]


def test_tf_startup_filter_keeps_our_lines():
    noise = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1795854834.804268   22311 port.cc:153] oneDNN custom operations are on.\n"
        "keras-zoo-plus: error: unknown backend 'mxnet'\n"
    )
    proc = subprocess.CompletedProcess([], 2, "", noise)
    assert error_lines(proc) == ["keras-zoo-plus: error: unknown backend 'mxnet'"]


# --------------------------------------------------------------------------
# list / info


def test_list_prints_every_registered_model():
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == registry.list_models()


def test_list_pattern():
    proc = run_cli("list", "RESNET*")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == registry.list_models("resnet*")
    assert "resnet50" in proc.stdout.split()
    assert "vgg16" not in proc.stdout.split()


def test_info_describes_model():
    proc = run_cli("info", "ResNet50")
    assert proc.returncode == 0, proc.stderr
    info = registry.model_info("resnet50")
    assert "keras_zoo_plus.applications.ResNet50" in proc.stdout
    assert f"parameters:    {info.params:,}" in proc.stdout
    assert info.weight_files()["top"].fname in proc.stdout


@pytest.mark.parametrize(
    "argv", [["--help"], ["list"], ["info", "mobilenet"], ["table", "--help"],
             ["bench", "--help"], ["check", "--help"]],
)
def test_light_commands_import_no_keras_and_no_backend(argv):
    """--help, list, info and the subcommands' help read the model table
    only: neither Keras nor a backend is imported (they start in well under
    1.5 s instead of the ~5 s Keras takes here)."""
    code = (
        "import sys\n"
        "from keras_zoo_plus import cli\n"
        "try:\n"
        f"    status = cli.main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        "heavy = [m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules]\n"
        "sys.stderr.write(f'STATUS {status} HEAVY {heavy}\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.splitlines()[-1] == "STATUS 0 HEAVY []", proc.stderr[-2000:]
    assert proc.stdout.strip()


def test_info_prints_hash_with_its_algorithm():
    """md5 files print as before; files without a published hash say so."""
    proc = run_cli("info", "ResNet50")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert ("weights top  : resnet50_weights_tf_dim_ordering_tf_kernels.h5 "
            "(md5 2cb95161c43110f7111970584f804107)") in lines
    assert ("weights notop: resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 "
            "(md5 4d473c1dd8becc155b73f8504c6f6626)") in lines
    proc = run_cli("info", "mobilenet_v2")
    assert proc.returncode == 0, proc.stderr
    assert ("weights top  : mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 "
            "(no published hash)") in proc.stdout.splitlines()


def test_info_prints_sha256_files(monkeypatch, capsys):
    """A file whose published hash is a sha256 (ConvNeXt's, in
    keras.applications) is printed with that algorithm."""
    import dataclasses

    from keras_zoo_plus import cli, model_table

    sha = "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff"
    entry = model_table.get("resnet50")
    top = entry.weight_file(include_top=True)
    weights = tuple(dataclasses.replace(wf, file_hash=sha) if wf is top else wf
                    for wf in entry.weights)
    monkeypatch.setitem(model_table._load(), "resnet50", dataclasses.replace(entry, weights=weights))
    assert cli.main(["info", "resnet50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"weights top  : {top.fname} (sha256 {sha})" in lines
    assert ("weights notop: resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 "
            "(md5 4d473c1dd8becc155b73f8504c6f6626)") in lines


def test_info_lists_feature_levels_and_weight_variants():
    proc = run_cli("info", "mobilenet")
    assert proc.returncode == 0, proc.stderr
    assert "feature P4:    conv_pw_11_relu (stride 16, 512 channels)" in proc.stdout
    assert ("weights:       32 official files, one per include_top and (alpha, rows); "
            "the ones above are the default's") in proc.stdout


def test_console_script_when_installed():
    script = shutil.which(PROG) or str(pathlib.Path(sys.executable).parent / PROG)
    if not os.path.exists(script):
        pytest.skip("the keras-zoo-plus console script is not installed (pip install -e .)")
    proc = subprocess.run([script, "list", "vgg*"], capture_output=True, text=True,
                          env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == registry.list_models("vgg*")


# --------------------------------------------------------------------------
# Bad arguments: exit code 2 and exactly one line on stderr.

KNOWN = ", ".join(registry.list_models())


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "resnet51"],
         f"unknown model 'resnet51'; known models: {KNOWN}"),
        (["check", "--models", "vgg16", "nomodel"],
         f"unknown model 'nomodel'; known models: {KNOWN}"),
        (["table", "--models", "nomodel"],
         f"unknown model 'nomodel'; known models: {KNOWN}"),
        (["list", "zz*"], "no model matches 'zz*' (see `keras-zoo-plus list`)"),
        (["check", "--models", "zz*"], "no model matches 'zz*' (see `keras-zoo-plus list`)"),
        (["check", "--backends", "mxnet"],
         "unknown backend 'mxnet'; choose from tensorflow, torch, jax"),
        (["check", "--formats", "channels_middle"],
         "unknown data format 'channels_middle'; choose from channels_last, channels_first"),
        (["check", "--tolerance", "0"],
         "argument --tolerance: expected a positive number, got '0'"),
        (["check", "--models", "vgg16", "--size", "16"],
         "`--size` 16x16 is below the minimum input size of vgg16 (32x32)."),
        (["check", "--quick", "--models", "vgg16"],
         "--quick picks the models itself (the smallest of each family); "
         "use either --quick or --models"),
        (["check", "--threads", "0"],
         "argument --threads: expected a positive integer, got '0'"),
        (["frobnicate"],
         "argument command: invalid choice: 'frobnicate' "
         "(choose from 'list', 'info', 'table', 'check', 'bench', 'export')"),
    ],
    ids=["info-model", "check-model", "table-model", "list-pattern", "check-pattern",
         "backend", "format", "tolerance", "size", "quick-models", "threads", "command"],
)
def test_bad_arguments(args, message, capsys):
    # In-process through cli.main (an interpreter start per case would cost
    # seconds each); the subprocess test below covers the real entry point.
    from keras_zoo_plus import cli

    try:
        rc = cli.main(args)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2
    assert err == f"{PROG}: error: {message}\n"
    assert out == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "--models", "vgg16", "nomodel"],
         f"unknown model 'nomodel'; known models: {KNOWN}"),
        (["check", "--backends", "mxnet"],
         "unknown backend 'mxnet'; choose from tensorflow, torch, jax"),
        (["check", "--formats", "channels_middle"],
         "unknown data format 'channels_middle'; choose from channels_last, channels_first"),
        (["frobnicate"],
         "argument command: invalid choice: 'frobnicate' "
         "(choose from 'list', 'info', 'table', 'check', 'bench', 'export')"),
    ],
    ids=["model", "backend", "format", "command"],
)
def test_bad_arguments_through_entry_point(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert error_lines(proc) == [f"{PROG}: error: {message}"]
    assert proc.stdout == ""


def test_backend_not_installed(tmp_path):
    missing = [b for b in check.BACKENDS if b not in check.installed_backends()]
    env = {}
    if missing:
        backend = missing[0]
    else:
        # Every backend is installed here: hide one (not the session's)
        # from the CLI process the way an absent package looks to
        # importlib.util.find_spec.
        backend = next(b for b in check.BACKENDS if b != BACKEND)
        (tmp_path / "sitecustomize.py").write_text(
            f"import sys\nsys.modules[{check.BACKEND_MODULES[backend]!r}] = None\n"
        )
        env["PYTHONPATH"] = os.pathsep.join(
            [str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")]
        )
    proc = run_cli("check", "--models", "vgg16", "--backends", backend, **env)
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"{PROG}: error: backend {backend!r} is not installed (installed: ")
    assert lines[0].endswith(f"try `pip install keras-zoo-plus[{backend}]`")


# --------------------------------------------------------------------------
# check

TOP_KEYS = {
    "schema_version", "tool", "version", "created", "wall_s", "passed", "tolerance", "seed",
    "batch", "jobs", "threads", "models", "backends", "formats", "environments",
    "max_deviation", "failures", "cells",
}
CELL_KEYS = {
    "model", "backend", "data_format", "status", "input_shape", "include_top", "output_shape",
    "reference", "max_rel_dev", "worst_peer", "dev_vs_reference", "build_s", "ms_per_image",
    "finite", "perturbed", "error",
}


@pytest.fixture(scope="module")
def real_check(tmp_path_factory):
    path = tmp_path_factory.mktemp("check") / "report.json"
    proc = run_cli("check", "--models", "vgg16", "resnet50", "--backends", BACKEND,
                   "--size", SMALL, "--json", str(path), "--markdown", str(path) + ".md")
    return proc, json.loads(path.read_text()), (str(path) + ".md")


def test_check_passes_on_the_zoo(real_check):
    proc, report, _ = real_check
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["passed"] is True
    assert report["failures"] == []
    cells = {(c["model"], c["backend"], c["data_format"]): c for c in report["cells"]}
    assert sorted(cells) == sorted(
        (m, BACKEND, f) for m in ("vgg16", "resnet50") for f in check.DATA_FORMATS
    )
    for cell in cells.values():
        assert cell["status"] == "ok"
        assert cell["include_top"] is True
        assert cell["output_shape"] == [2, 1000]
        assert 0.0 <= cell["max_rel_dev"] <= check.DEFAULT_TOLERANCE
        assert cell["build_s"] > 0 and cell["ms_per_image"] > 0
    assert cells[("vgg16", BACKEND, "channels_first")]["input_shape"] == [2, 3, 32, 48]
    assert cells[("vgg16", BACKEND, "channels_last")]["input_shape"] == [2, 32, 48, 3]
    # The table on stdout has one row per cell and the verdict.
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert sum(1 for r in rows if r[:1] in (["vgg16"], ["resnet50"])) == 4
    assert "PASSED: 4/4 cells" in proc.stdout


def test_check_json_schema(real_check):
    _, report, markdown = real_check
    assert set(report) == TOP_KEYS
    assert report["schema_version"] == check.SCHEMA_VERSION == 1
    assert report["tool"] == "keras-zoo-plus check"
    assert report["models"] == ["vgg16", "resnet50"]
    assert report["backends"] == [BACKEND]
    assert report["formats"] == list(check.DATA_FORMATS)
    assert report["tolerance"] == check.DEFAULT_TOLERANCE
    assert set(report["environments"]) == {BACKEND}
    env = report["environments"][BACKEND]
    assert set(env) == {"backend", "backend_version", "keras", "numpy", "python", "threads",
                        "wall_s", "cpu_s"}
    assert env["wall_s"] > 0 and env["cpu_s"] > 0
    assert env["keras"] == keras.__version__
    # One backend, two formats: one worker per format where there are two
    # cores or more (one worker on one core), the cores shared between them,
    # and each ran with its share.
    cpus = check.cpu_count()
    assert report["jobs"] == (2 if cpus > 1 else 1)
    assert report["threads"] == check.worker_threads(cpus, report["jobs"]) == max(
        1, cpus // report["jobs"])
    assert env["threads"] == report["threads"]
    for cell in report["cells"]:
        assert set(cell) == CELL_KEYS
    # One reference cell per model.
    assert sum(c["reference"] for c in report["cells"]) == 2
    text = pathlib.Path(markdown).read_text()
    assert text.startswith("# keras-zoo-plus check")
    assert "| vgg16 | " + BACKEND + " | channels_first |" in text


def test_check_names_a_planted_discrepancy(tmp_path):
    path = tmp_path / "report.json"
    proc = run_cli(
        "check", "--models", "vgg16", "--backends", BACKEND, "--size", SMALL,
        "--json", str(path), "--threads", "1",
        **{check.PERTURB_ENV: f"{BACKEND}:vgg16:channels_first"},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(path.read_text())
    assert report["passed"] is False
    # --threads reaches the worker, which reports what its backend applied.
    assert report["threads"] == 1
    assert report["environments"][BACKEND]["threads"] == 1
    status = {(c["backend"], c["data_format"]): c["status"] for c in report["cells"]}
    # Two cells and no majority: the channels_last cell cannot be cleared
    # either, but the perturbed cell is failed and named.
    assert status[(BACKEND, "channels_first")] == "fail"
    bad = next(c for c in report["cells"] if c["data_format"] == "channels_first")
    assert bad["perturbed"] is True
    # Scaling the first convolution by 1.01 moves the logits by about 1%.
    assert 1e-3 < bad["max_rel_dev"] < 1e-1
    planted = [f for f in report["failures"] if f.startswith(f"vgg16 {BACKEND} channels_first: deviation ")]
    assert len(planted) == 1 and planted[0] in proc.stdout
    assert "FAILED:" in proc.stdout


# --------------------------------------------------------------------------
# check's worker scheduling and --quick, without subprocesses


@pytest.mark.parametrize(
    "cpus, jobs, threads",
    [(1, 1, 1), (2, 1, 2), (2, 2, 1), (2, 3, 1), (4, 3, 1), (8, 3, 2), (16, 3, 5), (64, 3, 21)],
)
def test_worker_threads_share_the_cores(cpus, jobs, threads):
    assert check.worker_threads(cpus, jobs) == threads
    # Never more threads in all than cores, unless one each is already too many.
    assert jobs * threads <= max(cpus, jobs)


@pytest.mark.parametrize("workers, cpus, jobs", [(3, 1, 1), (6, 2, 2), (6, 16, 6), (1, 16, 1)])
def test_default_jobs(workers, cpus, jobs):
    assert check.default_jobs(workers, cpus) == jobs


def test_worker_tasks_split_by_format_slowest_backend_first():
    formats = list(check.DATA_FORMATS)
    assert check.worker_tasks(["tensorflow", "torch", "jax"], formats, 2) == [
        ("jax", ["channels_last"]), ("jax", ["channels_first"]),
        ("torch", ["channels_last"]), ("torch", ["channels_first"]),
        ("tensorflow", ["channels_last"]), ("tensorflow", ["channels_first"]),
    ]
    # One core: nothing runs in parallel, so one worker (one start) per backend.
    assert check.worker_tasks(["tensorflow", "jax"], formats, 1) == [
        ("jax", formats), ("tensorflow", formats)]
    assert check.worker_tasks(["torch"], ["channels_first"], 8) == [("torch", ["channels_first"])]


def test_results_of_a_backends_workers_merge():
    results = {}
    env = {"backend": "jax", "wall_s": 1.5, "cpu_s": 2.0}
    check._merge(results, "jax", {"environment": dict(env), "cells": [{"data_format": "a"}]})
    check._merge(results, "jax", {"environment": dict(env, wall_s=2.0, cpu_s=1.0),
                                  "cells": [{"data_format": "b"}]})
    assert results["jax"]["environment"] == {"backend": "jax", "wall_s": 3.5, "cpu_s": 3.0}
    assert [c["data_format"] for c in results["jax"]["cells"]] == ["a", "b"]
    # A failed worker's error is kept, whichever finished first.
    check._merge(results, "jax", {"environment": {"backend": "jax", "error": "boom"},
                                  "cells": []})
    assert results["jax"]["environment"] == {"backend": "jax", "error": "boom"}
    assert len(results["jax"]["cells"]) == 2


def test_thread_env_caps_every_backend():
    env = check.thread_env(3)
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                "PJRT_NPROC"):
        assert env[var] == "3"


def test_quick_picks_the_smallest_model_of_each_family():
    infos = registry.all_models()
    quick = check.quick_models()
    by_name = {i.name: i for i in infos}
    families = {i.family for i in infos}
    assert sorted(by_name[n].family for n in quick) == sorted(families)
    for name in quick:
        info = by_name[name]
        assert info.params == min(i.params for i in infos if i.family == info.family)
    # Registry order, so the report reads like the full one.
    order = [i.name for i in infos]
    assert quick == sorted(quick, key=order.index)
    assert {"resnet50", "vgg16", "mobilenet", "nasnet_mobile", "densenet121"} <= set(quick)
    assert not {"resnet101", "vgg19", "nasnet_large", "densenet201"} & set(quick)


def test_quick_combines_with_the_other_options(monkeypatch, capsys):
    from keras_zoo_plus import cli

    seen = {}

    def fake_run_check(models, backends, formats, **kwargs):
        seen.update(models=models, backends=backends, formats=formats, **kwargs)
        return check.build_report([], [], {}, [], backends, formats, tolerance=1e-4,
                                  batch=2, seed=0, started=0.0, wall_s=0.0)

    monkeypatch.setattr(check, "run_check", fake_run_check)
    rc = cli.main(["check", "--quick", "--backends", BACKEND, "--formats", "channels_first",
                   "--tolerance", "1e-3", "--jobs", "1", "--threads", "2", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert seen["models"] == check.quick_models()
    assert seen["backends"] == [BACKEND]
    assert seen["formats"] == ["channels_first"]
    assert (seen["tolerance"], seen["jobs"], seen["threads"]) == (1e-3, 1, 2)


def test_check_help_documents_quick_and_threads(capsys):
    from keras_zoo_plus import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "smallest model" in out
    assert "--threads" in out


# --------------------------------------------------------------------------
# check's comparison rule, without subprocesses


def _cells(tmp_path, outputs):
    cells = []
    for i, (backend, fmt, y) in enumerate(outputs):
        path = tmp_path / f"{i}.npy"
        np.save(path, np.asarray(y, dtype="float32"))
        cells.append({"model": "m", "backend": backend, "data_format": fmt, "status": "ok",
                      "output_file": str(path), "error": None})
    return cells


def test_compare_names_the_outlier_even_when_it_comes_first(tmp_path):
    base = np.random.default_rng(0).normal(size=(2, 10)).astype("float32")
    bad = base * np.float32(1.01)
    cells = _cells(tmp_path, [
        ("tensorflow", "channels_last", bad),
        ("torch", "channels_last", base),
        ("jax", "channels_last", base + 1e-7),
    ])
    failures = check.compare(cells, 1e-4)
    assert [c["status"] for c in cells] == ["fail", "ok", "ok"]
    assert cells[1]["reference"] is True
    assert len(failures) == 1 and failures[0].startswith("m tensorflow channels_last: deviation")
    b64, base64 = bad.astype("float64"), base.astype("float64")
    expected = np.max(np.abs(b64 - base64)) / np.max(np.abs(base64))
    np.testing.assert_allclose(cells[0]["dev_vs_reference"], expected, rtol=1e-6)


def test_compare_two_disagreeing_cells_both_fail(tmp_path):
    base = np.arange(1.0, 7.0)
    cells = _cells(tmp_path, [("torch", "channels_last", base),
                              ("torch", "channels_first", base * 1.1)])
    failures = check.compare(cells, 1e-4)
    assert [c["status"] for c in cells] == ["fail", "fail"]
    assert len(failures) == 2


def test_compare_error_and_non_finite_cells_fail(tmp_path):
    base = np.arange(1.0, 7.0)
    cells = _cells(tmp_path, [("jax", "channels_last", base),
                              ("jax", "channels_first", base),
                              ("torch", "channels_last", [np.nan] * 6)])
    cells.append({"model": "m", "backend": "torch", "data_format": "channels_first",
                  "status": "error", "error": "ValueError: boom"})
    failures = check.compare(cells, 1e-4)
    assert [c["status"] for c in cells] == ["ok", "ok", "fail", "error"]
    assert failures == ["m torch channels_last: non-finite output",
                        "m torch channels_first: ValueError: boom"]


# --------------------------------------------------------------------------
# table

# Parameter counts of the seed table (keras.io) and the keras.io depth
# (layers with weights) of the same models.
SEED_PARAMS = {"vgg16": 138_357_544, "vgg19": 143_667_240, "resnet50": 25_636_712}
KERAS_IO_DEPTH = {"vgg16": 16, "vgg19": 19, "resnet50": 107}


def _table(tmp_path, models):
    path = tmp_path / "table.json"
    proc = run_cli("table", "--models", *models, "--json", str(path), "--quiet")
    return proc, {r["model"]: r for r in json.loads(path.read_text())["models"]}


def test_table_reproduces_seed_parameter_counts(tmp_path):
    proc, rows = _table(tmp_path, list(SEED_PARAMS))
    assert proc.returncode == 0, proc.stderr
    for name, params in SEED_PARAMS.items():
        assert rows[name]["params"] == params
        assert rows[name]["depth"] == KERAS_IO_DEPTH[name]
        assert rows[name]["size_mb"] == params * 4 / 2**20
        assert f"{params:,}" in proc.stdout
    # 528 MB in the keras.io table.
    assert round(rows["vgg16"]["size_mb"]) == 528


def test_table_markdown():
    proc = run_cli("table", "--models", "resnet50", "--markdown", "--quiet")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "| model | parameters | size (MB) | depth | seed depth | top-1 | top-5 |"
    assert lines[2] == "| resnet50 | 25,636,712 | 97.8 | 107 | 168 | 0.759 | 0.929 |"


@pytest.mark.slow
@pytest.mark.backend_independent  # parameter counts of every model: 127 s on tensorflow
def test_table_matches_registry_for_every_model(tmp_path):
    names = registry.list_models()
    proc, rows = _table(tmp_path, names)
    assert proc.returncode == 0, proc.stderr
    for name in names:
        assert rows[name]["params"] == registry.model_info(name).params, name
