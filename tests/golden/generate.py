"""Regenerate tests/golden/*.npz with tf_keras (Keras 2), the oracle.

Run through ``nox -s golden``. For every case in cases.py it builds the
tf_keras model with ``weights=None``, sets the deterministic synthetic
weights (keras_zoo_plus.synthetic, by weighted-layer position), runs the
synthetic input and stores:

* ``output``: the model's output (logits for top models), float32;
* ``structure``: JSON of the legacy HDF5 layout tf_keras writes for this
  model (layer names, weight names, shapes), so tests can write a weights
  file in exactly the official layout without committing weights.

The cases come from the model table (cases.py); with no CASE given every
case is regenerated and golden files of cases that no longer exist are
removed.

Usage: python tests/golden/generate.py [CASE ...]
"""

import importlib.util
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["TF_USE_LEGACY_KERAS"] = "1"

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tf_keras  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Only NumPy and the model table (plain data, imports no Keras): keep
# Keras 3 out of the oracle process. The package's __init__ imports lazily.
sys.path.insert(0, str(ROOT))
_before = set(sys.modules)
synthetic = _load("zoo_synthetic", ROOT / "keras_zoo_plus" / "synthetic.py")
h5_format = _load("zoo_h5_format", ROOT / "keras_zoo_plus" / "h5_format.py")
cases = _load("zoo_cases", HERE / "cases.py")
_keras3 = sorted(m for m in set(sys.modules) - _before if m == "keras" or m.startswith("keras."))
if _keras3:
    raise SystemExit(f"loading the cases imported Keras 3 ({_keras3[:3]}); it must not")


def structure_of(model):
    """The layout of the legacy HDF5 file tf_keras writes for ``model``,
    read back from a real ``save_weights(".h5")``: for each layer with
    weights, its name, weight names and shapes, in file order."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weights.h5")
        model.save_weights(path)
        out = []
        with h5py.File(path, "r") as f:
            for name in h5_format.list_attribute(f, "layer_names"):
                wnames = h5_format.list_attribute(f[name], "weight_names")
                if wnames:
                    out.append([name, wnames, [list(f[name][w].shape) for w in wnames]])
    return out


def generate(case):
    c = cases.CASES[case]
    (h, w), batch = c.size, c.batch
    tf_keras.backend.clear_session()
    kw = dict(c.kwargs)
    kw.update(weights=None, input_shape=(h, w, 3))
    if kw.get("include_top", True):
        kw["classifier_activation"] = None
    model = getattr(tf_keras.applications, c.ctor)(**kw)
    family = cases.model_table.get(c.model).family
    synthetic.apply_synthetic_weights(model, seed=cases.SEED, family=family)
    x = synthetic.synthetic_input((batch, h, w, 3), seed=cases.SEED)
    y = model(x, training=False).numpy().astype("float32")
    if not np.all(np.isfinite(y)) or float(np.std(y)) < 1e-3:
        raise SystemExit(f"{case}: degenerate oracle output (std {np.std(y)})")
    if y.ndim == 4 and min(y.shape[1:3]) < 2:
        # cases.py: the last stage must keep at least 2x2 pixels.
        raise SystemExit(f"{case}: last feature map {y.shape[1:3]} at input {(h, w)} "
                         "is under 2x2; give the case a larger size in cases.py")
    np.savez_compressed(
        HERE / f"{case}.npz",
        output=y,
        structure=np.array(json.dumps(structure_of(model))),
    )
    print(f"{case}: output {y.shape} std {np.std(y):.4g} max|y| {np.abs(y).max():.4g}")


def main(argv):
    names = argv or list(cases.CASES)
    unknown = [n for n in names if n not in cases.CASES]
    if unknown:
        raise SystemExit(f"unknown cases: {unknown}")
    for name in names:
        generate(name)
    if not argv:
        for path in sorted(HERE.glob("*.npz")):
            if path.stem not in cases.CASES:
                path.unlink()
                print(f"removed {path.name} (no such case)")


if __name__ == "__main__":
    main(sys.argv[1:])
