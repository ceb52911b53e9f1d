"""Keras' own applications test suite, run against keras_zoo_plus.

The file is ``keras/src/applications/applications_test.py`` of the
*installed* keras package, read at collection time (never copied here), so
that when Keras adds a test or a model we run it too. Its source is
rewritten (AST) before it runs:

* ``from keras.src.applications import <module>`` binds our
  ``keras_zoo_plus.applications.<module>`` instead (a placeholder where we
  have no such module or constructor);
* ``MODEL_LIST`` keeps the models whose constructor *is* one of the model
  table's (``model_table.entries()``), so a family joins by having entries;
* Keras' skips are gone: the ``pytest.mark`` decorators of the test class
  and its methods are dropped (they skip on ``SKIP_APPLICATIONS_TESTS`` or
  without PIL, and mark the backends Keras cannot train on, none of ours),
  and ``self.skipTest`` does nothing, so the channels_first cases Keras
  skips for its own DenseNet, NASNet and ConvNeXt, and the NASNetMobile
  cases it skips on torch, run here and must pass;
* the tests of ``DESELECTED`` are removed, by name.

Each test runs in the data format its name ends with (Keras'
``test_application_classifier_activation`` ignores its format parameter
and runs in whatever format the previous test left) and puts the global
format back afterwards (Keras restores it once per class).

Cost. The tests read output shapes and the classifier's activation only,
never a weight, so each runs inside ``keras.StatelessScope(initialize_variables=False)``:
the layers and variables are created as usual, their initializers are not
run when they are created (Keras hands a reader of such a variable a fresh
draw of its initializer, so a future Keras test that runs a model still
sees initializer-distributed weights; only two reads would differ).
Measured on the shared 2-core machine (load 3-5), all 202 tests of 20
constructors, in-process: torch 1041 s with initializers, 139 s without;
tensorflow 154 s and jax 67 s without (jax compiles every initializer once
per shape: ResNet50V2 builds in 13.5 s cold, 0.16 s without them). Still
about 18 s per constructor over the three backends, ~21 min of worker time
at 71 constructors, so the backend sessions run the smallest model of each
family (``check.quick_models()``: the same builder serves the others, and
what these tests check, argument handling and output shapes, is the
builder's) and the other models are marked slow (``nox -s slow`` runs them
on every backend). Measured the same way with 11 families: 113 tests in
the backend sessions (torch 69 s, tensorflow 79 s, jax 41 s), 90 slow
(torch 65 s, tensorflow 67 s, jax 38 s).

If the file, its ``MODEL_LIST``, its test class or a deselected test is not
where this expects, collecting this module fails (an error, never a skip).
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re
import types
import unittest

import keras
import pytest

from keras_zoo_plus import check, model_table

SUITE_PACKAGE = "keras.src.applications"
SUITE_FILE = "applications_test.py"

#: Keras tests not run here, with the reason.
DESELECTED = {
    # Loads the official ImageNet weights and downloads a test image
    # (elephant.jpg): no network in the tests, no weight files committed.
    # Loading the official layout is covered by the oracle parity tests
    # (synthetic weights in the legacy .h5 layout) and tests/test_weights_*.py.
    "test_application_base": "downloads the official weights and a test image",
}

#: Constructors whose tests run in the backend sessions: the smallest model
#: of each family; the others are marked slow (see the module docstring).
QUICK = frozenset(model_table.get(name).constructor_name for name in check.quick_models())

_FORMAT_SUFFIX = re.compile(r"_(channels_first|channels_last)$")


class LayoutError(RuntimeError):
    """Keras' suite is not laid out as this wiring expects."""


def suite_path():
    spec = importlib.util.find_spec(SUITE_PACKAGE)
    path = pathlib.Path(spec.origin).parent / SUITE_FILE
    if not path.is_file():
        raise LayoutError(f"Keras' applications suite is not at {path} (keras {keras.__version__}).")
    return path


