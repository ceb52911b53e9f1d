"""EfficientNetV2 B0 to B3, S, M and L: their model-table entries, and the
architecture's numbers (block tables, scaling coefficients, rounding),
shared with the builder (``keras_zoo_plus.applications.efficientnet_v2``).

Layer names are keras.applications' (``stem_conv``, ``block1a_project_conv``,
``block4a_dwconv2``, ``top_conv``); the preprocessing layers it leaves
unnamed are ``rescaling`` and, for B0-B3, ``normalization`` (the ImageNet
mean and variance as constants, no weights). ``preprocess_input`` is the
identity ("none") with ``include_preprocessing=True``, the default.

Files: keras.applications.efficientnet_v2's ``BASE_WEIGHTS_PATH`` (the
``efficientnet_v2`` folder of the usual base URL) and md5 ``WEIGHTS_HASHES``.
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files
from keras_zoo_plus.model_table.efficientnet import round_repeats

#: Stages at width and depth 1.0, keras.applications' ``DEFAULT_BLOCKS_ARGS``:
#: (kernel, repeats, filters in, filters out, expansion, squeeze-and-excite
#: ratio, stride, fused). B0-B3 share the B0 table.
_B = (
    (3, 1, 32, 16, 1, 0.0, 1, True),
    (3, 2, 16, 32, 4, 0.0, 2, True),
    (3, 2, 32, 48, 4, 0.0, 2, True),
    (3, 3, 48, 96, 4, 0.25, 2, False),
    (3, 5, 96, 112, 6, 0.25, 1, False),
    (3, 8, 112, 192, 6, 0.25, 2, False),
)
BLOCKS = {
    "b0": _B, "b1": _B, "b2": _B, "b3": _B,
    "s": (
        (3, 2, 24, 24, 1, 0.0, 1, True),
        (3, 4, 24, 48, 4, 0.0, 2, True),
        (3, 4, 48, 64, 4, 0.0, 2, True),
        (3, 6, 64, 128, 4, 0.25, 2, False),
        (3, 9, 128, 160, 6, 0.25, 1, False),
        (3, 15, 160, 256, 6, 0.25, 2, False),
    ),
    "m": (
        (3, 3, 24, 24, 1, 0.0, 1, True),
        (3, 5, 24, 48, 4, 0.0, 2, True),
        (3, 5, 48, 80, 4, 0.0, 2, True),
        (3, 7, 80, 160, 4, 0.25, 2, False),
        (3, 14, 160, 176, 6, 0.25, 1, False),
        (3, 18, 176, 304, 6, 0.25, 2, False),
        (3, 5, 304, 512, 6, 0.25, 1, False),
    ),
    "l": (
        (3, 4, 32, 32, 1, 0.0, 1, True),
        (3, 7, 32, 64, 4, 0.0, 2, True),
        (3, 7, 64, 96, 4, 0.0, 2, True),
        (3, 10, 96, 192, 4, 0.25, 2, False),
        (3, 19, 192, 224, 6, 0.25, 1, False),
        (3, 25, 224, 384, 6, 0.25, 2, False),
        (3, 7, 384, 640, 6, 0.25, 1, False),
    ),
}
TOP_FILTERS = 1280
MIN_DEPTH = 8

#: variant -> (width coefficient, depth coefficient, default size).
CONFIGS = {
    "b0": (1.0, 1.0, 224),
    "b1": (1.0, 1.1, 240),
    "b2": (1.1, 1.2, 260),
    "b3": (1.2, 1.4, 300),
    "s": (1.0, 1.0, 384),
    "m": (1.0, 1.0, 480),
    "l": (1.0, 1.0, 480),
}

#: md5 of the (top, no-top) files: keras.applications.efficientnet_v2.WEIGHTS_HASHES.
_HASHES = {
    "b0": ("21ecbf6da12460d5c40bb2f29ceb2188", "893217f2bb855e2983157299931e43ff"),
    "b1": ("069f0534ff22adf035c89e2d9547a9dc", "0e80663031ca32d657f9caa404b6ec37"),
    "b2": ("424e49f28180edbde1e94797771950a7", "1dfe2e7a5d45b6632553a8961ea609eb"),
    "b3": ("1f1fc43bd98a6e4fd8fdfd551e02c7a0", "f6abf7b5849ac99a89b50dd3fd532856"),
    "s": ("e1d88a8495beba45748fedd0cecbe016", "af0682fb74e8c54910f2d4393339c070"),
    "m": ("a3bf6aa3276309f4fc6a34aa114c95cd", "1b8dc055df72dde80d614482840fe342"),
    "l": ("27e6d408b53c7ebc868fefa357689935", "b0b66b5c863aef5b46e8608fe1711615"),
}


def round_filters(filters, width, divisor=8, min_depth=MIN_DEPTH):
    """Channels at width coefficient ``width``: the nearest multiple of
    ``divisor``, at least ``min_depth`` (keras.applications' V2 rule, which
    has no 10% correction)."""
    filters *= width
    return int(max(min_depth or divisor, int(filters + divisor / 2) // divisor * divisor))


def stage_blocks(variant, divisor=8):
    """``[(stage, [(prefix, kernel, stride, filters in, filters out,
    expansion, se ratio, fused), ...]), ...]`` with keras.applications'
    names (``block1a_``)."""
    width, depth, _ = CONFIGS[variant]
    out = []
    for i, (kernel, repeats, f_in, f_out, expansion, se, stride, fused) in enumerate(
        BLOCKS[variant], 1
    ):
        f_in, f_out = round_filters(f_in, width, divisor), round_filters(f_out, width, divisor)
        blocks = [
            (f"block{i}{chr(97 + j)}_", kernel, stride if j == 0 else 1,
             f_in if j == 0 else f_out, f_out, expansion, se, fused)
            for j in range(round_repeats(repeats, depth))
        ]
        out.append((i, blocks))
    return out


def block_output(prefix, stride, f_in, f_out, expansion, fused):
    """The last layer of a block: the residual ``add`` where the shape is
    kept; else the fused block's ``project_activation`` (no expansion) or
    the projection's BatchNormalization."""
    if stride == 1 and f_in == f_out:
        return f"{prefix}add"
    if fused and expansion == 1:
        return f"{prefix}project_activation"
    return f"{prefix}project_bn"


