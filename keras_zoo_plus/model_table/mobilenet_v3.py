"""MobileNetV3Small and MobileNetV3Large: their model-table entries.

keras.applications publishes 224-pixel files only, with and without the
top, for ``alpha`` 0.75 and 1.0 and for the minimalistic variant at
``alpha`` 1.0: the variants are keyed by ``(alpha, minimalistic)``. The
file name spells ``alpha`` as ``str(alpha)`` of the float (``..._1.0_...``)
and the no-top files carry a ``_v2`` suffix (the second release, whose
no-top model keeps the last 1x1 convolution ``Conv_1``). URLs and md5 are
keras.applications.mobilenet_v3's ``BASE_WEIGHT_PATH`` and
``WEIGHTS_HASHES``.

Layer names are tf.keras' with ``/`` replaced by ``_`` (Keras 3 forbids
``/``): ``Conv/BatchNorm`` -> ``Conv_BatchNorm``,
``expanded_conv_3/squeeze_excite/Conv`` ->
``expanded_conv_3_squeeze_excite_Conv``; the official files, which carry
the tf.keras names, load by name (the loader normalises ``/`` the same
way). Activations, which tf.keras leaves unnamed, are
``{layer}_activation`` whatever their kind (ReLU, or hard-swish unless
``minimalistic``), so the feature levels name the same layers in every
variant.
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

#: Official ``(alpha, minimalistic)`` variants; the default first
#: (``ModelInfo.weight_files()`` lists the first).
VARIANTS = ((1.0, False), (0.75, False), (1.0, True))

#: md5 of the (top, no-top) files, keras.applications' WEIGHTS_HASHES.
_HASHES = {
    "large_224_0.75_float": (
        "765b44a33ad4005b3ac83185abf1d0eb", "40af19a13ebea4e2ee0c676887f69a2e"),
    "large_224_1.0_float": (
        "59e551e166be033d707958cf9e29a6a7", "07fb09a5933dd0c8eaafa16978110389"),
    "large_minimalistic_224_1.0_float": (
        "675e7b876c45c57e9e63e6d90a36599c", "ec5221f64a2f6d1ef965a614bdae7973"),
    "small_224_0.75_float": (
        "cb65d4e5be93758266aa0a7f2c6708b7", "ebdb5cc8e0b497cd13a7c275d475c819"),
    "small_224_1.0_float": (
        "8768d4c2e7dee89b9d02b2d03d65d862", "d3e8ec802a04aa4fc771ee12a9a9b836"),
    "small_minimalistic_224_1.0_float": (
        "99cd97fb2fcdad2bf028eb838de69e37", "cde8136e733e811080d9fcd8a252f7e4"),
}


def _files(model_type):
    out = []
    for alpha, minimalistic in VARIANTS:
        key = f"{model_type}{'_minimalistic' if minimalistic else ''}_224_{alpha}_float"
        top_md5, notop_md5 = _HASHES[key]
        out += official_files(
            "mobilenet_v3",
            (f"weights_mobilenet_v3_{key}.h5", top_md5),
            (f"weights_mobilenet_v3_{key}_no_top_v2.h5", notop_md5),
            variant=(("alpha", alpha), ("minimalistic", minimalistic)),
        )
    return tuple(out)


def _stages(blocks):
    """The stem, one stage per inverted residual block (``expanded_conv``,
    ``expanded_conv_1`` ...), the last 1x1 convolution and the top."""
    return (
        (("conv", r"^(rescaling|Conv|Conv_BatchNorm|Conv_activation)$"),
         ("block0", r"^expanded_conv_(?!\d)"))
        + tuple((f"block{i}", rf"^expanded_conv_{i}_") for i in range(1, blocks))
        + (
            ("conv_1", r"^Conv_1(_BatchNorm|_activation)?$"),
            ("top", r"^(avg_pool|max_pool|Conv_2|Conv_2_activation|dropout|Logits|flatten"
                    r"|Predictions)$"),
        )
    )


# Figures: keras.applications.mobilenet_v3's docstring table (top-1 of the
# 1.0 float checkpoints; no top-5, size or depth is published). Parameter
# counts are checked against the built models (tests/test_model_table.py).
ENTRIES = (
    ModelInfo(
        name="mobilenet_v3_small", constructor_name="MobileNetV3Small",
        module="mobilenet_v3", family="mobilenet_v3",
        default_size=224, min_size=32, preprocess="none",
        params=2_554_968, top1=0.681,
        weights=_files("small"),
        # The last layer at each stride: the stem (block 0 strides without
        # an expansion), then the expansion feeding each strided depthwise
        # convolution (before its padding), then the last convolution.
        feature_levels=levels(
            ("Conv_activation", 16), ("expanded_conv_1_expand_activation", 72),
            ("expanded_conv_3_expand_activation", 96),
            ("expanded_conv_8_expand_activation", 288), ("Conv_1_activation", 576),
        ),
        stages=_stages(11),
    ),
    ModelInfo(
        name="mobilenet_v3_large", constructor_name="MobileNetV3Large",
        module="mobilenet_v3", family="mobilenet_v3",
        default_size=224, min_size=32, preprocess="none",
        params=5_507_432, top1=0.756,
        weights=_files("large"),
        # Block 0 keeps stride 2; then the expansion feeding each strided
        # depthwise convolution, then the last convolution.
        feature_levels=levels(
            ("expanded_conv_1_expand_activation", 64),
            ("expanded_conv_3_expand_activation", 72),
            ("expanded_conv_6_expand_activation", 240),
            ("expanded_conv_12_expand_activation", 672), ("Conv_1_activation", 960),
        ),
        stages=_stages(15),
    ),
)
