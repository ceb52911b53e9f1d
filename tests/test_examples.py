"""The examples under examples/ run, on every backend (tiny sizes)."""

import contextlib
import importlib.util
import pathlib
import random

import keras
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _seeded_unseeded_initializers(seed):
    """Draw the unseeded initializers (the random backbone's, the decoder's)
    from generators seeded here, then put back the ones that were there:
    Keras' global seed generator, and Python's ``random``, from which an
    initializer created without a seed takes its seed
    (``keras.random.make_default_seed``).

    Without them the draw depended on everything the worker had run
    before, and CI runs drew backbones whose decoder fitted slowly (loss
    0.82x the first step's after 6 steps, against 0.57-0.67x in ten fresh
    processes; and, with only Keras' generator seeded, once more in a full
    jax session, 2026-12-02)."""
    from keras.src.backend.common import global_state
    from keras.src.random.seed_generator import GLOBAL_SEED_GENERATOR

    before = global_state.get_global_attribute(GLOBAL_SEED_GENERATOR)
    python_state = random.getstate()
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, keras.random.SeedGenerator(seed))
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, before)


def test_segmentation_example_trains_and_the_loss_decreases():
    segmentation = _load("segmentation")
    with _seeded_unseeded_initializers(0):
        losses = segmentation.train(
            "mobilenet", weights=None, size=32, channels=4, steps=7, batch=4, alpha=0.25
        )
    print("segmentation example losses:", [round(v, 4) for v in losses])
    assert len(losses) == 7
    assert all(v == v for v in losses)  # no NaN
    # One fixed batch, the backbone frozen: the decoder fits it.
    assert losses[-1] < 0.8 * losses[0], losses
    assert losses[-1] < min(losses[:3]), losses


def test_user_model_example_gives_the_same_logits_in_both_formats(tmp_path, monkeypatch):
    """examples/user_model.py, the README's `check --model` example, run as
    a check worker runs it (in-process, this backend, small input)."""
    import numpy as np

    from keras_zoo_plus import check, usermodel

    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    job = usermodel.builder_job("examples.user_model:build", input_shape=(32, 40, 3))
    outputs = []
    for data_format in check.DATA_FORMATS:
        cell = check.run_cell(usermodel.UserModel(job), data_format, batch=2, seed=0,
                              repeat=1, perturb=False, outdir=str(tmp_path),
                              backend=keras.backend.backend())
        assert cell["status"] == "ok", cell["error"]
        outputs.append(np.load(cell["output_file"]))
    assert outputs[0].shape == (2, 10)
    assert np.max(np.abs(outputs[0])) > 0
    scale = np.max(np.abs(outputs[0]))
    assert np.max(np.abs(outputs[1] - outputs[0])) / scale <= check.DEFAULT_TOLERANCE


def _write_png(path, rgb):
    """A PNG file of an (H, W, 3) uint8 array (no imaging library here)."""
    import struct
    import zlib

    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[row].tobytes() for row in range(height))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _image_folder(root, per_class=12, size=40):
    """Two classes told apart by colour: reddish and bluish noise."""
    rng = np.random.default_rng(0)
    for label, channel in (("red", 0), ("blue", 2)):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 96, (size, size, 3))
            image[..., channel] += 150
            _write_png(folder / f"{i}.png", image.astype("uint8"))
    return root


@pytest.mark.slow
@pytest.mark.backend_independent
@pytest.mark.parametrize("backend, extra", [
    ("jax", ["--mixed-precision"]),
    ("tensorflow", []),
])
def test_distributed_finetune_example_on_two_devices(backend, extra, tmp_path):
    """examples/finetune_distributed.py on a generated folder, two virtual
    CPU devices, in a process of its own (the devices are made before the
    backend starts): both phases train what the schedule says, the model
    it saves loads and predicts."""
    import json
    import os
    import subprocess
    import sys

    data = _image_folder(tmp_path / "images")
    output = tmp_path / "model.keras"
    env = dict(os.environ, KERAS_BACKEND=backend)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "finetune_distributed.py"), str(data),
         "--model", "mobilenet_v2", "--weights", "none", "--size", "32", "--devices", "2",
         "--batch-size", "4", "--epochs", "2", "1", "--output", str(output), *extra],
        capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    print(backend, summary)
    expected = {"jax": "keras.distribution.DataParallel over ['cpu:0', 'cpu:1']",
                "tensorflow": "tf.distribute.MirroredStrategy over "
                              "['/device:CPU:0', '/device:CPU:1']"}[backend]
    assert summary["distribution"] == expected
    assert summary["policy"] == ("mixed_bfloat16" if extra else "float32")
    assert summary["classes"] == ["blue", "red"]
    assert len(summary["head_loss"]) == 2 and len(summary["stage_loss"]) == 1
    assert all(np.isfinite(summary["head_loss"] + summary["stage_loss"]))
    # The head alone, then the last stage (Conv_1, its BatchNormalization
    # frozen) with it.
    assert summary["trainable_weights"] == [2, 3]
    import keras_zoo_plus as kz

    model = kz.load_model(output)
    assert model.output_shape == (None, 2)
    probabilities = keras.ops.convert_to_numpy(model(np.zeros((1, 32, 32, 3), "float32")))
    assert probabilities.shape == (1, 2) and abs(float(probabilities.sum()) - 1) < 1e-3
