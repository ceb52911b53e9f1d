"""Fine-tune a zoo model on an image folder, data parallel over several
devices, optionally in mixed precision (README "Scaling out").

    python examples/finetune_distributed.py DATA_DIR --model mobilenet_v2 \\
        --devices 2 --mixed-precision --epochs 3 3

``DATA_DIR`` holds one sub-folder of images per class, read with
``keras.utils.image_dataset_from_directory`` (a tf.data pipeline:
TensorFlow must be installed, whatever the backend).

Two phases, as examples/finetune.py: the new head alone on the frozen
backbone, then the last stage too at a tenth of the rate, its
BatchNormalization kept frozen.

``--devices N`` trains on N devices, each step on an equal share of the
batch:

* JAX: ``keras.distribution.DataParallel`` (the batch statistics of
  BatchNormalization are the global batch's);
* TensorFlow: ``tf.distribute.MirroredStrategy``, BatchNormalization
  synchronised over the replicas
  (``keras_zoo_plus.distribution.synchronize_batchnorm``; undone before
  the model is saved, so that it loads on every backend);
* torch: one device (Keras distributes torch models with no API of its own).

Without accelerators the CPU is split into N virtual devices (XLA's host
device count on JAX, logical devices on TensorFlow), as tests/CI do. That
has to happen before the backend starts, which is why this script parses
its arguments before it imports Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", help="one sub-folder of images per class")
    parser.add_argument("--model", default="mobilenet_v2", help="a registered model name")
    parser.add_argument("--weights", default="imagenet",
                        help='"imagenet", "none" or a weights file for the backbone')
    parser.add_argument("--size", type=int, default=224, help="image height and width")
    parser.add_argument("--devices", type=int, default=1, help="data parallel over N devices")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="global batch, a multiple of --devices")
    parser.add_argument("--epochs", type=int, nargs=2, default=(3, 3), metavar=("HEAD", "STAGE"),
                        help="epochs of each phase")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--mixed-precision", action="store_true",
                        help="train in mixed_bfloat16 (float32 variables)")
    parser.add_argument("--validation-split", type=float, default=0.25)
    parser.add_argument("--output", help="save the fine-tuned model here (.keras)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.devices < 1:
        parser.error(f"--devices must be at least 1; received {args.devices}")
    if args.batch_size % args.devices:
        parser.error(f"--batch-size must be a multiple of --devices ({args.devices}); "
                     f"received {args.batch_size}")
    if not os.path.isdir(args.data_dir):
        parser.error(f"DATA_DIR {args.data_dir!r} is not a directory")
    return args


def split_cpu(devices):
    """N virtual CPU devices for the backend about to start, when there is
    no accelerator (set before the backend's first use)."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if devices < 2:
        return
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "host_platform_device_count" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={devices}"
    elif backend == "tensorflow":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * devices)


def distribution_scope(devices):
    """The scope the model is built and trained in, and a description."""
    import contextlib

    import keras

    backend = keras.backend.backend()
    if devices == 1:
        return contextlib.nullcontext(), "one device"
    if backend == "jax":
        import jax

        found = jax.devices()
        if len(found) < devices:
            raise SystemExit(f"--devices {devices}: JAX sees {len(found)} device(s)")
        chosen = found[:devices]
        return (keras.distribution.DataParallel(devices=chosen).scope(),
                f"keras.distribution.DataParallel over {[str(d) for d in chosen]}")
    if backend == "tensorflow":
        import tensorflow as tf

        kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
        names = [d.name for d in tf.config.list_logical_devices(kind)][:devices]
        if len(names) < devices:
            raise SystemExit(f"--devices {devices}: TensorFlow sees {len(names)} {kind} device(s)")
        return (tf.distribute.MirroredStrategy(names).scope(),
                f"tf.distribute.MirroredStrategy over {names}")
    raise SystemExit(f"--devices {devices}: Keras has no data-parallel API for the "
                     f"{backend} backend; use --devices 1")


def datasets(args, preprocess_mode):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_zoo_plus import imagenet

    common = dict(image_size=(args.size, args.size), batch_size=args.batch_size,
                  label_mode="int", validation_split=args.validation_split, seed=0)
    train = keras.utils.image_dataset_from_directory(args.data_dir, subset="training", **common)
    val = keras.utils.image_dataset_from_directory(args.data_dir, subset="validation", **common)
    classes = train.class_names

    def preprocess(x):
        return imagenet.preprocess_input(x, mode=preprocess_mode).astype(np.float32)

    def prepare(ds):
        ds = ds.map(lambda x, y: (tf.ensure_shape(
            tf.numpy_function(preprocess, [x], tf.float32), x.shape), y))
        # Only whole global batches: each device gets an equal share.
        return ds.unbatch().batch(args.batch_size, drop_remainder=True).prefetch(2)

    return prepare(train), prepare(val), classes


def build(args, classes):
    import keras

    import keras_zoo_plus as kzp

    weights = None if args.weights == "none" else args.weights
    base = kzp.create_model(args.model, weights=weights, include_top=False, pooling="avg",
                            input_shape=(args.size, args.size, 3))
    model = keras.Sequential([
        keras.Input((args.size, args.size, 3)),
        base,
        keras.layers.Dropout(0.2, name="head_dropout"),
        keras.layers.Dense(len(classes), name="head"),
        # The probabilities in float32 under a mixed policy too.
        keras.layers.Activation("softmax", dtype="float32", name="probabilities"),
    ])
    return base, model


def main(argv=None):
    args = parse_args(argv)
    split_cpu(args.devices)

    import keras

    import keras_zoo_plus as kzp
    from keras_zoo_plus import distribution

    if args.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    info = kzp.model_info(args.model)
    train, val, classes = datasets(args, info.preprocess)
    scope, described = distribution_scope(args.devices)
    verbose = 0 if args.quiet else 1
    print(f"{args.model} on {keras.backend.backend()}: {described}; "
          f"policy {keras.config.dtype_policy().name}", flush=True)
    with scope:
        base, model = build(args, classes)
        if args.devices > 1 and keras.backend.backend() == "tensorflow":
            distribution.synchronize_batchnorm(model)
        # Phase 1: only the new head trains.
        kzp.freeze(base)
        model.compile(keras.optimizers.Adam(args.learning_rate),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        trainable = [len(model.trainable_weights)]
        head = model.fit(train, validation_data=val, epochs=args.epochs[0], verbose=verbose)
        # Phase 2: the last stage too, its BatchNormalization frozen.
        kzp.unfreeze(model, stages=1)
        model.compile(keras.optimizers.Adam(args.learning_rate / 10),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
        if verbose:
            print(kzp.trainable_summary(model))
        trainable.append(len(model.trainable_weights))
        stage = model.fit(train, validation_data=val, epochs=args.epochs[1], verbose=verbose)
    if args.devices > 1 and keras.backend.backend() == "tensorflow":
        distribution.synchronize_batchnorm(model, False)
    if args.output:
        model.save(args.output)
    summary = {
        "backend": keras.backend.backend(), "distribution": described,
        "policy": keras.config.dtype_policy().name, "classes": classes,
        "trainable_weights": trainable, "head_loss": head.history["loss"], "stage_loss": stage.history["loss"],
        "val_accuracy": stage.history["val_accuracy"][-1],
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
