"""``keras-zoo-plus`` command line.

    keras-zoo-plus list [PATTERN]          registered models ("resnet*")
    keras-zoo-plus info MODEL              what the zoo knows about one model
    keras-zoo-plus table [--markdown]      parameters, size, depth, accuracy
    keras-zoo-plus check [options]         cross-backend compatibility matrix

    keras-zoo-plus check --model package.module:function [--input-shape H,W,C]
    keras-zoo-plus check path/model.keras      your own model, same matrix

    keras-zoo-plus export MODEL_OR_FILE --format onnx|saved_model|litert --output PATH
        [--weights imagenet|none|FILE] [--size HxW] [--data-format F] [--json FILE]
                                           export, then verify in the serving runtime

Exit codes: 0 success, 1 ``check`` found a deviation above the tolerance or a
cell that failed (``table``: a parameter count differs from the registry;
``export``: the artifact deviates above the tolerance, or the exporter or
its runtime failed), 2 bad arguments (one line on stderr), a user's model
included that no cell could build or load, or a package the export format
needs is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

PROG = "keras-zoo-plus"


class UsageError(Exception):
    """Bad command-line input: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, exit code 2, no usage dump.
        sys.stderr.write(f"{PROG}: error: {message}\n")
        raise SystemExit(2)


def _resolve_models(patterns):
    """Registry names for names/wildcards, in registry order, without duplicates."""
    from keras_zoo_plus import registry

    if not patterns:
        return registry.list_models()
    names = []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            found = registry.list_models(pattern)
            if not found:
                raise UsageError(f"no model matches {pattern!r} (see `{PROG} list`)")
        else:
            try:
                found = [registry.model_info(pattern).name]
            except ValueError:
                known = ", ".join(registry.list_models())
                raise UsageError(f"unknown model {pattern!r}; known models: {known}") from None
        names += [n for n in found if n not in names]
    return names


def _cmd_list(args):
    from keras_zoo_plus import registry

    names = registry.list_models(args.pattern)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r} (see `{PROG} list`)")
    for name in names:
        print(name)
    return 0


def _cmd_info(args):
    from keras_zoo_plus import registry

    try:
        info = registry.model_info(args.model)
    except ValueError:
        known = ", ".join(registry.list_models())
        raise UsageError(f"unknown model {args.model!r}; known models: {known}") from None

    def acc(v):
        return "-" if v is None else f"{v:.3f}"

    print(f"name:          {info.name}")
    print(f"constructor:   keras_zoo_plus.applications.{info.constructor_name}")
    print(f"family:        {info.family}")
    print(f"parameters:    {info.params:,} (with the 1000-class top)")
    print(f"default size:  {info.default_size}x{info.default_size}")
    print(f"minimum size:  {info.min_size}x{info.min_size}")
    print(f"preprocess:    {info.preprocess}")
    print(f"top-1 / top-5: {acc(info.top1)} / {acc(info.top5)} (published, official weights)")
    if info.stages:
        print(f"stages:        {', '.join(name for name, _ in info.stages)}")
    for level in info.feature_levels:
        print(f"feature {level.name}:    {level.layer} (stride {level.stride}, "
              f"{level.channels} channels)")
    files = info.weight_files()
    if not files:
        print("weights:       no official weight file")
    for kind, wf in files.items():
        hash_text = (f"{wf.hash_algorithm} {wf.file_hash}" if wf.file_hash
                     else "no published hash")
        print(f"weights {kind:5s}: {wf.fname} ({hash_text})")
    variants = {wf.variant for wf in info.weights} - {()}
    if len(variants) > 1:
        args_text = ", ".join(k for k, _ in next(iter(variants)))
        print(f"weights:       {len(info.weights)} official files, one per include_top and "
              f"({args_text}); the ones above are the default's")
    return 0


def _cmd_table(args):
    from keras_zoo_plus import registry
    from keras_zoo_plus import table as table_mod

    infos = [registry.model_info(n) for n in _resolve_models(args.models)]
    rows = []
    for i, info in enumerate(infos, 1):
        if not args.quiet:
            sys.stderr.write(f"[{i}/{len(infos)}] building {info.name}\n")
            sys.stderr.flush()
        rows.append(table_mod.model_row(info))
    print(table_mod.render(rows, markdown=args.markdown))
    if args.json:
        _write(args.json, json.dumps({"schema_version": 1, "models": rows}, indent=2) + "\n")
    bad = [r for r in rows if r["params"] != r["registered_params"]]
    for r in bad:
        sys.stderr.write(
            f"{PROG}: {r['model']}: built {r['params']:,} parameters, "
            f"registry says {r['registered_params']:,}\n"
        )
    return 1 if bad else 0