# --------------------------------------------------------------------------
# What the suite's names resolve to
# --------------------------------------------------------------------------


class _Absent:
    """A constructor the zoo lacks: dropped from MODEL_LIST."""

    def __init__(self, qualname):
        self.__name__ = qualname.rsplit(".", 1)[-1]
        self.qualname = qualname

    def __call__(self, *args, **kwargs):
        raise AssertionError(f"{self.qualname} is not in keras_zoo_plus; MODEL_LIST should not list it")


class _Redirected(types.ModuleType):
    """Our ``keras_zoo_plus.applications.<name>`` (or None), with an
    :class:`_Absent` for every attribute it lacks."""

    def __init__(self, name, ours):
        super().__init__(f"keras_zoo_plus.applications.{name}")
        self._ours = ours

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._ours is not None and hasattr(self._ours, attr):
            return getattr(self._ours, attr)
        return _Absent(f"{self.__name__}.{attr}")


def _our_module(name):
    full = f"keras_zoo_plus.applications.{name}"
    ours = importlib.import_module(full) if importlib.util.find_spec(full) else None
    return _Redirected(name, ours)


_STATE: dict = {}


def _filter_model_list(model_list):
    """Keras' MODEL_LIST restricted to the model table's constructors."""
    if not isinstance(model_list, list) or not model_list:
        raise LayoutError(f"MODEL_LIST is not a non-empty list: {model_list!r:.200}")
    ours = {id(e.constructor) for e in model_table.entries()}
    for item in model_list:
        if not (isinstance(item, tuple) and item and callable(item[0])):
            raise LayoutError(f"MODEL_LIST entry is not (constructor, ...): {item!r:.200}")
    kept = [item for item in model_list if id(item[0]) in ours]
    if not kept:
        raise LayoutError("No model of Keras' MODEL_LIST is one of keras_zoo_plus' constructors.")
    _STATE["kept"] = [item[0].__name__ for item in kept]
    return kept


# --------------------------------------------------------------------------
# The rewrite
# --------------------------------------------------------------------------


def _is_pytest_mark(node):
    return ast.unparse(node).startswith("pytest.mark.")


class _Rewrite(ast.NodeTransformer):
    """Redirect ``keras.src.applications`` imports, filter MODEL_LIST, drop
    pytest marks and the deselected tests, recording what it did."""

    def __init__(self):
        self.redirected, self.model_list, self.removed_marks = [], 0, []
        self.test_classes, self.deselected = [], []

    def visit_ImportFrom(self, node):
        if node.module == SUITE_PACKAGE and node.level == 0:
            out = []
            for alias in node.names:
                self.redirected.append(alias.name)
                stmt = ast.parse(f"{alias.asname or alias.name} = __zoo_module__({alias.name!r})")
                out.append(ast.copy_location(stmt.body[0], node))
            return out
        if node.module and node.module.startswith(SUITE_PACKAGE + "."):
            raise LayoutError(f"unhandled import of {node.module} (line {node.lineno})")
        return node

    def visit_Import(self, node):
        for alias in node.names:
            if alias.name.startswith(SUITE_PACKAGE):
                raise LayoutError(f"unhandled `import {alias.name}` (line {node.lineno})")
        return node

    def visit_Module(self, node):
        self.generic_visit(node)
        body = []
        for stmt in node.body:
            body.append(stmt)
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "MODEL_LIST" for t in stmt.targets
            ):
                self.model_list += 1
                body.append(ast.copy_location(
                    ast.parse("MODEL_LIST = __zoo_filter__(MODEL_LIST)").body[0], stmt))
        node.body = body
        return node

    def visit_ClassDef(self, node):
        if not any(isinstance(f, ast.FunctionDef) and f.name.startswith("test") for f in node.body):
            return node
        self.test_classes.append(node.name)
        self._strip_marks(node)
        body = []
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef) and stmt.name in DESELECTED:
                self.deselected.append(stmt.name)
                continue
            if isinstance(stmt, ast.FunctionDef):
                self._strip_marks(stmt)
            body.append(stmt)
        node.body = body
        return node

    def _strip_marks(self, node):
        keep = []
        for dec in node.decorator_list:
            if _is_pytest_mark(dec):
                self.removed_marks.append(f"{node.name}: @{ast.unparse(dec)}")
            else:
                keep.append(dec)
        node.decorator_list = keep


