"""Oracle parity: our models vs tf_keras (Keras 2) with identical
synthetic weights, on the current backend, in both data formats.

Every model of the table, with and without its top, at its smallest legal
(non-square) size (tests/golden/cases.py), must reproduce the oracle's
output within ``REL_TOL`` of its largest magnitude.

Each (case, data format) model is built once per worker
(tests/model_cache.py) and serves every check of that pair:

* ``in_process``: the weights set by ``weights.assign_legacy`` (the
  loader's own name/order matching, without HDF5 I/O), inference as
  ``helpers.run_model`` runs it;
* ``weights_file`` (one case per family, ``LOADER_CASES``): the weights
  loaded through the public ``weights="<legacy .h5>"`` argument from a
  file in the layout tf_keras writes; they must be the synthetic arrays
  exactly, and the output must match the oracle;
* ``eager``: the same model through a second inference path, where the
  backend takes another formulation: torch's eager call runs the layers
  one by one (``predict`` fuses Conv -> BN -> ReLU, keras_zoo_plus.fusion),
  JAX's eager depthwise op differs from its jitted one
  (keras_zoo_plus.ops), so only the families with depthwise or separable
  convolutions get it there. Once per family (see ``_checks``).

On JAX, ResNet-RS270, 350 and 420 take the eager path instead of the
compiled one (``EAGER_ON_JAX``): they repeat ResNet-RS200's layers, whose
compiled path is checked, and compiling their long programs cost more
than all the other ResNet-RS models together.

On JAX the noxfile compiles with most XLA optimizations off (its ENV:
a fifth to a third cheaper, outputs about 1e-6 from the default
pipeline's); the ``weights_file`` case of each family, in both formats,
is compiled at XLA's default level instead (``helpers.default_xla_optimizations``),
so every family is also checked on the path a user's ``predict`` takes.

A no-top case and the top case of the same arguments share that build
(``model_cache.PARTNER``: the top model with the no-top model's last layer
as a second output; the torch session checks, for every pair and format,
that the no-top model is exactly that prefix of it, which backend-free
Python decides), and one inference gives both outputs: on JAX one
compilation instead of two.

Tests are listed build by build (a top case and its no-top partner, each
data format), so that each worker builds each model once (pytest-xdist
hands every worker consecutive tests, in order).
"""

import contextlib

import keras
import model_cache
import numpy as np
import pytest

from keras_zoo_plus import model_table, weights

from helpers import (
    CASES,
    EXTRA_CASES,
    FLOAT32_FLOOR,
    LOADER_CASES,
    REL_TOL,
    default_xla_optimizations,
    from_format,
    load_golden,
    rel_error,
)

BACKEND = keras.backend.backend()
FORMATS = ("channels_last", "channels_first")
# Families with depthwise or separable convolutions (ConvNeXt: its 7x7
# grouped Conv2D runs as the depthwise op, keras_zoo_plus.layers.Conv2D).
_DEPTHWISE_FAMILIES = ("mobilenet", "mobilenet_v2", "mobilenet_v3", "xception", "nasnet", "convnext",
                       "efficientnet", "efficientnet_v2")


# On JAX these models are checked through their eager call instead of one
# compiled program. ResNet-RS270, 350 and 420 repeat ResNet-RS200's layers
# more times: every layer of theirs, class, arguments and input and output
# shapes, is one of ResNet-RS200's (test_eager_on_jax_models_repeat_
# resnet_rs200; the only exception, the top's Dropout rate, does nothing in
# inference). XLA compiles a program in time that grows with its length:
# at -O0 (the noxfile's ENV) their compiled parity builds cost 45, 64 and 83
# s of JAX worker time (both data formats; 2026-12-02, Intel Xeon). Eager
# JAX compiles each operation once per shape and keeps it in the
# compilation cache, which ResNet-RS200's and each other's calls fill:
# ResNet-RS420's eager call took 4.3 s after ResNet-RS350's, against 20 s
# to compile it. The compiled path of those very layers is checked on
# ResNet-RS50 to 200, in both data formats.
EAGER_ON_JAX = frozenset({"resnetrs270", "resnetrs350", "resnetrs420"})
#: What the models of EAGER_ON_JAX repeat.
EAGER_ON_JAX_REPEAT = "resnetrs200"


def _checks(case):
    c = CASES[case]
    if BACKEND == "jax" and c.model in EAGER_ON_JAX:
        return ["eager"]
    checks = ["weights_file" if case in LOADER_CASES else "in_process"]
    family = model_table.get(c.model).family
    # The second path runs the same layers one formulation apart (torch:
    # layer by layer, unfused; JAX: the eager depthwise op), and those
    # layers and their arguments are the family's, not the variant's: it
    # is checked once per family, on the no-top case of its smallest model
    # (LOADER_CASES), and on each extra variant that changes an operation's
    # arguments (MobileNet's depth_multiplier: the depthwise op's
    # multiplier). Not on slow cases. Every no-top body checked it before:
    # on JAX, eager compiles each op of each shape on its own (10-50 s per
    # model here), for formulations the op tests (test_ops) cover already.
    second = case in LOADER_CASES or (
        case in EXTRA_CASES and c.kwargs.get("depth_multiplier", 1) != 1
    )
    if second and "slow" not in c.marks and (
        BACKEND == "torch" or (BACKEND == "jax" and family in _DEPTHWISE_FAMILIES)
    ):
        checks.append("eager")
    return checks


def _builds():
    """``[[case, ...], ...]``: the cases of each build, top case first."""
    groups = {}
    for case in CASES:
        groups.setdefault(model_cache.build_key(case), []).append(case)
    return list(groups.values())


