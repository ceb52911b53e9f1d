import os
import sys

# Two virtual CPU devices for JAX (tests/test_distribution.py shards over
# them). XLA reads the flag when JAX creates its CPU client, the first time
# a device is asked for: before any test runs. Every other test still runs
# on the first device, as a user's single-device program does.
if os.environ.get("KERAS_BACKEND") == "jax" and "host_platform_device_count" not in os.environ.get(
        "XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        filter(None, [os.environ.get("XLA_FLAGS"), "--xla_force_host_platform_device_count=2"]))

import keras  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

from helpers import BACKEND_INDEPENDENT_ON  # noqa: E402


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


def pytest_collection_modifyitems(config, items):
    """Deselect (not skip) the ``backend_independent`` tests outside the
    torch session (helpers.BACKEND_INDEPENDENT_ON): what they check is
    decided by Python code that branches on no backend, and checking it
    three times only cost CI time. Each such test says which per-backend
    tests cover what the backend does.

    Likewise ``only_backend(name, ...)`` tests (what only those backends
    have: TensorFlow's SavedModel and LiteRT exporters, torch's fused path)
    are deselected on the other backends, not reported as skipped."""
    backend = keras.backend.backend()

    def elsewhere(item):
        only = item.get_closest_marker("only_backend")
        if only is not None and backend not in only.args:
            return True
        return (backend != BACKEND_INDEPENDENT_ON
                and item.get_closest_marker("backend_independent") is not None)

    keep, dropped = [], []
    for item in items:
        (dropped if elsewhere(item) else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


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


_ZOO_ENV = (
    "KERAS_ZOO_PLUS_WEIGHTS_URL",
    "KERAS_ZOO_PLUS_OFFLINE",
    "KERAS_ZOO_PLUS_TIMEOUT",
    "KERAS_ZOO_PLUS_CLASS_INDEX_URL",
)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """A private, empty Keras cache (``$KERAS_HOME/models``) and none of the
    keras-zoo-plus download settings inherited from the environment."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    for name in _ZOO_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def http_server():
    """A loopback HTTP server (127.0.0.1, ephemeral port) with injectable
    faults; see tests/http_server.py. Stopped when the test ends."""
    from http_server import LoopbackServer

    with LoopbackServer(max_requests=200, slow_seconds=3.0) as server:
        yield server
