"""Side-by-side speed of our models and keras.applications on the current
backend (``keras-zoo-plus bench``).

Both models are built with the same architecture and the same weights
(copied in weighted-layer order, shapes checked), then timed in alternating
rounds in one process so that drift in machine load (shared CPUs) hits both
alike. Each round runs ours and theirs once, in an order that alternates
between rounds; the reported ratio is the median over rounds of
``keras time / our time`` (> 1 means ours is faster) and the img/s are
``batch / median time``.

Example:
    $ KERAS_BACKEND=jax keras-zoo-plus bench --models MobileNet ResNet50 --rounds 7
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np

DEFAULT_MODELS = ("MobileNet", "Xception", "NASNetMobile", "ResNet50")


def _relu6(x):
    return keras.ops.relu6(x)


def mobilenet_v1_standin(input_shape=(224, 224, 3), classes=1000, data_format="channels_last"):
    """A MobileNet v1 (alpha 1, depth multiplier 1) graph built from our
    layers, weighted layers in keras.applications.MobileNet's order, for
    benchmarking before ``keras_zoo_plus.applications.MobileNet`` exists.

    Args:
        input_shape: Input shape in ``data_format``.
        classes: Number of logits.
        data_format: ``"channels_last"`` or ``"channels_first"``.

    Returns:
        keras.Model: named ``"mobilenet_standin"``.

    Example:
        >>> model = mobilenet_v1_standin((224, 224, 3))
    """
    from keras_zoo_plus import layers as zoo_layers

    axis = 1 if data_format == "channels_first" else -1
    inputs = keras.Input(input_shape)
    x = zoo_layers.Conv2D(
        32, 3, strides=2, padding="same", use_bias=False, data_format=data_format, name="conv1"
    )(inputs)
    x = keras.layers.BatchNormalization(axis=axis, name="conv1_bn")(x)
    x = keras.layers.ReLU(6.0, name="conv1_relu")(x)
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)]
    plan += [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for block_id, (filters, stride) in enumerate(plan, start=1):
        if stride > 1:
            x = keras.layers.ZeroPadding2D(
                ((0, 1), (0, 1)), data_format=data_format, name=f"conv_pad_{block_id}"
            )(x)
        x = zoo_layers.DepthwiseConv2D(
            3,
            strides=stride,
            padding="same" if stride == 1 else "valid",
            use_bias=False,
            data_format=data_format,
            name=f"conv_dw_{block_id}",
        )(x)
        x = keras.layers.BatchNormalization(axis=axis, name=f"conv_dw_{block_id}_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(x)
        x = zoo_layers.Conv2D(
            filters, 1, use_bias=False, data_format=data_format, name=f"conv_pw_{block_id}"
        )(x)
        x = keras.layers.BatchNormalization(axis=axis, name=f"conv_pw_{block_id}_bn")(x)
        x = keras.layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format, keepdims=True)(x)
    x = keras.layers.Dropout(1e-3, name="dropout")(x)
    x = zoo_layers.Conv2D(classes, 1, data_format=data_format, name="conv_preds")(x)
    x = keras.layers.Reshape((classes,), name="reshape_2")(x)
    x = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="mobilenet_standin")


def build_pair(name, size=224, data_format="channels_last"):
    """Our model and keras.applications' model ``name`` with the same
    random weights.

    Args:
        name: A keras.applications constructor name, e.g. ``"MobileNet"``.
        size: Input height and width.
        data_format: Data format of *our* model (keras.applications follows
            the global setting, which this function does not change).

    Returns:
        (ours, theirs, label): the two models and a label saying which of
        ours was used (``"MobileNet (stand-in)"`` when our MobileNet is not
        available yet).

    Raises:
        ValueError: if ``name`` is unknown to either side, or the weighted
            layers do not line up.
    """
    ctor = getattr(keras.applications, name, None)
    if ctor is None:
        raise ValueError(f"`models`: keras.applications has no {name!r}.")
    shape = (size, size, 3)
    theirs = ctor(weights=None, input_shape=shape)
    ours_shape = (3, size, size) if data_format == "channels_first" else shape
    label = name
    try:
        from keras_zoo_plus import applications

        our_ctor = getattr(applications, name)
    except (ImportError, AttributeError):
        our_ctor = None
    if our_ctor is not None:
        ours = our_ctor(weights=None, input_shape=ours_shape, data_format=data_format)
    elif name == "MobileNet":
        ours = mobilenet_v1_standin(ours_shape, data_format=data_format)
        label = "MobileNet (stand-in)"
    else:
        raise ValueError(f"`models`: keras_zoo_plus.applications has no {name!r} yet.")
    src = theirs.get_weights()
    dst = ours.weights
    if len(src) != len(dst) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(src, dst)):
        raise ValueError(f"{name}: weighted layers of ours and keras.applications differ.")
    weights = [
        _random_like(w.shape, v.path, i) for i, (w, v) in enumerate(zip(src, theirs.weights))
    ]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs, label


def _random_like(shape, path, seed):
    """Random weights that keep activations finite and non-trivial."""
    rng = np.random.default_rng(seed)
    if path.endswith("moving_variance"):
        return (0.5 + np.abs(rng.standard_normal(shape))).astype("float32")
    if path.endswith("gamma"):
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype("float32")
    scale = 1.0 / np.sqrt(np.prod(shape[:-1])) if len(shape) > 1 else 0.1
    return (scale * rng.standard_normal(shape)).astype("float32")


def model_flops(model):
    """Floating-point operations (2 x multiply-adds) of one image through
    the convolution and dense layers of ``model``."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
            continue
        out = layer.output.shape
        if kind == "Dense":
            total += 2 * int(np.prod(layer.kernel.shape))
            continue
        first = layer.data_format == "channels_first"
        positions = int(np.prod(out[2:] if first else out[1:3]))
        if kind == "Conv2D":
            total += 2 * positions * int(np.prod(layer.kernel.shape))
        elif kind == "DepthwiseConv2D":
            total += 2 * positions * int(np.prod(layer.kernel.shape))
        else:
            total += 2 * positions * int(np.prod(layer.depthwise_kernel.shape))
            total += 2 * positions * int(np.prod(layer.pointwise_kernel.shape))
    return total


