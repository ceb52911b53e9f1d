"""Users' own models in the ``check`` matrix.

``keras-zoo-plus check --model package.module:function``, ``keras-zoo-plus
check model.keras`` and :func:`keras_zoo_plus.testing.assert_backend_parity`
check a user's model with the machinery of :mod:`keras_zoo_plus.check`
(workers, comparison, reports). This module holds what differs:

* in the parent, before any worker starts: the argument checks
  (:func:`builder_job`, :func:`file_job`, :func:`validate_input_shape`),
  which raise ``ValueError``/``TypeError`` naming the argument, the value
  received and what is allowed;
* in each worker: :class:`UserModel`, which imports and calls the builder
  (built without running its initializers, every weight then set to the
  synthetic weights, as for the zoo) or loads the file with :func:`keras_zoo_plus.load_model`
  (its weights used as saved);
* back in the parent: :func:`raise_if_unusable`, a model that no cell could
  build or load is the caller's error (:class:`UserModelError`), not an
  incompatibility.

The builder is called with the keyword arguments it accepts among
``data_format`` (the cell's) and ``input_shape`` (``--input-shape`` in the
cell's order), with ``keras.config.image_data_format()`` set to the cell's
format while it runs (restored after), so a builder that leaves
``data_format`` to Keras' default builds both formats. A saved file keeps
the data format it was saved with: its matrix is the backends by that
format. This module imports neither Keras nor a backend at import time.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import numbers
import os
import sys

FILE_SUFFIXES = (".keras", ".h5", ".hdf5")
DATA_FORMATS = ("channels_last", "channels_first")
ALLOWED_BUILDER = "package.module:function, a module-level function returning a keras.Model"
ALLOWED_FILE = "a .keras or legacy .h5 model file"
ALLOWED_OBJECTS = "package.module:NAME, a dict of custom objects or a function returning one"
ALLOWED_SHAPE = "H,W,C: 3 positive integers, channels last"

# Argument names in messages: the command line's by default.
CLI_ARGUMENTS = {"builder": "--model", "file": "model file", "input_shape": "--input-shape",
                 "custom_objects": "--custom-objects"}


class UserModelError(ValueError):
    """A user's model that no cell of the matrix could build or load."""


class CellError(Exception):
    """The model of a cell could not be built or loaded; the message is the
    cell's error as it is (no exception class in front)."""


@contextlib.contextmanager
def _cwd_on_path():
    """The current directory importable, as under ``python -m``: the console
    script's ``sys.path`` lacks it, and users run ``check`` from their
    repository root."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def _module_root(spec, module):
    """The directory to put on ``sys.path`` for ``module``: the workers do,
    so a package found through the caller's ``sys.path`` (pytest's rootdir,
    a ``pythonpath`` setting) is found there too."""
    if spec.submodule_search_locations and not spec.origin:  # namespace package
        path = list(spec.submodule_search_locations)[0]
        depth = len(module.split("."))
    else:
        path = spec.origin
        depth = len(module.split(".")) + (os.path.basename(path) == "__init__.py")
    for _ in range(depth):
        path = os.path.dirname(path)
    return path


def parse_target(value, argument, allowed):
    """``{"module", "attribute", "root"}`` for ``"package.module:NAME"``,
    the module found (not imported: it imports Keras) from the current
    directory and ``sys.path``. Raises ``ValueError`` naming ``argument``."""
    text = str(value)
    module, sep, attribute = text.partition(":")

    def bad(problem):
        return ValueError(f"{argument} {text!r}: {problem}; expected {allowed}")

    if not sep:
        hint = ""
        try:
            from keras_zoo_plus import registry

            name = registry.model_info(text).name
            hint = f" ({text} is a zoo model: check it with --models {name})"
        except ValueError:
            pass
        raise bad("no ':' between the module and the name" + hint)
    names = module.split(".") + attribute.split(".")
    if not all(n.isidentifier() for n in names):
        raise bad("not a module path and a name")
    where = f"from the current directory ({os.getcwd()}) or PYTHONPATH"
    with _cwd_on_path():
        try:
            spec = importlib.util.find_spec(module)
        except Exception as exc:  # a parent package that is missing or fails to import
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise bad(f"module {module!r} is not importable {where} ({reason})") from None
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        raise bad(f"module {module!r} is not importable {where}")
    return {"module": module, "attribute": attribute, "root": _module_root(spec, module)}


def validate_input_shape(value, argument="input_shape"):
    """``(H, W, C)`` as ints, channels last, or None. Raises ``ValueError``
    (``TypeError`` for a non-sequence) naming ``argument``."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"`{argument}` must be (H, W, C), 3 positive integers, channels last; "
                        f"received {argument}={value!r}")
    ok = len(value) == 3 and all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in value)
    if not ok:
        raise ValueError(f"`{argument}` must be (H, W, C), 3 positive integers, channels last; "
                         f"received {argument}={tuple(value)!r}")
    return tuple(int(d) for d in value)


