"""InceptionV3: its model-table entry."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"

STAGES = (
    (("stem", r"^stem_"),)
    + tuple((f"mixed{i}", rf"^mixed{i}(_|$)") for i in range(11))
    + (("top", r"^(avg_pool|max_pool|predictions)$"),)
)

ENTRIES = (
    ModelInfo(
        name="inception_v3", constructor_name="InceptionV3", module="inception_v3",
        family="inception_v3", default_size=299, min_size=75, preprocess="tf",
        params=23_851_784, top1=0.788, top5=0.944, size_mb=92, depth=159,
        weights=official_files(
            "inception_v3", (f"inception_v3{_TF}.h5", "9a0d58056eeedaa3f26cb7ebd46da564"),
            (f"inception_v3{_TF}_notop.h5", "bcbd6486424b2319ff4ef7d526e38f63")),
        feature_levels=levels(
            ("stem_conv3_relu", 64), ("stem_conv5_relu", 192), ("mixed2", 288),
            ("mixed7", 768), ("mixed10", 2048),
        ),
        stages=STAGES,
    ),
)
