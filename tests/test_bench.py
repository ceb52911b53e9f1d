"""``keras-zoo-plus bench``: argument errors, the shared weights that make
the comparison fair, the report, and keras.applications' refusals; the
tf_keras (Keras 2) peer on the TensorFlow backend.

Timings themselves are not asserted (benchmarks/README.md holds figures);
these tests run one tiny round so the command cannot silently rot. The
tf_keras comparisons are slow-marked: tf_keras is installed by `nox -s slow`
(beside the three backends), not by the per-backend sessions, and a test
that needs it fails where it is missing instead of skipping."""

import json
import re
import sys

import keras
import numpy as np
import pytest

from keras_zoo_plus import bench, cli, model_table

SMALL = dict(batch=1, size=32, rounds=1)
BACKEND = keras.backend.backend()
TENSORFLOW = BACKEND == "tensorflow"


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


def test_table_names_the_tf_keras_peer():
    result = {"model": "RegNetX002", "mode": "infer", "peer": "tf_keras (Keras 2)",
              "ours_ips": 40.0, "peer_ips": 32.0, "keras_ips": None, "ratio": 1.25,
              "ratios": [1.25], "gflops": 3.0, "deviation": 1e-7, "keras_error": None,
              "keras_reference": None}
    head, rule, row = bench.format_table([result], latency=True).splitlines()
    assert head == ("| model | backend | mode | ours img/s | tf_keras img/s | ratio (median) | "
                    "ours GFLOP/s | ours ms/img | tf_keras ms/img |")
    assert rule == "|---|---|---|---:|---:|---:|---:|---:|---:|"
    assert row == f"| RegNetX002 | {BACKEND} | infer | 40.0 | 32.0 | 1.25x | 3.0 | 25.0 | 31.2 |"


if not TENSORFLOW:

    def test_tf_keras_peer_needs_the_tensorflow_backend(capsys):
        code, out, err = _run(capsys, "--models", "RegNetX002", "--peer", "tf_keras")
        assert (code, out) == (2, "")
        assert err == (
            "keras-zoo-plus: error: --peer tf_keras compares tf_keras (Keras 2) with our "
            f"TensorFlow backend; the backend is {BACKEND} (set KERAS_BACKEND=tensorflow)\n")

    def test_compare_with_tf_keras_names_the_backend():
        with pytest.raises(ValueError) as exc:
            bench.compare("RegNetX002", peer="tf_keras", log=lambda *a: None, **SMALL)
        assert str(exc.value) == (
            "`peer='tf_keras'` times tf_keras (Keras 2, TensorFlow) against our TensorFlow "
            f"backend; the backend is {BACKEND!r} (set KERAS_BACKEND=tensorflow).")


