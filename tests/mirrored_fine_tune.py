"""tests/test_distribution.py's TensorFlow cases, in a process of their own:
TensorFlow splits its CPU into logical devices only before it runs
anything, and two MirroredStrategy objects in one process collided on
their collective keys (a model's all-reduce met the previous model's
sizes), so one strategy serves every run here.

Prints one JSON object: for each schedule, the weights' deviation (rel to
each variable's largest magnitude) of the two-replica run from the
one-device run, and both runs' losses; plus the deviation that float32
rounding of the starting weights causes on one device.

    KERAS_BACKEND=tensorflow python tests/mirrored_fine_tune.py
"""

import contextlib
import json
import os
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import test_distribution as td  # noqa: E402

from keras_zoo_plus import distribution  # noqa: E402

NAME, SIZE, BATCH = "mobilenet_v2", 96, 8


def synchronized(model):
    """Every weight trains, BatchNormalization on statistics synchronised
    over the replicas."""
    distribution.synchronize_batchnorm(model)


def main():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    results = {}
    for prepare in (td.bn_frozen, td.last_stage, synchronized, td.everything):
        one = td._fine_tune(NAME, contextlib.nullcontext(), prepare, size=SIZE, batch=BATCH)
        two = td._fine_tune(NAME, strategy.scope(), prepare, size=SIZE, batch=BATCH,
                            state=one[4], rate=one[5])
        rows = td._compare(one, two)
        results[prepare.__name__] = {
            "rel_to_weights": max(r[1] for r in rows), "losses": [one[2], two[2]],
            "moved": [r[0] for r in rows if r[3] > 0], "rate": one[5]}
        if prepare is synchronized:
            again = td._fine_tune(NAME, contextlib.nullcontext(), synchronized, size=SIZE,
                                  batch=BATCH, state=td._rounded(one[4]), rate=one[5])
            results["rounding"] = max(r[1] for r in td._compare(one, again))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
