"""One build per worker of the zoo models the model-level tests share.

Building dominates the model-level tests (variables are created and
initialised per layer; the input size barely matters, except for VGG's
fully connected top). Tests that need the same model, the same arguments,
take it from here instead of building it again:

    model = zoo_builds.build("resnet50")                  # no top, min size
    model = zoo_builds.build("xception", include_top=True, size=75)

The cache lives as long as the pytest worker (pytest-xdist runs each
worker in its own process) and holds at most ``MAX_PARAMS`` parameters,
least recently used first out. Models are built with ``weights=None``
but without running the initializers, whose random draws were most of a
build (keras_zoo_plus.deferred), and get the deterministic synthetic
weights instead (keras_zoo_plus.synthetic, seed 0): non-zero, the same on
every backend and in every data format. ``fresh`` builds the ordinary way.

A cached model is shared: a test that changes it (trainability, weights,
a compiled state) does it inside ``with zoo_builds.borrowed(model):``,
which puts every layer's ``trainable`` flag back, and with
``weights=True`` every variable's value, when the block ends; or it calls
``zoo_builds.fresh(...)`` for a build of its own.

Big models (``ModelInfo.is_large``, over 50M parameters) get the same
checks at a reduced input size: ``size(info)`` is the size the
model-level tests use; what depends on the default size (the default
input shape) is read from the constructor's validated arguments,
``validated(constructor, **kwargs)``, which builds nothing.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
from unittest import mock

import keras

from keras_zoo_plus import model_table, synthetic
from keras_zoo_plus.applications import _common
from keras_zoo_plus.deferred import build_structure_only, build_without_initializers

MAX_PARAMS = 250_000_000  # ~1 GB of float32 per worker at most
DEFAULT = "default"  # size=DEFAULT: no input_shape, the constructor's default
_CACHE: collections.OrderedDict = collections.OrderedDict()
STATS = collections.Counter()  # ("hit"|"miss", name)
# ZOO_BUILDS_STATS=FILE: each worker appends its hits and misses to FILE at
# exit (one JSON line), to see how much the cache saves.
_STATS_FILE = os.environ.get("ZOO_BUILDS_STATS")


@atexit.register
def _write_stats():
    if _STATS_FILE and STATS:
        with open(_STATS_FILE, "a") as f:
            f.write(json.dumps({f"{k}:{n}": v for (k, n), v in sorted(STATS.items())}) + "\n")


def size(info):
    """The square input size the model-level tests use for ``info``: the
    model's minimum size (for big models too, the reduced size)."""
    return info.min_size


def input_shape(info, data_format="channels_last", size_=None):
    """``input_shape`` for a square size, an ``(h, w)`` pair or None (the
    test size); None for ``DEFAULT``."""
    if size_ == DEFAULT:
        return None
    s = size(info) if size_ is None else size_
    h, w = (s, s) if isinstance(s, int) else s
    return (3, h, w) if data_format == "channels_first" else (h, w, 3)


def is_heavy(info):
    """Deep or big feature extractors, whose whole-model round trips run in
    the slow session: published depth >= 300 (InceptionResNetV2, NASNet),
    or, where the table has no depth, > 40M params (ResNet101/152). VGG's
    138M params are mostly its fully connected top, which the no-top
    round trips do not build."""
    if info.depth is not None:
        return info.depth >= 300
    return info.params > 40_000_000


class Validated(Exception):
    """Raised instead of building once every argument passed validation."""

    def __init__(self, spec):
        super().__init__("validated")
        self.spec = spec


@contextlib.contextmanager
def stop_after_validation():
    """Constructors validate every argument before building: family checks,
    then ``_common.prepare``, whose result (the :class:`BuildSpec`) ends the
    call as :class:`Validated` instead of feeding a build."""
    real = _common.prepare

    def prepare(*args, **kwargs):
        raise Validated(real(*args, **kwargs))

    with mock.patch.object(_common, "prepare", prepare):
        yield


def validated(constructor, **kwargs):
    """The validated :class:`BuildSpec` of ``constructor(**kwargs)``: what the
    builder would get (data format, input shape, ...), nothing built."""
    try:
        with stop_after_validation():
            constructor(**kwargs)
    except Validated as stop:
        return stop.spec
    raise AssertionError(
        f"{constructor.__name__} returned a model without calling _common.prepare: "
        "constructors validate through it before building (DESIGN.md)"
    )


#: ``structure(build, *args, **kwargs)``: a build for a test that reads the
#: model's structure only (configs, shapes, flags, parameter counts); no
#: variable gets a value.
structure = build_structure_only


def _key(name, include_top, data_format, size_, kwargs):
    return (name, include_top, data_format, size_, tuple(sorted(kwargs.items())))


def _arguments(info, include_top, data_format, size_, kwargs):
    """The constructor arguments of :func:`fresh` and :func:`build`."""
    args = dict(weights=None, include_top=include_top, data_format=data_format, **kwargs)
    shape = input_shape(info, data_format, size_)
    if shape is not None:
        args["input_shape"] = shape
    return args


def fresh(name, *, include_top=False, data_format="channels_last", size=None, **kwargs):
    """A new build of ``name`` (``weights=None``), never cached. ``size`` is an
    int, an ``(h, w)`` pair (entries may be None), ``DEFAULT`` (the
    constructor's default shape) or None (``size(info)``)."""
    info = model_table.get(name)
    return info.constructor(**_arguments(info, include_top, data_format, size, kwargs))


def build(name, *, include_top=False, data_format="channels_last", size=None, **kwargs):
    """The shared build of ``name`` with these arguments (see :func:`fresh`)."""
    info = model_table.get(name)
    key = _key(info.name, include_top, data_format, size, kwargs)
    if key in _CACHE:
        STATS[("hit", info.name)] += 1
        _CACHE.move_to_end(key)
        return _CACHE[key]
    STATS[("miss", info.name)] += 1
    model = build_without_initializers(
        info.constructor, **_arguments(info, include_top, data_format, size, kwargs))
    synthetic.apply_synthetic_weights(model, seed=0, family=info.family)
    _CACHE[key] = model
    while len(_CACHE) > 1 and sum(m.count_params() for m in _CACHE.values()) > MAX_PARAMS:
        _CACHE.popitem(last=False)
    return model


def _leaves(model):
    """Every layer of ``model``, nested models and the model included."""
    seen, out, stack = set(), [], [model]
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        out.append(layer)
        stack.extend(getattr(layer, "layers", ()))
    return out


@contextlib.contextmanager
def borrowed(model, *, weights=False):
    """Lend a shared ``model`` to a test that changes it: on exit every
    layer's ``trainable`` flag and, with ``weights=True``, every variable's
    value (BatchNormalization statistics included) are as they were."""
    layers = _leaves(model)
    flags = [(layer, layer.trainable) for layer in layers]
    values = None
    if weights:
        values = [(v, keras.ops.convert_to_numpy(v).copy()) for v in model.variables]
    try:
        yield model
    finally:
        # Parents first (``_leaves`` order): setting a parent's flag cascades
        # to its children, whose own flags then follow.
        for layer, flag in flags:
            layer.trainable = flag
        if values is not None:
            for v, value in values:
                v.assign(value)