def _step_fn(model, x, train):
    if train:
        model.compile(optimizer=keras.optimizers.SGD(1e-4), loss="sparse_categorical_crossentropy")
        y = np.zeros((x.shape[0],), "int32")
        return lambda: model.train_on_batch(x, y)
    return lambda: model.predict_on_batch(x)


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(
    name, batch=16, size=224, train=False, rounds=5, data_format="channels_last", log=print
):
    """Time ours against keras.applications for one model.

    Args:
        name: keras.applications constructor name.
        batch: Images per step.
        size: Input height and width.
        train: Time one SGD training step instead of inference.
        rounds: Timed rounds (each runs both models once) after a warm-up.
        data_format: Data format of our model.
        log: Where progress lines go.

    Returns:
        dict with ``model, mode, ours_ips, keras_ips, ratio, gflops`` and the
        per-round ratios.
    """
    ours, theirs, label = build_pair(name, size, data_format)
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    x_ours = np.transpose(x, (0, 3, 1, 2)).copy() if data_format == "channels_first" else x
    if not train:
        # Same weights, same input: the outputs must agree before timing means anything.
        a = keras.ops.convert_to_numpy(ours.predict_on_batch(x_ours))
        b = keras.ops.convert_to_numpy(theirs.predict_on_batch(x))
        dev = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))
        log(f"{label}: max rel deviation ours vs keras {dev:.2e}")
    fns = {"ours": _step_fn(ours, x_ours, train), "keras": _step_fn(theirs, x, train)}
    for fn in fns.values():  # warm-up: compile / trace / allocate
        fn()
    times = {"ours": [], "keras": []}
    ratios = []
    for r in range(rounds):
        order = ("ours", "keras") if r % 2 == 0 else ("keras", "ours")
        got = {k: _time(fns[k]) for k in order}
        for k, v in got.items():
            times[k].append(v)
        ratios.append(got["keras"] / got["ours"])
        log(
            f"  round {r + 1}: ours {got['ours']:.3f}s keras {got['keras']:.3f}s ratio {ratios[-1]:.2f}"
        )
    med = {k: statistics.median(v) for k, v in times.items()}
    flops = model_flops(ours) * batch * (3 if train else 1)
    return {
        "model": label,
        "mode": "train" if train else "infer",
        "ours_ips": batch / med["ours"],
        "keras_ips": batch / med["keras"],
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "gflops": flops / med["ours"] / 1e9,
    }


