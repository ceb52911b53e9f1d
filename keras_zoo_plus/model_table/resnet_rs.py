"""ResNetRS50, 101, 152, 200, 270, 350 and 420: their model-table entries.

Keras 3's keras.applications has no ResNet-RS; tf_keras (Keras 2) has the
seven constructors and their official ImageNet files, which these entries
name. Most depths have files for more than one training resolution: the
variant argument is ``resolution`` (``weights="imagenet-i224"``), and plain
``"imagenet"`` takes the highest, as tf_keras does; it is listed first.

The input is rescaled and normalised inside the graph (Rescaling to [0, 1],
then the ImageNet mean and variance), so ``preprocess_input`` is the
identity ("none"). Layer names are tf_keras' (``BlockGroup3__block_0__conv_1``,
``stem_1_stem_conv_1``) and carry no model prefix.

tf_keras publishes md5 hashes for these files (``WEIGHT_HASHES`` of
tf_keras.applications.resnet_rs) and no accuracy or file sizes, so ``top1``,
``top5`` and ``size_mb`` are None.
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

#: Blocks per group (groups 2-5, 64/128/256/512 bottleneck filters),
#: tf_keras' BLOCK_ARGS.
BLOCKS = {
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
    200: (3, 24, 36, 3),
    270: (4, 29, 53, 4),
    350: (4, 36, 72, 4),
    420: (4, 44, 87, 4),
}
#: (drop_connect_rate, dropout_rate) of tf_keras' public constructors.
RATES = {50: (0.0, 0.25), 101: (0.0, 0.25), 152: (0.0, 0.25), 200: (0.1, 0.25),
         270: (0.1, 0.25), 350: (0.1, 0.4), 420: (0.1, 0.4)}
FILTERS = (64, 128, 256, 512)

#: md5 of the official files, per depth and resolution, highest resolution
#: first: (top, no-top).
_HASHES = {
    50: {160: ("69d9d925319f00a8bdd4af23c04e4102", "90daa68cd26c95aa6c5d25451e095529")},
    101: {192: ("eb285be29ab42cf4835ff20a5e3b5d23", "f9a0f6b85faa9c3db2b6e233c4eebb5b"),
          160: ("544b3434d00efc199d66e9058c7f3379", "82d5b90c5ce9d710da639d6216d0f979")},
    152: {256: ("ba6271b99bdeb4e7a9b15c05964ef4ad", "fa79794252dbe47c89130f65349d654a"),
          224: ("31a46a92ab21b84193d0d71dd8c3d03b", "dc8b2cba2005552eafa3167f00dc2133"),
          192: ("8d72a301ed8a6f11a47c4ced4396e338", "5fbf7ac2155cb4d5a6180ee9e3aa8704")},
    200: {256: ("a76930b741884e09ce90fa7450747d5f", "bbdb3994718dfc0d1cd45d7eff3f3d9c")},
    270: {256: ("20d575825ba26176b03cb51012a367a8", "2c42ecb22e35f3e23d2f70babce0a2aa")},
    350: {320: ("7ccb858cc738305e8ceb3c0140bee393", "ab0c1f9079d2f85a9facbd2c88aa6079"),
          256: ("f4a039dc3c421321b7fc240494574a68", "6e44b55025bbdff8f51692a023143d66")},
    420: {320: ("ae0eb9bed39e64fc8d7e0db4018dc7e8", "fe6217c32be8305b1889657172b98884")},
}


def resolutions(depth):
    """The resolutions with official files, highest (the default) first."""
    return tuple(_HASHES[depth])


def block_name(group, block):
    """tf_keras' name prefix of one bottleneck block (group 2-5)."""
    return f"BlockGroup{group}__block_{block}_"


STAGES = (
    ("stem", r"^(rescaling|normalization|stem_1_)"),
    ("group_2", r"^BlockGroup2_"),
    ("group_3", r"^BlockGroup3_"),
    ("group_4", r"^BlockGroup4_"),
    ("group_5", r"^BlockGroup5_"),
    ("top", r"^(avg_pool|max_pool|top_dropout|predictions)$"),
)


def _files(depth):
    out = []
    for resolution, (top, notop) in _HASHES[depth].items():
        stem = f"resnet-rs-{depth}-i{resolution}"
        out += official_files("resnet_rs", (f"{stem}.h5", top), (f"{stem}_notop.h5", notop),
                              variant=(("resolution", resolution),))
    return tuple(out)


def _entry(depth, *, params):
    blocks = BLOCKS[depth]
    return ModelInfo(
        name=f"resnetrs{depth}", constructor_name=f"ResNetRS{depth}", module="resnet_rs",
        family="resnet_rs", default_size=224, min_size=32, preprocess="none",
        params=params, top1=None, top5=None, size_mb=None, depth=None,
        weights=_files(depth),
        feature_levels=levels(
            ("stem_1_stem_act_3", 64),
            *((f"{block_name(g, n - 1)}_output_act", 4 * f)
              for g, n, f in zip(range(2, 6), blocks, FILTERS))
        ),
        stages=STAGES,
    )


#: Parameter counts with the ImageNet top: tf_keras' (the oracle's), checked
#: against the built models by tests/test_model_table.py.
PARAMS = {
    50: 35_745_288,
    101: 63_724_296,
    152: 86_773_256,
    200: 93_386_248,
    270: 130_104_520,
    350: 164_268_360,
    420: 192_262_216,
}


ENTRIES = tuple(_entry(depth, params=PARAMS[depth]) for depth in BLOCKS)
