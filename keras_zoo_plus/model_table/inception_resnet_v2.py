"""InceptionResNetV2: its model-table entry."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"

STAGES = (
    ("stem", r"^stem_"),
    ("mixed_5b", r"^mixed_5b(_|$)"),
    ("block35", r"^block35_"),
    ("mixed_6a", r"^mixed_6a(_|$)"),
    ("block17", r"^block17_"),
    ("mixed_7a", r"^mixed_7a(_|$)"),
    ("block8", r"^block8_"),
    ("conv_7b", r"^conv_7b(_|$)"),
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)

ENTRIES = (
    ModelInfo(
        name="inception_resnet_v2", constructor_name="InceptionResNetV2",
        module="inception_resnet_v2", family="inception_resnet_v2",
        default_size=299, min_size=75, preprocess="tf",
        params=55_873_736, top1=0.804, top5=0.953, size_mb=215, depth=572,
        weights=official_files(
            "inception_resnet_v2",
            (f"inception_resnet_v2{_TF}.h5", "e693bd0210a403b3192acc6073ad2e96"),
            (f"inception_resnet_v2{_TF}_notop.h5", "d19885ff4a710c122648d3b5c3b684e4")),
        feature_levels=levels(
            ("stem_conv3_ac", 64), ("stem_conv5_ac", 192), ("block35_10_ac", 320),
            ("block17_20_ac", 1088), ("conv_7b_ac", 1536),
        ),
        stages=STAGES,
    ),
)