PARAMS = [
    pytest.param(case, data_format, check,
                 # One worker runs every case of a build (noxfile: --dist
                 # loadgroup): xdist's default sent a no-top case and its top
                 # partner to different workers, which then built the model
                 # twice (ResNetRS420: 60 s a build on torch).
                 marks=[pytest.mark.xdist_group(f"{group[0]}-{data_format}")]
                 + [getattr(pytest.mark, m) for m in CASES[case].marks]
                 + ([pytest.mark.xfail(strict=True, reason=FLOAT32_FLOOR[case])]
                    if case in FLOAT32_FLOOR else []),
                 id=f"{case}-{data_format}-{check}")
    for group in _builds()
    for data_format in FORMATS
    for case in group
    for check in _checks(case)
]


@pytest.fixture(scope="module", autouse=True)
def _one_build_per_model():
    """Free the last model at the end; no model was built twice here."""
    before = dict(model_cache.builds)
    yield
    model_cache.evict()
    twice = {k: n for k, n in model_cache.builds.items() if n - before.get(k, 0) > 1}
    assert not twice, f"models built more than once on this worker: {twice}"


@pytest.mark.parametrize("case, data_format, check", PARAMS)
def test_oracle_parity(case, data_format, check):
    model = model_cache.built(case, data_format)
    expected, structure = load_golden(case)
    if check == "weights_file":
        assert model_cache.loaded_by[(case, data_format)] == "weights_file"
        _, arrays = model_cache.synthetic_arrays(case)
        got = [w for layer in weights.weighted_layers(model) for w in layer.get_weights()]
        want = [a for layer in arrays for a in layer]
        assert len(got) == len(want), (len(got), len(want))
        for i, (a, b) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(a, b, err_msg=f"{case}: weight #{i}")
    # predict_on_batch on JAX and torch, eager on TF (helpers.run_model).
    compiled = False if check == "eager" else None
    with (default_xla_optimizations() if check == "weights_file" else contextlib.nullcontext()):
        y = model_cache.output(case, data_format, compiled=compiled)
    err = rel_error(from_format(y, data_format), expected)
    what = f"{case} {data_format} {check}"
    print(f"{what}: rel err {err:.3g}")
    assert err <= REL_TOL, f"{what}: rel err {err:.3g} > {REL_TOL}"


def _layer_signatures(model):
    """``{(class, arguments but the name, input shapes, output shape)}`` of
    ``model``'s layers."""
    def shapes(tensors):
        return repr([tuple(t.shape) for t in keras.tree.flatten(tensors)])

    return {
        (type(layer).__name__,
         repr(sorted((k, v) for k, v in layer.get_config().items() if k != "name")),
         shapes(layer.input), shapes(layer.output))
        for layer in model.layers
    }


@pytest.mark.backend_independent
def test_eager_on_jax_models_repeat_resnet_rs200():
    """The grounds of EAGER_ON_JAX: each of those models is made of
    ResNet-RS200's layers (decided by backend-free Python, see
    test_model_table.test_constructors_branch_on_no_backend), so the
    compiled path of every layer they run is checked on ResNet-RS200."""
    import zoo_builds

    def signatures(model_name):
        entry = model_table.get(model_name)
        kwargs = model_cache.constructor_kwargs(f"{model_name}_top", "channels_last")
        model = zoo_builds.structure(entry.constructor, weights=None, **kwargs)
        return _layer_signatures(model), len(model.layers)

    reference, n_reference = signatures(EAGER_ON_JAX_REPEAT)
    for name in sorted(EAGER_ON_JAX):
        assert model_table.get(name).family == model_table.get(EAGER_ON_JAX_REPEAT).family
        theirs, n_layers = signatures(name)
        assert n_layers > n_reference, (name, n_layers, n_reference)
        extra = {sig for sig in theirs - reference if sig[0] != "Dropout"}
        assert not extra, f"{name}: layers that {EAGER_ON_JAX_REPEAT} does not have: {extra}"
    keras.backend.clear_session()


@pytest.mark.backend_independent
def test_check_prefix_rejects_a_no_top_model_that_is_not_the_prefix():
    """The check that lets a no-top case read its output off the top
    model's build can fail: a no-top model of another input size is not a
    prefix (its input layer differs), and one of another variant is not."""
    import zoo_builds

    notop, top = "regnetx004_notop", "regnetx004_top"
    assert model_cache.PARTNER[notop] == top
    entry = model_table.get("regnetx004")
    kwargs = model_cache.constructor_kwargs(top, "channels_last")
    top_model = zoo_builds.structure(entry.constructor, weights=None, **kwargs)
    structures = load_golden(notop)[1], load_golden(top)[1]
    same = model_cache.constructor_kwargs(notop, "channels_last")
    model_cache.check_prefix(zoo_builds.structure(entry.constructor, weights=None, **same),
                             top_model, *structures)
    bigger = dict(same, input_shape=(96, 96, 3))
    with pytest.raises(AssertionError, match="regnetx004: layer 'input' differs between the no-top"):
        model_cache.check_prefix(zoo_builds.structure(entry.constructor, weights=None, **bigger),
                                 top_model, *structures)
    other = model_table.get("regnetx006")
    with pytest.raises(AssertionError, match="regnetx006: no-top layer "
                       "'regnetx006_prestem_rescaling' is not in the top model"):
        model_cache.check_prefix(zoo_builds.structure(other.constructor, weights=None, **same),
                                 top_model, *structures)
    keras.backend.clear_session()