if TENSORFLOW:

    def test_tf_keras_peer_has_no_memory_columns(capsys):
        code, out, err = _run(capsys, "--models", "RegNetX002", "--peer", "tf_keras",
                              "--memory")
        assert (code, out) == (2, "")
        assert err == ("keras-zoo-plus: error: --memory compares with keras.applications; it "
                       "cannot be combined with --peer tf_keras\n")

    def test_tf_keras_peer_names_the_missing_package(capsys, monkeypatch):
        # None in sys.modules makes `import tf_keras` raise ImportError, as
        # where it is not installed (the tensorflow session).
        monkeypatch.setitem(sys.modules, "tf_keras", None)
        code, out, err = _run(capsys, "--models", "RegNetX002", "--peer", "tf_keras")
        assert (code, out) == (2, "")
        assert err == ("keras-zoo-plus: error: --peer tf_keras needs tf_keras "
                       "(pip install tf_keras)\n")
        with pytest.raises(ValueError) as exc:
            bench.compare("RegNetX002", peer="tf_keras", log=lambda *a: None, **SMALL)
        assert str(exc.value) == "`peer='tf_keras'` needs tf_keras (pip install tf_keras)"

    @pytest.mark.slow
    def test_all_with_tf_keras_is_every_zoo_constructor():
        # tf_keras.applications has every family of the table, RegNet and
        # ResNetRS included; keras.applications has neither.
        names = bench._model_names(["all"], "tf_keras")
        assert sorted(names) == sorted(e.constructor_name for e in model_table.entries())
        assert {"RegNetX002", "RegNetY320", "ResNetRS50", "ResNetRS420", "MobileNet"} <= set(names)
        assert not {"RegNetX002", "ResNetRS50"} & set(bench.bench_models())

    @pytest.mark.slow
    @pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
    def test_bench_against_tf_keras(capsys, tmp_path, data_format):
        path = tmp_path / "bench.json"
        code, out, err = _run(capsys, "--models", "RegNetX002", "--peer", "tf_keras", "--batch",
                              "2", "--size", "32", "--rounds", "1", "--data-format", data_format,
                              "--json", str(path))
        assert code == 0, err
        lines = out.splitlines()
        assert "batch 2, 32x32, 1 alternating rounds, against tf_keras (Keras 2)" in lines
        (dev,) = [line for line in lines if "max rel deviation ours vs tf_keras" in line]
        assert float(dev.rsplit(" ", 1)[1]) <= 1e-5
        header = [line for line in lines if line.startswith("| model |")][0]
        assert "| ours img/s | tf_keras img/s | ratio (median) |" in header
        assert any(line.startswith("| RegNetX002 | tensorflow | infer |") for line in lines)
        (result,) = json.loads(path.read_text())["results"]
        assert result["peer"] == "tf_keras (Keras 2)" and result["mode"] == "infer"
        assert 0 <= result["deviation"] <= 1e-5
        assert result["keras_ips"] is None and result["keras_error"] is None
        assert result["ours_ips"] > 0 and result["peer_ips"] > 0 and result["gflops"] > 0
        assert result["ratio"] == pytest.approx(result["ratios"][0])

    def _tiny_pair(monkeypatch, units=(5, 5)):
        """``TinyNet`` in keras_zoo_plus.applications (Keras 3) and in
        tf_keras.applications: conv, BN, pooling, dense (``units`` each).
        A zoo model's training step takes ~25 s to trace here (both sides);
        this one, the same code path, about a second."""
        import tf_keras

        from keras_zoo_plus import applications

        def build(lib, dense_units):
            def ctor(weights=None, input_shape=None, classifier_activation="softmax",
                     data_format="channels_last"):
                inputs = lib.Input(input_shape)
                x = lib.layers.Conv2D(4, 3, strides=2, name="conv")(inputs)
                x = lib.layers.BatchNormalization(name="bn")(x)
                x = lib.layers.GlobalAveragePooling2D()(x)
                outputs = lib.layers.Dense(dense_units, activation=classifier_activation,
                                           name="head")(x)
                return lib.Model(inputs, outputs)
            return ctor

        monkeypatch.setattr(applications, "TinyNet", build(keras, units[0]), raising=False)
        monkeypatch.setattr(tf_keras.applications, "TinyNet", build(tf_keras, units[1]),
                            raising=False)

    @pytest.mark.slow
    def test_tf_keras_training_step(monkeypatch):
        _tiny_pair(monkeypatch)
        result = bench.compare("TinyNet", batch=2, size=16, train=True, rounds=2,
                               log=lambda *a: None, peer="tf_keras")
        assert result["mode"] == "train" and result["peer"] == "tf_keras (Keras 2)"
        assert result["deviation"] <= 1e-6
        assert len(result["ratios"]) == 2 and result["ratio"] > 0 and result["peer_ips"] > 0

    @pytest.mark.slow
    def test_tf_keras_weights_must_line_up(monkeypatch):
        _tiny_pair(monkeypatch, units=(5, 6))
        with pytest.raises(ValueError) as exc:
            bench.compare("TinyNet", peer="tf_keras", log=lambda *a: None, **SMALL)
        assert str(exc.value) == (
            "TinyNet: weighted layers of ours and tf_keras.applications differ (8 vs 8 "
            "weights; the first mismatch is weight 6: (4, 5) vs (4, 6)).")


