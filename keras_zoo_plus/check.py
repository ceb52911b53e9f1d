"""Cross-backend compatibility matrix behind ``keras-zoo-plus check``.

For every requested backend a worker subprocess (``KERAS_BACKEND`` is fixed
per process) builds each model in each data format with deterministic
synthetic weights (:mod:`keras_zoo_plus.synthetic`, no download), runs one
fixed input batch and saves the output. The parent process then compares
every cell (model x backend x data format) with every other cell of the
same model:

    deviation(a, b) = max|a - b| / max|reference|

The reference is the model's cell that agrees (deviation <= tolerance) with
the most other cells, ties going to the earliest: normally the first cell
(first backend, first data format, in the order given). A cell fails when it
deviates from the reference by more than the tolerance (or when no strict
majority agrees and it deviates from any other cell), so a discrepancy on
one backend or format names that cell, not its neighbours.

Inputs (documented in the README, "keras-zoo-plus check"):

* size: ``H = max(64, min_size)`` and ``W = H + 16`` (non-square on purpose,
  so a swapped height/width in one data format cannot cancel out);
* the model is built with its top (``include_top=True``,
  ``classifier_activation=None``, so logits are compared) at that size; a
  constructor that refuses a top at that size is built with
  ``include_top=False, pooling="avg"`` instead;
* batch 2 drawn by :func:`keras_zoo_plus.synthetic.synthetic_input`, the
  channels_first batch being the transpose of the channels_last one;
* weights ``synthetic.apply_synthetic_weights(model, seed)``: identical for
  both data formats and every backend;
* inference with ``training=False``, eager on TensorFlow and torch and
  compiled on JAX (``predict_on_batch``, the path of ``predict`` and ``fit``).

Workers and threads: one worker process per backend and data format
(:func:`worker_tasks`; per backend on one core), ``jobs`` of them at once
(default :func:`default_jobs`: ``min(cores, workers)``), the slowest backend first,
and each gets ``threads = max(1, cores // jobs)`` compute threads
(:func:`worker_threads`; ``cores`` from the process's CPU affinity), so that
together they never ask for more threads than there are cores: 2 cores ->
2 workers x 1 thread, 8 cores -> 6 x 1, 16 cores -> 6 x 2 (3 backends x 2
formats). Left to its
default every backend sizes its pools to all cores, and on 2 cores the torch
worker ran ResNet50 at 540 ms/image beside the two others against 80 alone.
The parent passes the count in the worker's spec and environment
(:func:`thread_env`), the worker applies it before its first operation
(:func:`apply_threads`) and reports what the backend applied.

Test hook (never needed by users): the environment variable
``KERAS_ZOO_PLUS_CHECK_PERTURB="BACKEND:MODEL[:DATA_FORMAT]"`` is read only by
the worker processes; the matching cells multiply the first weight array of
the model's first weighted layer by 1.01 after the synthetic weights are
set (a user's model, named ``package.module:function`` or by its file, the
same). The tests use it to plant a discrepancy that ``check`` must report.

Users' own models (``check --model package.module:function``, ``check
model.keras``, :func:`keras_zoo_plus.testing.assert_backend_parity`) go
through the same workers, comparison and reports; what differs (importing
the builder, loading the file, their errors) is in
:mod:`keras_zoo_plus.usermodel`.

The JSON report (``--json FILE``) follows :data:`SCHEMA_VERSION`; see
:func:`build_report` for its fields.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

# The worker runs this module as __main__: the class lives in a module that
# both copies import.
from keras_zoo_plus.usermodel import CellError

SCHEMA_VERSION = 1
BACKENDS = ("tensorflow", "torch", "jax")
# Backends by the time a worker takes for the whole matrix here (JAX builds
# slowest: its weight initialisers compile once per shape).
_SLOWEST_FIRST = ("jax", "torch", "tensorflow")
DATA_FORMATS = ("channels_last", "channels_first")
# Backend -> the module whose presence means "installed".
BACKEND_MODULES = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}
# Cross-backend float32 results differ by accumulation order (oneDNN, XLA
# and ATen pick different convolution algorithms). Against the tf_keras
# oracle each cell stays within 1e-5 (the parity tests' tolerance), so two
# cells may differ by up to 2e-5; deep models add a little more. 1e-4 keeps
# a 5x margin over that while every real porting bug seen so far (bias on
# the wrong axis, wrong padding, a wrong BatchNormalization epsilon,
# channel order) gives 1e-3 or more.
DEFAULT_TOLERANCE = 1e-4
DEFAULT_SEED = 0
DEFAULT_BATCH = 2
MIN_CHECK_SIZE = 64
WIDTH_EXTRA = 16
PERTURB_ENV = "KERAS_ZOO_PLUS_CHECK_PERTURB"
PERTURB_FACTOR = 1.01
_PROGRESS = "KZP-PROGRESS "


def installed_backends():
    """The backends whose framework can be imported here, in canonical order."""
    return [b for b in BACKENDS if importlib.util.find_spec(BACKEND_MODULES[b]) is not None]


def cpu_count():
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_jobs(n_workers, cpus=None):
    """Workers run at once: one per CPU core, at most ``n_workers`` (see
    :func:`worker_tasks`).

    Building a model is mostly single-threaded Python, so on a 2-core machine
    two workers finish the matrix sooner than one.
    """
    cpus = cpu_count() if cpus is None else cpus
    return max(1, min(n_workers, cpus))


def worker_threads(cpus, jobs):
    """Compute threads of each backend worker: ``max(1, cpus // jobs)``.

    ``jobs`` workers run at once, so together they use at most ``cpus``
    threads. Left to their defaults, every backend sizes its pools to all
    cores, and three busy workers on 2 cores ran ResNet50's torch cell at
    540 ms/image against 80 alone: threads that spin at a barrier while
    their partners wait for a core.
    """
    return max(1, int(cpus) // max(1, int(jobs)))


def thread_env(threads):
    """Environment that caps every backend's thread pools at ``threads``.

    Read when the native libraries load, so it is given to the worker
    process at its start: OpenMP/MKL/OpenBLAS (torch, NumPy),
    ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS`` (TensorFlow) and
    ``PJRT_NPROC``, the size of the XLA CPU client's compute pool (JAX; the
    older ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
    intra_op_parallelism_threads=N`` leaves two pool threads busy on
    jax 0.10). :func:`apply_threads` sets the runtimes' own knobs as well.
    """
    n = str(int(threads))
    return {
        "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
        "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n, "PJRT_NPROC": n,
    }


def apply_threads(backend, threads):
    """Inside a worker, before the first operation: cap ``backend``'s pools
    and return the intra-op thread count the backend reports back."""
    os.environ.update(thread_env(threads))
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # already started: only intra-op threads matter here
            pass
        return torch.get_num_threads()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        return tf.config.threading.get_intra_op_parallelism_threads()
    # JAX has no runtime setter: PJRT_NPROC is read when its CPU client is
    # created, on the first operation, after this.
    return int(os.environ["PJRT_NPROC"])


def quick_models():
    """``--quick``: the smallest model (fewest parameters) of each family,
    in registry order."""
    from keras_zoo_plus import model_table, registry

    chosen = {e.name for e in model_table.smallest_of_each_family().values()}
    return [info.name for info in registry.all_models() if info.name in chosen]


def default_size(info):
    """``(H, W)`` used by ``check`` for a :class:`~keras_zoo_plus.registry.ModelInfo`."""
    h = max(MIN_CHECK_SIZE, int(info.min_size))
    return h, h + WIDTH_EXTRA


def plan(model_names, *, size=None):
    """One job per model: ``{"model", "height", "width"}`` for a registered
    name; a user's model job (a dict from :mod:`keras_zoo_plus.usermodel`)
    is kept as it is."""
    from keras_zoo_plus import registry

    jobs = []
    for name in model_names:
        if isinstance(name, dict):  # a user's model, from keras_zoo_plus.usermodel
            jobs.append(name)
            continue
        info = registry.model_info(name)
        h, w = size if size is not None else default_size(info)
        if min(h, w) < info.min_size:
            raise ValueError(
                f"`--size` {h}x{w} is below the minimum input size of {info.name} "
                f"({info.min_size}x{info.min_size})."
            )
        jobs.append({"model": info.name, "height": int(h), "width": int(w)})
    return jobs


# --------------------------------------------------------------------------
# Worker: runs inside one backend.


def _perturbation(backend):
    """``{(model, data_format or None)}`` planted for ``backend`` (test hook)."""
    spec = os.environ.get(PERTURB_ENV, "").strip()
    out = set()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        parts = item.split(":")
        # A user's model is named "package.module:function": the model is
        # everything between the backend and an optional data format.
        data_format = parts.pop() if len(parts) > 2 and parts[-1] in DATA_FORMATS else None
        if len(parts) >= 2 and parts[0] == backend:
            out.add((":".join(parts[1:]).lower(), data_format))
    return out


def _backend_version(backend):
    try:
        module = __import__(BACKEND_MODULES[backend])
        return str(module.__version__)
    except Exception:  # pragma: no cover - reported, never fatal
        return None


def _emit(event):
    sys.stderr.write(_PROGRESS + json.dumps(event) + "\n")
    sys.stderr.flush()


def _to_channels_last(y, data_format):
    if data_format == "channels_first" and y.ndim == 4:
        return np.transpose(y, (0, 2, 3, 1))
    return y


def _build(info, data_format, h, w):
    """Build with the top if the constructor accepts it at this size.

    Every weight is set right after (synthetic arrays), so the model is
    built without running its initializers
    (:func:`keras_zoo_plus.deferred.build_without_initializers`): JAX
    compiled each random initializer once per weight shape (InceptionV3:
    23 of its 25 s build), and on every backend they were most of the build.
    """
    from keras_zoo_plus.deferred import build_without_initializers

    shape = (3, h, w) if data_format == "channels_first" else (h, w, 3)
    try:
        model = build_without_initializers(
            info.constructor, weights=None, include_top=True, classifier_activation=None,
            input_shape=shape, data_format=data_format,
        )
        return model, True
    except ValueError:
        model = build_without_initializers(
            info.constructor, weights=None, include_top=False, pooling="avg",
            input_shape=shape, data_format=data_format,
        )
        return model, False


class _ZooModel:
    """A registered model at the check size: the source of its cells
    (a user's model is a :class:`keras_zoo_plus.usermodel.UserModel`)."""

    synthetic = True  # random initialisation replaced by synthetic weights

    def __init__(self, info, height, width):
        self.info, self.name, self.size = info, info.name, (height, width)
        self.family = info.family  # the synthetic kernels' gain (synthetic.kernel_gain)

    def build(self, data_format):
        """``(model, include_top)``."""
        return _build(self.info, data_format, *self.size)

    def input_shape(self, model, data_format):
        """The input (H, W, C), channels last (``model`` may be None)."""
        return (*self.size, 3)


def _batch_shape(shape, batch, data_format):
    if shape is None:
        return None
    h, w, c = shape
    return [batch, h, w, c] if data_format == "channels_last" else [batch, c, h, w]


def _output_array(y, data_format):
    """One float32 array, channels last, for the comparison: a model with
    several outputs gives its outputs flattened per image, concatenated."""
    if isinstance(y, (list, tuple)):
        parts = [_to_channels_last(np.asarray(t), data_format) for t in y]
        y = np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)
    return np.asarray(_to_channels_last(np.asarray(y), data_format), dtype="float32")