def builder_job(target, *, input_shape=None, custom_objects=None, arguments=None):
    """The check job of a builder ``"package.module:function"``. Raises
    ``ValueError`` for a malformed target or a module that cannot be found."""
    names = dict(CLI_ARGUMENTS, **(arguments or {}))
    job = {
        "model": str(target), "source": "builder", "argument": names["builder"],
        "allowed": ALLOWED_BUILDER,
        "target": parse_target(target, names["builder"], ALLOWED_BUILDER),
        "input_shape": validate_input_shape(input_shape, names["input_shape"]),
        "input_shape_argument": names["input_shape"],
    }
    job["custom_objects"] = _objects_target(custom_objects, names)
    return job


def file_job(path, *, input_shape=None, custom_objects=None, arguments=None):
    """``(job, data_format)`` of a saved model file, ``data_format`` the one
    it was saved with (the first layer's that has one; channels_last when
    none has). Raises ``ValueError`` for a missing file or one that is not
    a Keras model, read without Keras."""
    names = dict(CLI_ARGUMENTS, **(arguments or {}))
    text = os.fspath(path)
    data_format = saved_data_format(text, names["file"])
    job = {
        "model": text, "source": "file", "argument": names["file"], "allowed": ALLOWED_FILE,
        "path": os.path.abspath(text),
        "input_shape": validate_input_shape(input_shape, names["input_shape"]),
        "input_shape_argument": names["input_shape"],
        "custom_objects": _objects_target(custom_objects, names),
        "custom_objects_argument": names["custom_objects"],
    }
    return job, data_format


def _objects_target(value, names):
    if value is None:
        return None
    target = parse_target(value, names["custom_objects"], ALLOWED_OBJECTS)
    return dict(target, text=str(value), argument=names["custom_objects"])


def _saved_config(path, argument):
    def bad(problem):
        return ValueError(f"{argument} {path!r}: {problem}; expected {ALLOWED_FILE}")

    if not os.path.exists(path):
        raise bad("no such file")
    if os.path.isdir(path):
        raise bad("a directory")
    if not path.lower().endswith(FILE_SUFFIXES):
        raise bad("unknown file type")
    if path.lower().endswith(".keras"):
        import zipfile

        if not zipfile.is_zipfile(path):
            raise bad("not a .keras archive")
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise bad("not a Keras model archive (no config.json)")
            text = archive.read("config.json")
    else:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                text = f.attrs.get("model_config")
        except OSError:
            raise bad("not an HDF5 file") from None
        if text is None:
            raise bad("no model in it (a weights-only file?)")
    try:
        return json.loads(text.decode("utf8") if isinstance(text, bytes) else text)
    except ValueError:
        raise bad("its model config is not JSON") from None


def saved_data_format(path, argument="model file"):
    """The data format a saved model runs in: the first ``data_format`` of
    its layers' configs (channels_last when none has one)."""
    found = []

    def walk(value):
        if found:
            return
        if isinstance(value, dict):
            fmt = value.get("data_format")
            if fmt in DATA_FORMATS:
                found.append(fmt)
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(_saved_config(path, argument))
    return found[0] if found else "channels_last"


def raise_if_unusable(plan_jobs, cells):
    """Raise :class:`UserModelError` for a user's model that no cell could
    build or load: the builder raised or returned no model, the file did not
    load, its input is not an image batch. Where only some cells fail, that
    is the incompatibility ``check`` reports."""
    for job in plan_jobs:
        if not job.get("source"):
            continue
        mine = [c for c in cells if c["model"] == job["model"]]
        if mine and all(c["status"] == "error" and c.get("error_stage") == "load"
                        for c in mine):
            where = "the only cell" if len(mine) == 1 else f"all {len(mine)} cells"
            raise UserModelError(
                f"{job['argument']} {job['model']!r}: {mine[0]['error']} (in {where}); "
                f"expected {job['allowed']}"
            )


# --------------------------------------------------------------------------
# Worker side


def _import(target):
    """The object ``target`` names (or a :class:`CellError`)."""
    if target["root"] and target["root"] not in sys.path:
        sys.path.insert(0, target["root"])
    try:
        obj = importlib.import_module(target["module"])
    except Exception as exc:
        raise CellError(f"importing {target['module']} raised {type(exc).__name__}: "
                        f"{exc}") from exc
    for part in target["attribute"].split("."):
        if not hasattr(obj, part):
            raise CellError(f"{target['module']} has no attribute {target['attribute']!r}")
        obj = getattr(obj, part)
    return obj