def _parse_size(text):
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+))?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}")
    h = int(m.group(1))
    w = int(m.group(2) or h)
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return h, w


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _parse_input_shape(text):
    from keras_zoo_plus import usermodel

    parts = [p.strip() for p in text.split(",")]
    try:
        shape = tuple(int(p) for p in parts)
        usermodel.validate_input_shape(shape)
    except ValueError:
        count = f" ({len(parts)} values)" if len(parts) != 3 else ""
        raise argparse.ArgumentTypeError(
            f"expected {usermodel.ALLOWED_SHAPE}, got {text!r}{count}") from None
    return shape


def _zoo_name(text):
    from keras_zoo_plus import registry

    try:
        return registry.model_info(text).name
    except ValueError:
        return None


def _user_job(args, formats_given):
    """``(job, formats)`` for ``--model`` or a model file, or None for the
    zoo. Every check that needs no worker happens here."""
    from keras_zoo_plus import usermodel

    user = args.model is not None or args.path is not None
    if not user:
        if args.input_shape is not None:
            raise UsageError(f"--input-shape {','.join(map(str, args.input_shape))} applies to "
                             "--model or a model file; zoo models take --size")
        if args.custom_objects is not None:
            raise UsageError(f"--custom-objects {args.custom_objects!r} applies to --model or "
                             "a model file; the zoo's own are always in scope")
        return None
    if args.path is not None and not os.path.exists(args.path):
        zoo = _zoo_name(args.path)
        if zoo is not None:
            raise UsageError(
                f"model file {args.path!r}: no such file; {args.path} is a zoo model: check it "
                f"with --models {zoo}" + (", not with --model" if args.model else "")
            )
    if args.model is not None and args.path is not None:
        raise UsageError(f"give either --model or a model file, not both (got --model "
                         f"{args.model!r} and {args.path!r})")
    given = f"--model {args.model!r}" if args.model is not None else f"model file {args.path!r}"
    if args.models or args.quick:
        zoo = "--quick" if args.quick else f"--models {' '.join(args.models)}"
        raise UsageError(f"{given} checks your model instead of the zoo; give either it or "
                         f"{zoo}, not both")
    if args.size is not None:
        raise UsageError(f"--size {args.size[0]}x{args.size[1]} applies to zoo models; give "
                         "your model's input as --input-shape H,W,C")
    try:
        if args.model is not None:
            job = usermodel.builder_job(args.model, input_shape=args.input_shape,
                                        custom_objects=args.custom_objects)
            return job, None
        job, saved = usermodel.file_job(args.path, input_shape=args.input_shape,
                                        custom_objects=args.custom_objects)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if formats_given and formats_given != [saved]:
        raise UsageError(
            f"--formats {' '.join(formats_given)}: {args.path!r} was saved in {saved}, "
            f"the only data format it runs in; choose from {saved}"
        )
    return job, [saved]