def _output_path(outdir, name, backend, data_format):
    # A user's model is named by a module path or a file path.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[-60:]
    digest = hashlib.sha1(name.encode("utf8")).hexdigest()[:8]
    return os.path.join(outdir, f"{safe}_{digest}__{backend}__{data_format}.npy")


def run_cell(source, data_format, *, batch, seed, repeat, perturb, outdir, backend,
             cache=None):
    """Build, run and time one cell of ``source`` (a :class:`_ZooModel` or
    a :class:`keras_zoo_plus.usermodel.UserModel`); returns its result dict.

    ``cache`` (a dict) keeps the synthetic arrays of a model between its two
    data formats: the weight shapes are the same, so they are drawn once.
    A cell whose model cannot be built or loaded records
    ``error_stage="load"`` (parent side only, not in the report).
    """
    import keras

    from keras_zoo_plus import synthetic

    result = {
        "model": source.name, "backend": backend, "data_format": data_format,
        "input_shape": _batch_shape(source.input_shape(None, data_format), batch, data_format),
    }
    stage = "load"
    try:
        t0 = time.perf_counter()
        model, top = source.build(data_format)
        shape = source.input_shape(model, data_format)
        result["input_shape"] = _batch_shape(shape, batch, data_format)
        stage = "run"
        weighted = [lay for lay in model.layers if lay.weights]
        if source.synthetic:
            specs = synthetic.layer_specs(model)
            key = (source.name, top, json.dumps(specs))
            if cache is None or key not in cache:
                arrays = synthetic.synthesize(specs, seed, source.family)
                if cache is not None:
                    cache.clear()
                    cache[key] = arrays
            else:
                arrays = cache[key]
            for layer, values in zip(weighted, arrays):
                layer.set_weights(values)
        if perturb:
            values = weighted[0].get_weights()
            values[0] = values[0] * np.float32(PERTURB_FACTOR)
            weighted[0].set_weights(values)
        build_s = time.perf_counter() - t0
        x = synthetic.synthetic_input((batch, *shape), seed=seed)
        if data_format == "channels_first":
            x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
        y = run_inference(model, x)
        times = []
        for _ in range(max(1, repeat)):
            t1 = time.perf_counter()
            run_inference(model, x)
            times.append(time.perf_counter() - t1)
        y = _output_array(y, data_format)
        path = _output_path(outdir, source.name, backend, data_format)
        np.save(path, y)
        result.update(
            status="ok", include_top=top, output_shape=list(y.shape), output_file=path,
            build_s=round(build_s, 4), ms_per_image=round(min(times) / batch * 1000.0, 3),
            finite=bool(np.all(np.isfinite(y))), perturbed=bool(perturb), error=None,
        )
        del model
        keras.backend.clear_session()
    except CellError as exc:
        result.update(status="error", error=str(exc).splitlines()[0], error_stage=stage)
    except Exception as exc:  # a cell that fails to build is a result, not a crash
        result.update(status="error", error=f"{type(exc).__name__}: {exc}".splitlines()[0],
                      error_stage=stage)
    return result


