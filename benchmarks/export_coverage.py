"""Export coverage: every registered model through every export format its
backend has, verified in the serving runtime (keras_zoo_plus.export).

One backend per process (KERAS_BACKEND), models in registry order (each in
a fresh subprocess: TensorFlow's exporters keep memory across exports), one
JSON line per (model, data format, format) appended to --jsonl as soon as
it is known, so an interrupted sweep resumes where it stopped:

    KERAS_BACKEND=torch python benchmarks/export_coverage.py --jsonl cov.jsonl
    KERAS_BACKEND=tensorflow python benchmarks/export_coverage.py --jsonl cov.jsonl \\
        --formats onnx saved_model litert
    python benchmarks/export_coverage.py --render cov.jsonl > coverage.md

Models are built with ``weights=None`` and then given ``check``'s
synthetic weights (keras_zoo_plus.synthetic, seed 0), with logits
(``classifier_activation=None``), at ``max(32, minimum size)`` pixels
square. Not the random initialisation: a randomly initialised
EfficientNetV2-L is chaotic (its logits reach 1e3-5e3 and Keras' own fused
and layer-by-layer torch paths differed by 84-95% of them on the same
weights), so no artifact could match it; the synthetic weights keep every
family's activations tame, as ``check`` needs them to. The artifacts go to a temporary directory, removed after each
model. ``nox -s export`` runs it on every backend.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

DATA_FORMATS = ("channels_last", "channels_first")
EXTENSIONS = {"onnx": ".onnx", "saved_model": "", "litert": ".tflite"}


def _done(path):
    seen = set()
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    seen.add((r["model"], r["backend"], r["data_format"], r["format"]))
    return seen


def sweep_in_subprocesses(args):
    """One fresh process per model: TensorFlow's exporters keep memory
    across exports (one process reached 21 GB RSS and was killed after
    six families' ONNX, SavedModel and LiteRT exports here)."""
    from keras_zoo_plus import registry

    names = ([registry.model_info(n).name for n in args.models] if args.models
             else registry.list_models())
    rest = ["--formats", *args.formats, "--data-formats", *args.data_formats,
            "--size", str(args.size)] + (["--jsonl", args.jsonl] if args.jsonl else [])
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    for name in names:
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--in-process", "--models", name, *rest],
                timeout=args.timeout)
            failed = proc.returncode != 0 and f"the process exited with {proc.returncode}"
        except subprocess.TimeoutExpired:
            failed = f"not finished after {args.timeout} s"
        if failed:  # a record for every cell the process left undone
            done = _done(args.jsonl)
            for data_format in args.data_formats:
                for format in args.formats:
                    if (name, backend, data_format, format) in done:
                        continue
                    record = {"model": name, "backend": backend, "data_format": data_format,
                              "format": format, "status": "timeout" if "after" in failed
                              else "error", "reason": failed}
                    print(json.dumps(record), flush=True)
                    if args.jsonl:
                        with open(args.jsonl, "a") as f:
                            f.write(json.dumps(record) + "\n")


def sweep(args):
    import keras

    import keras_zoo_plus as kz
    from keras_zoo_plus import exporting, registry, synthetic

    backend = keras.backend.backend()
    names = ([registry.model_info(n).name for n in args.models] if args.models
             else registry.list_models())
    done = _done(args.jsonl)
    for name in names:
        info = registry.model_info(name)
        size = max(args.size, int(info.min_size))
        for data_format in args.data_formats:
            todo = [f for f in args.formats if (name, backend, data_format, f) not in done]
            if not todo:
                continue
            shape = (size, size, 3) if data_format == "channels_last" else (3, size, size)
            model = kz.create_model(name, weights=None, input_shape=shape,
                                    data_format=data_format, classifier_activation=None)
            synthetic.apply_synthetic_weights(model, seed=0, family=info.family)
            for format in todo:
                record = {"model": name, "backend": backend, "data_format": data_format,
                          "format": format, "size": size}
                with tempfile.TemporaryDirectory(prefix="kzp-export-") as tmp:
                    path = os.path.join(tmp, name + EXTENSIONS[format])
                    start = time.perf_counter()
                    try:
                        exporting.requirements(format, backend)
                        result = exporting.export(model, path, format=format)
                        record.update(status="ok", deviation=result.worst,
                                      export_seconds=round(result.export_seconds, 1))
                    except exporting.ExportVerificationError as exc:
                        record.update(status="above tolerance", deviation=exc.result.worst)
                    except exporting.ExportError as exc:
                        unsupported = (format, backend) in exporting._UNSUPPORTED
                        record.update(status="unsupported" if unsupported else "error",
                                      reason=str(exc))
                    except Exception as exc:  # recorded, the sweep goes on
                        record.update(status="error", reason=f"{type(exc).__name__}: {exc}")
                    record["seconds"] = round(time.perf_counter() - start, 1)
                print(json.dumps(record), flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps(record) + "\n")
            del model
            keras.backend.clear_session()
            gc.collect()


def render(paths):
    """Markdown: one row per model, one column per (backend, format, data
    format) seen; each cell the worst relative deviation or the failure."""
    records = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    records[r["model"], r["backend"], r["format"], r["data_format"]] = r
    order = {"tensorflow": 0, "torch": 1, "jax": 2}
    forder = {"onnx": 0, "saved_model": 1, "litert": 2}
    columns = sorted({k[1:] for k in records},
                     key=lambda c: (forder[c[1]], order[c[0]], c[2] != "channels_last"))
    models = sorted({k[0] for k in records})
    short = {"channels_last": "NHWC", "channels_first": "NCHW"}
    lines = ["| model | " + " | ".join(f"{f} {b} {short[d]}" for b, f, d in columns) + " |",
             "|---|" + "---|" * len(columns)]
    worst, counts = 0.0, {}
    for m in models:
        cells = []
        for b, f, d in columns:
            r = records.get((m, b, f, d))
            if r is None:
                cells.append("")
                continue
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            if r["status"] == "ok":
                worst = max(worst, r["deviation"])
                cells.append(f"{r['deviation']:.1e}")
            else:
                cells.append(r["status"])
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Cells: {', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}; "
                 f"worst verified deviation {worst:.2e}.")
    failures = [r for r in records.values() if r["status"] != "ok"]
    for r in sorted(failures, key=lambda r: (r["model"], r["backend"], r["format"])):
        lines.append(f"- {r['model']} {r['backend']} {r['format']} {r['data_format']}: "
                     f"{r['status']}: {r.get('reason', r.get('deviation'))}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", help="registry names (default: every model)")
    p.add_argument("--formats", nargs="+", default=["onnx"],
                   choices=["onnx", "saved_model", "litert"])
    p.add_argument("--data-formats", nargs="+", default=list(DATA_FORMATS),
                   choices=list(DATA_FORMATS))
    p.add_argument("--size", type=int, default=32, help="pixels (at least the minimum size)")
    p.add_argument("--jsonl", help="append the records here; done ones are skipped")
    p.add_argument("--render", nargs="+", metavar="JSONL", help="print the markdown table")
    p.add_argument("--timeout", type=int, default=900,
                   help="seconds a model's subprocess may take (default 900)")
    p.add_argument("--in-process", action="store_true",
                   help="every model in this process (default: one subprocess per model)")
    args = p.parse_args(argv)
    if args.render:
        sys.stdout.write(render(args.render))
        return 0
    if args.in_process:
        sweep(args)
    else:
        sweep_in_subprocesses(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