def _levels(variant):
    """P1-P4: the last block before each stride-2 stage (the stem's stride
    2 is followed by a stride-1 stage); P5: ``top_activation``, the last
    layer at stride 32."""
    stages = stage_blocks(variant)
    width = CONFIGS[variant][0]
    pairs = []
    for (_, blocks), nxt in zip(stages, stages[1:]):
        if nxt[1][0][2] == 2:
            prefix, _, stride, f_in, f_out, expansion, _, fused = blocks[-1]
            pairs.append((block_output(prefix, stride, f_in, f_out, expansion, fused), f_out))
    pairs.append(("top_activation", round_filters(TOP_FILTERS, width)))
    return levels(*pairs)


def _stages(variant):
    return (
        ("stem", r"^(rescaling|normalization|stem_conv|stem_bn|stem_activation)$"),
        *((f"stage_{i}", rf"^block{i}[a-z]_") for i in range(1, len(BLOCKS[variant]) + 1)),
        ("top", r"^(top_conv|top_bn|top_activation|avg_pool|max_pool|top_dropout|predictions)$"),
    )


def _entry(variant, constructor, *, params, top1, top5, size_mb):
    name = f"efficientnet_v2_{variant}"
    official = f"efficientnetv2-{variant}"
    top, notop = _HASHES[variant]
    return ModelInfo(
        name=name, constructor_name=constructor, module="efficientnet_v2",
        family="efficientnet_v2", default_size=CONFIGS[variant][2], min_size=32,
        preprocess="none", params=params, top1=top1, top5=top5, size_mb=size_mb, depth=None,
        weights=official_files("efficientnet_v2", (f"{official}.h5", top),
                               (f"{official}_notop.h5", notop)),
        feature_levels=_levels(variant),
        stages=_stages(variant),
    )


# Figures: keras.applications' table (top-1/top-5 of the official weights
# at the default size, file size in MB; no depth is published). Parameter
# counts with the top are tf_keras' and checked against the built models.
ENTRIES = (
    _entry("b0", "EfficientNetV2B0", params=7_200_312, top1=0.787, top5=0.943, size_mb=29),
    _entry("b1", "EfficientNetV2B1", params=8_212_124, top1=0.798, top5=0.950, size_mb=34),
    _entry("b2", "EfficientNetV2B2", params=10_178_374, top1=0.805, top5=0.951, size_mb=42),
    _entry("b3", "EfficientNetV2B3", params=14_467_622, top1=0.820, top5=0.958, size_mb=59),
    _entry("s", "EfficientNetV2S", params=21_612_360, top1=0.839, top5=0.967, size_mb=88),
    _entry("m", "EfficientNetV2M", params=54_431_388, top1=0.853, top5=0.974, size_mb=220),
    _entry("l", "EfficientNetV2L", params=119_027_848, top1=0.857, top5=0.975, size_mb=479),
)
