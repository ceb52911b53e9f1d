"""NASNetMobile and NASNetLarge: their model-table entries."""

from keras_zoo_plus.model_table import ModelInfo, levels, official_files

#: ``num_blocks`` (normal cells per stack) of the two published configurations.
MOBILE_BLOCKS = 4
LARGE_BLOCKS = 6


def cell_ids(num_blocks):
    """The cells in network order as ``(kind, block_id)``, kind being
    ``"reduction"`` or ``"normal"``; ``block_id`` is the suffix of every
    layer name in the cell (the official naming)."""
    n = num_blocks
    cells = [("reduction", "stem_1"), ("reduction", "stem_2")]
    cells += [("normal", str(i)) for i in range(n)]
    cells.append(("reduction", f"reduce_{n}"))
    cells += [("normal", str(n + i + 1)) for i in range(n)]
    cells.append(("reduction", f"reduce_{2 * n}"))
    cells += [("normal", str(2 * n + i + 1)) for i in range(n)]
    return cells


def nasnet_stages(num_blocks):
    """Freeze stages: ``stem``, one stage per cell in network order (named by
    the cell's block id: ``stem_1``, ``stem_2``, ``0`` ... as ``normal_0``,
    ``reduce_4`` ...), then ``top``. Every layer but the Input matches
    exactly one regex."""
    stages = [("stem", r"^stem_(conv1|bn1)$")]
    for kind, block_id in cell_ids(num_blocks):
        if kind == "reduction":
            stages.append((block_id, rf"^.+_{block_id}$"))
        else:
            # A normal cell's names end in `_<id>`; reduction cells' names
            # end in `_reduce_<id>` / `_stem_<id>`, which share that suffix.
            stages.append(
                (f"normal_{block_id}", rf"^(?!.*_(?:reduce|stem)_{block_id}$).+_{block_id}$")
            )
    stages.append(("top", r"^(final_relu|avg_pool|max_pool|predictions)$"))
    return tuple(stages)


def _nasnet(name, constructor, *, num_blocks, widths, default_size, params, top1, top5, size_mb,
            depth, files, md5s):
    return ModelInfo(
        name=name, constructor_name=constructor, module="nasnet", family="nasnet",
        default_size=default_size, min_size=32, preprocess="tf",
        params=params, top1=top1, top5=top5, size_mb=size_mb, depth=depth,
        weights=official_files("nasnet", (f"{files}.h5", md5s[0]),
                               (f"{files}-no-top.h5", md5s[1])),
        feature_levels=levels(
            ("stem_bn1", widths[0]), ("reduction_concat_stem_1", widths[1]),
            (f"normal_concat_{num_blocks - 1}", widths[2]),
            (f"normal_concat_{2 * num_blocks}", widths[3]), ("final_relu", widths[4]),
        ),
        stages=nasnet_stages(num_blocks),
        require_static=True,
    )


ENTRIES = (
    _nasnet("nasnet_mobile", "NASNetMobile", num_blocks=MOBILE_BLOCKS, default_size=224,
            widths=(32, 44, 264, 528, 1056),
            params=5_326_716, top1=0.744, top5=0.919, size_mb=23, depth=389,
            files="NASNet-mobile",
            md5s=("020fb642bf7360b370c678b08e0adf61", "1ed92395b5b598bdda52abe5c0dbfd63")),
    _nasnet("nasnet_large", "NASNetLarge", num_blocks=LARGE_BLOCKS, default_size=331,
            widths=(96, 168, 1008, 2016, 4032),
            params=88_949_818, top1=0.825, top5=0.960, size_mb=343, depth=533,
            files="NASNet-large",
            md5s=("11577c9a518f0070763c2b964a382f17", "d81d89dc07e6e56530c4e77faddd61b5")),
)
