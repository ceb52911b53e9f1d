"""Test matrix: one session per Keras backend, plus lint, golden and slow.

    nox                 # lint + tensorflow + torch + jax + slow (the README's test command)
    nox -s torch        # one backend
    nox -s golden       # regenerate tests/golden/ with tf_keras (Keras 2)
    nox -s slow         # heavy cases (marked @pytest.mark.slow) on every backend

Every install goes through constraints.txt so CI stays on CPU builds.
"""

import os

import nox

nox.options.sessions = ["lint", "tensorflow", "torch", "jax", "slow"]
nox.options.default_venv_backend = "venv"

CONSTRAINTS = ("-c", "constraints.txt")
BACKEND_PACKAGES = {
    "tensorflow": ["tensorflow-cpu"],
    "torch": ["torch"],
    "jax": ["jax[cpu]"],
}
ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def _install(session, backend):
    session.install(*CONSTRAINTS, "-e", ".[test]", *BACKEND_PACKAGES[backend])


def _pytest(session, backend, *args):
    env = dict(ENV, KERAS_BACKEND=backend)
    # Keep the user's Keras config out of the tests.
    env["KERAS_HOME"] = os.path.join(session.create_tmp(), "keras_home")
    session.run("pytest", *args, *session.posargs, env=env)


def _backend_session(backend):
    @nox.session(name=backend)
    def run(session):
        _install(session, backend)
        _pytest(session, backend, "-m", "not slow")

    run.__doc__ = f"Unit, oracle-parity and integration tests on the {backend} backend."
    return run


tensorflow = _backend_session("tensorflow")
torch = _backend_session("torch")
jax = _backend_session("jax")


@nox.session
def slow(session):
    """Heavy oracle cases (large inputs, big models) on each backend.

    One venv holds all three backends (one install instead of three); pytest
    runs once per backend since the backend is fixed per process.
    """
    session.install(*CONSTRAINTS, "-e", ".[test]", *sum(BACKEND_PACKAGES.values(), []))
    for backend in BACKEND_PACKAGES:
        _pytest(session, backend, "-m", "slow")


@nox.session
def lint(session):
    """ruff check (lint and import order)."""
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")


@nox.session
def golden(session):
    """Regenerate tests/golden/*.npz from tf_keras (Keras 2), the oracle."""
    session.install(*CONSTRAINTS, "tensorflow-cpu", "tf_keras", "h5py", "numpy")
    session.run("python", "tests/golden/generate.py", *session.posargs, env=ENV)