def run_inference(model, x, *, compiled=None):
    """Inference output of ``model`` on the NumPy batch ``x``, as NumPy.

    ``compiled=None`` means ``predict_on_batch`` on JAX (one XLA program,
    the path that ``predict`` and ``fit`` take) and torch (no autograd: the
    fused Conv -> BatchNorm -> ReLU path ``predict`` takes, see
    :mod:`keras_zoo_plus.fusion`), and an eager ``model(x)`` on TensorFlow,
    where the first call is cheapest. Eager JAX compiles every operation on
    its own: one DenseNet169 call took 29 s eager against 4 s compiled
    here. ``compiled=False`` forces the eager call (on torch: layer by
    layer, with autograd); the tests use it to check those paths too.
    A model with several outputs gives a list of arrays (a dict of
    outputs: in sorted key order).
    """
    import keras

    if compiled is None:
        compiled = keras.backend.backend() in ("jax", "torch")
    y = model.predict_on_batch(x) if compiled else model(x, training=False)
    if isinstance(y, dict):
        # A dict of outputs (a feature pyramid): by sorted key, the order
        # of the model's flattened outputs (keras.tree.flatten).
        y = [y[k] for k in sorted(y)]
    if isinstance(y, (list, tuple)):
        return [keras.ops.convert_to_numpy(t) for t in y]
    return keras.ops.convert_to_numpy(y)


