"""EfficientNetB0 to B7: their model-table entries, and the architecture's
numbers (block table, scaling coefficients, rounding), shared with the
builder (``keras_zoo_plus.applications.efficientnet``).

Layer names are keras.applications' (``stem_conv``, ``block2a_dwconv``,
``block6d_se_reduce``, ``top_conv``); the preprocessing layers it leaves
unnamed are ``rescaling``, ``normalization`` (whose adapted mean and
variance are weights of the official files) and, with
``weights="imagenet"`` only, ``rescaling_1``. ``preprocess_input`` is
the identity ("none").

The files are not under keras.applications' usual base URL:
keras.applications.efficientnet's ``BASE_WEIGHTS_PATH`` is
``https://storage.googleapis.com/keras-applications/``, and its
``WEIGHTS_HASHES`` are md5.
"""

import math

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

ROOT = "https://storage.googleapis.com/keras-applications/"

#: The seven stages at width and depth 1.0, keras.applications'
#: ``DEFAULT_BLOCKS_ARGS``: (kernel, repeats, filters in, filters out,
#: expansion, stride); every block has squeeze-and-excite (ratio 0.25)
#: and an identity shortcut where its shape allows.
BLOCKS = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
SE_RATIO = 0.25
STEM_FILTERS = 32
TOP_FILTERS = 1280

#: variant -> (width coefficient, depth coefficient, default size,
#: dropout rate before the classifier), keras.applications' constructors.
CONFIGS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}

#: md5 of the (top, no-top) files: keras.applications.efficientnet.WEIGHTS_HASHES.
_HASHES = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
}


def round_filters(filters, width, divisor=8):
    """Channels at width coefficient ``width``: the nearest multiple of
    ``divisor`` (at least ``divisor``), one more step if rounding lost more
    than 10% (keras.applications' rule)."""
    filters *= width
    rounded = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * filters:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats, depth):
    """Blocks of a stage at depth coefficient ``depth``."""
    return int(math.ceil(depth * repeats))


def stage_blocks(width, depth, divisor=8):
    """``[(stage, [(block name prefix, kernel, stride, filters in, filters
    out, expansion), ...]), ...]``: every block, with keras.applications'
    names (``block2a_``: stage 2, first block)."""
    out = []
    for i, (kernel, repeats, f_in, f_out, expansion, stride) in enumerate(BLOCKS, 1):
        f_in, f_out = round_filters(f_in, width, divisor), round_filters(f_out, width, divisor)
        blocks = []
        for j in range(round_repeats(repeats, depth)):
            blocks.append((f"block{i}{chr(97 + j)}_", kernel, stride if j == 0 else 1,
                           f_in if j == 0 else f_out, f_out, expansion))
        out.append((i, blocks))
    return out


def block_output(prefix, stride, f_in, f_out):
    """The last layer of a block: its residual ``add`` where the shape is
    kept, else its projection's BatchNormalization."""
    return f"{prefix}add" if stride == 1 and f_in == f_out else f"{prefix}project_bn"


def _levels(width, depth):
    """P1-P4: the last block before each stride-2 stage (and the last one
    at stride 16); P5: ``top_activation``, the last layer at stride 32."""
    stages = stage_blocks(width, depth)
    pairs = []
    for (_, blocks), nxt in zip(stages, stages[1:]):
        if nxt[1][0][2] == 2:
            prefix, _, stride, f_in, f_out, _ = blocks[-1]
            pairs.append((block_output(prefix, stride, f_in, f_out), f_out))
    pairs.append(("top_activation", round_filters(TOP_FILTERS, width)))
    return levels(*pairs)


def _stages():
    """Stem (preprocessing included), one stage per block group, top."""
    return (
        ("stem", r"^(rescaling|rescaling_1|normalization|stem_conv_pad|stem_conv|stem_bn"
                 r"|stem_activation)$"),
        *((f"stage_{i}", rf"^block{i}[a-z]_") for i in range(1, len(BLOCKS) + 1)),
        ("top", r"^(top_conv|top_bn|top_activation|avg_pool|max_pool|top_dropout|predictions)$"),
    )


def _entry(variant, constructor, *, params, top1, top5, size_mb, depth):
    name = f"efficientnet_{variant}"
    width, depth_coefficient, default_size, _ = CONFIGS[variant]
    top, notop = _HASHES[variant]
    return ModelInfo(
        name=name, constructor_name=constructor, module="efficientnet", family="efficientnet",
        default_size=default_size, min_size=32, preprocess="none",
        params=params, top1=top1, top5=top5, size_mb=size_mb, depth=depth,
        weights=official_files("", (f"efficientnet{variant}.h5", top),
                               (f"efficientnet{variant}_notop.h5", notop), root=ROOT),
        feature_levels=_levels(width, depth_coefficient),
        stages=_stages(),
    )


# Figures: keras.applications' table (top-1/top-5 of the official weights
# at the default size, file size in MB, depth). Parameter counts with the
# top are tf_keras' (the oracle's) and checked against the built models.
ENTRIES = (
    _entry("b0", "EfficientNetB0", params=5_330_571, top1=0.771, top5=0.933, size_mb=29,
           depth=132),
    _entry("b1", "EfficientNetB1", params=7_856_239, top1=0.791, top5=0.944, size_mb=31,
           depth=186),
    _entry("b2", "EfficientNetB2", params=9_177_569, top1=0.801, top5=0.949, size_mb=36,
           depth=186),
    _entry("b3", "EfficientNetB3", params=12_320_535, top1=0.816, top5=0.957, size_mb=48,
           depth=210),
    _entry("b4", "EfficientNetB4", params=19_466_823, top1=0.829, top5=0.964, size_mb=75,
           depth=258),
    _entry("b5", "EfficientNetB5", params=30_562_527, top1=0.836, top5=0.967, size_mb=118,
           depth=312),
    _entry("b6", "EfficientNetB6", params=43_265_143, top1=0.840, top5=0.968, size_mb=166,
           depth=360),
    _entry("b7", "EfficientNetB7", params=66_658_687, top1=0.843, top5=0.970, size_mb=256,
           depth=438),
)
