"""Weights that do not fit the model: another architecture, a top/no-top
mismatch, in every file format ``weights=`` accepts (legacy .h5,
.weights.h5, .keras). Each raises a ValueError naming the first
mismatching layer and the shapes, and leaves the model's weights exactly
as they were (never half-loaded)."""

import re

import numpy as np
import pytest
import tiny_models

from keras_zoo_plus import weights

from helpers import write_model_h5


def unchanged(model, before):
    after = tiny_models.weights_of(model)
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


def _source(kind, tmp_path, fmt):
    """A file of ``fmt`` holding weights of model ``kind``."""
    src = {
        "other": tiny_models.other_architecture,
        "top": lambda: tiny_models.tiny(include_top=True),
        "notop": lambda: tiny_models.tiny(include_top=False),
        "classes": lambda: tiny_models.tiny(include_top=True, classes=9),
    }[kind]()
    if fmt == "legacy":
        return write_model_h5(tmp_path / f"{kind}.h5", src, seed=3)[0]
    if fmt == "weights.h5":
        path = str(tmp_path / f"{kind}.weights.h5")
        src.save_weights(path)
        return path
    path = str(tmp_path / f"{kind}.keras")
    src.save(path)
    return path


# (file made from, model that loads it, what the message must say)
CASES = {
    # another architecture, same number of weighted layers: matched by order
    ("other", "notop", "legacy"): r"layer 'conv1' \(file: 'stem'\) expects \[\(3, 3, 3, 4\), \(4,\)\], file has \[\(5, 5, 3, 7\), \(7,\)\]",
    # top file into a no-top model: extra file layer, first order mismatch
    ("top", "notop", "legacy"): r"weighted layer #3: file layer 'predictions' has \[\(6, 5\), \(5,\)\], the model has no more layers",
    # no-top file into a top model: names match, a model layer is missing
    ("notop", "top", "legacy"): r"no weights for 1 layers of the model; first: layer 'predictions' expects \[\(6, 5\), \(5,\)\]",
    # other number of classes
    ("classes", "top", "legacy"): r"layer 'predictions' \(file: 'predictions'\) expects \[\(6, 5\), \(5,\)\], file has \[\(6, 9\), \(9,\)\]",
    ("other", "notop", "weights.h5"): r"the file's layer 'layers/batch_normalization' holds \[\(7,\), \(7,\), \(7,\), \(7,\)\] and the model has no layer",
    ("classes", "top", "weights.h5"): r"the file's layer 'layers/dense' holds \[\(6, 9\), \(9,\)\] and the model has no layer",
    ("top", "notop", "weights.h5"): r"the file's layer 'layers/dense' holds \[\(6, 5\), \(5,\)\] and the model has no layer",
    ("notop", "top", "weights.h5"): r"Cannot load the weights file .*notop\.weights\.h5 into model 'tiny'",
    ("other", "notop", "keras"): r"layer 'conv1' \(file: 'stem'\) expects \[\(3, 3, 3, 4\), \(4,\)\], file has \[\(5, 5, 3, 7\), \(7,\)\]",
    ("top", "notop", "keras"): r"weighted layer #3: file layer 'predictions' has \[\(6, 5\), \(5,\)\], the model has no more layers",
    ("notop", "top", "keras"): r"first: layer 'predictions' expects \[\(6, 5\), \(5,\)\]",
    ("classes", "top", "keras"): r"layer 'predictions' \(file: 'predictions'\) expects \[\(6, 5\), \(5,\)\], file has \[\(6, 9\), \(9,\)\]",
}


@pytest.mark.parametrize("case", list(CASES), ids=["-".join(c) for c in CASES])
def test_mismatched_file_raises_and_model_is_untouched(case, tmp_path):
    kind, target, fmt = case
    path = _source(kind, tmp_path, fmt)
    model = tiny_models.tiny(include_top=(target == "top"))
    before = tiny_models.weights_of(model)
    with pytest.raises(ValueError) as info:
        weights.load_weights(model, path)
    assert re.search(CASES[case], str(info.value)), str(info.value)
    assert "Nothing was loaded" in str(info.value)
    unchanged(model, before)


@pytest.mark.parametrize("fmt", ["legacy", "weights.h5", "keras"])
def test_matching_file_loads_in_every_format(fmt, tmp_path):
    path = _source("notop", tmp_path, fmt)
    model = tiny_models.tiny(include_top=False)
    weights.load_weights(model, path)
    ref = tiny_models.tiny(include_top=False)
    if fmt == "legacy":
        weights.assign_legacy(ref, weights.read_legacy_h5(path))
    else:
        ref.load_weights(path) if fmt == "weights.h5" else ref.set_weights(
            __import__("keras").saving.load_model(path).get_weights())
    unchanged(model, tiny_models.weights_of(ref))


def test_not_a_weights_file(tmp_path):
    bad = tmp_path / "notes.h5"
    bad.write_bytes(b"plain text, not HDF5")
    model = tiny_models.tiny(include_top=False)
    with pytest.raises(ValueError, match="is not a legacy Keras .h5 file"):
        weights.load_weights(model, str(bad))
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"Cannot read the model file .*broken\.keras"):
        weights.load_weights(model, str(broken))


@pytest.mark.slow
def test_official_file_of_another_architecture_through_the_constructor(tmp_path):
    """A real case: the VGG16 no-top file handed to VGG19."""
    from keras_zoo_plus.applications import VGG19

    from helpers import golden_arrays, load_golden, write_legacy_h5

    _, structure = load_golden("vgg16_notop")
    path = write_legacy_h5(tmp_path / "vgg16_notop.h5", structure, golden_arrays(structure))
    with pytest.raises(ValueError) as info:
        VGG19(include_top=False, weights=str(path), input_shape=(32, 32, 3))
    msg = str(info.value)
    assert "no weights for 3 layers of the model; first: layer 'block3_conv4' expects " \
           "[(3, 3, 256, 256), (256,)]" in msg, msg
