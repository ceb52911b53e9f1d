"""DenseNet121/169/201: their model-table entries."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"

# Freeze points: the stem, each dense block and each transition (its own
# stage, so a fine-tune can stop right after a downsampling), the last
# dense block with the final BatchNormalization/ReLU, and the top.
STAGES = (
    ("conv1", r"^(conv1_.+|pool1|pool1_pad)$"),
    ("conv2", r"^conv2_"),
    ("pool2", r"^pool2_"),
    ("conv3", r"^conv3_"),
    ("pool3", r"^pool3_"),
    ("conv4", r"^conv4_"),
    ("pool4", r"^pool4_"),
    ("conv5", r"^(conv5_.+|bn|relu)$"),
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)


def _densenet(name, constructor, *, channels, params, top1, top5, size_mb, md5s):
    return ModelInfo(
        name=name, constructor_name=constructor, module="densenet", family="densenet",
        default_size=224, min_size=32, preprocess="torch",
        params=params, top1=top1, top5=top5, size_mb=size_mb, depth=None,
        weights=official_files("densenet", (f"{name}{_TF}.h5", md5s[0]),
                               (f"{name}{_TF}_notop.h5", md5s[1])),
        feature_levels=levels(
            ("conv1_relu", 64), ("pool2_relu", channels[0]), ("pool3_relu", channels[1]),
            ("pool4_relu", channels[2]), ("relu", channels[3]),
        ),
        stages=STAGES,
    )


ENTRIES = (
    _densenet("densenet121", "DenseNet121", channels=(256, 512, 1024, 1024), params=8_062_504, top1=0.750, top5=0.923,
              size_mb=33,
              md5s=("9d60b8095a5708f2dcce2bca79d332c7", "30ee3e1110167f948a6b9946edeeb738")),
    _densenet("densenet169", "DenseNet169", channels=(256, 512, 1280, 1664), params=14_307_880, top1=0.762, top5=0.932,
              size_mb=57,
              md5s=("d699b8f76981ab1b30698df4c175e90b", "b8c4d4c20dd625c148057b9ff1c1176b")),
    _densenet("densenet201", "DenseNet201", channels=(256, 512, 1792, 1920), params=20_242_984, top1=0.773, top5=0.936,
              size_mb=80,
              md5s=("1ceb130c1ea1b78c3bf6114dbdfd8807", "c13680b51ded0fb44dff2d8f86ac8bb1")),
)