# ``--backends``: our models timed on several backends, one process each.
# The parent's own backend plays no part (each child sets KERAS_BACKEND),
# so these run in the torch session only.


@pytest.mark.backend_independent
@pytest.mark.parametrize("argv, message", [
    (["--backends", "torch", "--peer", "torch"],
     "--backends times our models across backends; it cannot be combined with --peer torch"),
    (["--backends", "torch", "--memory"],
     "--memory compares with keras.applications; it cannot be combined with --backends"),
    (["--backends", "torch", "--plot", "x.png"],
     "--plot draws ours against a peer; it cannot be combined with --backends"),
    (["--backends", "torch", "--latency", "--batch", "4"],
     "--latency times one image; it cannot be combined with --batch 4"),
    (["--backends", "torch", "--models", "ResNet51"],
     "--models: unknown model 'ResNet51'; choose from "),
    (["--passes", "3"], "--passes applies to --backends (passes over the backends)"),
])
def test_backends_usage_errors(capsys, argv, message):
    _assert_usage_error(capsys, argv, message)


def _assert_usage_error(capsys, argv, message):
    """Exit 2, nothing on stdout, one line on stderr starting with the message."""
    code, out, err = _run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"keras-zoo-plus: error: {message}")
    assert err.count("\n") == 1


@pytest.mark.backend_independent
def test_backends_names_the_missing_backend(capsys, monkeypatch):
    from keras_zoo_plus import check

    monkeypatch.setattr(check, "installed_backends", lambda: ["torch"])
    code, out, err = _run(capsys, "--backends", "torch", "jax", "tensorflow")
    assert (code, out) == (2, "")
    assert err == ("keras-zoo-plus: error: --backends: jax, tensorflow cannot be imported "
                   "here; installed: torch\n")


