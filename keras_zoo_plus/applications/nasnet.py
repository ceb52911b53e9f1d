"""NASNet-A Mobile and Large (Zoph et al., CVPR 2018) in the Keras layout,
one builder for both, written once for both data formats.

Differences from keras.applications 3.15.1 (same weights, same outputs):

* ``data_format`` is an argument and every channel axis, padding, cropping
  and the two strided paths of the adjust block follow it, so
  ``channels_first`` works on every backend (keras.applications refuses it).
* NASNetMobile is offered on the PyTorch backend too (keras.applications
  refuses it with a stale "outstanding bug" guard; the Keras 3.15.1 layers
  compute it correctly, as the oracle tests show).
* Whether a cell's previous input ``p`` must be reduced to the resolution of
  its input is decided from the network structure, not by comparing static
  shapes. keras.applications compares ``p.shape`` with ``ip.shape``; with
  unknown spatial dimensions (``None``) that comparison is always "equal",
  so it builds 1x1 projections where reductions belong: a model that fails
  on its first call and cannot take the official weights (e.g.
  ``keras.applications.NASNetLarge(include_top=False)``, whose default input
  shape is ``(None, None, 3)``).

Limitation shared with keras.applications: with an unknown spatial size
the strided paddings assume even sizes (the static rule needs the size), so
such a model matches the static one only for inputs whose strided stages
stay even (e.g. 65, 129, 225) and fails on others; give a static
``input_shape`` when the size is known.

Every weighted layer has the official name and is created in the official
order (the official files are matched by name, with order as fallback);
every other layer gets a deterministic name ending in its cell's id.
"""

from __future__ import annotations

from keras import layers

from keras_zoo_plus import imagenet
from keras_zoo_plus import layers as zoo_layers
from keras_zoo_plus.applications import _common
from keras_zoo_plus.model_table import nasnet as _table
from keras_zoo_plus.model_table.nasnet import cell_ids

BN_MOMENTUM = 0.9997
BN_EPSILON = 1e-3

# (penultimate_filters, num_blocks, stem_block_filters, skip_reduction,
#  filter_multiplier) of the two published configurations.
MOBILE = dict(penultimate_filters=1056, num_blocks=_table.MOBILE_BLOCKS, stem_filters=32, skip_reduction=False)
LARGE = dict(penultimate_filters=4032, num_blocks=_table.LARGE_BLOCKS, stem_filters=96, skip_reduction=True)
FILTER_MULTIPLIER = 2


def _bn(x, data_format, name):
    return zoo_layers.BatchNormalization(
        axis=imagenet.channel_axis(data_format),
        momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON,
        name=name,
    )(x)


def _conv1x1(x, filters, *, data_format, name):
    return zoo_layers.Conv2D(
        filters, 1, padding="same", use_bias=False, kernel_initializer="he_normal",
        data_format=data_format, name=name,
    )(x)


def apply_separable_block(x, filters, kernel_size=3, *, strides=1, data_format, block_id):
    """Two times [ReLU -> SeparableConv2D -> BatchNormalization]; the first
    convolution may be strided (explicit zero padding, so every backend pads
    like TensorFlow)."""
    x = layers.Activation("relu", name=f"separable_conv_1_relu_{block_id}")(x)
    if strides == 2:
        x = layers.ZeroPadding2D(
            _common.correct_pad(x, kernel_size, data_format), data_format=data_format,
            name=f"separable_conv_1_pad_{block_id}",
        )(x)
        padding = "valid"
    else:
        padding = "same"
    x = zoo_layers.SeparableConv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False,
        data_format=data_format, name=f"separable_conv_1_{block_id}",
    )(x)
    x = _bn(x, data_format, f"separable_conv_1_bn_{block_id}")
    x = layers.Activation("relu", name=f"separable_conv_2_relu_{block_id}")(x)
    x = zoo_layers.SeparableConv2D(
        filters, kernel_size, padding="same", use_bias=False,
        data_format=data_format, name=f"separable_conv_2_{block_id}",
    )(x)
    return _bn(x, data_format, f"separable_conv_2_bn_{block_id}")


