"""ImageNet conventions shared by every family: argument validation,
input shapes, ``preprocess_input`` and ``decode_predictions``.

Everything here validates eagerly and raises ``ValueError``/``TypeError``
naming the argument, the value received and what is allowed, before any
layer is built.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

DATA_FORMATS = ("channels_last", "channels_first")
PREPROCESS_MODES = ("caffe", "tf", "torch", "none")
POOLING_MODES = (None, "avg", "max")

CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/"
    "data/imagenet_class_index.json"
)
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
CLASS_INDEX_FILE = "imagenet_class_index.json"
# The class index is not under the weights base URL, so its mirror is a
# separate, full URL (the md5 is still the official one).
CLASS_INDEX_URL_ENV = "KERAS_ZOO_PLUS_CLASS_INDEX_URL"

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

_class_index_cache: dict[str, list] = {}


def resolve_data_format(data_format):
    """Return ``data_format`` or the global default, validated.

    Args:
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``
            (``keras.config.image_data_format()``).

    Returns:
        The resolved data format string.

    Raises:
        ValueError: for any other value.
    """
    if data_format is None:
        data_format = keras.config.image_data_format()
    if not isinstance(data_format, str) or data_format not in DATA_FORMATS:
        raise ValueError(
            "`data_format` must be one of 'channels_last', 'channels_first' "
            f"or None. Received: data_format={data_format!r}"
        )
    return data_format


def channel_axis(data_format):
    """The channel axis of a 4D batch in ``data_format``."""
    return 1 if data_format == "channels_first" else -1


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate_bool(name, value):
    """Raise ``TypeError`` naming argument ``name`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool. Received: {name}={value!r}")


def validate_weights(weights, include_top, classes, *, allow_imagenet=True):
    """Validate the ``weights``/``include_top``/``classes`` trio.

    ``weights`` may be ``None``, ``"imagenet"`` or a path to a weights file
    (``.h5``, ``.weights.h5`` or ``.keras``) that exists.
    """
    validate_bool("include_top", include_top)
    if not _is_int(classes) or classes < 1:
        raise ValueError(
            "`classes` must be a positive integer. "
            f"Received: classes={classes!r}"
        )
    if weights is None or weights == "imagenet":
        if weights == "imagenet" and not allow_imagenet:
            raise ValueError(
                "This model has no official `imagenet` weights in this "
                "configuration. Use weights=None or a path to a weights file."
            )
        # ``classes`` other than 1000 with the top is allowed: the loader
        # initialises that classifier afresh (keras_zoo_plus.weights.Adaptation).
        return
    if isinstance(weights, os.PathLike):
        weights = os.fspath(weights)
    if not isinstance(weights, str):
        raise TypeError(
            "`weights` must be None, 'imagenet' or the path to a weights "
            f"file. Received: weights={weights!r} of type {type(weights).__name__}"
        )
    if not os.path.exists(weights):
        raise ValueError(
            "`weights` must be None, 'imagenet' or the path to an existing "
            f"weights file (.h5, .weights.h5, .keras). Received: weights={weights!r}, "
            "which is neither a known option nor an existing file."
        )


def validate_pooling(pooling):
    if pooling not in POOLING_MODES:
        raise ValueError(
            "`pooling` must be one of None, 'avg' or 'max'. "
            f"Received: pooling={pooling!r}"
        )


def validate_classifier_activation(classifier_activation, weights):
    if classifier_activation is None:
        return
    if isinstance(classifier_activation, str):
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, KeyError) as exc:
            raise ValueError(
                "`classifier_activation` must be None, 'softmax' or the name "
                "of a Keras activation. Received: "
                f"classifier_activation={classifier_activation!r}"
            ) from exc
        return
    if not callable(classifier_activation):
        raise TypeError(
            "`classifier_activation` must be None, a string or a callable. "
            f"Received: classifier_activation={classifier_activation!r}"
        )


def validate_input_tensor(input_tensor):
    if input_tensor is None:
        return
    if not keras.backend.is_keras_tensor(input_tensor):
        raise TypeError(
            "`input_tensor` must be a Keras symbolic tensor such as the "
            "output of `keras.Input(...)`. Received: "
            f"input_tensor of type {type(input_tensor).__name__}"
        )
    if len(input_tensor.shape) != 4:
        raise ValueError(
            "`input_tensor` must be a batch of images with rank 4. Received: "
            f"input_tensor with shape {tuple(input_tensor.shape)}"
        )


def obtain_input_shape(
    input_shape,
    *,
    default_size,
    min_size,
    data_format,
    require_flatten,
    weights=None,
):
    """Validate ``input_shape`` with the Keras rules and return it.

    Args:
        input_shape: ``None`` or a tuple of three ints (``None`` entries
            allowed for the spatial dimensions unless ``require_flatten``).
        default_size: the model's default spatial size.
        min_size: the smallest spatial size the architecture accepts.
        data_format: resolved data format.
        require_flatten: True when the top needs a static spatial size
            (``include_top=True``).
        weights: the ``weights`` argument; ``"imagenet"`` with
            ``require_flatten`` requires the default spatial size (any
            number of channels: the first convolution is adapted).

    Returns:
        A tuple of three entries in ``data_format`` order.

    Raises:
        ValueError: naming ``input_shape`` and the rule it breaks.
    """
    first = data_format == "channels_first"
    if input_shape is not None:
        if isinstance(input_shape, list):
            input_shape = tuple(input_shape)
        if not isinstance(input_shape, tuple) or len(input_shape) != 3:
            raise ValueError(
                "`input_shape` must be a tuple of three integers "
                f"({'channels, rows, cols' if first else 'rows, cols, channels'}). "
                f"Received: input_shape={input_shape!r}"
            )
        for dim in input_shape:
            if dim is not None and (not _is_int(dim) or dim < 1):
                raise ValueError(
                    "`input_shape` entries must be positive integers or None. "
                    f"Received: input_shape={input_shape!r}"
                )
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
    channels = None
    if input_shape is not None:
        channels = input_shape[0] if first else input_shape[-1]
    if channels is None:
        channels = 3
    if first:
        default_shape = (channels, default_size, default_size)
    else:
        default_shape = (default_size, default_size, channels)

    # Any number of channels with weights="imagenet": the loader adapts the
    # first convolution's RGB kernel (keras_zoo_plus.weights.adapt_kernel).
    if input_shape is None:
        return default_shape
    if weights == "imagenet" and require_flatten and input_shape != default_shape:
        raise ValueError(
            'When setting `include_top=True` and loading `weights="imagenet"`, '
            f"`input_shape` should be {default_shape}. "
            f"Received: input_shape={input_shape}"
        )
    spatial = input_shape[1:] if first else input_shape[:2]
    if input_shape[0 if first else 2] is None:
        raise ValueError(
            "`input_shape` must give the number of channels. "
            f"Received: input_shape={input_shape}"
        )
    for dim in spatial:
        if dim is not None and dim < min_size:
            raise ValueError(
                f"Input size must be at least {min_size}x{min_size}. "
                f"Received: input_shape={input_shape}"
            )
    if require_flatten and None in spatial:
        raise ValueError(
            "With `include_top=True` the spatial size must be static. "
            f"Received: input_shape={input_shape}"
        )
    return input_shape


# --------------------------------------------------------------------------
# preprocess_input


def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocess a batch (or one image) of RGB values in [0, 255].

    Modes follow keras.applications:

    - ``"caffe"``: RGB -> BGR, then subtract the ImageNet mean per channel.
    - ``"tf"``: scale to [-1, 1].
    - ``"torch"``: scale to [0, 1], then normalise with ImageNet mean/std.

    Unlike keras.applications, a NumPy input is **never modified in place**:
    a new float array is returned (float64 input stays float64, integer
    input becomes ``keras.config.floatx()``). Backend tensors return a
    backend tensor.

    Args:
        x: NumPy array or backend tensor of rank 3 or 4 with 3 channels on
            the channel axis of ``data_format``.
        data_format: ``None`` (global default), ``"channels_last"`` or
            ``"channels_first"``.
        mode: ``"caffe"``, ``"tf"``, ``"torch"`` or ``"none"`` (the
            identity, for models that preprocess inside their graph, as
            keras.applications' EfficientNet and ConvNeXt).

    Returns:
        The preprocessed array/tensor.

    Raises:
        ValueError: for an unknown mode or data format, or a shape without
            3 channels on the channel axis.
        TypeError: for inputs that are neither arrays nor tensors, or a
            non-numeric dtype.

    Example:
        >>> x = np.full((1, 2, 2, 3), 255.0, "float32")
        >>> preprocess_input(x, mode="tf")[0, 0, 0].tolist()
        [1.0, 1.0, 1.0]
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(
            "`mode` must be one of 'caffe', 'tf', 'torch' or 'none'. "
            f"Received: mode={mode!r}"
        )
    data_format = resolve_data_format(data_format)
    is_numpy = isinstance(x, (np.ndarray, list, tuple, np.generic))
    if is_numpy:
        try:
            x = np.asarray(x)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(
                f"`x` must be a rectangular array of pixel values. Received: {exc}"
            ) from None
        dtype = x.dtype
        if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
            raise TypeError(
                "`x` must hold numbers (integer or float pixel values). "
                f"Received: x with dtype {dtype}"
            )
        shape = x.shape
    elif keras.ops.is_tensor(x) or keras.backend.is_keras_tensor(x):
        dtype = keras.backend.standardize_dtype(x.dtype)
        if dtype == "bool" or dtype.startswith("string") or dtype.startswith("complex"):
            raise TypeError(
                "`x` must hold numbers (integer or float pixel values). "
                f"Received: x with dtype {dtype}"
            )
        shape = tuple(x.shape)
    else:
        raise TypeError(
            "`x` must be a NumPy array or a backend tensor. "
            f"Received: x of type {type(x).__name__}"
        )
    if len(shape) not in (3, 4):
        raise ValueError(
            "`x` must be one image (rank 3) or a batch of images (rank 4). "
            f"Received: x with shape {shape}"
        )
    axis = (0 if len(shape) == 3 else 1) if data_format == "channels_first" else len(shape) - 1
    if shape[axis] is not None and shape[axis] != 3:
        raise ValueError(
            f"`x` must have 3 channels on axis {axis} for "
            f"data_format={data_format!r}. Received: x with shape {shape}"
        )
    if mode == "none":
        return x
    bshape = [1] * len(shape)
    bshape[axis] = 3

    if is_numpy:
        out_dtype = dtype if np.issubdtype(dtype, np.floating) else keras.config.floatx()
        x = x.astype(out_dtype, copy=True)
        if mode == "tf":
            return (x / 127.5 - 1.0).astype(out_dtype, copy=False)
        if mode == "torch":
            mean = np.reshape(_TORCH_MEAN, bshape).astype(out_dtype)
            std = np.reshape(_TORCH_STD, bshape).astype(out_dtype)
            return ((x / 255.0 - mean) / std).astype(out_dtype, copy=False)
        x = np.flip(x, axis=axis)
        mean = np.reshape(_CAFFE_MEAN_BGR, bshape).astype(out_dtype)
        return np.ascontiguousarray(x - mean)

    ops = keras.ops
    if not dtype.startswith("float"):
        x = ops.cast(x, keras.config.floatx())
        dtype = keras.config.floatx()
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        mean = ops.reshape(ops.convert_to_tensor(_TORCH_MEAN, dtype), bshape)
        std = ops.reshape(ops.convert_to_tensor(_TORCH_STD, dtype), bshape)
        return (x / 255.0 - mean) / std
    x = ops.flip(x, axis=axis)
    mean = ops.reshape(ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype), bshape)
    return x - mean


# --------------------------------------------------------------------------
# decode_predictions


def class_index_url():
    """The URL of ``imagenet_class_index.json`` (``KERAS_ZOO_PLUS_CLASS_INDEX_URL``
    overrides the official one)."""
    return os.environ.get(CLASS_INDEX_URL_ENV) or CLASS_INDEX_URL


def _load_class_index():
    if "index" in _class_index_cache:
        return _class_index_cache["index"]
    from keras_zoo_plus import weights as _weights

    path = _weights.fetch_file(
        CLASS_INDEX_FILE, class_index_url(), CLASS_INDEX_MD5, what="ImageNet class index"
    )
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
        index = [tuple(raw[str(i)]) for i in range(1000)]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"The ImageNet class index at {path} is not a valid "
            "imagenet_class_index.json (1000 entries of [wnid, label]). "
            "Delete it and retry."
        ) from exc
    _class_index_cache["index"] = index
    return index


def decode_predictions(preds, top=5):
    """Decode ImageNet predictions into ``(wnid, label, score)`` tuples.

    The class index (``imagenet_class_index.json``) is downloaded once with
    its md5 verified into the Keras cache (``$KERAS_HOME/models``), through
    :func:`keras_zoo_plus.weights.fetch_file`: the offline switch
    (``KERAS_ZOO_PLUS_OFFLINE``) and timeout (``KERAS_ZOO_PLUS_TIMEOUT``)
    apply. Its URL is not under the weights base URL; a mirror is set with
    ``KERAS_ZOO_PLUS_CLASS_INDEX_URL`` (the full URL of the file).

    Args:
        preds: real-valued array-like or tensor of shape ``(batch, 1000)``.
        top: how many classes to return per sample (1..1000).

    Returns:
        A list (one per sample) of lists of ``(wnid, label, score)`` tuples,
        highest score first.

    Raises:
        ValueError: for a wrong shape or ``top``, NaN scores; when the
            class index cannot be downloaded (the message gives the URL,
            the md5 and the cache path to place it at).
        TypeError: for non-numeric, boolean or complex ``preds``.

    Example:
        >>> preds = np.zeros((1, 1000)); preds[0, 207] = 1.0
        >>> decode_predictions(preds, top=1)  # doctest: +SKIP
        [[('n02099601', 'golden_retriever', 1.0)]]
    """
    if not _is_int(top) or not 1 <= top <= 1000:
        raise ValueError(
            f"`top` must be an integer between 1 and 1000. Received: top={top!r}"
        )
    if keras.ops.is_tensor(preds):
        preds = keras.ops.convert_to_numpy(preds)
    try:
        raw = np.asarray(preds)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "`preds` must be a numeric array of shape (batch, 1000). "
            f"Received: preds of type {type(preds).__name__}"
        ) from exc
    if raw.dtype.kind not in "iuf":
        raise TypeError(
            "`preds` must hold real numbers (integer or float scores) in an array of "
            f"shape (batch, 1000). Received: preds with dtype {raw.dtype} "
            f"and shape {raw.shape}"
        )
    preds = raw.astype("float64")
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions "
            "(i.e. a 2D array of shape (samples, 1000)). "
            f"Received array with shape: {preds.shape}"
        )
    if np.isnan(preds).any():
        raise ValueError("`preds` contains NaN scores, which cannot be ranked.")
    index = _load_class_index()
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(*index[i], float(row[i])) for i in order])
    return results
