"""Oracle cases, derived from the model table: one golden file per case.

Read by tests/golden/generate.py (tf_keras, Keras 2) and by the parity
tests (our models, every backend). ``ctor`` is the constructor name in
both ``tf_keras.applications`` and ``keras_zoo_plus.applications``.

The rule (a model added to the table gets its cases without an edit here):

* every table entry gives ``{name}_top`` (``include_top=True``, logits)
  and ``{name}_notop`` (``include_top=False``, the last feature map);
* input: one output stride above the entry's smallest legal size, and
  non-square: H = ``min_size + 32``, W = H + 17. At ``min_size`` the last
  stage may have 1 pixel (DenseNet, MobileNet, VGG, InceptionV3,
  InceptionResNetV2 do); there its 3x3, 1x3 and 3x1 kernels see only
  their centre tap and a flattening top cannot tell the order of
  its inputs, so a spatial bug in a layer that exists only in the last
  stage (InceptionV3's mixed9/mixed10 1x3 and 3x1 branches, VGG's Flatten
  under channels_first) could not fail. 32 px more gives the last stage
  at least 2x2 pixels (the oracle generator checks it for every case).
  W differs from H so that a height/width swap in one data format changes
  the output, and mostly odd where H is even (min_size 32: 64x81, then
  32x41, 16x21, 8x11, 4x6 and 2x3 after the stride-2 stages of a
  "same"-padded net), so both of TensorFlow's "same" padding cases
  (symmetric, one pixel more at the end) are taken;
* batch 2, or 1 for models over 50M parameters (``ModelInfo.is_large``):
  they get the same checks, only at reduced cost;
* the top cases use the same sizes: built with ``weights=None`` every top
  accepts any size from ``min_size`` (VGG's flattening top included: it
  sees a 2x2 map, so a flatten in the wrong order fails).

:data:`EXTRA_CASES` adds the constructor variants the table does not list
(MobileNet's ``alpha`` and ``depth_multiplier``).

Imports only the model table, which imports no Keras: this module is
loaded by the oracle process, which must not import Keras 3.
"""

from __future__ import annotations

from typing import NamedTuple

from keras_zoo_plus import model_table

SEED = 1234

#: Added to ``min_size`` for the height (one output stride; see above).
HEIGHT_EXTRA = 32
#: Width minus height.
WIDTH_EXTRA = 17


class Case(NamedTuple):
    ctor: str  # constructor name, the same in tf_keras and keras_zoo_plus
    kwargs: dict  # arguments for both sides (besides weights / input_shape)
    size: tuple  # input (H, W)
    batch: int
    marks: tuple  # pytest mark names
    model: str  # the model table entry


#: Cases marked slow (run by ``nox -s slow``): NASNetLarge alone. Measured
#: on a shared 2-core machine (load 5-12, JAX compilation cache cold), its
#: parity tests took 103 s on tensorflow, 358 s on torch and 458 s on jax
#: (worker time, both cases and formats), 1.3-1.7x the next model; the
#: other big models (ResNet152 57/209/155 s, InceptionResNetV2 68/178/173 s,
#: VGG16 16/58/44 s, VGG19 16/65/38 s) cost no more than small ones
#: (NASNetMobile 68/156/356 s, DenseNet201 47/168/192 s), so they stay in
#: the backend sessions.
SLOW = frozenset({"nasnet_large_top", "nasnet_large_notop"}) | {
    # ConvNeXtLarge and XLarge (198M and 350M parameters): drawing and
    # assigning the synthetic weights dominates; on TensorFlow alone their
    # parity tests took 59 s and 149 s of worker time (both cases and
    # formats), against 19 s for ConvNeXtTiny.
    f"convnext_{size}_{top}" for size in ("large", "xlarge") for top in ("top", "notop")
} | {
    # EfficientNetB7 and EfficientNetV2L (67M and 119M parameters): their
    # parity tests took 30 s and 55 s of torch worker time (both cases and
    # formats), against 6 s for B0.
    f"{model}_{top}" for model in ("efficientnet_b7", "efficientnet_v2_l")
    for top in ("top", "notop")
}


