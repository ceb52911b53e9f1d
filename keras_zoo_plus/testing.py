"""Backend parity of your own model, in your own tests.

    from keras_zoo_plus.testing import assert_backend_parity

    def test_my_model_is_portable():
        assert_backend_parity("mypackage.models:build", (64, 64, 3))

:func:`assert_backend_parity` runs ``keras-zoo-plus check``'s matrix (one
worker process per backend and data format, the same synthetic weights
and input, :mod:`keras_zoo_plus.check`) on your model and fails with the
cell table when a cell deviates. The pytest plugin
(:mod:`keras_zoo_plus.pytest_plugin`) also offers it as the
``backend_parity`` fixture. Importing this module imports neither Keras
nor a backend.
"""

from __future__ import annotations

import os
import sys

# keras_zoo_plus.check.DEFAULT_TOLERANCE, written out so that this module
# stays light (tests/test_check_user_models.py checks they agree).
DEFAULT_TOLERANCE = 1e-4

_ARGUMENTS = {"builder": "build_fn_or_path", "file": "build_fn_or_path",
              "input_shape": "input_shape", "custom_objects": "custom_objects"}


def _target(build_fn):
    """``"module:qualname"`` of a module-level function the workers can import."""
    module = getattr(build_fn, "__module__", None)
    qualname = getattr(build_fn, "__qualname__", None)
    found = sys.modules.get(module) if module else None
    for part in (qualname or "").split("."):
        found = getattr(found, part, None)
    if module in (None, "__main__") or found is not build_fn:
        raise TypeError(
            "`build_fn_or_path` must be importable by the backend worker processes: a "
            "module-level function of an importable module, a 'package.module:function' "
            "string or the path of a .keras/.h5 file; received "
            f"build_fn_or_path={build_fn!r}"
        )
    return f"{module}:{qualname}"


def assert_backend_parity(build_fn_or_path, input_shape=None, backends=None, formats=None,
                          tolerance=DEFAULT_TOLERANCE, custom_objects=None):
    """Assert that every backend (and data format) gives the same output.

    Args:
        build_fn_or_path: a module-level function returning a ``keras.Model``
            (or its ``"package.module:function"`` name): each worker calls
            it with the arguments it accepts among ``data_format`` and
            ``input_shape`` and replaces its random initialisation by the
            deterministic synthetic weights; or the path of a ``.keras`` or
            legacy ``.h5`` file, loaded with its weights in the data format
            it was saved with.
        input_shape: ``(H, W, C)``, channels last, or None for the model's
            own input shape.
        backends: backend names (default: every installed one).
        formats: data formats (default: both for a function, the saved
            one for a file).
        tolerance: largest allowed ``max|cell - reference| / max|reference|``.
        custom_objects: ``"package.module:NAME"`` of a dict of your custom
            objects (or a function returning one).

    Returns:
        The check report (a dict, the JSON schema of ``keras-zoo-plus
        check --json``).

    Raises:
        AssertionError: a cell deviates above ``tolerance`` or fails on
            some backend; the message is the cell table.
        ValueError: a bad argument, or a model that no cell could build or
            load (:class:`keras_zoo_plus.usermodel.UserModelError`).
        TypeError: ``build_fn_or_path`` is neither importable nor a path.
    """
    __tracebackhide__ = True
    from keras_zoo_plus import check, usermodel

    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool)
            and tolerance > 0):
        raise ValueError(f"`tolerance` must be a positive number; received "
                         f"tolerance={tolerance!r}")
    value = build_fn_or_path
    if isinstance(value, os.PathLike) or (
            isinstance(value, str) and value.lower().endswith(usermodel.FILE_SUFFIXES)):
        job, saved = usermodel.file_job(value, input_shape=input_shape,
                                        custom_objects=custom_objects, arguments=_ARGUMENTS)
        default_formats = [saved]
    elif isinstance(value, str):
        job = usermodel.builder_job(value, input_shape=input_shape,
                                    custom_objects=custom_objects, arguments=_ARGUMENTS)
        default_formats = list(check.DATA_FORMATS)
    elif callable(value):
        job = usermodel.builder_job(_target(value), input_shape=input_shape,
                                    custom_objects=custom_objects, arguments=_ARGUMENTS)
        default_formats = list(check.DATA_FORMATS)
    else:
        raise TypeError(
            "`build_fn_or_path` must be a function returning a keras.Model, a "
            "'package.module:function' string or the path of a .keras/.h5 file; received "
            f"build_fn_or_path={value!r}"
        )
    installed = check.installed_backends()
    backends = list(installed if backends is None else backends)
    for b in backends:
        if b not in installed:
            raise ValueError(f"`backends` must name installed backends ({', '.join(installed)}"
                             f"); received backends={backends!r}")
    formats = list(default_formats if formats is None else formats)
    if not formats or any(f not in default_formats for f in formats):
        raise ValueError(f"`formats` must be among {', '.join(default_formats)} for this "
                         f"model; received formats={formats!r}")
    if not backends:
        raise ValueError("`backends` must name at least one installed backend; received "
                         "backends=[]")
    report = check.run_check([job], backends, formats, tolerance=tolerance, progress=False)
    if not report["passed"]:
        raise AssertionError(
            f"backend parity of {job['model']} failed:\n{check.render_text(report)}"
        )
    return report
