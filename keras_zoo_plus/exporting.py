"""Export a model for serving, and prove the artifact computes what Keras does.

    >>> import keras_zoo_plus as kz
    >>> model = kz.create_model("mobilenet_v3_small", weights="imagenet")
    >>> result = kz.export(model, "mobilenet_v3_small.onnx")   # verified, or raises
    >>> print(result.summary())

:func:`export` goes through Keras' own exporters (``Model.export``) and then
runs the artifact in the runtime that will serve it, on a seeded batch,
against the model's own output:

=============== ===================================== ====================== =========
format          exporter (by backend)                 verified with          tolerance
=============== ===================================== ====================== =========
``onnx``        tf2onnx (TensorFlow), TorchScript      onnxruntime (CPU)      1e-5
                (torch), jax2onnx (JAX)
``saved_model`` Keras' ExportArchive (TensorFlow,      ``tf.saved_model.load``  1e-5
                JAX through jax2tf)
``litert``      the TFLite converter (TensorFlow)      the LiteRT interpreter 1e-4
=============== ===================================== ====================== =========

The deviation is ``max |artifact - keras| / max |keras|`` over the batch
(every output, flattened). The batch dimension of the artifact is dynamic:
after the batch of ``batch`` images, the first image runs alone and must
match too. Height and width are fixed to ``input_shape``.

Only a verified artifact reaches ``path``: the exporter writes next to it
under a temporary name, and the file (or SavedModel directory) replaces
``path`` once the runtime has matched Keras. An exporter that fails, or an
artifact that deviates, leaves ``path`` as it was.

It also avoids Keras' "The model provided has never called." trap: the
input signature is given to the exporter explicitly, so a freshly built
or freshly loaded model exports without a call first.

This module imports Keras only inside its functions; the format table
(:data:`FORMATS`, :func:`requirements`) is plain Python.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import time
import warnings

FORMATS = ("onnx", "saved_model", "litert")
# Keras' own name of the SavedModel format, accepted as an alias.
_ALIASES = {"tf_saved_model": "saved_model", "tflite": "litert"}
TOLERANCES = {"onnx": 1e-5, "saved_model": 1e-5, "litert": 1e-4}
DEFAULT_BATCH = 2
DEFAULT_SEED = 0
INSTALL_HINT = "pip install 'keras-zoo-plus[export]'"
# pyproject.toml's export extra (tests/test_export.py checks they agree).
EXPORT_EXTRA = ("onnx", "onnxruntime", "tf2onnx", "jax2onnx", "ai-edge-litert")

# (format, backend) -> the importable modules it needs, with their pip names.
# Exporter first, then the runtime that verifies.
_REQUIREMENTS = {
    ("onnx", "tensorflow"): (("tf2onnx", "tf2onnx"), ("onnx", "onnx"),
                             ("onnxruntime", "onnxruntime")),
    ("onnx", "torch"): (("onnx", "onnx"), ("onnxruntime", "onnxruntime")),
    ("onnx", "jax"): (("jax2onnx", "jax2onnx"), ("onnx", "onnx"),
                      ("onnxruntime", "onnxruntime")),
    ("saved_model", "tensorflow"): (("tensorflow", "tensorflow"),),
    ("saved_model", "jax"): (("tensorflow", "tensorflow"),),
    ("litert", "tensorflow"): (("ai_edge_litert", "ai-edge-litert"),),
}
# Why a (format, backend) pair has no exporter here.
_UNSUPPORTED = {
    ("saved_model", "torch"): "Keras exports a SavedModel from the torch backend only "
    "through torch_xla, which is not a CPU package; export it on the tensorflow or jax "
    "backend (the weights load on any backend)",
    ("litert", "jax"): "Keras' LiteRT exporter needs the tensorflow backend (or torch with "
    "litert-torch); set KERAS_BACKEND=tensorflow, the weights load on any backend",
    ("litert", "torch"): "Keras' LiteRT export from torch goes through litert-torch, which "
    "does not support a dynamic batch and is not part of the export extra; set "
    "KERAS_BACKEND=tensorflow, the weights load on any backend",
}


class ExportError(RuntimeError):
    """The exporter could not produce the artifact, or the runtime could not
    run it; the message says which model, format and backend, and why."""


class ExportVerificationError(ExportError):
    """The artifact ran but deviates from Keras by more than the tolerance.
    ``result`` holds the measured deviations; nothing was written to the
    output path."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


