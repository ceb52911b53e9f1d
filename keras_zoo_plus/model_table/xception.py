"""Xception: its model-table entry."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"

STAGES = tuple((f"block{b}", rf"^block{b}_") for b in range(1, 15)) + (
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)

ENTRIES = (
    ModelInfo(
        name="xception", constructor_name="Xception", module="xception", family="xception",
        default_size=299, min_size=71, preprocess="tf",
        params=22_910_480, top1=0.790, top5=0.945, size_mb=88, depth=126,
        weights=official_files("xception", (f"xception{_TF}.h5", "0a58e3b7378bc2990ea3b43d5981f1f6"),
                               (f"xception{_TF}_notop.h5", "b0042744bf5b25fce3cb969f33bebb97")),
        feature_levels=levels(
            ("block1_conv2_act", 64), ("block2_add", 128), ("block3_add", 256),
            ("block12_add", 728), ("block14_sepconv2_act", 2048),
        ),
        stages=STAGES,
    ),
)
