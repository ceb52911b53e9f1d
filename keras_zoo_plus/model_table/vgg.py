"""VGG16 and VGG19: their model-table entries."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

_TF = "_weights_tf_dim_ordering_tf_kernels"

STAGES = tuple((f"block{b}", rf"^block{b}_") for b in range(1, 6)) + (
    ("top", r"^(flatten|fc1|fc2|predictions)$"),
)


def _vgg(name, constructor, *, convs, params, top1, top5, size_mb, depth, top_md5, notop_md5):
    return ModelInfo(
        name=name, constructor_name=constructor, module="vgg", family="vgg",
        default_size=224, min_size=32, preprocess="caffe",
        params=params, top1=top1, top5=top5, size_mb=size_mb, depth=depth,
        weights=official_files(name, (f"{name}{_TF}.h5", top_md5),
                               (f"{name}{_TF}_notop.h5", notop_md5)),
        feature_levels=levels(
            ("block2_conv2", 128), (f"block3_conv{convs}", 256), (f"block4_conv{convs}", 512),
            (f"block5_conv{convs}", 512), ("block5_pool", 512),
        ),
        stages=STAGES,
    )


ENTRIES = (
    _vgg("vgg16", "VGG16", convs=3, params=138_357_544, top1=0.715, top5=0.901,
         size_mb=528, depth=23, top_md5="64373286793e3c8b2b4e3219cbf3544b",
         notop_md5="6d6bbae143d832006294945121d1f1fc"),
    _vgg("vgg19", "VGG19", convs=4, params=143_667_240, top1=0.727, top5=0.910,
         size_mb=549, depth=26, top_md5="cbe5617147190e668d6c5d5026f83318",
         notop_md5="253f8cb515780f3b799900260a226db6"),
)
