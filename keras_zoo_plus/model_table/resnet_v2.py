"""ResNet50V2/101V2/152V2 (pre-activation ResNets): their model-table entries.

The Keras layout strides in the *last* block of stages 2-4 (its shortcut
is a 1x1 max pooling), so the last layer at stride 4, 8 and 16 is the
output of each stage's second-to-last block; stride 32 ends with the final
``post_bn``/``post_relu``, which belong to the last stage.
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"


def _stage(n, extra=""):
    # Exactly the layer names a pre-activation block has, so that a v1
    # ResNet (which has *_0_bn, *_3_bn, *_add, conv1_bn) covers fewer of
    # these than of its own stages and freeze.find_stages tells the two
    # apart by layer names alone, and vice versa (post_bn is v2 only).
    block = (
        rf"conv{n}_block\d+_(preact_(bn|relu)|0_(conv|pool)|1_(conv|bn|relu)"
        r"|2_(pad|conv|bn|relu)|3_conv|out)"
    )
    return (f"conv{n}", rf"^({block}{extra})$")


STAGES = (
    ("conv1", r"^(conv1_(pad|conv)|pool1_(pad|pool))$"),
    _stage(2),
    _stage(3),
    _stage(4),
    _stage(5, extra="|post_(bn|relu)"),
    ("top", r"^(avg_pool|max_pool|predictions)$"),
)


def _resnet_v2(name, constructor, *, blocks, params, top1, top5, size_mb, depth, md5s):
    b2, b3, b4, _ = blocks
    return ModelInfo(
        name=name, constructor_name=constructor, module="resnet_v2", family="resnet_v2",
        default_size=224, min_size=32, preprocess="tf",
        params=params, top1=top1, top5=top5, size_mb=size_mb, depth=depth,
        # Same folder as the v1 files (keras' resnet.BASE_WEIGHTS_PATH).
        weights=official_files("resnet", (f"{name}{_TF}.h5", md5s[0]),
                               (f"{name}{_TF}_notop.h5", md5s[1])),
        feature_levels=levels(
            ("conv1_conv", 64), (f"conv2_block{b2 - 1}_out", 256),
            (f"conv3_block{b3 - 1}_out", 512), (f"conv4_block{b4 - 1}_out", 1024),
            ("post_relu", 2048),
        ),
        stages=STAGES,
    )


# Figures: the keras.applications documentation's table; parameter counts
# are checked against the built models (tests/test_model_table.py).
ENTRIES = (
    _resnet_v2("resnet50v2", "ResNet50V2", blocks=(3, 4, 6, 3), params=25_613_800,
               top1=0.760, top5=0.930, size_mb=98, depth=103,
               md5s=("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917")),
    _resnet_v2("resnet101v2", "ResNet101V2", blocks=(3, 4, 23, 3), params=44_675_560,
               top1=0.772, top5=0.938, size_mb=171, depth=205,
               md5s=("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5")),
    _resnet_v2("resnet152v2", "ResNet152V2", blocks=(3, 8, 36, 3), params=60_380_648,
               top1=0.780, top5=0.942, size_mb=232, depth=307,
               md5s=("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33")),
)