def sgemm_peak(n=2048, repeats=5):
    """Best single-precision matmul rate of numpy's BLAS, GFLOP/s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype("float32")
    b = rng.standard_normal((n, n)).astype("float32")
    a @ b
    best = min(_time(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def format_table(results):
    """Markdown table of :func:`compare` results."""
    backend = keras.backend.backend()
    lines = [
        "| model | backend | mode | ours img/s | keras img/s | ratio (median) | ours GFLOP/s |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {backend} | {r['mode']} | {r['ours_ips']:.1f} | "
            f"{r['keras_ips']:.1f} | {r['ratio']:.2f}x | {r['gflops']:.1f} |"
        )
    return "\n".join(lines)


def plot(results, path):
    """Bar chart of img/s, ours vs keras.applications, saved to ``path``.

    Raises:
        RuntimeError: if matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError(
            "`--plot` needs matplotlib, which is not installed; `pip install matplotlib`."
        ) from exc
    labels = [f"{r['model']}\n{r['mode']}" for r in results]
    pos = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(max(4, 1.8 * len(results)), 3.5))
    ax.bar(pos - 0.2, [r["keras_ips"] for r in results], 0.4, label="keras.applications")
    ax.bar(pos + 0.2, [r["ours_ips"] for r in results], 0.4, label="keras_zoo_plus")
    for p, r in zip(pos, results):
        ax.annotate(f"{r['ratio']:.2f}x", (p + 0.2, r["ours_ips"]), ha="center", va="bottom")
    ax.set_xticks(pos, labels)
    ax.set_ylabel("images / s")
    ax.set_title(f"{keras.backend.backend()} backend")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_parser(sub):
    """Register the ``bench`` subcommand on an argparse subparsers object."""
    p = sub.add_parser("bench", help="speed of ours vs keras.applications on this backend")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--train", action="store_true", help="time a training step")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument(
        "--data-format", default="channels_last", choices=["channels_last", "channels_first"]
    )
    p.add_argument("--plot", metavar="FILE.png")
    p.add_argument("--sgemm", action="store_true", help="also print numpy's sgemm peak")
    p.set_defaults(func=main)
    return p


def main(args):
    """Entry point of ``keras-zoo-plus bench`` (parsed ``args``)."""
    import sys

    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write(
                "keras-zoo-plus: error: --plot needs matplotlib (pip install matplotlib)\n"
            )
            return 2
    results = []
    for name in args.models:
        try:
            results.append(
                compare(name, args.batch, args.size, args.train, args.rounds, args.data_format)
            )
        except ValueError as exc:
            sys.stderr.write(f"keras-zoo-plus: skipping {name}: {exc}\n")
    print(f"batch {args.batch}, {args.size}x{args.size}, {args.rounds} alternating rounds")
    print(format_table(results))
    if args.sgemm:
        print(f"numpy sgemm peak: {sgemm_peak():.1f} GFLOP/s")
    if args.plot and results:
        plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0 if results else 1
