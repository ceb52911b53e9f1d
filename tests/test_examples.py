"""The examples under examples/ run, on every backend (tiny sizes)."""

import importlib.util
import pathlib

import keras

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_segmentation_example_trains_and_the_loss_decreases():
    segmentation = _load("segmentation")
    losses = segmentation.train(
        "mobilenet", weights=None, size=32, channels=4, steps=7, batch=4, alpha=0.25
    )
    print("segmentation example losses:", [round(v, 4) for v in losses])
    assert len(losses) == 7
    assert all(v == v for v in losses)  # no NaN
    # One fixed batch, the backbone frozen: the decoder fits it.
    assert losses[-1] < 0.8 * losses[0], losses
    assert losses[-1] < min(losses[:3]), losses
    keras.backend.clear_session()
