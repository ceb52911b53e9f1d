"""Inference speed of an exported ONNX model in onnxruntime against the
same model in Keras, on the current backend (KERAS_BACKEND), side by side
in one process.

    KERAS_BACKEND=torch python benchmarks/export_speed.py \\
        [--models mobilenet resnet50 efficientnet_b0] [--batches 1 16] [--rounds 5]

Each model is built once (``weights=None``, 224x224x3, channels_last,
logits), exported with ``keras_zoo_plus.export`` (verified) and then timed:
each round runs Keras' ``predict_on_batch`` and onnxruntime's ``run`` once
each on the same batch, alternating which goes first; one warm-up round
first. The figures are medians over the rounds; the ratio is
``keras time / onnxruntime time`` (> 1: onnxruntime faster). Both use their
default thread pools (every core). Prints a markdown table and the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_line():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    isa = [f for f in flags if f.startswith(("avx512f", "amx", "avx2"))]
    return f"{fields.get('Model name', '?').strip()}, {os.cpu_count()} cores, {' '.join(isa)}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["mobilenet", "resnet50", "efficientnet_b0"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--size", type=int, default=224)
    args = p.parse_args(argv)

    import keras
    import numpy as np
    import onnxruntime

    import keras_zoo_plus as kz

    backend = keras.backend.backend()
    print(f"CPU: {cpu_line()}")
    print(f"keras {keras.__version__}, backend {backend}, onnxruntime {onnxruntime.__version__}")
    print()
    print("| model | batch | keras img/s | onnxruntime img/s | ratio (ort / keras) |")
    print("|---|---|---|---|---|")
    shape = (args.size, args.size, 3)
    for name in args.models:
        model = kz.create_model(name, weights=None, input_shape=shape,
                                classifier_activation=None)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{name}.onnx")
            result = kz.export(model, path)
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            feed = session.get_inputs()[0].name
            for batch in args.batches:
                x = np.random.default_rng(0).normal(size=(batch, *shape)).astype("float32")
                runs = {"keras": lambda m=model, x=x: m.predict_on_batch(x),
                        "ort": lambda s=session, f=feed, x=x: s.run(None, {f: x})}
                times = {"keras": [], "ort": []}
                for r in range(args.rounds + 1):
                    order = ("keras", "ort") if r % 2 == 0 else ("ort", "keras")
                    for side in order:
                        start = time.perf_counter()
                        runs[side]()
                        if r:  # round 0 warms up
                            times[side].append(time.perf_counter() - start)
                k = statistics.median(times["keras"])
                o = statistics.median(times["ort"])
                print(f"| {name} | {batch} | {batch / k:.1f} | {batch / o:.1f} | {k / o:.2f}x |",
                      flush=True)
        print(f"<!-- {name}: exported in {result.export_seconds:.1f} s, rel deviation "
              f"{result.worst:.1e} -->", flush=True)
        keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