class UserModel:
    """A user's model as the source of its cells (see
    :func:`keras_zoo_plus.check.run_cell`)."""

    def __init__(self, job):
        self.job = job
        self.name = job["model"]
        # A builder's random initialisation is replaced, so every backend
        # runs the same model; a file's weights are used as saved.
        self.synthetic = job["source"] == "builder"
        self.family = None  # not a zoo family: synthetic kernels at He's gain

    def _custom_objects(self):
        target = self.job.get("custom_objects")
        if not target:
            return {}
        objects = _import(target)
        if callable(objects) and not isinstance(objects, dict):
            objects = objects()
        if not isinstance(objects, dict):
            raise CellError(f"{target['argument']} {target['text']!r} is of type "
                            f"{type(objects).__name__}, not a dict of custom objects")
        return objects

    def build(self, data_format):
        """``(model, None)``: a user's model has no zoo top to report."""
        import keras

        objects = self._custom_objects()
        if self.job["source"] == "file":
            from keras_zoo_plus.saving import load_model

            try:
                model = load_model(self.job["path"], custom_objects=objects, compile=False)
            except Exception as exc:
                from keras_zoo_plus.saving import _unknown_object_name

                name = _unknown_object_name(exc.__cause__ or exc)
                if name is not None:
                    raise CellError(
                        f"it uses the object {name!r}, which is neither built into Keras nor "
                        f"one of keras_zoo_plus.custom_objects(); give yours with "
                        f"{self.job['custom_objects_argument']} package.module:NAME"
                    ) from exc
                raise CellError(f"keras_zoo_plus.load_model raised {type(exc).__name__}: "
                                f"{exc}") from exc
        else:
            build = _import(self.job["target"])
            if not callable(build):
                raise CellError(f"it is a {type(build).__name__}, not a function")
            kwargs = self._arguments(build, data_format)

            def call():
                # The worker's own process: the default data format is the
                # cell's while the builder runs, for the layers it leaves
                # at Keras' default; restored after.
                previous = keras.config.image_data_format()
                keras.config.set_image_data_format(data_format)
                try:
                    with keras.saving.custom_object_scope(objects):
                        return build(**kwargs)
                finally:
                    keras.config.set_image_data_format(previous)

            # Every weight is replaced by a synthetic one, so the
            # initializers need not run (as for the zoo; on JAX they were
            # 23 of the 24 s a MobileNet-based model took to build). A
            # builder that needs values while it builds is built again,
            # the ordinary way.
            from keras_zoo_plus.deferred import build_without_initializers

            try:
                model = build_without_initializers(call)
            except Exception:
                try:
                    model = call()
                except Exception as exc:
                    raise CellError(f"calling it raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(model, keras.Model):
            raise CellError(f"it returned a {type(model).__name__}, not a keras.Model")
        return model, None

    def _arguments(self, build, data_format):
        try:
            params = inspect.signature(build).parameters
        except (TypeError, ValueError):
            return {}
        any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        kwargs = {}
        if "data_format" in params or any_kw:
            kwargs["data_format"] = data_format
        shape = self.job.get("input_shape")
        if shape and ("input_shape" in params or any_kw):
            h, w, c = shape
            kwargs["input_shape"] = (h, w, c) if data_format == "channels_last" else (c, h, w)
        return kwargs

    def input_shape(self, model, data_format):
        """The input (H, W, C), channels last: the model's, its undefined
        dimensions from ``--input-shape``; None before the model exists."""
        if model is None:
            return None
        shape = model.input_shape
        if isinstance(shape, list):
            if len(shape) != 1:
                raise CellError(f"the model has {len(shape)} inputs; check feeds one image "
                                "batch")
            shape = shape[0]
        shape = tuple(shape)
        if len(shape) != 4:
            raise CellError(f"the model's input {shape} is not an image batch "
                            "(batch, H, W, C) or (batch, C, H, W)")
        dims = shape[1:] if data_format == "channels_last" else (shape[2], shape[3], shape[1])
        requested = self.job.get("input_shape")
        argument = self.job["input_shape_argument"]
        if requested:
            if any(d is not None and d != r for d, r in zip(dims, requested)):
                raise CellError(f"{argument} {','.join(map(str, requested))} does not fit the "
                                f"model's input {shape} ({data_format})")
            return tuple(requested)
        if None in dims:
            raise CellError(f"the model's input {shape} has undefined dimensions; give "
                            f"{argument} H,W,C")
        return tuple(int(d) for d in dims)
