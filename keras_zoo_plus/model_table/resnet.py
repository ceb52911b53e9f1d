"""ResNet50/101/152 (v1): their model-table entries."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"

STAGES = (
    ("conv1", r"^(conv1_|pool1_)"),
    ("conv2", r"^conv2_"),
    ("conv3", r"^conv3_"),
    ("conv4", r"^conv4_"),
    ("conv5", r"^conv5_"),
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)


def _resnet(name, constructor, *, blocks, params, top1, top5, size_mb, depth, md5s):
    b2, b3, b4, b5 = blocks
    return ModelInfo(
        name=name, constructor_name=constructor, module="resnet", family="resnet",
        default_size=224, min_size=32, preprocess="caffe",
        params=params, top1=top1, top5=top5, size_mb=size_mb, depth=depth,
        weights=official_files("resnet", (f"{name}{_TF}.h5", md5s[0]),
                               (f"{name}{_TF}_notop.h5", md5s[1])),
        feature_levels=levels(
            ("conv1_relu", 64), (f"conv2_block{b2}_out", 256), (f"conv3_block{b3}_out", 512),
            (f"conv4_block{b4}_out", 1024), (f"conv5_block{b5}_out", 2048),
        ),
        stages=STAGES,
    )


ENTRIES = (
    _resnet("resnet50", "ResNet50", blocks=(3, 4, 6, 3), params=25_636_712, top1=0.759,
            top5=0.929, size_mb=99, depth=168,
            md5s=("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626")),
    _resnet("resnet101", "ResNet101", blocks=(3, 4, 23, 3), params=44_707_176, top1=0.764,
            top5=0.928, size_mb=171, depth=None,
            md5s=("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21")),
    _resnet("resnet152", "ResNet152", blocks=(3, 8, 36, 3), params=60_419_944, top1=0.766,
            top5=0.931, size_mb=232, depth=None,
            md5s=("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c")),
)
