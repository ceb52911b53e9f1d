"""Constructor fuzzing with hypothesis over every argument of every
registered constructor (``registry.all_models()``, so families added
later are covered without editing this file).

Each call either is accepted or raises ``ValueError``/``TypeError`` naming
an argument it was given a bad value for; no other exception type (a
backend error) escapes, and the global Keras state (image data format,
floatx, backend) is unchanged.

Validation is backend-independent and happens before any layer is built
(DESIGN.md: constructor -> validate -> build), so examples do not build:
``_common.prepare`` is wrapped (``zoo_builds.stop_after_validation``) to
raise the validated :class:`BuildSpec` once every argument has passed
instead of building, and the test checks what
validation hands to the builder (data format, shape, top, classes) and the
one rule Keras applies when the model is finally assembled (``name``, on
the same inputs, through ``keras.Model``). A few accepted examples per
family (``REAL_BUILDS_*``, spread over the family's models smallest
first, accepted examples with odd values preferred) are then built for
real, ``weights=None`` at the model's minimum input size, and their output
shape checked against the documented rule, so the builders stay fuzzed.
``weights="imagenet"`` rules are checked by deterministic cases that fail
before building.

Profiles: the default runs ``FAST_EXAMPLES`` examples per model; the
``slow`` variant runs ``SLOW_EXAMPLES`` with more valid draws and more
real builds (``nox -s fuzz``: 150 examples).
"""

from __future__ import annotations

import collections
import inspect
import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zoo_builds import Validated, stop_after_validation, validated

from keras_zoo_plus import registry

FAST_EXAMPLES = 20
# The slow session fuzzes every model on each backend. When every valid
# draw built a full model, 150 examples per model on TensorFlow took 22
# minutes of worker time (CI 2026-11-29); examples stop after validation
# now, but the default matrix keeps 50 per model and the deeper run keeps
# its own nox session, `nox -s fuzz` (KERAS_ZOO_PLUS_FUZZ_EXAMPLES=150).
SLOW_EXAMPLES = os.environ.get("KERAS_ZOO_PLUS_FUZZ_EXAMPLES", "50")
if not SLOW_EXAMPLES.isdigit() or int(SLOW_EXAMPLES) < 1:
    raise ValueError(
        "KERAS_ZOO_PLUS_FUZZ_EXAMPLES must be a positive integer; "
        f"received {SLOW_EXAMPLES!r}."
    )