@pytest.mark.backend_independent
def test_backends_refuses_an_unknown_backend(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--backends", "torch", "cuda"])
    assert exc.value.code == 2
    assert "argument --backends: invalid choice: 'cuda'" in capsys.readouterr().err


@pytest.mark.backend_independent
def test_compare_backends_rotates_takes_medians_and_compares_outputs(monkeypatch, tmp_path):
    """Each pass starts one backend later; img/s is batch over the median
    of the passes' seconds; ratios and deviations are against the first
    backend given. The processes are replaced by a table of seconds and
    outputs, so the arithmetic is checked exactly."""
    calls = []
    seconds = {"tensorflow": [0.5, 0.4, 0.6], "torch": [0.2, 0.3, 0.25], "jax": [1.0, 1.0, 1.0]}
    outputs = {"tensorflow": np.array([1.0, -2.0]), "torch": np.array([1.0, -2.0 + 2e-6]),
               "jax": np.array([1.0 + 1e-6, -2.0])}

    def fake(name, backend, batch, size, rounds, data_format, train, output):
        calls.append(backend)
        np.save(output, outputs[backend])
        return seconds[backend][sum(c == backend for c in calls) - 1]

    monkeypatch.setattr(bench, "time_on_backend", fake)
    r = bench.compare_backends("RegNetX002", ["tensorflow", "torch", "jax"], batch=8, passes=3,
                               log=lambda *a: None)
    assert calls == ["tensorflow", "torch", "jax", "torch", "jax", "tensorflow",
                     "jax", "tensorflow", "torch"]
    assert r["ips"] == {"tensorflow": 8 / 0.5, "torch": 8 / 0.25, "jax": 8 / 1.0}
    assert r["ratio"] == {"tensorflow": 1.0, "torch": 2.0, "jax": 0.5}
    assert r["deviation"]["tensorflow"] == 0.0
    assert r["deviation"]["torch"] == pytest.approx(1e-6)
    assert r["deviation"]["jax"] == pytest.approx(5e-7)
    head, rule, row = bench.format_backends_table([r]).splitlines()
    assert head == ("| model | mode | tensorflow img/s | torch img/s | jax img/s | "
                    "torch / tensorflow | jax / tensorflow | torch max dev | jax max dev |")
    assert rule == "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    assert row == "| RegNetX002 | inference | 16.0 | 32.0 | 8.0 | 2.00x | 0.50x | 1.0e-06 | 5.0e-07 |"
    with pytest.raises(ValueError, match=re.escape(
            "`backends`: give at least one backend. Received: backends=[]")):
        bench.compare_backends("RegNetX002", [])


@pytest.mark.slow
@pytest.mark.backend_independent
def test_backends_times_every_backend_and_their_outputs_agree(capsys, tmp_path):
    """The real thing, in the slow session's venv (all three backends):
    one process per backend, the same random weights everywhere, so the
    outputs agree to float32 round-off; the table and JSON say the same."""
    from keras_zoo_plus import check

    assert check.installed_backends() == ["tensorflow", "torch", "jax"], (
        "the slow session's venv holds all three backends")
    report = tmp_path / "b.json"
    code, out, err = _run(capsys, "--backends", "tensorflow", "torch", "jax",
                          "--models", "RegNetX002", "--batch", "2", "--size", "32",
                          "--rounds", "1", "--passes", "1", "--json", str(report))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == ("batch 2, 32x32, channels_last, 1 rounds x 1 passes, one process per "
                        "model and backend, ratios to tensorflow")
    assert lines[1].startswith("| model | mode | tensorflow img/s | torch img/s | jax img/s |")
    data = json.loads(report.read_text())
    assert data["backends"] == ["tensorflow", "torch", "jax"]
    (r,) = data["results"]
    assert r["model"] == "RegNetX002" and r["mode"] == "inference"
    assert all(r["ips"][b] > 0 for b in data["backends"])
    assert r["ratio"]["torch"] == pytest.approx(r["ips"]["torch"] / r["ips"]["tensorflow"])
    assert max(r["deviation"].values()) <= 1e-5, r["deviation"]
    assert lines[3].startswith(f"| RegNetX002 | inference | {r['ips']['tensorflow']:.1f} | ")


# ``--dtype-policy``: our model under a mixed policy against itself in float32.


@pytest.mark.backend_independent
@pytest.mark.parametrize("argv, message", [
    (["--dtype-policy", "float16"],
     "--dtype-policy: unknown policy 'float16'; choose from mixed_bfloat16, mixed_float16"),
    (["--dtype-policy", "mixed_bfloat16", "--peer", "keras"],
     "--dtype-policy times our models against themselves in float32; it cannot be combined "
     "with --peer"),
    (["--dtype-policy", "mixed_float16", "--backends", "torch"],
     "--dtype-policy times our models against themselves in float32; it cannot be combined "
     "with --backends"),
    (["--dtype-policy", "mixed_bfloat16", "--memory"],
     "--dtype-policy times our models against themselves in float32; it cannot be combined "
     "with --memory"),
    (["--dtype-policy", "mixed_bfloat16", "--plot", "x.png"],
     "--dtype-policy times our models against themselves in float32; it cannot be combined "
     "with --plot"),
    (["--dtype-policy", "mixed_bfloat16", "--latency", "--batch", "4"],
     "--latency times one image; it cannot be combined with --batch 4"),
    (["--dtype-policy", "mixed_bfloat16", "--models", "ResNet51"],
     "--models: unknown model 'ResNet51'; choose from "),
])
def test_dtype_policy_usage_errors(capsys, argv, message):
    _assert_usage_error(capsys, argv, message)


@pytest.mark.backend_independent
def test_compare_dtype_policy_alternates_and_takes_medians(monkeypatch):
    """The builds are a two-layer model and the timer a table of seconds per
    side, so the arithmetic is checked exactly: img/s is batch over each
    side's median, the ratio the median of the rounds' float32 / policy
    times; the mixed build leaves the global policy as it was."""
    def tiny(name, size=224, data_format="channels_last"):
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(5)(inputs)))

    seconds = {"float32": [0.5, 0.75, 0.25], "mixed_bfloat16": [0.25, 0.25, 0.25]}
    order = []

    def step_fn(model, x, train):
        def step():
            return None

        step.policy = model.dtype_policy.name
        return step

    def timer(fn):
        order.append(fn.policy)
        return seconds[fn.policy].pop(0)

    monkeypatch.setattr(bench, "build_ours", tiny)
    monkeypatch.setattr(bench, "_step_fn", step_fn)
    monkeypatch.setattr(bench, "_inputs", lambda b, s, f: (None, np.ones((b, 4), "float32")))
    monkeypatch.setattr(bench, "_time", timer)
    lines = []
    r = bench.compare_dtype_policy("Tiny", "mixed_bfloat16", batch=8, rounds=3, log=lines.append)
    assert keras.config.dtype_policy().name == "float32"
    assert order == ["mixed_bfloat16", "float32", "float32", "mixed_bfloat16",
                     "mixed_bfloat16", "float32"]
    assert r["float32_ips"] == 8 / 0.5 and r["policy_ips"] == 8 / 0.25
    assert r["ratios"] == [2.0, 3.0, 1.0] and r["ratio"] == 2.0
    # Same weights on both sides: bfloat16 rounding only.
    assert 0 < r["deviation"] <= 2e-2
    assert lines[0] == f"Tiny: max rel deviation mixed_bfloat16 vs float32 {r['deviation']:.2e}"
    head, rule, row = bench.format_policy_table([r]).splitlines()
    assert head == ("| model | backend | mode | float32 img/s | mixed_bfloat16 img/s | "
                    "speed-up (median) | max rel deviation |")
    assert rule == "|---|---|---|---:|---:|---:|---:|"
    assert row == (f"| Tiny | {BACKEND} | infer | 16.0 | 32.0 | 2.00x | "
                   f"{r['deviation']:.1e} |")
    with pytest.raises(ValueError, match=re.escape(
            "`policy` must be one of ['mixed_bfloat16', 'mixed_float16']. "
            "Received: policy='float16'")):
        bench.compare_dtype_policy("Tiny", "float16")


