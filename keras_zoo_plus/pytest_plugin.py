"""pytest plugin of keras-zoo-plus (the ``pytest11`` entry point).

It loads in every pytest run of an environment where keras-zoo-plus is
installed, so it imports nothing heavy: neither Keras nor a backend, nor
:mod:`keras_zoo_plus.testing` until a test asks for the fixture.

Fixture ``backend_parity``: :func:`keras_zoo_plus.testing.assert_backend_parity`::

    def test_my_model(backend_parity):
        backend_parity("mypackage.models:build", (64, 64, 3))
"""

import pytest


@pytest.fixture
def backend_parity():
    """:func:`keras_zoo_plus.testing.assert_backend_parity`: runs your model
    on every installed backend and data format in worker processes and
    fails with the cell table when one deviates."""
    from keras_zoo_plus.testing import assert_backend_parity

    return assert_backend_parity
