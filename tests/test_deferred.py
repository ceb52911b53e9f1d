"""keras_zoo_plus.deferred.build_without_initializers: same model, same
outputs once the weights are set, no initializer run, Keras' bookkeeping
left as it was."""

import keras
import numpy as np
import pytest
from keras.src.backend.common import global_state

from keras_zoo_plus import synthetic
from keras_zoo_plus.applications import mobilenet
from keras_zoo_plus.deferred import build_structure_only, build_without_initializers

from helpers import run_model


def _pending():
    return list(global_state.get_global_attribute("uninitialized_variables") or [])


class _Counting(keras.initializers.Initializer):
    """An initializer that counts its calls."""

    calls = 0

    def __call__(self, shape, dtype=None):
        type(self).calls += 1
        return keras.ops.ones(shape, dtype=dtype)


def _counting_model():
    inputs = keras.Input((6, 7, 3))
    x = keras.layers.Conv2D(4, 3, kernel_initializer=_Counting(), name="conv")(inputs)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    return keras.Model(inputs, x)


def test_no_initializer_runs_and_weights_start_at_zero():
    _Counting.calls = 0
    model = build_without_initializers(_counting_model)
    assert _Counting.calls == 0
    for w in model.weights:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), np.zeros(w.shape))
    # A variable that is not a layer weight (the Dropout's seed state) has
    # its own initial value, and Keras has nothing left to initialise.
    seed_states = [v for v in model.variables if "seed_generator" in v.path]
    assert seed_states
    assert all(keras.ops.convert_to_numpy(v).any() for v in seed_states)
    assert _pending() == []
    keras.backend.clear_session()


def test_same_outputs_as_an_ordinary_build_once_weights_are_set():
    kwargs = dict(weights=None, alpha=0.25, input_shape=(40, 57, 3), classifier_activation=None)
    ordinary = mobilenet.MobileNet(**kwargs)
    quick = build_without_initializers(mobilenet.MobileNet, **kwargs)
    assert [w.shape for w in quick.weights] == [w.shape for w in ordinary.weights]
    assert [lay.name for lay in quick.layers] == [lay.name for lay in ordinary.layers]
    arrays = synthetic.synthesize(synthetic.layer_specs(ordinary), seed=3)
    for model in (ordinary, quick):
        for layer, values in zip([lay for lay in model.layers if lay.weights], arrays):
            layer.set_weights(values)
    x = synthetic.synthetic_input((2, 40, 57, 3), seed=3)
    np.testing.assert_array_equal(run_model(quick, x), run_model(ordinary, x))
    np.testing.assert_array_equal(run_model(quick, x, compiled=False),
                                  run_model(ordinary, x, compiled=False))
    keras.backend.clear_session()


def test_a_refused_build_leaves_nothing_pending():
    before = _pending()
    with pytest.raises(ValueError, match="alpha"):
        build_without_initializers(mobilenet.MobileNet, weights=None, alpha=-1.0)
    assert _pending() == before


def test_structure_only_builds_the_same_graph_and_leaves_nothing_pending():
    _Counting.calls = 0
    before = _pending()
    model = build_structure_only(_counting_model)
    assert _Counting.calls == 0
    assert _pending() == before  # nothing would initialise them later
    kwargs = dict(weights=None, alpha=0.25, input_shape=(40, 57, 3))
    ordinary = mobilenet.MobileNet(**kwargs)
    shell = build_structure_only(mobilenet.MobileNet, **kwargs)
    assert _pending() == before
    assert shell.get_config() == ordinary.get_config()
    assert [(w.path, w.shape) for w in shell.weights] == [
        (w.path, w.shape) for w in ordinary.weights]
    # tf_keras.applications.MobileNet(weights=None, alpha=0.25, input_shape=(40, 57, 3))
    assert shell.count_params() == ordinary.count_params() == 475_544
    assert model.count_params() == 3 * 3 * 3 * 4 + 4
    keras.backend.clear_session()


