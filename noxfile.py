"""Test matrix: one session per Keras backend, plus lint, golden and slow.

    nox                 # lint + tensorflow + torch + jax + slow (the README's test command)
    nox -s torch        # one backend
    nox -s golden       # regenerate tests/golden/ with tf_keras (Keras 2)
    nox -s slow         # heavy cases (marked @pytest.mark.slow) on every backend
    nox -s fuzz         # the slow constructor fuzzing at 150 examples per model
    nox -s budget       # the suite timed: seconds per constructor, extrapolated to 71
    nox -s oldest_keras # the suite on the oldest supported Keras, every backend
    nox -s parity       # `keras-zoo-plus check` across all backends -> parity-report/
    nox -s export       # every model exported and verified, per backend -> export-report/

The backend sessions run at the Keras of constraints.txt (the current
release); ``oldest_keras`` runs them at OLDEST_KERAS, the lower bound of
pyproject.toml's ``keras>=`` requirement, with the same backends.

Every install goes through constraints.txt so CI stays on CPU builds.
"""

import os
import re
import shutil
import sys

import nox

# keras_zoo_plus.check imports no backend: its thread-cap helpers serve here.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_zoo_plus import check  # noqa: E402

nox.options.sessions = ["lint", "tensorflow", "torch", "jax", "slow"]
nox.options.default_venv_backend = "venv"

CONSTRAINTS = ("-c", "constraints.txt")
BACKEND_PACKAGES = {
    "tensorflow": ["tensorflow-cpu"],
    "torch": ["torch"],
    "jax": ["jax[cpu]"],
}
# The export extra's packages each backend's exporter and runtimes need
# (keras_zoo_plus.exporting._REQUIREMENTS): tests/test_export.py exports
# and verifies in every backend session. Not jax2onnx on TensorFlow or
# tf2onnx on JAX: each backend session installs only what it runs.
EXPORT_PACKAGES = {
    "tensorflow": ["tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"],
    "torch": ["onnx", "onnxruntime"],
    "jax": ["jax2onnx", "onnx", "onnxruntime"],
}
ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "PYTHONHASHSEED": "0",
    # TensorFlow turns oneDNN on by default only on CPUs with AVX-512; without
    # it, its CPU Conv2D refuses channels_first, so the users' models of the
    # `check --model` tests (plain keras.layers.Conv2D) failed in
    # channels_first on an AMD EPYC without AVX-512 (2026-11-30) and passed
    # on the AVX-512 machines. Our own layers do not depend on it (they run
    # channels_first convolutions as NHWC on TensorFlow); the README gives
    # users the same setting. With it every CI machine runs alike.
    "TF_ENABLE_ONEDNN_OPTS": "1",
    # JAX's persistent compilation cache, shared by every session, test and
    # subprocess: eager JAX compiles each operation (weight initialisers
    # included) once per shape, which made model building the larger part
    # of the jax runs. Measured here, DenseNet169 builds in 13.2 s cold and
    # 2.8 s from the cache. Only compiled programs go there, never results.
    "JAX_COMPILATION_CACHE_DIR": os.path.abspath(os.path.join(".nox", "_jax_cache")),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    # XLA compiles with LLVM at -O0 and without its expensive passes. XLA
    # compilation is most of every JAX test; measured here (AMD EPYC,
    # 2 workers), the oracle-parity tests of 10 families took 115 s instead
    # of 159 s. The outputs move by about 1e-6 (rel, measured on 8
    # families), well inside the 1e-5 tolerance, and the HLO passes
    # (fusion, algebraic simplification) still run. The default pipeline,
    # which a user's predict takes, stays tested: each family's loader case
    # in tests/test_parity.py compiles at the default level, in both formats
    # (helpers.default_xla_optimizations). Sessions that only read
    # TensorFlow or torch never import JAX.
    "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
}
# Set for one backend's pytest runs only.
BACKEND_ENV = {
    "jax": {
        # XLA's CPU compiler emits its elementwise fusions the way it did
        # before its "fusion emitters": compiling was most of the jax
        # session (2453 s of stop 34's CI, which ran out of its 90
        # minutes). Measured here (Intel Xeon, 2026-12-02): ResNet-RS420
        # compiled in 15.9 s instead of 21.7, RegNetX002 in 2.8 instead of
        # 5.1 (one after the other, same load). Outputs of the smallest
        # model of every family in both formats, at the default
        # optimization level: 29 of 32 identical to the bit, the others
        # within 6.9e-7 (rel). This is the one way in which the default
        # pipeline cases (helpers.default_xla_optimizations) differ from a
        # user's predict. TensorFlow's XLA accepts the flag too (a `check`
        # worker started from this session inherits it).
        "XLA_FLAGS": "--xla_cpu_use_fusion_emitters=false",
    },
}
# pytest-xdist: one worker per core (at most 4; a worker holding NASNetLarge
# needs a few GB). Most tests are single-threaded Python and XLA compiles,
# so on the 2-core CI machine two workers took the tensorflow suite from
# 5:51 to 3:52. NOX_PYTEST_WORKERS overrides ("0" runs in-process).
WORKERS = os.environ.get("NOX_PYTEST_WORKERS", str(min(os.cpu_count() or 1, 4)))
# The slowest tests of each run are listed in the log, to see what to trim.
# --dist loadgroup: tests marked with one xdist_group run on one worker (the
# oracle cases that share a model build, tests/test_parity.py); the others
# are spread as by default. It needs the pytest of constraints.txt: with
# pytest 9.2.0 it grouped nothing (tests/test_xdist_groups.py).
PYTEST_ARGS = ("-n", WORKERS, "--dist", "loadgroup", "--durations=15")
# Each worker's thread pools (OpenMP/MKL, TensorFlow's, XLA's) are capped at
# cores // workers, as `check` caps its own workers: left at their defaults
# every worker sized its pools to all the cores, and threads spun at
# barriers while their partners waited for a core. Measured on a 2-core
# AMD EPYC (2026-12-01), a torch subset went from 83 s to 47 s (EfficientNet's
# mixed_float16 training step from 31.7 s to 7.0 s: torch's float16 CPU
# kernels run many small parallel regions; on stop 29's CI machine two such
# tests took 1031 s and 878 s), tensorflow 87 -> 76 s, jax 188 -> 177 s.
# "0" workers (in-process) keeps the defaults.
THREAD_ENV = (check.thread_env(check.worker_threads(check.cpu_count(), int(WORKERS)))
              if int(WORKERS) > 0 else {})