def worker(spec):
    """Run every job of ``spec`` on the current backend (``KERAS_BACKEND``)
    with ``spec["threads"]`` compute threads (None: the backend's default)."""
    t0 = time.perf_counter()
    threads = spec.get("threads")
    if threads:
        # Before the backend loads (the parent sets these too).
        os.environ.update(thread_env(threads))
    import keras

    from keras_zoo_plus import registry

    backend = keras.backend.backend()
    if threads:
        threads = apply_threads(backend, threads)
    planted = _perturbation(backend)
    env = {
        "backend": backend, "backend_version": _backend_version(backend),
        "keras": keras.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "threads": threads,
    }
    cells = []
    cache = {}
    for job in spec["jobs"]:
        if job.get("source"):
            from keras_zoo_plus import usermodel

            source = usermodel.UserModel(job)
        else:
            source = _ZooModel(registry.model_info(job["model"]), job["height"], job["width"])
        name = source.name.lower()
        for data_format in spec["formats"]:
            _emit({"backend": backend, "model": source.name, "data_format": data_format,
                   "stage": "start"})
            perturb = (name, None) in planted or (name, data_format) in planted
            cell = run_cell(
                source, data_format, batch=spec["batch"], seed=spec["seed"],
                repeat=spec["repeat"], perturb=perturb, outdir=spec["outdir"],
                backend=backend, cache=cache,
            )
            cells.append(cell)
            _emit({"backend": backend, "model": source.name, "data_format": data_format,
                   "stage": "done", "status": cell["status"]})
    # Which backend is the long pole (the parent starts the slowest first).
    env["wall_s"] = round(time.perf_counter() - t0, 2)
    env["cpu_s"] = round(time.process_time(), 2)
    return {"environment": env, "cells": cells}


def _worker_main(argv):
    spec_path, out_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    result = worker(spec)
    with open(out_path, "w") as f:
        json.dump(result, f)
    return 0


# --------------------------------------------------------------------------
# Parent: one subprocess per backend, then the comparison.


