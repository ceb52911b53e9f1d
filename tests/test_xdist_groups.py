"""pytest-xdist's ``--dist loadgroup``, which the noxfile runs every session
with: the oracle-parity tests that share one model build are one
``xdist_group`` (tests/test_parity.py) and must land on one worker.

On pytest 9.2.0 with pytest-xdist 3.8.0 the grouping silently did nothing
(pytest-xdist#1386): CI's no-top cases each rebuilt their top partner's model
on the other worker, about half of the parity time. constraints.txt pins a
pytest it works with, and the test below fails on a pair that does not
group (a worker cannot refuse to run with a readable message: xdist turns
a collection-time error there into an INTERNALERROR that hides it)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Decided by the installed pytest and pytest-xdist, not by Keras.
pytestmark = pytest.mark.backend_independent

GROUPED = textwrap.dedent("""
    import json, os, pathlib
    import pytest

    @pytest.mark.parametrize("i", range(6))
    @pytest.mark.xdist_group("together")
    def test_grouped(i):
        pathlib.Path(f"ran_{i}.json").write_text(
            json.dumps(os.environ["PYTEST_XDIST_WORKER"]))

    @pytest.mark.parametrize("i", range(6))
    def test_free(i):
        pass
""")


def test_loadgroup_runs_a_group_on_one_worker(tmp_path):
    """The installed pytest and pytest-xdist, in a pytest of their own
    (no conftest of ours): six tests of one group, with six ungrouped ones
    to spread, all run on one worker."""
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-n", "2", "--dist", "loadgroup", "test_grouped.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    workers = {json.loads((tmp_path / f"ran_{i}.json").read_text()) for i in range(6)}
    import xdist

    assert len(workers) == 1, (
        f"--dist loadgroup ran one xdist_group on workers {sorted(workers)} with pytest "
        f"{pytest.__version__} and pytest-xdist {xdist.__version__} (pytest-xdist#1386): "
        "install the versions in constraints.txt")
