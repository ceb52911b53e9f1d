"""MobileNetV2: its model-table entry.

keras.applications names an official file for every ``alpha`` in {0.35,
0.5, 0.75, 1.0, 1.3, 1.4} and square input size (``rows``) in {96, 128,
160, 192, 224}, with and without the top; Keras publishes no hashes for
them. The file name spells ``alpha`` as Python's ``str(float(alpha))``
(``..._0.35_96.h5``, ``..._1.0_224_no_top.h5``).
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

ALPHAS = (1.0, 0.35, 0.5, 0.75, 1.3, 1.4)  # the default first: weight_files()
ROWS = (224, 96, 128, 160, 192)
#: Inverted residual blocks after the stem: ``expanded_conv`` (block 0)
#: and ``block_1`` ... ``block_16``.
BLOCKS = 17

STAGES = (
    (("conv1", r"^(Conv1|bn_Conv1|Conv1_relu)$"), ("block0", r"^expanded_conv_"))
    + tuple((f"block{i}", rf"^block_{i}_") for i in range(1, BLOCKS))
    + (
        ("conv_1", r"^(Conv_1|Conv_1_bn|out_relu)$"),
        ("top", r"^(avg_pool|max_pool|predictions)$"),
    )
)

_PREFIX = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels"

_FILES = tuple(
    wf
    for alpha in ALPHAS
    for rows in ROWS
    for wf in official_files(
        "mobilenet_v2",
        (f"{_PREFIX}_{float(alpha)}_{rows}.h5", None),
        (f"{_PREFIX}_{float(alpha)}_{rows}_no_top.h5", None),
        variant=(("alpha", alpha), ("rows", rows)),
    )
)

ENTRIES = (
    ModelInfo(
        name="mobilenet_v2", constructor_name="MobileNetV2", module="mobilenet_v2",
        family="mobilenet_v2", default_size=224, min_size=32, preprocess="tf",
        params=3_538_984, top1=0.713, top5=0.901, size_mb=14, depth=105,
        weights=_FILES,
        # The last layer at each stride: the expansion that feeds each
        # strided depthwise convolution (before its padding), then the head.
        feature_levels=levels(
            ("block_1_expand_relu", 96), ("block_3_expand_relu", 144),
            ("block_6_expand_relu", 192), ("block_13_expand_relu", 576), ("out_relu", 1280),
        ),
        stages=STAGES,
    ),
)