class _Progress:
    """A progress line on stderr (a bar on a terminal, plain lines otherwise)."""

    def __init__(self, total, stream=None, enabled=True):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lock = threading.Lock()
        self.start = time.perf_counter()

    def update(self, event):
        if not self.enabled:
            return
        with self.lock:
            label = f"{event['backend']} {event['model']} {event['data_format']}"
            if event.get("stage") == "done":
                self.done += 1
                label += f" {event.get('status')}"
            else:
                label += " ..."
            elapsed = time.perf_counter() - self.start
            width = 24
            filled = int(width * self.done / max(1, self.total))
            bar = "#" * filled + "-" * (width - filled)
            line = f"[{bar}] {self.done}/{self.total} {elapsed:5.0f}s {label}"
            if self.tty:
                self.stream.write("\r\033[K" + line)
            elif event.get("stage") == "done":
                self.stream.write(line + "\n")
            self.stream.flush()

    def close(self):
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _package_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_tasks(backends, formats, cpus):
    """The worker processes, ``[(backend, [data formats]), ...]``, the
    slowest first: one per backend and data format when there is more
    than one core, else one per backend.

    One worker per backend left the cores idle behind the slowest backend:
    on 2 cores JAX (compiling every model twice) ran 158 s while the other
    core finished TensorFlow and torch in 110 s. Per data format the
    halves fill both cores; each costs one more interpreter start.
    """
    order = sorted(backends, key=_SLOWEST_FIRST.index)
    if cpus > 1 and len(formats) > 1:
        return [(b, [f]) for b in order for f in formats]
    return [(b, list(formats)) for b in order]


def _run_backend(backend, spec, tmpdir, progress, results):
    part = "_".join(spec["formats"])
    spec_path = os.path.join(tmpdir, f"spec_{backend}_{part}.json")
    out_path = os.path.join(tmpdir, f"result_{backend}_{part}.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if spec.get("threads"):
        env.update(thread_env(spec["threads"]))
    # The worker must import this very copy of the package.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p
    )
    cmd = [sys.executable, "-m", "keras_zoo_plus.check", "--worker", spec_path, out_path]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    tail = []
    for line in proc.stderr:
        if line.startswith(_PROGRESS):
            try:
                progress.update(json.loads(line[len(_PROGRESS):]))
            except ValueError:
                pass
        else:
            tail.append(line.rstrip("\n"))
            del tail[:-20]
    rc = proc.wait()
    if rc == 0 and os.path.exists(out_path):
        with open(out_path) as f:
            result = json.load(f)
    else:
        message = next((t for t in reversed(tail) if t.strip()), f"exit code {rc}")
        result = {"environment": {"backend": backend, "error": message}, "cells": []}
    with _RESULTS_LOCK:
        _merge(results, backend, result)


_RESULTS_LOCK = threading.Lock()


def _merge(results, backend, result):
    """Add one worker's result to ``results[backend]``: cells appended,
    ``wall_s``/``cpu_s`` summed over the backend's workers, an error kept."""
    if backend not in results:
        results[backend] = result
        return
    mine, theirs = results[backend], result
    mine["cells"].extend(theirs["cells"])
    env, other = mine["environment"], theirs["environment"]
    if "error" in other and "error" not in env:
        mine["environment"] = other
    elif "error" not in env:
        for key in ("wall_s", "cpu_s"):
            env[key] = round(env[key] + other[key], 2)


def _deviation(a, b, scale):
    if a.shape != b.shape:
        return float("inf")
    if scale == 0.0:
        return 0.0 if np.array_equal(a, b) else float("inf")
    return float(np.max(np.abs(a.astype("float64") - b.astype("float64"))) / scale)


def _consensus(ok, outputs, tolerance):
    """The reference cell: the one within ``tolerance`` of the most others
    (ties go to the earliest, so normally the first cell), and whether its
    group is a strict majority. Pair deviations here use the median of the
    cells' max|output| as scale, so an outlier cannot set the scale."""
    scale = float(np.median([np.max(np.abs(outputs[id(c)])) for c in ok]))
    best, best_n = ok[0], -1
    for cell in ok:
        n = sum(
            1 for other in ok
            if other is not cell
            and _deviation(outputs[id(cell)], outputs[id(other)], scale) <= tolerance
        )
        if n > best_n:
            best, best_n = cell, n
    return best, 2 * (best_n + 1) > len(ok)


