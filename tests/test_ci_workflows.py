"""The GitHub Actions workflows: ours (.github/workflows/ci.yml, the nox
matrix) and the one the README gives users (examples/ci/keras-compat.yml),
read as YAML."""

import ast
import pathlib
import re
import shlex

import pytest
import yaml

from keras_zoo_plus import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
CI = ROOT / ".github" / "workflows" / "ci.yml"
USER_WORKFLOW = ROOT / "examples" / "ci" / "keras-compat.yml"


def _load(path):
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 (PyYAML) reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _nox_default_sessions():
    """``nox.options.sessions`` of noxfile.py, read without importing nox."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and ast.unparse(node.targets[0]) == "nox.options.sessions"):
            return ast.literal_eval(node.value)
    raise AssertionError("noxfile.py sets no nox.options.sessions")


def _step(job, uses):
    found = [s for s in job["steps"] if s.get("uses", "").startswith(uses)]
    assert len(found) == 1, (uses, job["steps"])
    return found[0]


def test_ci_runs_each_default_nox_session_as_a_job():
    data = _load(CI)
    assert {"push", "pull_request"} <= set(data["on"])
    [(name, job)] = data["jobs"].items()
    sessions = _nox_default_sessions()
    assert sessions == ["lint", "tensorflow", "torch", "jax", "slow"]
    assert job["strategy"]["matrix"] == {"session": sessions}
    assert job["strategy"]["fail-fast"] is False
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert "nox -s ${{ matrix.session }}" in runs
    # One job per session: the slow one covers every backend (noxfile.py's
    # default, for .ci/run's sequential matrix, is torch alone).
    [nox_step] = [s for s in job["steps"] if s.get("run") == "nox -s ${{ matrix.session }}"]
    assert nox_step["env"]["NOX_SLOW_BACKENDS"] == "all"
    setup = _step(job, "actions/setup-python@")
    assert setup["with"]["cache"] == "pip"
    # The pip cache is keyed on what decides the installs.
    assert set(setup["with"]["cache-dependency-path"].split()) == {
        "constraints.txt", "pyproject.toml"}


def test_user_workflow_runs_check_on_a_schedule_and_on_dependency_bumps():
    data = _load(USER_WORKFLOW)
    triggers = data["on"]
    [cron] = [entry["cron"] for entry in triggers["schedule"]]
    assert len(cron.split()) == 5
    for event in ("pull_request", "push"):
        assert {"pyproject.toml", "requirements*.txt"} <= set(triggers[event]["paths"])
    [(name, job)] = data["jobs"].items()
    assert _step(job, "actions/setup-python@")["with"]["cache"] == "pip"
    commands = [s["run"] for s in job["steps"] if "keras-zoo-plus check" in s.get("run", "")]
    assert len(commands) == 1
    argv = shlex.split(commands[0])
    assert argv[:2] == ["keras-zoo-plus", "check"]
    # The command parses with our own parser, as a user's model check.
    args = cli.build_parser().parse_args(argv[1:])
    assert args.model == "mypackage.models:build"
    assert args.input_shape == (224, 224, 3)
    assert args.junit == "keras-compat.xml"
    upload = _step(job, "actions/upload-artifact@")
    assert upload["if"] == "always()"


def _yaml_blocks(markdown):
    return re.findall(r"^```yaml\n(.*?)^```$", markdown, flags=re.S | re.M)


def test_readme_shows_the_user_workflow_file_verbatim():
    blocks = _yaml_blocks((ROOT / "README.md").read_text())
    assert USER_WORKFLOW.read_text() in blocks, (
        "README.md must show examples/ci/keras-compat.yml verbatim in a ```yaml block")


@pytest.mark.parametrize("text, blocks", [
    ("a\n```yaml\nx: 1\n```\nb\n```yaml\ny: 2\n```\n", ["x: 1\n", "y: 2\n"]),
    ("```python\nx = 1\n```\n", []),
])
def test_yaml_blocks(text, blocks):
    assert _yaml_blocks(text) == blocks
