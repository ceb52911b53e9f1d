"""Loading saved models, old Keras 2 files included.

:func:`load_model` is ``keras.models.load_model`` with the zoo's custom
objects in scope, so ``.keras`` files and Keras 2 era ``.h5`` full models
(MobileNet's custom ``relu6``, ``DepthwiseConv2D`` configs holding
``groups: 1``, nested Sequential/functional models) load on every backend.

Measured with Keras 3.15.1: ``keras.models.load_model`` alone loads a
flat Keras 2 model once ``custom_objects`` maps ``DepthwiseConv2D`` to ours,
but not a nested one written by Keras 2.13+ / tf_keras (e.g. a MobileNet
base inside a Sequential classifier): see :func:`_legacy_layer_entries`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

import h5py
import keras

from keras_zoo_plus import fusion
from keras_zoo_plus.layers import custom_objects as _zoo_custom_objects

# Messages Keras 3.x raises for a class or function it cannot find:
# the `.keras` deserializer ("Could not locate class 'X'") and the legacy
# `.h5` one ("Unknown layer: 'X'", "Unknown activation: 'X'").
_UNKNOWN_PATTERNS = (
    re.compile(r"Could not locate (?:class|function) '([^']+)'"),
    re.compile(r"Unknown [\w ]+: '([^']+)'"),
)


def _unknown_object_name(error):
    for pattern in _UNKNOWN_PATTERNS:
        found = pattern.search(str(error))
        if found:
            return found.group(1)
    return None


def _is_keras2_h5(path):
    if not str(path).endswith((".h5", ".hdf5")):
        return False
    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version", b"")
    if isinstance(version, bytes):
        version = version.decode("utf8")
    return not str(version).startswith("3.")


def _legacy_layer_entries(config):
    """Strip ``module``/``registered_name`` from every layer entry of a
    Keras 2 model config, in nested models too. Returns whether any was
    stripped.

    Keras 2.13+ (and tf_keras) record them; Keras 3 then deserializes nested
    layers with its *new* deserializer, which lacks the Keras 2
    compatibility fixes of its legacy one (``axis: [3]`` of
    BatchNormalization, ``batch_input_shape``, nested ``Functional`` models
    whose module ``keras.src.engine.functional`` no longer exists). Without
    them every layer goes through the legacy deserializer, which resolves
    classes by ``class_name`` (custom objects first).

    Also unwraps the single-entry ``input_layers``/``output_layers``
    (``[["conv_pw_13_relu", 0, 0]]``) Keras 2 writes for every functional
    model: Keras 3 reads the wrapped form as a one-element *list* of
    outputs, so a nested MobileNet would hand ``[tensor]`` to the next layer
    (GlobalAveragePooling2D then returns garbage) where Keras 2 hands it a
    tensor.
    """
    changed = False
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict):
            for key in ("input_layers", "output_layers"):
                nodes = inner.get(key)
                if isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], list):
                    inner[key] = nodes[0]
                    changed = True
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):
            for entry in inner["layers"]:
                if isinstance(entry, dict) and "class_name" in entry:
                    for key in ("module", "registered_name"):
                        if key in entry:
                            del entry[key]
                            changed = True
                    changed |= _legacy_layer_entries(entry)
    return changed


def _load_keras2_h5(path, objects, compile):
    """Load a Keras 2 ``.h5`` full model, from a copy whose model config
    has legacy layer entries (see :func:`_legacy_layer_entries`)."""
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        raise ValueError(
            f"{os.fspath(path)!r} holds no model config: it is a weights file. Build the "
            "model and call `model.load_weights(path)`, or pass it as `weights=` to a "
            "keras_zoo_plus constructor."
        )
    config = json.loads(raw.decode("utf8") if isinstance(raw, bytes) else raw)
    if not _legacy_layer_entries(config):
        return keras.models.load_model(path, custom_objects=objects, compile=compile)
    with tempfile.TemporaryDirectory(prefix="keras_zoo_plus_") as tmp:
        copy = os.path.join(tmp, "model.h5")
        shutil.copyfile(path, copy)
        with h5py.File(copy, "r+") as f:
            f.attrs["model_config"] = json.dumps(config).encode("utf8")
        return keras.models.load_model(copy, custom_objects=objects, compile=compile)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a ``.keras`` file or a legacy Keras 2 ``.h5`` full model.

    The zoo's objects (:func:`keras_zoo_plus.custom_objects`: ``relu6``,
    ``DepthwiseConv2D``, ...) are in scope; ``custom_objects`` you pass are
    merged over them (yours win on a name clash).

    Args:
        filepath: path to a ``.keras`` or ``.h5`` file.
        custom_objects: optional dict ``{name: class_or_function}`` for
            objects of your own.
        compile: whether to compile the model with its saved training
            configuration (as in ``keras.models.load_model``).
        safe_mode: as in ``keras.models.load_model``: whether to refuse
            to deserialize ``lambda`` code.

    Returns:
        The ``keras.Model``.

    Raises:
        TypeError: if ``custom_objects`` is not a dict.
        ValueError: if the file names an object that is neither built into
            Keras nor in the merged ``custom_objects``; the message names it.

    Example:
        >>> import keras_zoo_plus
        >>> model = keras_zoo_plus.load_model("mobilenet_classifier.h5")
    """
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(
            "`custom_objects` must be a dict mapping names to classes or functions. "
            f"Received: custom_objects={custom_objects!r}"
        )
    objects = _zoo_custom_objects()
    objects.update(custom_objects or {})
    path = os.fspath(filepath)
    try:
        with keras.saving.custom_object_scope(objects):
            if _is_keras2_h5(path):
                model = _load_keras2_h5(path, objects, compile)
            else:
                model = keras.models.load_model(
                    path, custom_objects=objects, compile=compile, safe_mode=safe_mode
                )
    except (TypeError, ValueError) as error:
        name = _unknown_object_name(error)
        if name is None:
            raise
        raise ValueError(
            f"Cannot load {path!r}: it uses the object {name!r}, which is "
            "neither built into Keras nor one of keras_zoo_plus.custom_objects(). "
            f"Pass it yourself: keras_zoo_plus.load_model(path, custom_objects={{{name!r}: ...}})."
        ) from error
    if isinstance(model, keras.Model):
        fusion.enable_fused_inference(model)
    return model
