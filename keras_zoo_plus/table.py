"""The model table behind ``keras-zoo-plus table``, computed from the code.

For every registered model it builds the constructor with ``weights=None``
and its ImageNet top (1000 classes, default input size) on the current
backend and reports:

* ``params``: exact parameter count (``model.count_params()``);
* ``size_mb``: float32 weight size, ``params * 4 / 2**20`` (MiB, the unit
  of the keras.io table: VGG16 gives 527.8, published 528);
* ``depth``: the number of layers that hold weights (convolutions, dense and
  BatchNormalization layers). This is the rule behind the current keras.io
  applications table (VGG16 16, ResNet50 107). The seed table's depth column
  (``ModelInfo.depth``: VGG16 23, ResNet50 168) used the older keras.io
  definition, the length of ``model.layers`` of the Keras 2.0-era models,
  activations, pooling and padding layers included; it is shown beside;
* ``top1``/``top5``: the published ImageNet accuracy of the official
  weights (``ModelInfo.top1/top5``), not measured here.
"""

from __future__ import annotations

COLUMNS = ("model", "params", "size_mb", "depth", "seed_depth", "top1", "top5",
           "registered_params")
HEADER = ("model", "parameters", "size (MB)", "depth", "seed depth", "top-1", "top-5")


def weighted_depth(model):
    """Layers of ``model`` that hold weights (the table's depth rule)."""
    return sum(1 for layer in model.layers if layer.weights)


def model_row(info):
    """Build ``info``'s model (no weights) and return its table row dict."""
    import keras

    from keras_zoo_plus.deferred import build_structure_only

    # Counts and layers only: no initializer runs (JAX compiled each one
    # per weight shape; DenseNet169 took 13 s cold).
    model = build_structure_only(info.constructor, weights=None)
    params = int(model.count_params())
    row = {
        "model": info.name,
        "params": params,
        "size_mb": params * 4 / 2**20,
        "depth": weighted_depth(model),
        "seed_depth": info.depth,
        "top1": info.top1,
        "top5": info.top5,
        "registered_params": info.params,
    }
    del model
    keras.backend.clear_session()
    return row


def rows(infos):
    return [model_row(info) for info in infos]


def _cells(row):
    def pct(v):
        return "-" if v is None else f"{v:.3f}"

    return [
        row["model"], f"{row['params']:,}", f"{row['size_mb']:.1f}", str(row["depth"]),
        "-" if row["seed_depth"] is None else str(row["seed_depth"]),
        pct(row["top1"]), pct(row["top5"]),
    ]


def render(table_rows, markdown=False):
    body = [_cells(r) for r in table_rows]
    if markdown:
        out = ["| " + " | ".join(HEADER) + " |",
               "|---|" + "---:|" * (len(HEADER) - 1)]
        out += ["| " + " | ".join(c) + " |" for c in body]
        return "\n".join(out)
    widths = [max(len(r[i]) for r in body + [list(HEADER)]) for i in range(len(HEADER))]

    def line(cells):
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    return "\n".join([line(HEADER), line(["-" * w for w in widths])] + [line(c) for c in body])