def compare(cells, tolerance):
    """Compare the cells of each model and fill ``reference``,
    ``dev_vs_reference``, ``max_rel_dev``, ``worst_peer`` and the final
    ``status`` into each cell dict. Returns one failure line per bad cell.

    The reference is the cell that agrees (within ``tolerance``) with the
    most other cells, normally the first cell. A cell fails when its output
    is not finite, when it deviates from the reference by more than
    ``tolerance``, or, when no strict majority agrees with the reference,
    when it deviates from any other cell by more than ``tolerance``. So a
    planted or real discrepancy on one backend/format names that cell only.
    """
    by_model = {}
    for cell in cells:
        by_model.setdefault(cell["model"], []).append(cell)
    failures = []
    for model, group in by_model.items():
        for cell in group:
            cell.update(reference=False, max_rel_dev=cell.get("max_rel_dev"),
                        dev_vs_reference=None, worst_peer=None)
        outputs = {}
        for cell in group:
            if cell["status"] == "ok":
                outputs[id(cell)] = np.load(cell["output_file"])
                if not np.all(np.isfinite(outputs[id(cell)])):
                    cell["status"] = "fail"
                    failures.append(f"{model} {cell['backend']} {cell['data_format']}: "
                                    "non-finite output")
            elif cell["status"] == "error":
                failures.append(f"{model} {cell['backend']} {cell['data_format']}: {cell['error']}")
        ok = [c for c in group if c["status"] == "ok"]
        if not ok:
            continue
        ref, majority = _consensus(ok, outputs, tolerance)
        ref["reference"] = True
        scale = float(np.max(np.abs(outputs[id(ref)])))
        for cell in ok:
            a = outputs[id(cell)]
            cell["dev_vs_reference"] = _deviation(a, outputs[id(ref)], scale)
            worst, peer = 0.0, None
            for other in ok:
                if other is not cell:
                    d = _deviation(a, outputs[id(other)], scale)
                    if peer is None or d > worst:
                        worst, peer = d, f"{other['backend']}/{other['data_format']}"
            cell["max_rel_dev"] = worst
            cell["worst_peer"] = peer
        for cell in ok:
            where = f"{model} {cell['backend']} {cell['data_format']}"
            if cell["dev_vs_reference"] > tolerance:
                cell["status"] = "fail"
                failures.append(
                    f"{where}: deviation {cell['dev_vs_reference']:.3g} from the reference "
                    f"{ref['backend']}/{ref['data_format']} > {tolerance:g}"
                )
            elif not majority and cell["max_rel_dev"] > tolerance:
                cell["status"] = "fail"
                failures.append(
                    f"{where}: deviation {cell['max_rel_dev']:.3g} from "
                    f"{cell['worst_peer']} > {tolerance:g} (no majority agrees)"
                )
    for cell in cells:
        cell.pop("output_file", None)
    return failures


def run_check(
    model_names, backends, formats, *, tolerance=DEFAULT_TOLERANCE, size=None,
    batch=DEFAULT_BATCH, seed=DEFAULT_SEED, repeat=1, jobs=None, threads=None,
    progress=True,
):
    """Run the matrix and return the report dict (see :func:`build_report`).

    ``model_names``: registered names, or a user's model job
    (:func:`keras_zoo_plus.usermodel.builder_job`, ``file_job``). Raises
    :class:`keras_zoo_plus.usermodel.UserModelError` (a ``ValueError``)
    when no cell could build or load a user's model.

    ``jobs`` workers run at once (default :func:`default_jobs`), each with
    ``threads`` compute threads (default :func:`worker_threads` of the CPU
    cores and ``jobs``).
    """
    plan_jobs = plan(model_names, size=size)
    cpus = cpu_count()
    tasks = worker_tasks(backends, formats, cpus)
    if jobs is None:
        jobs = default_jobs(len(tasks), cpus)
    jobs = max(1, min(jobs, len(tasks)))
    if threads is None:
        threads = worker_threads(cpus, jobs)
    started = time.time()
    t0 = time.perf_counter()
    bar = _Progress(len(plan_jobs) * len(formats) * len(backends), enabled=progress)
    results = {}
    with tempfile.TemporaryDirectory(prefix="kzp-check-") as tmpdir:
        spec = {"jobs": plan_jobs, "batch": batch, "seed": seed,
                "repeat": repeat, "outdir": tmpdir, "threads": threads}
        # Workers are independent processes; ``jobs`` of them run at once,
        # the slowest backend's first so that it does not run alone at the
        # end while the other cores idle.
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(_run_backend, b, dict(spec, formats=fmts), tmpdir,
                                       bar, results)
                           for b, fmts in tasks]:
                future.result()
        bar.close()
        cells = _ordered_cells(plan_jobs, backends, formats, results)
        if any(job.get("source") for job in plan_jobs):
            from keras_zoo_plus import usermodel

            usermodel.raise_if_unusable(plan_jobs, cells)
        failures = compare(cells, tolerance)
    return build_report(
        cells, failures, results, plan_jobs, backends, formats, tolerance=tolerance,
        batch=batch, seed=seed, started=started, wall_s=time.perf_counter() - t0,
        jobs=jobs, threads=threads,
    )


