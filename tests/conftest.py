import os
import sys

import keras
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _restore_keras_globals():
    """Every test leaves the global Keras state as it found it."""
    fmt = keras.config.image_data_format()
    floatx = keras.config.floatx()
    yield
    changed = (keras.config.image_data_format(), keras.config.floatx()) != (fmt, floatx)
    keras.config.set_image_data_format(fmt)
    keras.config.set_floatx(floatx)
    assert not changed, "a test or the library changed global Keras state"


@pytest.fixture(params=["channels_last", "channels_first"])
def data_format(request):
    return request.param