#: Cases float32 itself cannot reproduce within ``REL_TOL`` with the
#: synthetic weights, with the reason: the parity test runs them as strict
#: expected failures (so it fails the day they pass), the README says so,
#: and the family's loader case falls back to its top case. None today:
#: MobileNetV2's unpooled features were one (tf_keras in float32 2.3e-5
#: off float64) until the synthetic depthwise kernels were scaled down
#: (keras_zoo_plus.synthetic.DEPTHWISE_GAIN).
FLOAT32_FLOOR: dict[str, str] = {}


def _size(entry):
    h = entry.min_size + HEIGHT_EXTRA
    return (h, h + WIDTH_EXTRA)


def _case(name, entry, kwargs):
    size = _size(entry)
    marks = ("slow",) if name in SLOW else ()
    return name, Case(entry.constructor_name, kwargs, size, 1 if entry.is_large else 2,
                      marks, entry.name)


def _table_cases():
    for entry in model_table.entries():
        for top in (True, False):
            suffix = "top" if top else "notop"
            yield _case(f"{entry.name}_{suffix}", entry, {"include_top": top})


def _extra_cases():
    mobilenet = model_table.get("mobilenet")
    for name, kwargs in (
        ("mobilenet_025_top", {"alpha": 0.25, "include_top": True}),
        ("mobilenet_050_notop", {"alpha": 0.5, "include_top": False}),
        ("mobilenet_075_notop", {"alpha": 0.75, "include_top": False}),
        ("mobilenet_050_dm2_top", {"alpha": 0.5, "depth_multiplier": 2, "include_top": True}),
    ):
        yield _case(name, mobilenet, kwargs)
    # MobileNetV2: the narrowest official alpha (its stem's 11.2 channels
    # round up to 16), with and without the top, and a widened one (alpha >
    # 1 also widens the head) with the top. A top case and the no-top case
    # of the same arguments share one model in the parity tests
    # (tests/model_cache.py), so the no-top ones cost one more output.
    mobilenet_v2 = model_table.get("mobilenet_v2")
    for name, kwargs in (
        ("mobilenet_v2_035_top", {"alpha": 0.35, "include_top": True}),
        ("mobilenet_v2_035_notop", {"alpha": 0.35, "include_top": False}),
        ("mobilenet_v2_130_top", {"alpha": 1.3, "include_top": True}),
    ):
        yield _case(name, mobilenet_v2, kwargs)
    # MobileNetV3: the minimalistic body (ReLU, 3x3 kernels, no
    # squeeze-and-excite) and alpha 0.75, each with and without the top, on
    # Small; the minimalistic body again on Large.
    for model, name, kwargs in (
        ("mobilenet_v3_small", "mobilenet_v3_small_minimalistic_top",
         {"minimalistic": True, "include_top": True}),
        ("mobilenet_v3_small", "mobilenet_v3_small_minimalistic_notop",
         {"minimalistic": True, "include_top": False}),
        ("mobilenet_v3_small", "mobilenet_v3_small_075_top",
         {"alpha": 0.75, "include_top": True}),
        ("mobilenet_v3_small", "mobilenet_v3_small_075_notop",
         {"alpha": 0.75, "include_top": False}),
        ("mobilenet_v3_large", "mobilenet_v3_large_minimalistic_notop",
         {"minimalistic": True, "include_top": False}),
    ):
        yield _case(name, model_table.get(model), kwargs)


#: Constructor variants beyond the table's defaults.
EXTRA_CASES = dict(_extra_cases())

#: name -> :class:`Case`; a ``Case`` unpacks as
#: ``ctor, kwargs, (H, W), batch, marks, model``.
CASES = {**dict(_table_cases()), **EXTRA_CASES}


def _loader_cases():
    # The no-top case, unless float32 cannot pass it (then the top case):
    # these cases check more than the output (the loaded arrays).
    smallest = model_table.smallest_of_each_family()
    return tuple(
        f"{smallest[f].name}_notop" if f"{smallest[f].name}_notop" not in FLOAT32_FLOOR
        else f"{smallest[f].name}_top"
        for f in smallest
    )


#: One case per family whose weights go through the public
#: ``weights="<legacy .h5>"`` path in the parity tests (the no-top case of
#: the family's smallest model); every other case gets the same arrays set
#: in-process by ``keras_zoo_plus.weights.assign_legacy``.
LOADER_CASES = _loader_cases()


def input_shape_last(case):
    c = CASES[case]
    return (c.batch, *c.size, 3)