def apply_adjust(p, ip, filters, *, p_is_larger, data_format, block_id):
    """Bring the previous cell's input ``p`` to the resolution and width of
    the current input ``ip``.

    ``p_is_larger`` says (from the network structure) that ``p`` comes from
    before a reduction and has twice the resolution: it is then halved by
    two 1x1 strided paths, the second shifted by one pixel (pad bottom/right,
    crop top/left), concatenated on the channel axis. Otherwise a width
    mismatch gets a 1x1 projection.
    """
    if p is None:
        return ip
    axis = imagenet.channel_axis(data_format)
    if p_is_larger:
        p = layers.Activation("relu", name=f"adjust_relu_1_{block_id}")(p)
        p1 = zoo_layers.AveragePooling2D(
            1, strides=2, padding="valid", data_format=data_format,
            name=f"adjust_avg_pool_1_{block_id}",
        )(p)
        p1 = _conv1x1(p1, filters // 2, data_format=data_format, name=f"adjust_conv_1_{block_id}")
        p2 = layers.ZeroPadding2D(
            ((0, 1), (0, 1)), data_format=data_format, name=f"adjust_pad_{block_id}"
        )(p)
        p2 = layers.Cropping2D(
            ((1, 0), (1, 0)), data_format=data_format, name=f"adjust_crop_{block_id}"
        )(p2)
        p2 = zoo_layers.AveragePooling2D(
            1, strides=2, padding="valid", data_format=data_format,
            name=f"adjust_avg_pool_2_{block_id}",
        )(p2)
        p2 = _conv1x1(p2, filters // 2, data_format=data_format, name=f"adjust_conv_2_{block_id}")
        p = layers.Concatenate(axis=axis, name=f"adjust_concat_{block_id}")([p1, p2])
        return _bn(p, data_format, f"adjust_bn_{block_id}")
    if p.shape[axis] != filters:
        p = layers.Activation("relu", name=f"adjust_relu_projection_{block_id}")(p)
        p = _conv1x1(
            p, filters, data_format=data_format, name=f"adjust_conv_projection_{block_id}"
        )
        p = _bn(p, data_format, f"adjust_bn_{block_id}")
    return p


def _avg3(x, strides, data_format, name, padding="same"):
    return zoo_layers.AveragePooling2D(
        3, strides=strides, padding=padding, data_format=data_format, name=name
    )(x)


def apply_normal_cell(ip, p, filters, *, p_is_larger, data_format, block_id):
    """NASNet-A normal cell (Fig. 4 of the paper). Returns ``(x, ip)``."""
    df = data_format
    p = apply_adjust(p, ip, filters, p_is_larger=p_is_larger, data_format=df, block_id=block_id)
    h = layers.Activation("relu", name=f"normal_relu_1_{block_id}")(ip)
    h = _conv1x1(h, filters, data_format=df, name=f"normal_conv_1_{block_id}")
    h = _bn(h, df, f"normal_bn_1_{block_id}")

    def sep(t, k, side):
        return apply_separable_block(
            t, filters, k, data_format=df, block_id=f"normal_{side}_{block_id}"
        )

    x1 = layers.Add(name=f"normal_add_1_{block_id}")([sep(h, 5, "left1"), sep(p, 3, "right1")])
    x2 = layers.Add(name=f"normal_add_2_{block_id}")([sep(p, 5, "left2"), sep(p, 3, "right2")])
    x3 = _avg3(h, 1, df, f"normal_left3_{block_id}")
    x3 = layers.Add(name=f"normal_add_3_{block_id}")([x3, p])
    x4 = layers.Add(name=f"normal_add_4_{block_id}")(
        [_avg3(p, 1, df, f"normal_left4_{block_id}"), _avg3(p, 1, df, f"normal_right4_{block_id}")]
    )
    x5 = layers.Add(name=f"normal_add_5_{block_id}")([sep(h, 3, "left5"), h])
    x = layers.Concatenate(axis=imagenet.channel_axis(df), name=f"normal_concat_{block_id}")(
        [p, x1, x2, x3, x4, x5]
    )
    return x, ip


def apply_reduction_cell(ip, p, filters, *, p_is_larger, data_format, block_id):
    """NASNet-A reduction cell (Fig. 4 of the paper), halving the
    resolution. Returns ``(x, ip)``."""
    df = data_format
    p = apply_adjust(p, ip, filters, p_is_larger=p_is_larger, data_format=df, block_id=block_id)
    h = layers.Activation("relu", name=f"reduction_relu_1_{block_id}")(ip)
    h = _conv1x1(h, filters, data_format=df, name=f"reduction_conv_1_{block_id}")
    h = _bn(h, df, f"reduction_bn_1_{block_id}")
    # Pools read h zero-padded like TensorFlow's `same`, padding included.
    h3 = layers.ZeroPadding2D(
        _common.correct_pad(h, 3, df), data_format=df, name=f"reduction_pad_1_{block_id}"
    )(h)

    def sep(t, k, side, strides=2):
        return apply_separable_block(
            t, filters, k, strides=strides, data_format=df,
            block_id=f"reduction_{side}_{block_id}",
        )

    def max3(name):
        return zoo_layers.MaxPooling2D(3, strides=2, padding="valid", data_format=df, name=name)(h3)

    x1 = layers.Add(name=f"reduction_add_1_{block_id}")(
        [sep(h, 5, "left1"), sep(p, 7, "right1")]
    )
    x2 = layers.Add(name=f"reduction_add_2_{block_id}")(
        [max3(f"reduction_left2_{block_id}"), sep(p, 7, "right2")]
    )
    x3 = layers.Add(name=f"reduction_add3_{block_id}")(
        [_avg3(h3, 2, df, f"reduction_left3_{block_id}", padding="valid"), sep(p, 5, "right3")]
    )
    x4 = _avg3(x1, 1, df, f"reduction_left4_{block_id}")
    x4 = layers.Add(name=f"reduction_add_left4_{block_id}")([x2, x4])
    x5 = layers.Add(name=f"reduction_add4_{block_id}")(
        [sep(x1, 3, "left4", strides=1), max3(f"reduction_right5_{block_id}")]
    )
    x = layers.Concatenate(axis=imagenet.channel_axis(df), name=f"reduction_concat_{block_id}")(
        [x2, x3, x4, x5]
    )
    return x, ip


def _nasnet(spec, config):
    df = spec.data_format
    filters = config["penultimate_filters"] // 24
    mult = FILTER_MULTIPLIER
    x = zoo_layers.Conv2D(
        config["stem_filters"], 3, strides=2, padding="valid", use_bias=False,
        kernel_initializer="he_normal", data_format=df, name="stem_conv1",
    )(spec.inputs)
    x = _bn(x, df, "stem_bn1")

    # `p_is_larger`: the previous input has twice the current resolution,
    # true exactly for the two cells after each reduction (the stem's first
    # reduction has no previous input).
    p, p_is_larger = None, False
    n = config["num_blocks"]
    widths = {"stem_1": filters // mult**2, "stem_2": filters // mult}
    for kind, block_id in cell_ids(n):
        if kind == "reduction":
            if block_id in widths:
                width = widths[block_id]
            else:
                width = filters * (mult if block_id == f"reduce_{n}" else mult**2)
            x, p_new = apply_reduction_cell(
                x, p, width, p_is_larger=p_is_larger, data_format=df, block_id=block_id
            )
            if block_id.startswith("stem") or not config["skip_reduction"]:
                p = p_new
            # Either way p (the reduction's input or the input before it)
            # now has twice x's resolution.
            p_is_larger = True
        else:
            stage = 0 if int(block_id) < n else 1 if int(block_id) <= 2 * n else 2
            x, p = apply_normal_cell(
                x, p, filters * mult**stage, p_is_larger=p_is_larger, data_format=df,
                block_id=block_id,
            )
            p_is_larger = False
    x = layers.Activation("relu", name="final_relu")(x)
    x = _common.pooled_top(x, spec)
    return _common.finish(x, spec)


_DOC = """Instantiate {title} (NASNet-A {config}), keras.applications-style.

    Reference: Zoph et al., "Learning Transferable Architectures for Scalable
    Image Recognition", CVPR 2018. Inputs are preprocessed with
    `keras_zoo_plus.applications.nasnet.preprocess_input` ("tf" mode, [-1, 1]).

    Args:
        input_shape: optional shape tuple; with `include_top=True` and
            imagenet weights it must be ({size}, {size}, 3) (or (3, {size},
            {size}) with channels_first). Default: that shape. At least 32
            pixels high and wide; with imagenet weights no `None` entries.
        include_top: whether to include the global-average-pool + Dense top.
        weights: None (random init), "imagenet", or a path to a weights file
            (legacy Keras .h5, .weights.h5 or .keras).
        input_tensor: optional Keras tensor (output of `keras.Input()`).
        pooling: None, "avg" or "max" when `include_top` is False.
        classes: number of classes (1000 with imagenet weights and a top).
        classifier_activation: activation of the top layer (None: logits).
        name: model name.
        data_format: "channels_last", "channels_first" or None (global
            default). Weights are the same for both.

    Returns:
        A `keras.Model`.

    Raises:
        ValueError, TypeError: for invalid arguments, before building.

    Example:
        >>> model = {title}(weights=None, include_top=False, pooling="avg",
        ...                 input_shape=(96, 96, 3))
        >>> model.output_shape
        (None, {features})
    """

@_common.constructor
def NASNetMobile(
    input_shape=None, include_top=True, weights="imagenet", input_tensor=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="nasnet_mobile",
    data_format=None,
):
    spec = _common.prepare(
        "nasnet_mobile", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _nasnet(spec, MOBILE)


@_common.constructor
def NASNetLarge(
    input_shape=None, include_top=True, weights="imagenet", input_tensor=None,
    pooling=None, classes=1000, classifier_activation="softmax", name="nasnet_large",
    data_format=None,
):
    spec = _common.prepare(
        "nasnet_large", include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, data_format=data_format,
    )
    return _nasnet(spec, LARGE)


NASNetMobile.__doc__ = _DOC.format(
    title="NASNetMobile", config="4 @ 1056", size=224, features=1056
)
NASNetLarge.__doc__ = _DOC.format(title="NASNetLarge", config="6 @ 4032", size=331, features=4032)


preprocess_input = _common.make_preprocess_input("nasnet")


decode_predictions = imagenet.decode_predictions

__all__ = ["NASNetLarge", "NASNetMobile", "decode_predictions", "preprocess_input"]