class ExportDependencyError(ImportError):
    """A package the format needs on this backend is missing (one line,
    with the pip command)."""


@dataclasses.dataclass
class ExportResult:
    """What :func:`export` wrote and measured."""

    path: str
    format: str
    backend: str
    input_shape: tuple  # one image, in the model's data format
    batch: int
    dynamic_batch: bool
    deviation: float | None  # the batch of ``batch`` images; None: not verified
    deviation_single: float | None  # the first image alone (dynamic batch)
    tolerance: float
    runtime: str | None
    export_seconds: float
    verify_seconds: float | None

    @property
    def passed(self):
        return self.deviation is not None and self.worst <= self.tolerance

    @property
    def worst(self):
        values = [v for v in (self.deviation, self.deviation_single) if v is not None]
        return max(values) if values else None

    def summary(self):
        shape = "x".join(map(str, self.input_shape))
        batch = "dynamic" if self.dynamic_batch else "fixed"
        head = (f"{self.path}: {self.format} from {self.backend}, input {shape}, "
                f"{batch} batch, exported in {self.export_seconds:.1f} s")
        if self.deviation is None:
            return head + "; not verified"
        single = ("" if self.deviation_single is None
                  else f", 1 image {self.deviation_single:.2e}")
        verdict = "ok" if self.passed else "ABOVE TOLERANCE"
        return (f"{head}; {self.runtime}: rel deviation {self.deviation:.2e} "
                f"({self.batch} images{single}), tolerance {self.tolerance:g}: {verdict}")

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["passed"] = self.passed
        return d


def normalize_format(format):
    """``format`` as one of :data:`FORMATS` (Keras' ``"tf_saved_model"``
    and ``"tflite"`` accepted), or a ValueError naming what is allowed."""
    if not isinstance(format, str):
        raise TypeError(f"format must be a string, one of {', '.join(map(repr, FORMATS))}; "
                        f"received {format!r} of type {type(format).__name__}")
    name = _ALIASES.get(format.lower(), format.lower())
    if name not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(map(repr, FORMATS))}; "
                         f"received {format!r}")
    return name


def requirements(format, backend):
    """The pip names of the packages ``format`` needs on ``backend``.
    Raises :class:`ExportError` for a pair that has no exporter."""
    format = normalize_format(format)
    if (format, backend) in _UNSUPPORTED:
        raise ExportError(f"format {format!r} on the {backend} backend: "
                          f"{_UNSUPPORTED[format, backend]}")
    return [pip for _, pip in _REQUIREMENTS.get((format, backend), ())]


def missing_requirements(format, backend):
    """The pip names of the packages ``format`` needs on ``backend`` that
    are not importable here."""
    requirements(format, backend)
    return [pip for module, pip in _REQUIREMENTS.get((format, backend), ())
            if importlib.util.find_spec(module) is None]


