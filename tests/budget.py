"""Test time per constructor, read from pytest junit xml reports.

    python tests/budget.py REPORT.xml [LABEL=REPORT.xml ...] [--target 71]

Each report is one session (labelled by its file name, or ``LABEL=``).
Every test case's time (setup + call + teardown, pytest's junit default)
goes to the model its id names: a registry name or a constructor name
(``test_x[resnet50]``, ``test_y[VGG16-...]``), matched case-insensitively
between non-alphanumeric characters, longest name first; a test naming
several models is split evenly among them, and a test naming none goes to
the ``shared`` row, except the tests of :data:`EVERY_MODEL` (one test
that runs every model), split evenly among all of them. The
extrapolation to ``--target`` constructors is printed with its arithmetic:

- flat: shared + per-model mean x target;
- by family: shared + mean of the per-family means x target (each family
  counts once, so one big family does not set the figure alone);
- family-aware: shared + target families x the mean of the models that
  stand for their family (the smallest of each, which also run the
  once-per-family tests) + the other constructors x the others' mean;
- wall: worker seconds x (measured wall / worker seconds) of the same
  reports (pytest-xdist runs tests on several workers at once).

Pure standard library plus the keras-free model table; ``nox -s budget``
runs the suite and prints this report. ``report()`` is the function the
tests call.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import re
import statistics
import sys
import xml.etree.ElementTree as ET

SHARED = "shared"
TARGET = 71
#: Tests that name no model but run every registered one (their time grows
#: with the table): split evenly among all models instead of ``shared``.
EVERY_MODEL = frozenset({"test_table_matches_registry_for_every_model"})
#: Families at TARGET constructors: today's 11, plus EfficientNet,
#: EfficientNetV2, ConvNeXt, RegNet and ResNetRS.
TARGET_FAMILIES = 16


@dataclasses.dataclass(frozen=True)
class Case:
    session: str
    test_id: str  # "tests/test_x.py::test_y[param]"
    seconds: float


@dataclasses.dataclass(frozen=True)
class Session:
    label: str
    wall: float | None  # the testsuite's own time (wall clock), if given
    cases: tuple


def read_junit(path, label=None):
    """A :class:`Session` from one pytest junit xml file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    label = label or os.path.splitext(os.path.basename(path))[0]
    cases, wall = [], 0.0
    for suite in suites:
        wall += float(suite.get("time") or 0.0)
        for case in suite.iter("testcase"):
            classname, name = case.get("classname", ""), case.get("name", "")
            module = classname.replace(".", "/") + ".py" if classname else ""
            test_id = f"{module}::{name}" if module else name
            cases.append(Case(label, test_id, float(case.get("time") or 0.0)))
    return Session(label, wall or None, tuple(cases))


def model_keys(entries):
    """``{lower-case key: registry name}`` for registry and constructor names;
    ``entries`` are model-table entries (``.name``, ``.constructor_name``)."""
    keys = {}
    for e in entries:
        keys[e.name.lower()] = e.name
        keys[e.constructor_name.lower()] = e.name
    return keys


