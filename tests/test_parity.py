"""Oracle parity: our models vs tf_keras (Keras 2) with identical
synthetic weights, on the current backend, in both data formats.

Weights reach our models through the public ``weights=`` argument, as a
legacy HDF5 file in the exact layout (names, nesting) tf_keras writes.
"""

import pytest
from helpers import (
    CASES,
    REL_TOL,
    from_format,
    golden_arrays,
    golden_input,
    input_shape_for,
    load_golden,
    rel_error,
    run_model,
    write_legacy_h5,
)

from keras_zoo_plus import applications

_files = {}


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


def _weights_file(case, weights_dir):
    if case not in _files:
        _, structure = load_golden(case)
        path = weights_dir / f"{case}.h5"
        write_legacy_h5(path, structure, golden_arrays(structure))
        _files[case] = str(path)
    return _files[case]


def _params(case):
    marks = CASES[case][4]
    return pytest.param(case, marks=[getattr(pytest.mark, m) for m in marks], id=case)


@pytest.mark.parametrize("case", [_params(c) for c in CASES])
def test_oracle_parity(case, data_format, weights_dir):
    ctor, kwargs, _, _, _ = CASES[case]
    expected, _ = load_golden(case)
    kw = dict(kwargs)
    kw.update(
        weights=_weights_file(case, weights_dir),
        input_shape=input_shape_for(case, data_format),
        data_format=data_format,
    )
    if kw.get("include_top", True):
        kw["classifier_activation"] = None
    model = getattr(applications, ctor)(**kw)
    y = run_model(model, golden_input(case, data_format))
    err = rel_error(from_format(y, data_format), expected)
    print(f"{case} {data_format}: rel err {err:.3g}")
    assert err <= REL_TOL, f"{case} {data_format}: rel err {err:.3g} > {REL_TOL}"