def _ordered_cells(plan_jobs, backends, formats, results):
    """Cells in model, backend, format order; a crashed worker gives error cells."""
    found = {}
    for backend in backends:
        for cell in results.get(backend, {}).get("cells", []):
            found[(cell["model"], cell["backend"], cell["data_format"])] = cell
    cells = []
    for job in plan_jobs:
        for backend in backends:
            for data_format in formats:
                cell = found.get((job["model"], backend, data_format))
                if cell is None:
                    err = results.get(backend, {}).get("environment", {}).get("error")
                    cell = {"model": job["model"], "backend": backend,
                            "data_format": data_format, "status": "error",
                            "error": f"backend worker failed: {err}"}
                cells.append(cell)
    return cells


def build_report(cells, failures, results, plan_jobs, backends, formats, *, tolerance,
                 batch, seed, started, wall_s, jobs=None, threads=None):
    """The JSON report, schema version 1.

    Top level: ``schema_version`` (int), ``tool`` ("keras-zoo-plus check"),
    ``version`` (package version), ``created`` (UTC ISO 8601), ``wall_s``,
    ``passed`` (bool), ``tolerance``, ``seed``, ``batch``, ``jobs`` (workers
    run at once), ``threads`` (compute threads given to each worker),
    ``models`` (names), ``backends`` (names, in run order), ``formats``,
    ``environments`` (backend -> ``{backend, backend_version, keras, numpy,
    python, threads, wall_s, cpu_s}``, ``threads`` being the count the
    backend reported after the worker applied it, ``wall_s`` and ``cpu_s``
    the elapsed and CPU seconds of the backend's workers, summed, or ``{backend, error}``), ``max_deviation`` (largest cell deviation or null),
    ``failures`` (one line per failed cell) and ``cells``.

    Each cell: ``model``, ``backend``, ``data_format``, ``status`` ("ok",
    "fail": deviation above tolerance or non-finite output, "error": did not
    build or run), ``input_shape`` (in the cell's data format),
    ``include_top``, ``output_shape`` (channels_last), ``reference`` (bool:
    the model's reference cell), ``dev_vs_reference`` (max|cell - reference|
    / max|reference|), ``max_rel_dev`` (largest such deviation from any
    other cell of the model), ``worst_peer`` ("backend/data_format" of that
    cell),
    ``build_s``, ``ms_per_image``, ``finite``, ``perturbed`` and ``error``
    (null unless status is "error"). Fields that do not apply are null.
    """
    from keras_zoo_plus import __version__

    keys = ("model", "backend", "data_format", "status", "input_shape", "include_top",
            "output_shape", "reference", "max_rel_dev", "worst_peer", "dev_vs_reference",
            "build_s", "ms_per_image", "finite", "perturbed", "error")
    cells = [{k: cell.get(k) for k in keys} for cell in cells]
    devs = [c["max_rel_dev"] for c in cells if c["max_rel_dev"] is not None]
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "keras-zoo-plus check",
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(wall_s, 2),
        "passed": not failures,
        "tolerance": tolerance,
        "seed": seed,
        "batch": batch,
        "jobs": jobs,
        "threads": threads,
        "models": [j["model"] for j in plan_jobs],
        "backends": list(backends),
        "formats": list(formats),
        "environments": {b: results.get(b, {}).get("environment", {"backend": b})
                         for b in backends},
        "max_deviation": max(devs) if devs else None,
        "failures": failures,
        "cells": cells,
    }


# --------------------------------------------------------------------------
# Rendering


def _fmt_dev(value):
    return "-" if value is None else f"{value:.2e}"


def _fmt_num(value, spec):
    return "-" if value is None else format(value, spec)


def table_rows(report):
    rows = []
    for c in report["cells"]:
        shape = c["input_shape"]
        if not shape:  # a user's model that did not build
            size = "-"
        elif c["data_format"] == "channels_last":
            size = f"{shape[1]}x{shape[2]}"
        else:
            size = f"{shape[2]}x{shape[3]}"
        rows.append([
            c["model"], c["backend"], c["data_format"], size,
            ("top" if c["include_top"] else "no-top") if c["include_top"] is not None else "-",
            _fmt_dev(c["dev_vs_reference"]) + ("*" if c["reference"] else ""),
            _fmt_dev(c["max_rel_dev"]), _fmt_num(c["build_s"], ".2f"),
            _fmt_num(c["ms_per_image"], ".1f"),
            c["status"].upper() if c["status"] != "ok" else "ok",
        ])
    return rows


HEADER = ["model", "backend", "data_format", "input", "top", "dev vs ref", "max pair dev",
          "build s", "ms/image", "status"]


