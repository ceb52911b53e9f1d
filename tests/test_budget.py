"""tests/budget.py: grouping of junit test times by model, extrapolation."""

from __future__ import annotations

import types

import budget
import pytest

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="7" time="{wall}">
<testcase classname="tests.test_fuzz" name="test_fuzz[resnet50]" time="{a}"/>
<testcase classname="tests.test_fuzz" name="test_fuzz[resnet101]" time="4.0"/>
<testcase classname="tests.test_apps" name="test_counts[ResNet50-25636712]" time="2.0"/>
<testcase classname="tests.test_apps" name="test_pair[vgg16-resnet101]" time="6.0"/>
<testcase classname="tests.test_nasnet_like" name="test_nasnet_mobile_name" time="1.0"/>
<testcase classname="tests.test_misc" name="test_no_model" time="3.0"/>
<testcase classname="tests.test_misc" name="test_vgg160[x]" time="5.0"><skipped/></testcase>
</testsuite></testsuites>
"""

ENTRIES = [
    types.SimpleNamespace(name="resnet50", constructor_name="ResNet50", family="resnet",
                          params=25_636_712),
    types.SimpleNamespace(name="resnet101", constructor_name="ResNet101", family="resnet",
                          params=44_707_176),
    types.SimpleNamespace(name="vgg16", constructor_name="VGG16", family="vgg",
                          params=138_357_544),
    types.SimpleNamespace(name="nasnet_mobile", constructor_name="NASNetMobile",
                          family="nasnet", params=5_326_716),
]


@pytest.fixture
def sessions(tmp_path):
    a = tmp_path / "tensorflow.xml"
    a.write_text(JUNIT.format(wall=12.0, a=10.0))
    b = tmp_path / "b.xml"
    b.write_text(JUNIT.format(wall=8.0, a=2.0))
    return [budget.read_junit(a), budget.read_junit(b, label="slow_jax")]


def test_models_in_matches_whole_names_longest_first():
    keys = budget.model_keys(ENTRIES)
    assert budget.models_in("t.py::test_x[resnet50]", keys) == ["resnet50"]
    assert budget.models_in("t.py::test_x[ResNet50-1]", keys) == ["resnet50"]
    assert budget.models_in("t.py::test_x[resnet501]", keys) == []
    assert budget.models_in("t.py::test_vgg160[x]", keys) == []
    assert budget.models_in("t.py::test_x[vgg16-resnet101]", keys) == ["resnet101", "vgg16"]
    assert budget.models_in("t.py::test_nasnet_mobile_name", keys) == ["nasnet_mobile"]
    keys["resnet"] = "resnet_family_stub"  # a shorter key inside a longer match
    assert budget.models_in("t.py::test_x[resnet101]", keys) == ["resnet101"]


def test_group_and_extrapolate(sessions):
    keys = budget.model_keys(ENTRIES)
    assert [s.label for s in sessions] == ["tensorflow", "slow_jax"]
    assert sessions[0].wall == 12.0 and len(sessions[0].cases) == 7
    rows = budget.group(sessions, keys)
    assert rows["resnet50"] == {"tensorflow": 12.0, "slow_jax": 4.0}
    assert rows["resnet101"] == {"tensorflow": 7.0, "slow_jax": 7.0}
    assert rows["vgg16"] == {"tensorflow": 3.0, "slow_jax": 3.0}
    assert rows["nasnet_mobile"] == {"tensorflow": 1.0, "slow_jax": 1.0}
    assert rows["shared"] == {"tensorflow": 8.0, "slow_jax": 8.0}  # skipped cases count their time
    families = {e.name: e.family for e in ENTRIES}
    ext = budget.extrapolate(rows, families, target=10, wall=20.0)
    assert ext.shared == 16.0 and ext.models == 4 and ext.model_total == 38.0
    assert ext.per_model_mean == 9.5 and ext.flat == 16.0 + 9.5 * 10
    # resnet (16 + 14) / 2 = 15, vgg 6, nasnet 2: mean of family means 23 / 3.
    assert ext.families == {"nasnet": (1, 2.0), "resnet": (2, 15.0), "vgg": (1, 6.0)}
    assert ext.by_family == pytest.approx(16.0 + 23 / 3 * 10)
    assert ext.worker == 54.0
    # Standing for their family: resnet50 16, vgg16 6, nasnet_mobile 2 (mean
    # 8); the others: resnet101 14. 10 constructors in 5 families.
    ext = budget.extrapolate(rows, families, target=10, representatives={
        "resnet50", "vgg16", "nasnet_mobile"}, target_families=5)
    assert (ext.representative_mean, ext.other_mean) == (8.0, 14.0)
    assert ext.family_aware == 16.0 + 5 * 8.0 + 5 * 14.0


def test_report_prints_rows_and_arithmetic(sessions):
    text = budget.report(sessions, ENTRIES, target=10, target_families=5)
    lines = text.splitlines()
    assert lines[0].split() == ["seconds", "tensorflow", "slow_jax", "total"]
    assert lines[2].split() == ["resnet50", "12.0", "4.0", "16.0"]  # most expensive first
    assert lines[3].split() == ["resnet101", "7.0", "7.0", "14.0"]
    assert "shared      8.0      8.0       16.0".split() in [la.split() for la in lines]
    assert ["wall", "12.0", "8.0", "20.0"] in [la.split() for la in lines]
    assert (
        "flat, 10 constructors: shared 16.0 s + 10 x per-model mean 9.5 s "
        "(= 38.0 / 4) = 111.0 s (1.9 min)"
    ) in lines
    assert any(la.startswith("wall: measured 20.0 s for 54.0 s of worker time (ratio 0.370)")
               for la in lines)
    assert (
        "family-aware, 10 constructors in 5 families: shared 16.0 s + 5 x 8.0 s (mean of "
        "the 3 models standing for their family) + 5 x 14.0 s (mean of the 1 others) "
        "= 126.0 s (2.1 min)"
    ) in lines


def test_command_line(sessions, tmp_path, capsys):
    path = tmp_path / "tensorflow.xml"
    assert budget.main([f"fast={path}", "--target", "71"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["seconds", "fast", "total"]
    assert "71 constructors" in out


def test_a_test_that_runs_every_model_is_split_among_them(tmp_path):
    path = tmp_path / "slow.xml"
    path.write_text(
        '<testsuite time="9.0"><testcase classname="tests.test_cli" '
        'name="test_table_matches_registry_for_every_model" time="8.0"/>'
        '<testcase classname="tests.test_cli" name="test_other" time="1.0"/></testsuite>')
    rows = budget.group([budget.read_junit(path)], budget.model_keys(ENTRIES))
    assert rows == {name: {"slow": 2.0} for name in
                    ("resnet50", "resnet101", "vgg16", "nasnet_mobile")} | {
        "shared": {"slow": 1.0}}


def test_every_model_names_existing_tests():
    import pathlib

    text = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_*.py"))
    for function in budget.EVERY_MODEL:
        assert f"def {function}(" in text, function

