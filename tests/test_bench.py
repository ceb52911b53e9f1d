"""``keras-zoo-plus bench``: argument errors, the shared weights that make
the comparison fair, the report, and keras.applications' refusals.

Timings themselves are not asserted (benchmarks/README.md holds figures);
these tests run one tiny round so the command cannot silently rot."""

import json
import re

import keras
import numpy as np
import pytest

from keras_zoo_plus import bench, cli, model_table

SMALL = dict(batch=1, size=32, rounds=1)


def _run(capsys, *argv):
    code = cli.main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_model_is_a_usage_error(capsys):
    code, out, err = _run(capsys, "--models", "MobileNet", "ResNet51")
    assert code == 2
    assert out == ""
    assert err.startswith(
        "keras-zoo-plus: error: --models: unknown model 'ResNet51'; choose from ConvNeXtBase, "
    )
    assert err.rstrip().endswith("Xception or 'all'")


@pytest.mark.parametrize("flag", ["--batch", "--rounds", "--size"])
def test_non_positive_numbers_are_refused(capsys, flag):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", flag, "0"])
    assert exc.value.code == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err


def test_all_expands_to_every_shared_constructor():
    names = bench._model_names(["all", "MobileNet"])
    assert names == bench.bench_models()
    # Every table model keras.applications also has (all of them, until
    # the tf_keras-only families RegNet and ResNetRS), each once.
    shared = {e.constructor_name for e in model_table.entries()
              if hasattr(keras.applications, e.constructor_name)}
    assert sorted(names) == sorted(shared)
    assert {"ResNet50", "MobileNetV2", "MobileNetV3Large"} <= shared
    assert names.count("MobileNet") == 1


def test_both_models_get_the_same_weights():
    ours, theirs = bench.build_pair("MobileNet", size=32)
    assert len(ours.weights) == len(theirs.weights)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(theirs(x)),
        rtol=1e-5, atol=1e-6,
    )


def test_report_table_and_json(capsys, tmp_path):
    path = tmp_path / "bench.json"
    code, out, _ = _run(
        capsys, "--models", "MobileNet", "--batch", "1", "--size", "32", "--rounds", "1",
        "--json", str(path),
    )
    assert code == 0
    assert "MobileNet: max rel deviation ours vs keras" in out
    row = [line for line in out.splitlines() if line.startswith("| MobileNet |")]
    assert len(row) == 1 and row[0].split("|")[2].strip() == keras.backend.backend()
    report = json.loads(path.read_text())
    assert report["backend"] == keras.backend.backend()
    (result,) = report["results"]
    assert result["model"] == "MobileNet" and result["mode"] == "infer"
    assert result["ratio"] == pytest.approx(result["ratios"][0])
    assert result["ours_ips"] > 0 and result["keras_ips"] > 0


def test_model_flops_counts_multiply_adds_by_hand():
    from keras_zoo_plus import layers as zoo_layers

    inputs = keras.Input((8, 6, 3))
    x = zoo_layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4x3 positions
    x = zoo_layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 4x3, 8 ch
    x = zoo_layers.SeparableConv2D(5, 3, padding="valid")(x)  # 2x1 positions
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(7)(x)
    model = keras.Model(inputs, x)
    expected = 2 * (
        12 * (3 * 3 * 3 * 4)  # conv
        + 12 * (3 * 3 * 4 * 2)  # depthwise
        + 2 * (3 * 3 * 8) + 2 * (8 * 5)  # separable: depthwise + pointwise
        + 10 * 7  # dense
    )
    assert bench.model_flops(model) == expected


def test_keras_refusal_is_reported_not_fatal(monkeypatch):
    def refuse(**kwargs):
        raise ValueError("not on this backend")

    monkeypatch.setattr(keras.applications, "MobileNet", refuse)
    result = bench.compare("MobileNet", log=lambda *a: None, **SMALL)
    assert result["ratio"] is None and result["keras_ips"] is None
    assert result["keras_error"] == "ValueError: not on this backend"
    table = bench.format_table([result])
    assert f"| MobileNet | {keras.backend.backend()} | infer |" in table
    assert "| fails | n/a |" in table
    assert table.endswith("MobileNet: keras.applications fails: ValueError: not on this backend")


def test_training_step_mode():
    result = bench.compare("MobileNet", train=True, log=lambda *a: None, **SMALL)
    assert result["mode"] == "train" and result["ratio"] > 0


def test_refused_nasnet_mobile_is_compared_with_keras_graph_past_the_guard():
    # keras.applications' NASNetMobile refuses torch; on every backend the
    # unguarded graph must be the same model as ours (same weights, outputs).
    ours, theirs = bench.build_pair("NASNetMobile", size=32)
    if keras.backend.backend() == "torch":
        assert getattr(theirs, "bench_reference", None) == "unguarded"
    else:
        assert not hasattr(theirs, "bench_reference")
    reference = bench._unguarded_reference("NASNetMobile", (32, 32, 3))
    assert [tuple(w.shape) for w in reference.weights] == [tuple(w.shape) for w in ours.weights]
    reference.set_weights(ours.get_weights())
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(reference(x)),
        rtol=1e-5, atol=1e-6,
    )


def test_model_flops_counts_dense_layers_at_every_position():
    # ConvNeXt's pointwise layers: a Dense on a feature map runs at each of
    # its positions, in either data format (ChannelDense in channels_first).
    from keras_zoo_plus import layers as zoo_layers

    inputs = keras.Input((5, 4, 3))
    x = keras.layers.Dense(6)(inputs)  # 5x4 positions, 3 -> 6
    first = keras.layers.Permute((3, 1, 2))(x)  # (6, 5, 4)
    y = zoo_layers.ChannelDense(2, data_format="channels_first")(first)  # 20 positions, 6 -> 2
    model = keras.Model(inputs, y)
    assert bench.model_flops(model) == 2 * (20 * 3 * 6 + 20 * 6 * 2)


def test_memory_columns_from_fresh_processes(capsys):
    code, out, _ = _run(
        capsys, "--models", "MobileNet", "--batch", "1", "--size", "32", "--rounds", "1",
        "--memory",
    )
    assert code == 0
    head, rule, row = [line for line in out.splitlines() if line.startswith("|")]
    assert head.endswith("| ours peak MiB | keras peak MiB | memory ratio |")
    assert rule == "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    ours, theirs, ratio = (float(c) for c in row.strip("|").split("|")[-3:])
    # Each process imported Keras and a backend (well over 100 MiB) and
    # held a 4M-parameter model; the ratio is of the two, as printed.
    assert ours > 100 and theirs > 100
    assert ratio == pytest.approx(ours / theirs, abs=0.02)  # MiB printed rounded


def test_peak_rss_refuses_an_unknown_side():
    with pytest.raises(ValueError, match=re.escape(
            '`side` must be "ours" or "keras". Received: side=\'theirs\'')):
        bench.peak_rss("MobileNet", "theirs")