def check_requirements(format, backend):
    """Raise :class:`ExportDependencyError` (one line, with the pip
    command) when something ``format`` needs on ``backend`` is missing."""
    missing = missing_requirements(format, backend)
    if missing:
        hint = (INSTALL_HINT if set(missing) <= set(EXPORT_EXTRA)
                else "pip install " + " ".join(missing))
        raise ExportDependencyError(
            f"format {normalize_format(format)!r} on the {backend} backend needs "
            f"{' and '.join(missing)}, not installed: {hint}")


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _image_shape(model, input_shape):
    """One image's shape in the model's layout, every dimension known."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ValueError(
            f"model: export handles models with one input; {model.name!r} has "
            f"{len(inputs) or 'no known'} inputs (call model.export with your own "
            "input_signature instead)")
    declared = tuple(inputs[0].shape[1:])
    if input_shape is None:
        if any(d is None for d in declared):
            raise ValueError(
                f"input_shape: {model.name!r} takes inputs of shape "
                f"{('batch',) + declared}, with undefined dimensions; give the image shape "
                f"the artifact serves, e.g. input_shape=(224, 224, 3) in the model's data "
                f"format")
        return declared
    if (not isinstance(input_shape, (tuple, list))
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                       for d in input_shape)):
        raise TypeError(f"input_shape must be a tuple of positive ints (one image, no batch "
                        f"dimension); received {input_shape!r}")
    input_shape = tuple(input_shape)
    if len(input_shape) != len(declared) or any(
            d is not None and d != s for d, s in zip(declared, input_shape)):
        raise ValueError(
            f"input_shape {input_shape} does not fit {model.name!r}, which takes one image of "
            f"shape {declared} (None: any size)")
    return input_shape


def check_output_path(path, format):
    """``path`` made absolute, once it can take a ``format`` artifact: a
    ValueError names what is wrong (a LiteRT path not ending in .tflite,
    a directory where a file goes or the reverse, a parent that cannot be
    created or written). Creates the parent directory."""
    format = normalize_format(format)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike; received {path!r} of type "
                        f"{type(path).__name__}")
    path = os.path.abspath(os.fspath(path))
    if format == "litert" and not path.endswith(".tflite"):
        raise ValueError(f"path {path!r}: a LiteRT artifact is a '.tflite' file; give a path "
                         "ending in .tflite")
    if format != "saved_model" and os.path.isdir(path):
        raise ValueError(f"path {path!r} is a directory; an {format} artifact is one file")
    if format == "saved_model" and os.path.isfile(path):
        raise ValueError(f"path {path!r} is a file; a SavedModel is a directory")
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"path {path!r}: cannot create its directory ({exc.strerror})") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"path {path!r}: the directory {parent!r} is not writable")
    return path


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def export(model, path, format="onnx", input_shape=None, *, verify=True,
           batch=DEFAULT_BATCH, seed=DEFAULT_SEED, tolerance=None, opset=None):
    """Export ``model`` to ``path`` and verify the artifact in its runtime.

    Args:
        model: A built ``keras.Model`` with one input (e.g. from
            :func:`keras_zoo_plus.create_model` or
            :func:`keras_zoo_plus.load_model`). It need not have been called.
        path: The artifact: a ``.onnx`` file, a SavedModel directory, or a
            ``.tflite`` file. Its directory is created if needed.
        format: ``"onnx"``, ``"saved_model"`` or ``"litert"`` (Keras'
            ``"tf_saved_model"`` and ``"tflite"`` are accepted too).
        input_shape: One image's shape in the model's data format, e.g.
            ``(224, 224, 3)`` or ``(3, 224, 224)``; needed when the model
            leaves height or width undefined. The artifact is fixed to it;
            its batch dimension stays dynamic.
        verify: Run the artifact in its runtime and compare with Keras
            (default). ``False`` only exports.
        batch: Images in the seeded verification batch (N(0, 1)).
        seed: Seed of that batch.
        tolerance: Largest allowed relative deviation (default: 1e-5 for
            ONNX and SavedModel, 1e-4 for LiteRT).
        opset: ONNX opset (default: the exporter's).

    Returns:
        :class:`ExportResult`.

    Raises:
        TypeError, ValueError: bad arguments (the message names the one).
        ExportDependencyError: a package the format needs on this backend
            is missing.
        ExportError: the exporter or the runtime failed (the message says
            why), or the format has no exporter on this backend.
        ExportVerificationError: the artifact deviates by more than the
            tolerance (``exc.result`` has the figures); ``path`` untouched.
    """
    import keras

    from keras_zoo_plus.ops._common import export_scope

    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}")
    format = normalize_format(format)
    backend = keras.backend.backend()
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch must be a positive int; received {batch!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int; received {seed!r} of type {type(seed).__name__}")
    if not isinstance(verify, bool):
        raise TypeError(f"verify must be True or False; received {verify!r}")
    if tolerance is None:
        tolerance = TOLERANCES[format]
    elif not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise ValueError(f"tolerance must be a positive number; received {tolerance!r}")
    shape = _image_shape(model, input_shape)
    path = check_output_path(path, format)
    if format != "onnx" and opset is not None:
        raise ValueError(f"opset applies to format 'onnx'; received opset={opset!r} with "
                         f"format {format!r}")
    check_requirements(format, backend)
    _check_keras_supports(format)

    dtype = model.inputs[0].dtype
    signature = [keras.InputSpec(shape=(None, *shape), dtype=dtype,
                                 name=_input_name(model))]
    parent, base = os.path.split(path)
    workdir = tempfile.mkdtemp(prefix=f".{base}.partial-", dir=parent)
    try:
        staged = os.path.join(workdir, base)
        kwargs = {"opset_version": opset} if opset is not None else {}
        if format == "onnx" and backend == "tensorflow":
            _register_tf2onnx_erfc()
        start = time.perf_counter()
        try:
            # The exporters' own chatter (TorchScript's TracerWarning on
            # shape reads, constant-folding notes, tf2onnx's deprecations)
            # says nothing about the artifact, which is verified below.
            with warnings.catch_warnings(), export_scope():
                warnings.simplefilter("ignore")
                model.export(staged, format=_KERAS_FORMAT[format], verbose=False,
                             input_signature=signature, **kwargs)
        except (ImportError, ModuleNotFoundError) as exc:
            raise ExportDependencyError(
                f"format {format!r} on the {backend} backend: {_first_line(exc)}; "
                f"{INSTALL_HINT}") from exc
        except Exception as exc:
            raise ExportError(
                f"{model.name!r} could not be exported to {format} on the {backend} "
                f"backend: {_first_line(exc)}") from exc
        if not os.path.exists(staged):
            raise ExportError(f"{model.name!r}: the {format} exporter on the {backend} "
                              f"backend reported success but wrote nothing")
        if format == "onnx":
            _inline_external_data(staged)
        export_seconds = time.perf_counter() - start
        result = ExportResult(
            path=path, format=format, backend=backend, input_shape=shape, batch=batch,
            dynamic_batch=False, deviation=None, deviation_single=None,
            tolerance=float(tolerance), runtime=None, export_seconds=export_seconds,
            verify_seconds=None)
        if verify:
            _verify(model, staged, result, seed)
            if not result.passed:
                raise ExportVerificationError(
                    f"{model.name!r} exported to {format} on the {backend} backend deviates "
                    f"from Keras by {result.worst:.3g} (relative), above the tolerance "
                    f"{tolerance:g}; {path} was not written", result)
        _replace(staged, path)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        # The exporters leave their graphs in reference cycles: measured on
        # TensorFlow (tf2onnx, VGG16 at 32 px, 2026-12-02), 8 GB resident
        # after the export, 4.2 GB after a collection. Free them now rather
        # than whenever the collector next runs.
        gc.collect()


_KERAS_FORMAT = {"onnx": "onnx", "saved_model": "tf_saved_model", "litert": "litert"}
# The Keras module of each exporter: older Keras releases lack some.
_KERAS_EXPORTERS = {"onnx": "keras.src.export.onnx",
                    "saved_model": "keras.src.export.saved_model",
                    "litert": "keras.src.export.litert"}


def _check_keras_supports(format):
    """ExportError when the installed Keras has no exporter for ``format``
    or no ``input_signature`` argument (both needed here)."""
    import inspect

    import keras

    has_module = importlib.util.find_spec(_KERAS_EXPORTERS[format]) is not None
    has_signature = "input_signature" in inspect.signature(keras.Model.export).parameters
    if not (has_module and has_signature):
        raise ExportError(
            f"format {format!r}: Keras {keras.__version__} has no {format} exporter taking an "
            f"input_signature (Model.export); upgrade Keras (pip install -U keras)")


def _register_tf2onnx_erfc():
    """Teach tf2onnx TensorFlow's ``Erfc`` as ``1 - Erf(x)`` (ONNX has no
    Erfc). TensorFlow's exact GELU (``tf.nn.gelu``, ConvNeXt's activation)
    computes ``0.5 * x * erfc(-x / sqrt(2))``; tf2onnx 1.17 converts it
    into an ``Erfc`` node that onnxruntime refuses ("No Op registered for
    Erfc"). Where ``1 - erf`` loses erfc's precision (large arguments) the
    GELU output is below 1e-7 of its input. Registered once, only where
    tf2onnx has no Erfc of its own."""
    global _ERFC_REGISTERED
    if _ERFC_REGISTERED:
        return
    import numpy as np
    from tf2onnx import constants, utils
    from tf2onnx.handler import tf_op

    if any("Erfc" in ops for ops in tf_op.get_opsets().get(constants.ONNX_DOMAIN, [])):
        _ERFC_REGISTERED = True
        return

    @tf_op("Erfc")
    class _Erfc:
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            x = node.input[0]
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(x))
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
            erf = ctx.make_node("Erf", [x], op_name_scope=node.name, name="erf")
            node.type = "Sub"
            ctx.replace_inputs(node, [one.output[0], erf.output[0]])

    _ERFC_REGISTERED = True


_ERFC_REGISTERED = False


def _input_name(model):
    name = getattr(model.inputs[0], "name", None) or "input"
    # ONNX and TFLite tensor names: keep them plain.
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)


# protobuf's limit on one message, less a margin for the graph itself.
_ONNX_INLINE_LIMIT = 2**31 - 2**26


def _inline_external_data(path):
    """Make an ONNX file self-contained when it fits in one protobuf.

    jax2onnx writes the weights to ``<name>.onnx.data`` beside the graph
    (ONNX "external data", found by a path relative to the graph), so the
    ``.onnx`` alone does not load. Under 2 GiB they go back into the
    file; a larger model keeps its data file, which :func:`_replace` moves
    beside ``path`` with the graph."""
    directory = os.path.dirname(path)
    extra = [os.path.join(directory, n) for n in os.listdir(directory)
             if n != os.path.basename(path)]
    if not extra or sum(os.path.getsize(f) for f in extra) > _ONNX_INLINE_LIMIT:
        return
    import onnx

    model = onnx.load(path)  # reads the external data, and marks it in-line
    onnx.save(model, path)
    for f in extra:
        os.remove(f)


def _replace(staged, path):
    """Move the verified artifact over ``path`` (a file or a directory),
    with any external-data file the exporter wrote beside it."""
    workdir = os.path.dirname(staged)
    for name in os.listdir(workdir):
        if name != os.path.basename(staged):
            os.replace(os.path.join(workdir, name),
                       os.path.join(os.path.dirname(path), name))
    if os.path.isdir(path) and not os.path.islink(path):
        old = path + ".old-" + os.path.basename(workdir)
        os.replace(path, old)
        os.replace(staged, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staged, path)


def _verify(model, staged, result, seed):
    import numpy as np

    from keras_zoo_plus import check, synthetic

    data_format = "channels_last"  # _output_array only transposes channels_first
    x = synthetic.synthetic_input((result.batch, *result.input_shape), seed)
    # A dict-output model (a feature pyramid) gives its outputs by sorted
    # key, the order of model.outputs, in which the exporters emit them.
    reference = check._output_array(check.run_inference(model, x), data_format)
    start = time.perf_counter()
    try:
        runner, result.runtime = _RUNNERS[result.format](staged)
        got, result.dynamic_batch = runner(x)
        single = runner(x[:1])[0] if result.dynamic_batch else None
    except Exception as exc:
        raise ExportError(
            f"{model.name!r}: the {result.format} artifact exported on the {result.backend} "
            f"backend does not run in {result.runtime or _RUNTIME_NAMES[result.format]}: "
            f"{_first_line(exc)}") from exc
    result.verify_seconds = time.perf_counter() - start
    scale = float(np.max(np.abs(reference.astype("float64"))))
    result.deviation = check._deviation(check._output_array(got, data_format), reference, scale)
    if single is not None:
        result.deviation_single = check._deviation(
            check._output_array(single, data_format), reference[:1], scale)


def _onnx_runner(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (spec,) = session.get_inputs()
    dynamic = not isinstance(spec.shape[0], int)

    def run(x):
        out = session.run(None, {spec.name: x})
        return (out[0] if len(out) == 1 else out), dynamic

    return run, f"onnxruntime {_version('onnxruntime')}"


def _saved_model_runner(path):
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    (spec,) = loaded.serve.concrete_functions[0].structured_input_signature[0]
    dynamic = spec.shape[0] is None

    def run(x):
        out = loaded.serve(tf.constant(x))
        if isinstance(out, dict):
            out = [out[k] for k in sorted(out)]
        if isinstance(out, (list, tuple)):
            return [np.asarray(t) for t in out], dynamic
        return np.asarray(out), dynamic

    return run, f"tf.saved_model {tf.__version__}"


def _litert_runner(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (spec,) = interpreter.get_input_details()
    dynamic = int(spec["shape_signature"][0]) == -1

    def run(x):
        if dynamic:
            interpreter.resize_tensor_input(spec["index"], list(x.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(spec["index"], x)
        interpreter.invoke()
        out = [interpreter.get_tensor(o["index"]).copy()
               for o in interpreter.get_output_details()]
        return (out[0] if len(out) == 1 else out), dynamic

    return run, f"LiteRT {_version('ai-edge-litert')}"


_RUNTIME_NAMES = {"onnx": "onnxruntime", "saved_model": "tf.saved_model",
                  "litert": "the LiteRT interpreter"}
_RUNNERS = {"onnx": _onnx_runner, "saved_model": _saved_model_runner,
            "litert": _litert_runner}