def models_in(test_id, keys):
    """Registry names a test id names, longest key first, no overlaps."""
    text = test_id.lower()
    taken = [False] * len(text)
    found = []
    for key in sorted(keys, key=len, reverse=True):
        for m in re.finditer(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", text):
            if any(taken[m.start():m.end()]):
                continue
            taken[m.start():m.end()] = [True] * (m.end() - m.start())
            if keys[key] not in found:
                found.append(keys[key])
    return found


def group(sessions, keys):
    """``{row: {session label: seconds}}``; rows are registry names and
    ``shared``."""
    rows = collections.defaultdict(lambda: collections.defaultdict(float))
    every = sorted(set(keys.values()))
    for session in sessions:
        for case in session.cases:
            function = case.test_id.rpartition("::")[2].partition("[")[0]
            if function in EVERY_MODEL:
                names = every
            else:
                names = models_in(case.test_id, keys) or [SHARED]
            for name in names:
                rows[name][session.label] += case.seconds / len(names)
    return {row: dict(cols) for row, cols in rows.items()}


@dataclasses.dataclass
class Extrapolation:
    shared: float
    models: int
    model_total: float
    flat: float
    per_model_mean: float
    families: dict  # family -> (models, mean seconds per model)
    by_family: float
    per_family_mean: float
    worker: float  # measured worker seconds, all sessions
    wall: float | None  # measured wall seconds, all sessions (None: unknown)
    target: int
    representative_mean: float = 0.0  # the smallest model of each family
    other_mean: float = 0.0  # every other model
    target_families: int = TARGET_FAMILIES
    family_aware: float = 0.0


def extrapolate(rows, families, target=TARGET, *, wall=None, representatives=(),
                target_families=TARGET_FAMILIES):
    """``rows`` from :func:`group`; ``families`` maps registry name ->
    family; ``representatives`` names the model standing for each family.
    Models absent from ``rows`` cost 0 (none of their tests ran)."""
    totals = {row: sum(cols.values()) for row, cols in rows.items()}
    shared = totals.pop(SHARED, 0.0)
    per_model = {name: totals.get(name, 0.0) for name in families}
    n = len(per_model)
    model_total = sum(per_model.values())
    mean = model_total / n if n else 0.0
    fam = collections.defaultdict(list)
    for name, seconds in per_model.items():
        fam[families[name]].append(seconds)
    fam_means = {f: (len(v), statistics.fmean(v)) for f, v in sorted(fam.items())}
    fam_mean = statistics.fmean(m for _, m in fam_means.values()) if fam_means else 0.0
    reps = [s for name, s in per_model.items() if name in representatives]
    others = [s for name, s in per_model.items() if name not in representatives]
    rep_mean = statistics.fmean(reps) if reps else 0.0
    other_mean = statistics.fmean(others) if others else 0.0
    return Extrapolation(
        shared=shared, models=n, model_total=model_total, flat=shared + mean * target,
        per_model_mean=mean, families=fam_means, by_family=shared + fam_mean * target,
        per_family_mean=fam_mean, worker=shared + model_total, wall=wall, target=target,
        representative_mean=rep_mean, other_mean=other_mean, target_families=target_families,
        family_aware=shared + target_families * rep_mean + (target - target_families) * other_mean,
    )


def _minutes(seconds):
    return f"{seconds / 60:.1f} min"


def report(sessions, entries, target=TARGET, target_families=TARGET_FAMILIES):
    """The printed report (a string) for ``sessions`` (:class:`Session` s)
    and the model-table ``entries``."""
    keys = model_keys(entries)
    families = {e.name: e.family for e in entries}
    rows = group(sessions, keys)
    labels = [s.label for s in sessions]
    walls = [s.wall for s in sessions]
    wall = sum(walls) if all(w is not None for w in walls) else None
    reps = {e.name for e in _model_table().smallest_of_each_family(entries).values()}
    ext = extrapolate(rows, families, target, wall=wall, representatives=reps,
                      target_families=target_families)

    width = max([len(SHARED), *(len(n) for n in families)])
    cols = [max(len(label), 8) for label in labels]
    head = f"{'seconds':<{width}}  " + "  ".join(f"{la:>{w}}" for la, w in zip(labels, cols))
    out = [head + f"  {'total':>9}", "-" * (len(head) + 11)]

    def line(row, cells):
        vals = [cells.get(la, 0.0) for la in labels]
        return (f"{row:<{width}}  " + "  ".join(f"{v:>{w}.1f}" for v, w in zip(vals, cols))
                + f"  {sum(vals):>9.1f}")

    order = sorted(families, key=lambda n: -sum(rows.get(n, {}).values()))
    for name in order:
        out.append(line(name, rows.get(name, {})))
    out.append(line(SHARED, rows.get(SHARED, {})))
    session_worker = {la: sum(rows[r].get(la, 0.0) for r in rows) for la in labels}
    out.append(line("all", session_worker))
    if wall is not None:
        out.append(f"{'wall':<{width}}  " + "  ".join(
            f"{s.wall:>{w}.1f}" for s, w in zip(sessions, cols)) + f"  {wall:>9.1f}")
    out.append("")
    out.append("per family (models, mean s/model): " + ", ".join(
        f"{f} ({k}, {m:.1f})" for f, (k, m) in ext.families.items()))
    out.append("")
    t = ext.target
    out.append(
        f"measured: shared {ext.shared:.1f} s + {ext.models} models {ext.model_total:.1f} s "
        f"= {ext.worker:.1f} s worker time ({_minutes(ext.worker)})"
    )
    out.append(
        f"flat, {t} constructors: shared {ext.shared:.1f} s + {t} x per-model mean "
        f"{ext.per_model_mean:.1f} s (= {ext.model_total:.1f} / {ext.models}) "
        f"= {ext.flat:.1f} s ({_minutes(ext.flat)})"
    )
    out.append(
        f"by family, {t} constructors: shared {ext.shared:.1f} s + {t} x mean of "
        f"{len(ext.families)} family means {ext.per_family_mean:.1f} s "
        f"= {ext.by_family:.1f} s ({_minutes(ext.by_family)})"
    )
    f = ext.target_families
    out.append(
        f"family-aware, {t} constructors in {f} families: shared {ext.shared:.1f} s + {f} x "
        f"{ext.representative_mean:.1f} s (mean of the {len(reps)} models standing for their "
        f"family) + {t - f} x {ext.other_mean:.1f} s (mean of the {ext.models - len(reps)} "
        f"others) = {ext.family_aware:.1f} s ({_minutes(ext.family_aware)})"
    )
    if wall and ext.worker:
        ratio = wall / ext.worker
        out.append(
            f"wall: measured {wall:.1f} s for {ext.worker:.1f} s of worker time "
            f"(ratio {ratio:.3f}); {t} constructors: flat {ext.flat:.1f} x {ratio:.3f} "
            f"= {_minutes(ext.flat * ratio)}, by family {ext.by_family:.1f} x {ratio:.3f} "
            f"= {_minutes(ext.by_family * ratio)}, family-aware {ext.family_aware:.1f} x "
            f"{ratio:.3f} = {_minutes(ext.family_aware * ratio)}"
        )
    return "\n".join(out)


def _model_table():
    try:
        from keras_zoo_plus import model_table
    except ImportError:  # run from a checkout without the package installed
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from keras_zoo_plus import model_table
    return model_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", metavar="[LABEL=]REPORT.xml")
    parser.add_argument("--target", type=int, default=TARGET,
                        help=f"constructors to extrapolate to (default {TARGET})")
    parser.add_argument("--families", type=int, default=TARGET_FAMILIES,
                        help=f"families at that many constructors (default {TARGET_FAMILIES})")
    args = parser.parse_args(argv)
    sessions = []
    for spec in args.reports:
        label, sep, path = spec.partition("=")
        if not sep or os.path.exists(spec):
            label, path = None, spec
        sessions.append(read_junit(path, label))
    print(report(sessions, _model_table().entries(), args.target, args.families))
    return 0


if __name__ == "__main__":
    sys.exit(main())