def _write(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _cmd_check(args):
    from keras_zoo_plus import check

    installed = check.installed_backends()
    if args.backends:
        backends = []
        for b in args.backends:
            if b not in check.BACKENDS:
                hint = (" (give the model file before --backends)"
                        if b.lower().endswith((".keras", ".h5", ".hdf5")) else "")
                raise UsageError(
                    f"unknown backend {b!r}; choose from {', '.join(check.BACKENDS)}{hint}"
                )
            if b not in installed:
                raise UsageError(
                    f"backend {b!r} is not installed (installed: "
                    f"{', '.join(installed) or 'none'}); try `pip install keras-zoo-plus[{b}]`"
                )
            if b not in backends:
                backends.append(b)
    else:
        backends = installed
        if not backends:
            raise UsageError("no backend installed: install tensorflow, torch or jax")
    formats = []
    for f in args.formats or check.DATA_FORMATS:
        if f not in check.DATA_FORMATS:
            raise UsageError(
                f"unknown data format {f!r}; choose from {', '.join(check.DATA_FORMATS)}"
            )
        if f not in formats:
            formats.append(f)
    user = _user_job(args, formats if args.formats else None)
    if user is not None:
        job, saved_formats = user
        models, formats = [job], saved_formats or formats
    else:
        if args.quick and args.models:
            raise UsageError(
                "--quick picks the models itself (the smallest of each family); "
                "use either --quick or --models"
            )
        models = check.quick_models() if args.quick else _resolve_models(args.models)
        try:
            check.plan(models, size=args.size)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    from keras_zoo_plus.usermodel import UserModelError

    try:
        report = check.run_check(
            models, backends, formats, tolerance=args.tolerance, size=args.size,
            batch=args.batch, seed=args.seed, repeat=args.repeat, jobs=args.jobs,
            threads=args.threads, progress=not args.quiet,
        )
    except UserModelError as exc:
        raise UsageError(str(exc)) from None
    print(check.render_text(report))
    if args.json:
        _write(args.json, json.dumps(report, indent=2) + "\n")
    if args.markdown:
        _write(args.markdown, check.render_markdown(report))
    if args.junit:
        _write(args.junit, check.render_junit(report))
    return 0 if report["passed"] else 1


def build_parser():
    from keras_zoo_plus import __version__, check

    parser = _Parser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'resnet*'")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("info", help="describe one model")
    p.add_argument("model")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "table", help="parameters, size, depth and published accuracy of every model",
        description="Build every model (weights=None, with its top) on the current backend "
        "and print exact parameters, float32 size (MiB), depth (layers with weights) and "
        "the published top-1/top-5 accuracy.",
    )
    p.add_argument("--models", nargs="+", metavar="MODEL", help="names or wildcards")
    p.add_argument("--markdown", action="store_true", help="print a markdown table")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_table)

    p = sub.add_parser(
        "check", help="cross-backend compatibility matrix (deterministic weights, no download)",
        description="Build every model on every installed backend in both data formats with "
        "the same synthetic weights, run the same input and compare every cell with every "
        "other. Your own model: --model package.module:function (its random "
        "initialisation replaced by the synthetic weights) or a saved .keras/.h5 file (its "
        "weights as saved, in the data format it was saved with). Exit codes: 0 every cell "
        "within the tolerance, 1 a cell deviates or fails to build or run, 2 bad arguments "
        "(a model of yours that no cell could build or load included).",
    )
    p.add_argument("path", nargs="?", metavar="MODEL_FILE",
                   help="check this .keras or legacy .h5 model file (loaded with "
                   "keras_zoo_plus.load_model) instead of the zoo")
    p.add_argument("--model", metavar="MODULE:FUNCTION",
                   help="check the model this function returns instead of the zoo; the module "
                   "is imported from the current directory or PYTHONPATH")
    p.add_argument("--input-shape", type=_parse_input_shape, metavar="H,W,C",
                   help="input of your model, channels last (default: the model's own)")
    p.add_argument("--custom-objects", metavar="MODULE:NAME",
                   help="a dict of your custom objects (or a function returning one)")
    p.add_argument("--models", nargs="+", metavar="MODEL",
                   help="names or wildcards (default: every registered model)")
    p.add_argument("--quick", action="store_true",
                   help="only the smallest model (by parameters) of each family, every backend "
                   "and format; not with --models")
    p.add_argument("--backends", nargs="+", metavar="BACKEND",
                   help=f"subset of {', '.join(check.BACKENDS)} (default: every installed one)")
    p.add_argument("--formats", nargs="+", metavar="FORMAT",
                   help="channels_last and/or channels_first (default: both)")
    p.add_argument("--tolerance", type=_positive_float, default=check.DEFAULT_TOLERANCE,
                   help=f"largest allowed relative deviation (default {check.DEFAULT_TOLERANCE:g})")
    p.add_argument("--size", type=_parse_size, default=None, metavar="HxW",
                   help=f"input size for every model (default: H = max({check.MIN_CHECK_SIZE}, "
                   f"minimum size), W = H + {check.WIDTH_EXTRA})")
    p.add_argument("--batch", type=_positive_int, default=check.DEFAULT_BATCH,
                   help=f"images per input batch (default {check.DEFAULT_BATCH})")
    p.add_argument("--seed", type=int, default=check.DEFAULT_SEED,
                   help="seed of the synthetic weights and input (default 0)")
    p.add_argument("--repeat", type=_positive_int, default=1,
                   help="timed forward passes per cell after the first (default 1)")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="backend workers at once (default: min(CPU cores, backends))")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="compute threads per worker (default: max(1, CPU cores // jobs))")
    p.add_argument("--json", metavar="FILE", help="write the JSON report (schema_version 1)")
    p.add_argument("--markdown", metavar="FILE", help="write a markdown report")
    p.add_argument("--junit", metavar="FILE",
                   help="write JUnit XML, one test case per cell")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_cmd_check)

    _add_bench_parser(sub)
    _add_export_parser(sub)
    return parser