def test_a_structure_only_model_with_an_integer_variable_nests():
    """A Normalization's integer ``count`` gets its value (0): Keras' torch
    backend failed to track the model inside a Sequential without it."""
    def build():
        inputs = keras.Input((6, 7, 3))
        outputs = keras.layers.Conv2D(2, 1)(keras.layers.Normalization(axis=-1)(inputs))
        return keras.Model(inputs, outputs)

    shell = build_structure_only(build)
    count = shell.layers[1].count
    assert keras.ops.convert_to_numpy(count) == 0
    kernel = shell.layers[2].kernel
    assert kernel._value is None  # the float variables still have no value
    nested = keras.Sequential([shell, keras.layers.Dense(2)])
    assert nested.output_shape == (None, 6, 7, 2)
    keras.backend.clear_session()


def test_a_refused_structure_build_leaves_nothing_pending():
    before = _pending()
    with pytest.raises(ValueError, match="alpha"):
        build_structure_only(mobilenet.MobileNet, weights=None, alpha=-1.0)
    assert _pending() == before


# --------------------------------------------------------------------------
# Constructors given weights build without initializers, then load.


@pytest.fixture
def initializer_calls(monkeypatch):
    """Counts calls of the initializers the zoo's layers use (Glorot for
    convolutions and Dense, zeros and ones for biases and BatchNorm)."""
    from keras.src.initializers import constant_initializers, random_initializers

    calls = []
    for cls in (random_initializers.VarianceScaling, constant_initializers.Zeros,
                constant_initializers.Ones):
        real = cls.__call__

        def counted(self, shape, dtype=None, _real=real):
            calls.append(type(self).__name__)
            return _real(self, shape, dtype=dtype)

        monkeypatch.setattr(cls, "__call__", counted)
    return calls


KW = dict(alpha=0.25, input_shape=(32, 40, 3), include_top=False)


def test_a_constructor_given_weights_runs_no_initializer(tmp_path, initializer_calls):
    source = mobilenet.MobileNet(weights=None, **KW)
    assert initializer_calls  # the counter sees an ordinary build
    arrays = synthetic.synthesize(synthetic.layer_specs(source), seed=5)
    for layer, values in zip([la for la in source.layers if la.weights], arrays):
        layer.set_weights(values)
    path = str(tmp_path / "source.weights.h5")
    source.save_weights(path)
    before = _pending()
    del initializer_calls[:]
    model = mobilenet.MobileNet(weights=path, **KW)
    assert initializer_calls == []
    assert _pending() == before
    for got, want in zip(model.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    x = synthetic.synthetic_input((2, 32, 40, 3), seed=5)
    np.testing.assert_array_equal(run_model(model, x), run_model(source, x))
    keras.backend.clear_session()


def test_a_constructor_whose_weights_do_not_fit_raises_and_leaves_nothing_pending(tmp_path):
    other = mobilenet.MobileNet(weights=None, **dict(KW, alpha=0.5))
    path = str(tmp_path / "alpha_0.5.weights.h5")
    other.save_weights(path)
    before = _pending()
    with pytest.raises(ValueError, match=r"Cannot load the weights file .*alpha_0\.5\.weights\.h5"):
        mobilenet.MobileNet(weights=path, **KW)
    assert _pending() == before
    keras.backend.clear_session()


def test_constructor_signatures_are_the_undecorated_ones():
    import inspect

    sig = inspect.signature(mobilenet.MobileNet)
    assert list(sig.parameters)[:3] == ["input_shape", "alpha", "depth_multiplier"]
    assert mobilenet.MobileNet.__name__ == "MobileNet"
    assert mobilenet.MobileNet.__module__ == "keras_zoo_plus.applications.mobilenet"


def test_a_weighted_constructor_inside_the_callers_stateless_scope_builds_there(tmp_path):
    source = mobilenet.MobileNet(weights=None, **KW)
    path = str(tmp_path / "source.weights.h5")
    source.save_weights(path)
    before = _pending()
    # No initialisation may happen inside the caller's scope: the
    # constructor builds there as it does without weights.
    model = build_without_initializers(mobilenet.MobileNet, weights=path, **KW)
    assert [w.shape for w in model.weights] == [w.shape for w in source.weights]
    assert _pending() == before
    keras.backend.clear_session()