LEGEND = (
    "dev vs ref = max|cell - reference| / max|reference| (reference marked *); "
    "max pair dev = largest such deviation from any other cell of the model."
)


def render_text(report):
    rows = table_rows(report)
    widths = [max(len(str(r[i])) for r in rows + [HEADER]) for i in range(len(HEADER))]
    right = {5, 6, 7, 8}

    def line(row):
        return "  ".join(
            str(v).rjust(widths[i]) if i in right else str(v).ljust(widths[i])
            for i, v in enumerate(row)
        ).rstrip()

    out = [line(HEADER), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    out.append("")
    out.append(LEGEND)
    out.append(_summary(report))
    out += [f"  {f}" for f in report["failures"]]
    return "\n".join(out)


def render_markdown(report):
    envs = ", ".join(
        f"{b} {e.get('backend_version') or '?'} (keras {e.get('keras') or '?'})"
        if "error" not in e else f"{b}: {e['error']}"
        for b, e in report["environments"].items()
    )
    out = [
        "# keras-zoo-plus check",
        "",
        f"{report['created']}, keras-zoo-plus {report['version']}; {envs}.",
        f"Tolerance {report['tolerance']:g}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    out += ["| " + " | ".join(str(v) for v in r) + " |" for r in table_rows(report)]
    out += ["", LEGEND, "", _summary(report)]
    out += [f"- {f}" for f in report["failures"]]
    return "\n".join(out) + "\n"


def render_junit(report):
    """JUnit XML: one ``testcase`` per cell (``classname`` the model,
    ``name`` "backend/data_format", ``time`` its build seconds); a failed
    cell carries a ``failure`` whose message is the deviation and the
    reference cell, a cell that did not build or run an ``error``."""
    import xml.etree.ElementTree as ET

    cells = report["cells"]
    n_fail = sum(c["status"] == "fail" for c in cells)
    n_error = sum(c["status"] == "error" for c in cells)
    suites = ET.Element("testsuites", name=report["tool"], tests=str(len(cells)),
                        failures=str(n_fail), errors=str(n_error),
                        time=f"{report['wall_s']:.2f}")
    suite = ET.SubElement(
        suites, "testsuite", name=report["tool"], tests=str(len(cells)),
        failures=str(n_fail), errors=str(n_error), skipped="0",
        time=f"{report['wall_s']:.2f}", timestamp=report["created"],
    )
    props = ET.SubElement(suite, "properties")
    settings = [("tolerance", f"{report['tolerance']:g}"), ("seed", report["seed"]),
                ("batch", report["batch"]), ("keras-zoo-plus", report["version"])]
    for backend, env in report["environments"].items():
        settings.append((backend, f"{env.get('backend_version')} (keras {env.get('keras')})"
                         if "error" not in env else f"error: {env['error']}"))
    for name, value in settings:
        ET.SubElement(props, "property", name=name, value=str(value))
    references = {c["model"]: f"{c['backend']}/{c['data_format']}"
                  for c in cells if c["reference"]}
    for c in cells:
        case = ET.SubElement(suite, "testcase", classname=c["model"],
                             name=f"{c['backend']}/{c['data_format']}",
                             time=f"{c['build_s'] or 0:.3f}")
        if c["status"] == "ok":
            continue
        prefix = f"{c['model']} {c['backend']} {c['data_format']}: "
        line = next((f for f in report["failures"] if f.startswith(prefix)), prefix + "failed")
        message = line[len(prefix):]
        tag = "failure" if c["status"] == "fail" else "error"
        element = ET.SubElement(case, tag, message=message,
                                type="deviation" if tag == "failure" else "error")
        element.text = "\n".join([
            message,
            f"reference cell: {references.get(c['model'], '-')}",
            f"deviation from the reference: {_fmt_dev(c['dev_vs_reference'])}",
            f"largest deviation from any cell: {_fmt_dev(c['max_rel_dev'])}"
            f" ({c['worst_peer'] or '-'})",
            f"tolerance: {report['tolerance']:g}",
        ])
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        suites, encoding="unicode") + "\n"


def _summary(report):
    n = len(report["cells"])
    bad = len(report["failures"])
    worst = _fmt_dev(report["max_deviation"])
    verdict = "PASSED" if report["passed"] else "FAILED"
    return (f"{verdict}: {n - bad}/{n} cells within {report['tolerance']:g} "
            f"(largest deviation {worst}) in {report['wall_s']:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        sys.exit(_worker_main(sys.argv[2:]))
    sys.stderr.write("keras_zoo_plus.check is run by `keras-zoo-plus check`.\n")
    sys.exit(2)