def _add_export_parser(sub):
    """The ``export`` subcommand (:mod:`keras_zoo_plus.exporting`)."""
    from keras_zoo_plus import exporting

    p = sub.add_parser(
        "export", help="export a model to ONNX, SavedModel or LiteRT and verify it",
        description="Build a zoo model (or load a .keras/.h5 file), export it with Keras' "
        "exporter on the current backend (KERAS_BACKEND), then run the artifact in the runtime "
        "that serves it (onnxruntime, tf.saved_model.load, the LiteRT interpreter) on a seeded "
        "batch and compare with Keras. The artifact reaches --output only if it matches. Exit "
        "codes: 0 verified, 1 the artifact deviates above the tolerance or the exporter or its "
        "runtime failed, 2 bad arguments or a missing package (one line on stderr).",
    )
    p.add_argument("model", metavar="MODEL_OR_FILE",
                   help="a registered model name (see `keras-zoo-plus list`) or a .keras/.h5 "
                   "model file")
    p.add_argument("--format", required=True, metavar="FORMAT",
                   help=f"one of {', '.join(exporting.FORMATS)}")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="the artifact: a .onnx file, a SavedModel directory or a .tflite file")
    p.add_argument("--weights", default="imagenet", metavar="WEIGHTS",
                   help="zoo models: 'imagenet' (default), 'none' (random initialisation) or a "
                   "weights file")
    p.add_argument("--size", type=_parse_size, default=None, metavar="HxW",
                   help="input height and width the artifact serves (default: the model's own; "
                   "a zoo model's default size)")
    p.add_argument("--data-format", default=None, choices=["channels_last", "channels_first"],
                   help="zoo models: the data format to build in (default channels_last); a "
                   "file keeps the format it was saved with")
    p.add_argument("--batch", type=_positive_int, default=exporting.DEFAULT_BATCH,
                   help=f"images in the verification batch (default {exporting.DEFAULT_BATCH})")
    p.add_argument("--tolerance", type=_positive_float, default=None,
                   help="largest allowed relative deviation (default: "
                   + ", ".join(f"{f} {t:g}" for f, t in exporting.TOLERANCES.items()) + ")")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="export only, without running the artifact")
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    p.set_defaults(func=_cmd_export)
    return p


def _export_model(args):
    """The model to export: a zoo model built, or a model file loaded."""
    from keras_zoo_plus import registry

    name = _zoo_name(args.model)
    if name is None:
        if not os.path.exists(args.model):
            known = ", ".join(registry.list_models())
            raise UsageError(f"{args.model!r} is neither a registered model nor a model file; "
                             f"known models: {known}")
        if args.weights != "imagenet":
            raise UsageError(f"--weights {args.weights!r} applies to zoo models; the model file "
                             f"{args.model!r} holds its own weights")
        if args.data_format is not None:
            raise UsageError(f"--data-format {args.data_format} applies to zoo models; the model "
                             f"file {args.model!r} runs in the format it was saved with")
        from keras_zoo_plus import saving

        try:
            return saving.load_model(args.model, compile=False), None
        except (TypeError, ValueError, OSError) as exc:
            raise UsageError(f"model file {args.model!r}: {exc}") from None
    info = registry.model_info(name)
    data_format = args.data_format or "channels_last"
    if args.size is not None:
        h, w = args.size
    elif info.default_size:
        h = w = info.default_size
    else:
        raise UsageError(f"{name} has no default size; give --size HxW")
    shape = (h, w, 3) if data_format == "channels_last" else (3, h, w)
    weights = args.weights
    if weights.lower() == "none":
        weights = None
    elif weights != "imagenet" and not os.path.isfile(weights):
        raise UsageError(f"--weights {weights!r}: expected 'imagenet', 'none' or an existing "
                         "weights file")
    try:
        model = registry.create_model(name, weights=weights, input_shape=shape,
                                      data_format=data_format)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name}: {exc}") from None
    return model, shape