SLOW_EXAMPLES = int(SLOW_EXAMPLES)
# Accepted examples built for real, per family and backend: the cost that
# remains. Spread over the family's models, smallest first (one builder
# serves a family); the deeper `nox -s fuzz` run builds more.
REAL_BUILDS_FAST = 1
REAL_BUILDS_SLOW = max(3, SLOW_EXAMPLES // 16)
COMMON = (
    "include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
    "classifier_activation", "name", "data_format",
)
MODELS = [info.name for info in registry.all_models()]
# (model, outcome) and (argument, outcome) counts, printed at the end of
# the module with ``-s`` (the report quotes them).
STATS = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_stats():
    yield
    if STATS:
        print("\nfuzz outcomes:", dict(sorted(STATS.items())))


def _shape(df, size, channels=3):
    return (channels, size, size) if df == "channels_first" else (size, size, channels)


class _Input:
    """A lazily created input tensor (created inside the example)."""

    def __init__(self, kind, shape):
        self.kind, self.shape = kind, shape

    def make(self):
        if self.kind == "keras":
            return keras.Input(self.shape)
        return np.zeros((1, *self.shape), "float32")  # not a Keras tensor

    def __repr__(self):
        return f"{self.kind}_input{self.shape}"


def _weird(arg, info, df, default):
    """Bad (or odd but possibly acceptable) values for one argument."""
    m = info.min_size
    pools = {
        "include_top": ["yes", 1, 0, None, 0.5, np.bool_(True)],
        "weights": ["imagenett", "/nonexistent/weights.h5", 3, b"imagenet", True, ["imagenet"]],
        "input_tensor": [_Input("keras", (m, m)), _Input("keras", (1, m, m, 3)),
                         _Input("numpy", _shape(df, m)), "tensor", 5,
                         _Input("keras", _shape(df, max(1, m // 2)))],
        "input_shape": [(m, m), (m, m, 3, 1), _shape(df, m - 1), (-m, m, 3), (float(m), m, 3),
                        "224x224", m, _shape(df, m, 1), _shape(df, m, 4),
                        _shape("channels_first" if df == "channels_last" else "channels_last", m),
                        (None, None, 3), [m, m, 3], (0, m, 3), (True, m, 3), ()],
        "pooling": ["average", "AVG", "", 1, "mean", ("avg",)],
        "classes": [0, -1, 1.5, "10", None, True, 1],
        "classifier_activation": ["softmaxx", 3, "", object(), "relu"],
        "name": [3, "x/y", "", None],
        "data_format": ["channels_lst", "NHWC", 1, "", "CHANNELS_LAST", b"channels_last"],
    }
    if arg in pools:
        return pools[arg]
    # A family-specific argument (alpha, depth_multiplier, dropout, ...).
    return [-1, 0, 1.5, "x", None, True, -0.5, (1, 2)]


@st.composite
def _call(draw, info, valid_weight):
    params = inspect.signature(info.constructor).parameters
    args = list(params)
    df = draw(st.sampled_from(["channels_last", "channels_first"]))
    m = info.min_size
    top = draw(st.booleans())
    kw = {"weights": None, "data_format": df, "include_top": top}
    if "input_shape" in params:
        kw["input_shape"] = _shape(df, m)
    if top and "classes" in params:
        kw["classes"] = draw(st.sampled_from([2, 7]))
    if not top and "pooling" in params:
        kw["pooling"] = draw(st.sampled_from([None, "avg", "max"]))
    if "classifier_activation" in params:
        kw["classifier_activation"] = draw(st.sampled_from([None, "softmax", "linear"]))
    if "input_tensor" in params and draw(st.integers(0, 3)) == 0:
        kw["input_tensor"] = _Input("keras", _shape(df, m))
        if draw(st.booleans()):
            kw.pop("input_shape", None)
    weird = []
    if draw(st.integers(0, valid_weight)) != 0:
        n = draw(st.integers(1, 2))
        weird = draw(st.lists(st.sampled_from(args), min_size=n, max_size=n, unique=True))
        for arg in weird:
            default = params[arg].default
            kw[arg] = draw(st.sampled_from(_weird(arg, info, df, default)))
    return kw, weird


def _global_state():
    return (keras.config.image_data_format(), keras.config.floatx(), keras.backend.backend())


def _expected_output(kw, info, model):
    """The documented output shape for a successful call."""
    params = inspect.signature(info.constructor).parameters
    top = kw.get("include_top", params["include_top"].default)
    if top:
        return (None, kw.get("classes", params["classes"].default))
    pooling = kw.get("pooling")
    out = model.output_shape
    if pooling in ("avg", "max"):
        assert len(out) == 2 and out[0] is None and out[1] > 0, out
        return out
    df = kw.get("data_format") or keras.config.image_data_format()
    assert len(out) == 4 and out[0] is None, out
    in_shape = model.input_shape
    sp_in = in_shape[2:] if df == "channels_first" else in_shape[1:3]
    sp_out = out[2:] if df == "channels_first" else out[1:3]
    for i, o in zip(sp_in, sp_out):
        assert (o is None) == (i is None) and (i is None or 0 < o <= i), (in_shape, out)
    return out


def _assert_rejection(info, kw, weird, exc):
    msg = str(exc)
    assert weird, f"valid call {kw} raised {type(exc).__name__}: {msg}"
    named = [a for a in weird if a in msg] or [
        a for a in ("input_shape", "input_tensor") if a in msg and
        {"input_shape", "input_tensor", "data_format"} & set(weird)
    ]
    assert named, f"{info.name}{kw}: message names none of {weird}: {msg}"


def _check_spec(kw, info, spec):
    """What validation hands to the builder follows the arguments."""
    params = inspect.signature(info.constructor).parameters
    df = kw.get("data_format") or keras.config.image_data_format()
    assert spec.data_format == df, (kw, spec.data_format)
    top = kw.get("include_top", params["include_top"].default)
    assert spec.include_top is top, (kw, spec.include_top)
    if top:
        assert spec.classes == kw.get("classes", params["classes"].default), (kw, spec.classes)
    shape = spec.input_shape
    assert len(shape) == 3, (kw, shape)
    spatial = shape[1:] if df == "channels_first" else shape[:2]
    channels = shape[0] if df == "channels_first" else shape[2]
    assert isinstance(channels, int) and channels > 0, (kw, shape)
    assert all(d is None or d >= info.min_size for d in spatial), (kw, shape)
    assert not (top and None in spatial), (kw, shape)
    assert tuple(spec.inputs.shape[1:]) == shape or "input_tensor" in kw, (kw, spec.inputs.shape)


def _check_name(kw, spec):
    """The model's name is checked by Keras when ``_common.finish`` creates
    the model; the same ``keras.Model`` call on the validated inputs."""
    if "name" not in kw:
        return
    model = keras.Model(spec.model_inputs, spec.inputs, name=kw["name"])
    if isinstance(kw["name"], str) and kw["name"]:
        assert model.name == kw["name"]


def _check_built(info, kw, model):
    expected = _expected_output(kw, info, model)
    assert model.output_shape == expected, (kw, model.output_shape, expected)
    if "name" in kw and isinstance(kw["name"], str) and kw["name"]:
        assert model.name == kw["name"]


def _check_call(info, kw, weird):
    """One call that stops after validation: ``"rejected"`` or ``"validated"``."""
    state = _global_state()
    call_kw = {k: (v.make() if isinstance(v, _Input) else v) for k, v in kw.items()}
    try:
        with stop_after_validation():
            info.constructor(**call_kw)
        pytest.fail(  # pragma: no cover
            f"{info.name}{kw} returned a model without calling _common.prepare: "
            "constructors validate through it before building (DESIGN.md)"
        )
    except Validated as stop:
        spec = stop.spec
    except (ValueError, TypeError) as exc:
        _assert_rejection(info, kw, weird, exc)
        outcome = "rejected"
        spec = None
    except Exception as exc:  # pragma: no cover - this is the failure we hunt
        pytest.fail(f"{info.name}{kw} raised {type(exc).__module__}.{type(exc).__name__}: {exc}")
    if spec is not None:
        _check_spec(kw, info, spec)
        try:
            _check_name(kw, spec)
        except (ValueError, TypeError) as exc:
            _assert_rejection(info, kw, weird, exc)
            outcome = "rejected"
        else:
            outcome = "validated"
    assert _global_state() == state, f"{info.name}{kw} changed global Keras state"
    return outcome


def _build_call(info, kw):
    """Build an accepted call for real and check its output shape."""
    state = _global_state()
    call_kw = {k: (v.make() if isinstance(v, _Input) else v) for k, v in kw.items()}
    try:
        model = info.constructor(**call_kw)
    except Exception as exc:  # pragma: no cover - accepted, then failed to build
        pytest.fail(f"{info.name}{kw} passed validation, then its build raised "
                    f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    _check_built(info, kw, model)
    assert _global_state() == state, f"{info.name}{kw} changed global Keras state"


def real_builds(name, per_family):
    """How many accepted examples of ``name`` are built for real: the
    family's ``per_family`` builds dealt round-robin over its models,
    smallest first, skipping big ones (``is_large``: same builder, several
    times the build cost) where the family has others."""
    family = registry.model_info(name).family
    members = sorted(
        (i for i in registry.all_models() if i.family == family), key=lambda i: (i.params, i.name)
    )
    members = [i for i in members if not i.is_large] or members
    names = [i.name for i in members]
    if name not in names:
        return 0
    return len(range(names.index(name), per_family, len(names)))


def _run(name, data, valid_weight, accepted):
    info = registry.model_info(name)
    kw, weird = data.draw(_call(info, valid_weight), label="call")
    outcome = _check_call(info, kw, weird)
    if outcome == "validated":
        accepted.append((kw, weird))
    STATS[("calls", outcome)] += 1
    for arg in weird:
        STATS[(arg, outcome)] += 1


def _fuzz(name, examples, valid_weight, builds):
    """``examples`` hypothesis examples, stopped after validation; then
    ``builds`` of the accepted ones built for real: the first (hypothesis
    starts from the simplest example, a valid call), then those with
    odd-but-accepted values, then the others, in the order drawn."""
    accepted = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def run(data):
        _run(name, data, valid_weight, accepted)

    run()
    first, rest = accepted[:1], accepted[1:]
    chosen = (first + [c for c in rest if c[1]] + [c for c in rest if not c[1]])[:builds]
    assert len(chosen) == builds, f"{name}: {len(accepted)} accepted calls, {builds} builds wanted"
    info = registry.model_info(name)
    for kw, weird in chosen:
        _build_call(info, kw)
        STATS[("calls", "built")] += 1
        for arg in weird:
            STATS[(arg, "built")] += 1


@pytest.mark.parametrize("name", MODELS)
def test_constructor_fuzz(name):
    _fuzz(name, FAST_EXAMPLES, valid_weight=30, builds=real_builds(name, REAL_BUILDS_FAST))


@pytest.mark.slow
# The deeper run is validation (backend-free Python, before any layer is
# built) and more real builds of the same builders; the fast run above,
# with its real builds, stays on every backend. On tensorflow alone this
# cost 180 s of worker time (2026-12-01).
@pytest.mark.backend_independent
@pytest.mark.parametrize("name", MODELS)
def test_constructor_fuzz_slow(name):
    _fuzz(name, SLOW_EXAMPLES, valid_weight=3, builds=real_builds(name, REAL_BUILDS_SLOW))


def test_real_builds_cover_every_family():
    for per_family in (REAL_BUILDS_FAST, REAL_BUILDS_SLOW):
        by_family = collections.Counter()
        for name in MODELS:
            by_family[registry.model_info(name).family] += real_builds(name, per_family)
        families = {registry.model_info(name).family for name in MODELS}
        assert by_family == dict.fromkeys(families, per_family)


# --------------------------------------------------------------------------
# weights="imagenet" rules: deterministic, all fail before building.

IMAGENET_CASES = [
    (dict(include_top=True, input_shape=(64, 64, 3)), "`input_shape` should be", "input_shape"),
    (dict(include_top=True, classifier_activation="relu"), "classifier_activation", "relu"),
    (dict(include_top=True, classes=0), "positive integer", "classes"),
    (dict(include_top="no"), "must be a bool", "include_top"),
    (dict(include_top=False, pooling="average"), "`pooling` must be one of", "average"),
    (dict(include_top=False, data_format="channels_lst"), "`data_format` must be", "channels_lst"),
]


# Accepted with weights="imagenet" (other classes: a fresh classifier;
# other channels: the first convolution adapted), checked by validation
# alone: (arguments, BuildSpec field, expected value).
IMAGENET_ACCEPTED = [
    (dict(include_top=True, classes=10), "classes", 10),
    (dict(include_top=False, input_shape=(64, 64, 1)), "input_shape", (64, 64, 1)),
    (dict(include_top=False, input_shape=(64, 64, 4)), "input_shape", (64, 64, 4)),
]


def _imagenet_case_kwargs(name, case, cases=IMAGENET_CASES):
    """The case's arguments that ``name``'s constructor takes, or ``None``
    where the case does not apply (no official weights; a 64x64 shape below
    the model's minimum size tests another rule)."""
    info = registry.model_info(name)
    if not info.weights:
        return None
    params = inspect.signature(info.constructor).parameters
    kw = {k: v for k, v in cases[case][0].items() if k in params}
    if "input_shape" in kw and info.default_size and kw["input_shape"][0] < info.min_size:
        return None
    return kw


@pytest.mark.parametrize(
    "name,case",
    [
        (name, case)
        for name in MODELS
        for case in range(len(IMAGENET_CASES))
        if _imagenet_case_kwargs(name, case) is not None
    ],
)
def test_imagenet_rules_fail_before_building(name, case, keras_home, monkeypatch):
    info = registry.model_info(name)
    kw = _imagenet_case_kwargs(name, case)
    _, text, named = IMAGENET_CASES[case]
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")  # a download attempt would fail loudly
    before = _global_state()
    with pytest.raises((ValueError, TypeError)) as exc:
        info.constructor(weights="imagenet", **kw)
    assert text in str(exc.value) and named in str(exc.value), str(exc.value)
    assert "KERAS_ZOO_PLUS_OFFLINE" not in str(exc.value)  # rejected before any fetch
    assert _global_state() == before


@pytest.mark.parametrize(
    "name,case",
    [
        (name, case)
        for name in MODELS
        for case in range(len(IMAGENET_ACCEPTED))
        if _imagenet_case_kwargs(name, case, IMAGENET_ACCEPTED) is not None
    ],
)
def test_imagenet_accepts_other_classes_and_channels(name, case, keras_home, monkeypatch):
    info = registry.model_info(name)
    kw = _imagenet_case_kwargs(name, case, IMAGENET_ACCEPTED)
    _, field, value = IMAGENET_ACCEPTED[case]
    monkeypatch.setenv("KERAS_ZOO_PLUS_OFFLINE", "1")
    before = _global_state()
    spec = validated(info.constructor, weights="imagenet", **kw)
    assert getattr(spec, field) == value
    assert _global_state() == before