def load_suite():
    """Keras' suite as a module object, rewritten as the docstring says."""
    path = suite_path()
    tree = ast.parse(path.read_text(encoding="utf8"), filename=str(path))
    rewrite = _Rewrite()
    tree = ast.fix_missing_locations(rewrite.visit(tree))
    if rewrite.model_list != 1:
        raise LayoutError(f"{path}: expected one top-level `MODEL_LIST = ...`, "
                          f"found {rewrite.model_list}")
    if not rewrite.redirected:
        raise LayoutError(f"{path}: no `from {SUITE_PACKAGE} import ...` to redirect")
    if not rewrite.test_classes:
        raise LayoutError(f"{path}: no test class")
    missing = sorted(set(DESELECTED) - set(rewrite.deselected))
    if missing:
        raise LayoutError(f"{path}: deselected tests not found: {missing}")
    leftover = re.findall(r"\bkeras(?:\.src)?\.applications\b[\w.]*", ast.unparse(tree))
    if leftover:
        raise LayoutError(f"{path}: references the wiring does not redirect: {sorted(set(leftover))}")
    module = types.ModuleType("keras_applications_suite")
    module.__file__ = str(path)
    module.__zoo_module__ = _our_module
    module.__zoo_filter__ = _filter_model_list
    # Compiled under Keras' path: tracebacks show Keras' lines.
    exec(compile(tree, str(path), "exec"), module.__dict__)
    module.rewrite = rewrite
    return module


SUITE = load_suite()


# --------------------------------------------------------------------------
# The test classes pytest collects
# --------------------------------------------------------------------------


def model_of(test_name):
    """The constructor name a generated test is for (its name ends with
    ``_{Constructor}_{data_format}``), or None."""
    for ctor in _STATE["kept"]:
        if re.search(rf"_{ctor}_channels_(first|last)$", test_name):
            return ctor
    return None


def _copy(fn, name):
    return types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)


def _against_the_zoo(cls):
    """A subclass of Keras' ``cls`` that pytest collects: Keras' runtime
    skips disabled, each test in the data format its name ends with, built
    without running initializers, the tests of non-QUICK models slow."""

    def setUp(self):
        self._zoo_format = keras.config.image_data_format()
        found = _FORMAT_SUFFIX.search(self._testMethodName)
        if found:
            keras.config.set_image_data_format(found.group(1))
        super(sub, self).setUp()  # Keras' clear_session(): enter the scope after it
        scope = keras.StatelessScope(initialize_variables=False)
        scope.__enter__()
        # Then drop the variables left uninitialised: the next StatelessScope
        # to close (JAX opens one per symbolic call) would initialise them.
        self.addCleanup(keras.backend.clear_session, free_memory=False)
        self.addCleanup(scope.__exit__, None, None, None)

    def tearDown(self):
        try:
            super(sub, self).tearDown()
        finally:
            keras.config.set_image_data_format(self._zoo_format)

    def skipTest(self, reason):
        # Keras skips models of its own (channels_first DenseNet/NASNet/
        # ConvNeXt, NASNetMobile on torch); ours must pass those cases.
        return None

    name = f"TestKeras{cls.__name__}"
    attrs = {"setUp": setUp, "tearDown": tearDown, "skipTest": skipTest,
             "__module__": __name__, "__qualname__": name}
    for attr in dir(cls):
        ctor = model_of(attr) if attr.startswith("test") else None
        if ctor is not None and ctor not in QUICK:
            attrs[attr] = pytest.mark.slow(_copy(getattr(cls, attr), attr))
    sub = type(name, (cls,), attrs)
    return sub