# The oldest Keras release we support (pyproject.toml: keras>=3.8).
OLDEST_KERAS = "3.8.0"
BACKENDS = ("tensorflow", "torch", "jax")


def _install(session, backend, keras_version=None):
    constraints = CONSTRAINTS
    if keras_version is not None:
        constraints = ("-c", _constraints_with_keras(session, keras_version))
    session.install(*constraints, "-e", ".[test]", *BACKEND_PACKAGES[backend],
                    *EXPORT_PACKAGES[backend])


def _install_all(session):
    """The package with its test extras, all three backends and every
    backend's export packages (``nox -s budget`` runs tests/test_export.py
    on each) in one venv, plus tf_keras: tests/test_legacy_families.py (slow) generates its tf.keras
    files with it. --no-deps: tf_keras requires the `tensorflow`
    distribution, whose module tensorflow-cpu already provides."""
    session.install(*CONSTRAINTS, "-e", ".[test]", *sum(BACKEND_PACKAGES.values(), []),
                    *sorted(set(sum(EXPORT_PACKAGES.values(), []))))
    session.install(*CONSTRAINTS, "--no-deps", "tf_keras")


def _constraints_with_keras(session, version):
    """constraints.txt with its keras pin replaced by ``keras==version``."""
    with open("constraints.txt") as f:
        text = f.read()
    text, n = re.subn(r"(?m)^keras==.*$", f"keras=={version}", text)
    assert n == 1, "constraints.txt must pin keras exactly once"
    path = os.path.join(session.create_tmp(), f"constraints-keras-{version}.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


def _pytest(session, backend, *args, extra_env=None):
    backend_env = dict(BACKEND_ENV.get(backend, {}))
    if "XLA_FLAGS" in backend_env and os.environ.get("XLA_FLAGS"):
        # The caller's own XLA flags are kept, ours added.
        backend_env["XLA_FLAGS"] = f"{os.environ['XLA_FLAGS']} {backend_env['XLA_FLAGS']}"
    env = dict(ENV, **THREAD_ENV, **backend_env, KERAS_BACKEND=backend, **(extra_env or {}))
    # Keep the user's Keras config out of the tests.
    env["KERAS_HOME"] = os.path.join(session.create_tmp(), "keras_home")
    # A full disk once failed CI mid-run (h5py segfault): say what there is.
    free = shutil.disk_usage(session.create_tmp()).free
    session.log(f"free disk: {free / 2**30:.1f} GiB (the suite needs ~2 GiB at peak)")
    session.run("pytest", *PYTEST_ARGS, *args, *session.posargs, env=env)


def _backend_session(backend):
    @nox.session(name=backend)
    def run(session):
        _install(session, backend)
        _pytest(session, backend, "-m", "not slow")

    run.__doc__ = f"Unit, oracle-parity and integration tests on the {backend} backend."
    return run


tensorflow = _backend_session("tensorflow")
torch = _backend_session("torch")
jax = _backend_session("jax")


def _slow_backends():
    """Backends of ``nox -s slow``: torch unless NOX_SLOW_BACKENDS names
    others ("all", or a comma-separated list). Measured on a 2-core AMD
    EPYC (2026-12-01), the slow cases took 1143 s on tensorflow, 664 s on
    torch and 980 s on jax by 92% (stopped there), on top of 4730 s for the
    three backend sessions: the matrix no longer fit CI's 90 minutes with
    all three. With the parity builds shared again (constraints.txt's
    pytest), the same machine took 874 + 812 + 1702 s for the backend
    sessions and 611 s (tensorflow) and 419 s (torch) for the slow ones:
    the slow tensorflow and jax runs would still take the matrix past 80
    minutes on stop 29's CI machine. torch is the cheapest and runs the backend-independent tests
    (helpers.BACKEND_INDEPENDENT_ON); the heavy cases of tensorflow and jax
    run with NOX_SLOW_BACKENDS=all (and in `nox -s budget`), not in the
    default matrix."""
    value = os.environ.get("NOX_SLOW_BACKENDS", "torch")
    names = BACKENDS if value == "all" else tuple(
        b.strip() for b in value.split(",") if b.strip())
    if not names or set(names) - set(BACKENDS):
        raise ValueError(
            f"NOX_SLOW_BACKENDS must be 'all' or a comma-separated list of "
            f"{', '.join(BACKENDS)}; received {value!r}.")
    return names


@nox.session
def slow(session):
    """Heavy oracle cases (large inputs, big models) on torch, or on the
    backends NOX_SLOW_BACKENDS names ("all": every backend).

    One venv holds all three backends (one install instead of three; the
    tests that load a file under the other backends need them); pytest runs
    once per backend since the backend is fixed per process.
    """
    backends = _slow_backends()
    _install_all(session)
    for backend in backends:
        _pytest(session, backend, "-m", "slow")


@nox.session
def fuzz(session):
    """The slow constructor fuzzing, deeper: 150 hypothesis examples per
    model on each backend instead of the slow session's 50 (on TensorFlow
    alone 22 minutes of worker time here, so not in the default matrix).
    KERAS_ZOO_PLUS_FUZZ_EXAMPLES overrides the count; extra arguments go to
    pytest, e.g. `nox -s fuzz -- -k nasnet`."""
    _install_all(session)
    examples = os.environ.get("KERAS_ZOO_PLUS_FUZZ_EXAMPLES", "150")
    for backend in BACKENDS:
        _pytest(session, backend, "-m", "slow", "tests/test_fuzz_constructors.py",
                extra_env={"KERAS_ZOO_PLUS_FUZZ_EXAMPLES": examples})


@nox.session
def budget(session):
    """Seconds per constructor: runs each backend's suite and its slow cases
    with junit reports (under the session's tmp dir, .nox/budget/tmp), then
    prints tests/budget.py's table (time grouped by the model each test id
    names, a shared row, per session) and the extrapolation to 71
    constructors. Not in the default matrix (it is the matrix, timed).
    `nox -s budget -- a.xml [LABEL=b.xml ...]` only reads existing reports
    (pytest --junitxml); tests/budget.py needs no install."""
    if session.posargs:
        session.run("python", "tests/budget.py", *session.posargs)
        return
    _install_all(session)
    reports = []
    for marker, prefix in (("not slow", ""), ("slow", "slow_")):
        for backend in BACKENDS:
            path = os.path.join(session.create_tmp(), f"{prefix}{backend}.xml")
            _pytest(session, backend, "-m", marker, f"--junitxml={path}")
            reports.append(path)
    session.run("python", "tests/budget.py", *reports)


@nox.session
@nox.parametrize("backend", list(BACKENDS))
def oldest_keras(session, backend):
    """The non-slow suite on the oldest supported Keras (OLDEST_KERAS)."""
    _install(session, backend, keras_version=OLDEST_KERAS)
    session.run("python", "-c", "import keras; print('keras', keras.__version__)")
    _pytest(session, backend, "-m", "not slow")


@nox.session
def parity(session):
    """`keras-zoo-plus check` across all three backends in one venv, plus
    `keras-zoo-plus table`; writes parity-report/{check.json,check.md,table.md}.

    Extra arguments go to `check`, e.g. `nox -s parity -- --models "resnet*"`.
    """
    packages = [p for b in BACKENDS for p in BACKEND_PACKAGES[b]]
    session.install(*CONSTRAINTS, "-e", ".", *packages)
    os.makedirs("parity-report", exist_ok=True)
    env = dict(ENV, KERAS_BACKEND="jax")
    env["KERAS_HOME"] = os.path.join(session.create_tmp(), "keras_home")
    # A full disk once failed CI mid-run (h5py segfault): say what there is.
    free = shutil.disk_usage(session.create_tmp()).free
    session.log(f"free disk: {free / 2**30:.1f} GiB (the suite needs ~2 GiB at peak)")
    session.run(
        "keras-zoo-plus", "check", "--json", "parity-report/check.json",
        "--markdown", "parity-report/check.md", *session.posargs, env=env,
    )
    table = session.run("keras-zoo-plus", "table", "--markdown", "--quiet",
                        env=env, silent=True)
    with open("parity-report/table.md", "w") as f:
        f.write(table)


@nox.session
@nox.parametrize("backend", list(BACKENDS))
def export(session, backend):
    """Every registered model exported in both data formats to every format
    the backend has (keras_zoo_plus.export), each verified in its runtime:
    benchmarks/export_coverage.py, appending to export-report/coverage.jsonl
    (resumable) and rendering export-report/coverage.md. Hours of CPU on a
    2-core machine (jax2onnx alone takes 10-100 s a model), so not in the
    default matrix; the backend sessions export the smallest model of each
    family (tests/test_export.py). Extra arguments go to the script, e.g.
    `nox -s "export(backend='torch')" -- --models "resnet50"`."""
    _install(session, backend)
    os.makedirs("export-report", exist_ok=True)
    formats = ["onnx", "saved_model", "litert"] if backend == "tensorflow" else ["onnx"]
    env = dict(ENV, **check.thread_env(check.cpu_count()), KERAS_BACKEND=backend)
    env["KERAS_HOME"] = os.path.join(session.create_tmp(), "keras_home")
    jsonl = os.path.join("export-report", "coverage.jsonl")
    session.run("python", "benchmarks/export_coverage.py", "--formats", *formats,
                "--jsonl", jsonl, *session.posargs, env=env)
    table = session.run("python", "benchmarks/export_coverage.py", "--render", jsonl,
                        silent=True)
    with open(os.path.join("export-report", "coverage.md"), "w") as f:
        f.write(table)


@nox.session
def lint(session):
    """ruff check (lint and import order)."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")


@nox.session
def golden(session):
    """Regenerate tests/golden/*.npz from tf_keras (Keras 2), the oracle."""
    session.install(*CONSTRAINTS, "tensorflow-cpu", "tf_keras", "h5py", "numpy")
    session.run("python", "tests/golden/generate.py", *session.posargs, env=ENV)
