"""MobileNet (v1): its model-table entry.

Official files exist for every ``alpha`` in {1.0, 0.75, 0.5, 0.25} and
square input size (``rows``) in {224, 192, 160, 128}; Keras publishes no
hashes for them.
"""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

#: ``alpha`` values with official weights and their file-name tags.
ALPHA_TAGS = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
ROWS = (224, 192, 160, 128)
BLOCKS = 13

STAGES = (
    (("conv1", r"^conv1(_bn|_relu)?$"),)
    + tuple(
        (f"block{i}", rf"^conv_(pad_{i}|dw_{i}(_bn|_relu)?|pw_{i}(_bn|_relu)?)$")
        for i in range(1, BLOCKS + 1)
    )
    + (("top", r"^(avg_pool|max_pool|dropout|conv_preds|reshape_2|predictions)$"),)
)

_FILES = tuple(
    wf
    for alpha, tag in ALPHA_TAGS.items()
    for rows in ROWS
    for wf in official_files(
        "mobilenet", (f"mobilenet_{tag}_{rows}_tf.h5", None),
        (f"mobilenet_{tag}_{rows}_tf_no_top.h5", None),
        variant=(("alpha", alpha), ("rows", rows)),
    )
)

ENTRIES = (
    ModelInfo(
        name="mobilenet", constructor_name="MobileNet", module="mobilenet", family="mobilenet",
        default_size=224, min_size=32, preprocess="tf",
        params=4_253_864, top1=0.665, top5=0.871, size_mb=17, depth=88,
        weights=_FILES,
        feature_levels=levels(
            ("conv_pw_1_relu", 64), ("conv_pw_3_relu", 128), ("conv_pw_5_relu", 256),
            ("conv_pw_11_relu", 512), ("conv_pw_13_relu", 1024),
        ),
        stages=STAGES,
    ),
)