@pytest.mark.parametrize("train", [False, True])
def test_dtype_policy_report_and_json(capsys, tmp_path, train):
    """One tiny real round under mixed_bfloat16 on this backend: the table,
    the JSON, the two models' outputs close, the global policy restored."""
    path = tmp_path / "bench.json"
    code, out, err = _run(capsys, "--models", "MobileNet", "--dtype-policy", "mixed_bfloat16",
                          "--batch", "2", "--size", "32", "--rounds", "1", "--json", str(path),
                          *(["--train"] if train else []))
    assert code == 0, err
    assert keras.config.dtype_policy().name == "float32"
    lines = out.splitlines()
    mode = "train" if train else "infer"
    assert ("batch 2, 32x32, channels_last, 1 alternating rounds, mixed_bfloat16 against float32"
            in lines)
    report = json.loads(path.read_text())
    assert (report["backend"], report["dtype_policy"]) == (BACKEND, "mixed_bfloat16")
    (r,) = report["results"]
    assert (r["model"], r["mode"], r["policy"]) == ("MobileNet", mode, "mixed_bfloat16")
    assert r["float32_ips"] > 0 and r["policy_ips"] > 0
    assert r["ratio"] == pytest.approx(r["ratios"][0])
    if train:
        assert r["deviation"] is None
    else:
        assert 0 < r["deviation"] <= 2e-2
    row = [line for line in lines if line.startswith("| MobileNet |")]
    assert row == [f"| MobileNet | {BACKEND} | {mode} | {r['float32_ips']:.1f} | "
                   f"{r['policy_ips']:.1f} | {r['ratio']:.2f}x | "
                   + ("n/a" if train else f"{r['deviation']:.1e}") + " |"]
