"""ConvNeXtTiny, Small, Base, Large and XLarge: their model-table entries.

Every layer name starts with the entry's name (``convnext_tiny_stem``,
``convnext_tiny_stage_2_block_8_add``), as in the official files, whatever
``name=`` the model is given. The preprocessing is inside the graph (a
Normalization layer with the ImageNet mean and variance), so
``preprocess_input`` is the identity ("none").

keras.applications publishes sha256 hashes for these files
(``WEIGHTS_HASHES`` of keras.applications.convnext), not md5. Base,
Large and XLarge were pre-trained on ImageNet-21k and fine-tuned on
ImageNet-1k; XLarge has no ImageNet-1k-only weights.

The stem has stride 4: there is no stride-2 level (``P1``).
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

#: (depths, projection dims) per variant, keras.applications' MODEL_CONFIGS.
CONFIGS = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}

#: sha256 of the (top, no-top) files: keras.applications.convnext.WEIGHTS_HASHES.
_HASHES = {
    "tiny": ("8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff",
             "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1"),
    "small": ("ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c",
              "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab"),
    "base": ("52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6",
             "40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45"),
    "large": ("070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6",
              "96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd"),
    "xlarge": ("c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee",
               "de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05"),
}


def _stages(p, depths):
    """The stem (normalisation, 4x4 stride-4 conv, LayerNorm), one stage per
    group of blocks (the downsampling block before it included) and the
    top (the head, or the no-top model's pooling and final LayerNorm)."""
    stages = [("stem", rf"^{p}_(prestem_normalization|stem)$"),
              ("stage_0", rf"^{p}_stage_0_block_\d+_")]
    for i in range(1, len(depths)):
        stages.append((f"stage_{i}", rf"^{p}_(downsampling_block_{i - 1}$|stage_{i}_block_\d+_)"))
    stages.append(("top", rf"^({p}_head_(gap|layernorm|dense)|{p}_features_layernorm"
                          r"|avg_pool|max_pool)$"))
    return tuple(stages)


def _entry(variant, constructor, *, params, top1, size_mb):
    name = f"convnext_{variant}"
    depths, dims = CONFIGS[variant]
    top, notop = _HASHES[variant]
    return ModelInfo(
        name=name, constructor_name=constructor, module="convnext", family="convnext",
        default_size=224, min_size=32, preprocess="none",
        params=params, top1=top1, top5=None, size_mb=size_mb, depth=None,
        weights=official_files("convnext", (f"{name}.h5", top), (f"{name}_notop.h5", notop)),
        feature_levels=levels(
            None,
            *((f"{name}_stage_{i}_block_{d - 1}_add", c)
              for i, (d, c) in enumerate(zip(depths, dims)))
        ),
        stages=_stages(name, depths),
    )


# Figures: keras.applications' table (top-1 of the official weights, file
# size in MB; no top-5 or depth is published). Parameter counts with the
# top are tf_keras' (the oracle's) and checked against the built models.
ENTRIES = (
    _entry("tiny", "ConvNeXtTiny", params=28_589_128, top1=0.813, size_mb=109.42),
    _entry("small", "ConvNeXtSmall", params=50_223_688, top1=0.823, size_mb=192.29),
    _entry("base", "ConvNeXtBase", params=88_591_464, top1=0.853, size_mb=338.58),
    _entry("large", "ConvNeXtLarge", params=197_767_336, top1=0.863, size_mb=755.07),
    _entry("xlarge", "ConvNeXtXLarge", params=350_196_968, top1=0.867, size_mb=1310.0),
)