for _name in SUITE.rewrite.test_classes:
    _cls = _against_the_zoo(getattr(SUITE, _name))
    globals()[_cls.__name__] = _cls
del _name, _cls


# --------------------------------------------------------------------------
# The wiring itself
# --------------------------------------------------------------------------


def _suite_classes():
    return [globals()[f"TestKeras{n}"] for n in SUITE.rewrite.test_classes]


def test_suite_runs_every_zoo_constructor_keras_lists_in_both_formats():
    expected = sorted(
        e.constructor_name for e in model_table.entries()
        if hasattr(keras.applications, e.constructor_name)
    )
    assert sorted(_STATE["kept"]) == expected
    # The zoo's constructors, not Keras': the identity the filter kept them by.
    assert [item[0].__name__ for item in SUITE.MODEL_LIST] == _STATE["kept"]
    for item in SUITE.MODEL_LIST:
        assert item[0] is model_table.get(item[0].__name__).constructor
    runs = set()
    for cls in _suite_classes():
        for attr in dir(cls):
            ctor = model_of(attr) if attr.startswith("test") else None
            if ctor is not None:
                runs.add((ctor, _FORMAT_SUFFIX.search(attr).group(1)))
                marks = [m.name for m in getattr(getattr(cls, attr), "pytestmark", [])]
                assert marks == ([] if ctor in QUICK else ["slow"]), (attr, marks)
    assert runs == {(c, f) for c in expected for f in ("channels_first", "channels_last")}
    # Every family has a constructor in the backend sessions.
    families = {model_table.get(c).family for c in expected}
    assert {model_table.get(c).family for c in QUICK if c in expected} == families


def test_suite_wiring_removed_keras_marks_and_deselected_tests():
    rewrite = SUITE.rewrite
    assert rewrite.deselected == list(DESELECTED)
    for cls in _suite_classes():
        names = [n for n in dir(cls) if n.startswith("test")]
        assert names and not any(n.startswith(tuple(DESELECTED)) for n in names)
        for klass in cls.__mro__:
            assert "pytestmark" not in vars(klass), klass


def test_a_case_keras_skips_runs_and_passes():
    """Keras skips channels_first for its DenseNet, NASNet and ConvNeXt
    (``MODELS_UNSUPPORTED_CHANNELS_FIRST``); here such a case runs (the
    cheapest test of the first QUICK model concerned) and passes."""
    unsupported = [u.lower() for u in SUITE.MODELS_UNSUPPORTED_CHANNELS_FIRST]
    ctor = next(c for c in _STATE["kept"] if c in QUICK and any(u in c.lower() for u in unsupported))
    (cls,) = _suite_classes()
    name = next(n for n in dir(cls) if n.startswith("test_application_pooling_")
                and n.endswith(f"_{ctor}_channels_first"))
    result = unittest.TestResult()
    cls(name).run(result)
    assert (result.skipped, result.errors, result.failures) == ([], [], []), name
    assert result.testsRun == 1


@pytest.mark.parametrize("old, new, message", [
    ("MODEL_LIST = [", "MODELS = [", "expected one top-level `MODEL_LIST = ...`, found 0"),
    ("def test_application_base(", "def test_application_weights(",
     "deselected tests not found: ['test_application_base']"),
    ("from keras.src.applications import resnet_v2\n",
     "from keras.src.applications.resnet_v2 import ResNet50V2\n",
     "unhandled import of keras.src.applications.resnet_v2"),
], ids=["no-model-list", "deselected-test-renamed", "other-import-form"])
def test_a_changed_layout_fails_loudly(tmp_path, monkeypatch, old, new, message):
    source = suite_path().read_text(encoding="utf8")
    assert source.count(old) == 1, old
    path = tmp_path / SUITE_FILE
    path.write_text(source.replace(old, new), encoding="utf8")
    monkeypatch.setitem(globals(), "suite_path", lambda: path)
    with pytest.raises(LayoutError, match=re.escape(message)):
        load_suite()