def _cmd_export(args):
    from keras_zoo_plus import exporting

    try:
        format = exporting.normalize_format(args.format)
    except ValueError:
        raise UsageError(f"--format {args.format!r}: choose from "
                         f"{', '.join(exporting.FORMATS)}") from None
    import keras

    backend = keras.backend.backend()
    try:
        exporting.check_requirements(format, backend)
        exporting.check_output_path(args.output, format)
    except (exporting.ExportError, exporting.ExportDependencyError, TypeError,
            ValueError) as exc:
        raise UsageError(str(exc)) from None
    model, shape = _export_model(args)
    if shape is None and args.size is not None:
        declared = tuple(model.inputs[0].shape[1:])
        if len(declared) != 3:
            raise UsageError(f"--size applies to image models (one input of rank 4); "
                             f"{args.model!r} takes inputs of shape {('batch',) + declared}")
        h, w = args.size
        formats = {getattr(layer, "data_format", None) for layer in model.layers}
        if "channels_first" in formats:
            shape = (declared[0], h, w)
        else:
            shape = (h, w, declared[-1])
    try:
        result = exporting.export(model, args.output, format=format, input_shape=shape,
                                  verify=args.verify, batch=args.batch,
                                  tolerance=args.tolerance)
    except exporting.ExportVerificationError as exc:
        print(exc.result.summary())
        _export_json(args, exc.result)
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    except exporting.ExportDependencyError as exc:
        raise UsageError(str(exc)) from None
    except exporting.ExportError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    print(result.summary())
    _export_json(args, result)
    return 0


def _export_json(args, result):
    if args.json:
        _write(args.json, json.dumps(result.to_dict(), indent=2) + "\n")


BENCH_DEFAULT_MODELS = ("MobileNet", "Xception", "NASNetMobile", "ResNet50")


def _add_bench_parser(sub):
    """The ``bench`` subcommand; :mod:`keras_zoo_plus.bench` (which imports
    Keras) is imported only when it runs."""
    p = sub.add_parser(
        "bench", help="speed of ours vs keras.applications on this backend",
        description="Time our models against keras.applications on the current backend "
        "(KERAS_BACKEND), same weights, alternating rounds in one process.",
    )
    p.add_argument("--models", nargs="+", default=list(BENCH_DEFAULT_MODELS), metavar="MODEL",
                   help=f"constructor names or 'all' (default: {' '.join(BENCH_DEFAULT_MODELS)})")
    p.add_argument("--batch", type=_positive_int, default=None,
                   help="images per step (default 16; 1 with --latency)")
    p.add_argument("--size", type=_positive_int, default=224,
                   help="input height and width (default 224)")
    p.add_argument("--train", action="store_true", help="time an SGD training step")
    p.add_argument("--peer", choices=["keras", "torch", "tf_keras"], default=None,
                   help="what ours is timed against: keras.applications on this backend "
                        "(default); on the torch backend, the same graph and weights as a "
                        "plain torch.nn.Module (eval, no_grad, channels_last memory); on the "
                        "TensorFlow backend, tf_keras.applications (Keras 2, needs tf_keras; "
                        "the only other RegNet and ResNetRS), both with logits "
                        "(classifier_activation=None), not with --memory")
    p.add_argument("--latency", action="store_true",
                   help="one image per step; the table adds milliseconds per image")
    p.add_argument("--rounds", type=_positive_int, default=5,
                   help="timed rounds after a warm-up (default 5)")
    p.add_argument(
        "--data-format", default="channels_last", choices=["channels_last", "channels_first"],
        help="data format of our model (keras.applications runs channels_last)",
    )
    p.add_argument("--backends", nargs="+", choices=["tensorflow", "torch", "jax"], metavar="BACKEND",
                   help="time our models on each of these backends instead (tensorflow, "
                        "torch, jax; one fresh process per model and backend, this "
                        "interpreter, which must have them all), with ratios to the first "
                        "and each output's deviation from the first's")
    p.add_argument("--passes", type=_positive_int, default=None,
                   help="with --backends: passes over the backends, in rotated order; each "
                        "figure is the median of the passes' medians (default 2)")
    p.add_argument("--dtype-policy", metavar="POLICY", default=None,
                   help="time our models under this mixed precision policy "
                        "(mixed_bfloat16 or mixed_float16) against themselves in float32, "
                        "same weights, alternating rounds in one process; not with --peer, "
                        "--backends, --memory or --plot")
    p.add_argument("--plot", metavar="FILE.png", help="bar chart of img/s (needs matplotlib)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--sgemm", action="store_true", help="also print numpy's sgemm peak")
    p.add_argument("--memory", action="store_true",
                   help="also measure each side's peak RSS in a fresh process (build + one "
                        "inference of --batch images, import included)")
    p.set_defaults(func=_cmd_bench)
    return p


def _cmd_bench(args):
    from keras_zoo_plus import bench

    return bench.main(args)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
