"""Loading saved models, tf.keras (Keras 2) files included.

:func:`load_model` is ``keras.models.load_model`` with the zoo's custom
objects in scope, so ``.keras`` files and Keras 2 era ``.h5`` full models
load on every backend: MobileNet's custom ``relu6``, ``DepthwiseConv2D``
configs holding ``groups: 1``, nested Sequential/functional models, and
the models of every ``tf_keras.applications`` family, flat or nested in a
transfer-learning classifier (tests/test_legacy_families.py).

What Keras 3 (measured with 3.15.1) does not read in those files, and the
rewrite of the model config (:func:`_rewrite_keras2`) that fixes it:

- ``TFOpLambda`` layers (``x + y``, ``x * 0.5``, ``tf.math.multiply``
  applied to symbolic tensors): tf.keras writes their nodes in a form
  Keras 3's functional deserializer cannot parse (the op's first argument
  unwrapped, tensors among the kwargs, ``_CONSTANT_VALUE`` entries). They
  become :class:`keras_zoo_plus.layers.TFOpLambda` layers, which compute
  the op with ``keras.ops`` by the table ``layers.TF_OPS``;
- ``/`` in layer names (DenseNet's ``conv1/conv``, MobileNetV3's
  ``Conv/BatchNorm``), which Keras 3 refuses: ``/`` becomes ``_``;
- nested models: the ``module``/``registered_name`` keys send them to
  Keras 3's new deserializer, which lacks the Keras 2 fixes of its legacy
  one; their single-output wrapping; node indices of nested models counted
  from 1 (:class:`_Refs`).

``keras.saving.load_model(path, custom_objects=keras_zoo_plus.custom_objects())``
applies the same rewrite: ``custom_objects()`` maps ``Functional`` to
:class:`Keras2Functional`, which Keras consults for every functional model
of the file, nested ones included.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile

import h5py
import keras

from keras_zoo_plus import deferred, fusion
from keras_zoo_plus import layers as zoo_layers
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


# tf.keras' reference to a layer's output in a serialized node:
# [layer_name, node_index, tensor_index] or, with the call's other
# arguments, [layer_name, node_index, tensor_index, kwargs] (tf_keras'
# own test, `tf_utils.convert_inner_node_data`). A constant first
# argument of a TFOpLambda is [_CONSTANT_VALUE, -1, value, kwargs].
_CONSTANT_VALUE = "_CONSTANT_VALUE"


def _is_node_data(value):
    return isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str)


class _Refs:
    """How the references of one Keras 2 functional config change: layer
    names (``/`` replaced, :func:`_slash_free_names`) and node indices.

    tf.keras counts the nodes of a nested model from 1 when it skips the
    model's first node (its own input-to-output node: a nested functional
    model, or a Sequential that starts with an InputLayer; tf_keras'
    ``_should_skip_first_node``). Keras 3 models have no such node, and
    Keras 3 subtracts that 1 only for a functional model named in
    ``input_layers``/``output_layers``; so ``["stem", 1, 0]`` becomes
    ``["stem", 0, 0]`` in every node, and in ``input_layers``/
    ``output_layers`` for a Sequential.
    """

    def __init__(self, entries):
        self.rename = _slash_free_names([_layer_name(entry) for entry in entries])
        self.skipped = {_layer_name(entry): _skips_first_node(entry) for entry in entries}

    def ref(self, value, io=False):
        name, index = value[0], value[1]
        skipped = self.skipped.get(name)
        if skipped and (not io or skipped == "Sequential") and isinstance(index, int) and index:
            index -= 1
        return [self.rename.get(name, name), index, *value[2:]]

    def nodes(self, value, io=False):
        """``value`` (a reference, or nested lists of them), mapped; ``io``:
        it is ``input_layers`` or ``output_layers``."""
        if _is_node_data(value):
            return self.ref(value, io)
        if isinstance(value, list):
            return [self.nodes(item, io) for item in value]
        return value


def _skips_first_node(entry):
    """``"Functional"``/``"Sequential"`` for a nested model whose first
    node tf.keras skips, else ``None``."""
    class_name = entry.get("class_name")
    inner = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    if class_name in ("Functional", "Model") and "output_layers" in inner:
        return "Functional"
    if class_name == "Sequential":
        layers = inner.get("layers") or []
        if layers and isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer":
            return "Sequential"
    return None


def _slash_free_names(names):
    """``{old: new}`` for the names holding ``/`` (which Keras 3 forbids in
    layer names): ``/`` becomes ``_``, with a ``_<n>`` suffix should that
    name be taken."""
    taken = set(names)
    rename = {}
    for name in names:
        if not isinstance(name, str) or "/" not in name:
            continue
        new = base = name.replace("/", "_")
        n = 1
        while new in taken:
            new = f"{base}_{n}"
            n += 1
        taken.add(new)
        rename[name] = new
    return rename


def _layer_name(entry):
    inner = entry.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("name"), str):
        return inner["name"]
    return entry.get("name")


def _rename_entry(entry, rename):
    for holder in (entry, entry.get("config")):
        if isinstance(holder, dict) and holder.get("name") in rename:
            holder["name"] = rename[holder["name"]]


def _tf_op_nodes(entry, refs_map):
    """Turn a tf.keras ``TFOpLambda`` entry into a :class:`TFOpLambda`
    one: the op's arguments go into its config by TensorFlow parameter
    name (tensors as ``{"__input__": i}``), and each node becomes the plain
    list of the tensors it reads, the form Keras 3 calls a layer with.

    tf.keras writes a TFOpLambda node as the op's first argument (a tensor
    reference, a constant, or a list of them), the other arguments riding
    in each reference's kwargs; Keras 3 reads neither the unwrapped node
    nor tensors in kwargs.
    """
    inner = entry["config"]
    layer = _layer_name(entry)
    function = inner.get("function")
    spec = zoo_layers.TF_OPS.get(function)
    if spec is None:
        zoo_layers.tf_op_arguments(function, {}, layer)  # raises: the op is not mapped
    arguments, nodes = None, []
    for node in entry.get("inbound_nodes") or []:
        refs, kwargs = [], {}

        def tensor(ref, refs=refs):
            refs.append(refs_map.ref(ref[:3]))
            return {zoo_layers.INPUT_KEY: len(refs) - 1}

        def first(value, kwargs=kwargs):
            if _is_node_data(value):
                if len(value) == 4 and isinstance(value[3], dict) and not kwargs:
                    kwargs.update(value[3])
                return value[2] if value[0] == _CONSTANT_VALUE else tensor(value)
            if isinstance(value, list):
                return [first(item) for item in value]
            return value

        def other(value):
            if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
                return tensor(value)
            if isinstance(value, list):
                return [other(item) for item in value]
            if isinstance(value, dict):
                return {key: other(item) for key, item in value.items()}
            return value

        call = {spec.params[0][0]: first(node)}
        call.update((key, other(value)) for key, value in kwargs.items() if key != "name")
        if arguments is not None and call != arguments:
            raise ValueError(
                f"Cannot load the layer {layer!r} (TFOpLambda, `tf.{function}`): it is called "
                f"with different arguments at different places ({arguments!r} and {call!r})."
            )
        arguments = call
        nodes.append(refs)
    zoo_layers.tf_op_arguments(function, arguments, layer)  # before Keras builds anything
    inner["arguments"] = arguments
    entry["inbound_nodes"] = nodes


def _strip_registration(entry):
    """Drop ``module``/``registered_name`` (Keras 2.13+ and tf_keras write
    them): with them Keras 3 deserializes the entry with its new
    deserializer, which lacks the Keras 2 fixes of its legacy one
    (``axis: [3]``, ``batch_input_shape``, the module
    ``tf_keras.src.engine.functional`` of a nested model, which does not
    exist); without them the legacy one resolves ``class_name``, custom
    objects first."""
    entry.pop("module", None)
    entry.pop("registered_name", None)


def _is_keras2_functional(inner):
    """Whether a functional config was written by Keras 2: its nodes are
    lists (Keras 3 writes ``{"args": ..., "kwargs": ...}``)."""
    nodes = [
        node
        for entry in inner.get("layers") or []
        if isinstance(entry, dict)
        for node in entry.get("inbound_nodes") or []
    ]
    return bool(nodes) and all(isinstance(node, list) for node in nodes)


def _rewrite_layers(inner, nested_functionals):
    entries = [entry for entry in inner["layers"] if isinstance(entry, dict)]
    refs = _Refs(entries)
    for entry in entries:
        _strip_registration(entry)
        _rename_entry(entry, refs.rename)
        if entry.get("class_name") == "TFOpLambda":
            _tf_op_nodes(entry, refs)
        elif "inbound_nodes" in entry:
            entry["inbound_nodes"] = refs.nodes(entry["inbound_nodes"])
        if nested_functionals or _skips_first_node(entry) != "Functional":
            _rewrite_keras2(entry, nested_functionals)
    return refs


def _rewrite_keras2(entry, nested_functionals=True):
    """Rewrite, in place, a Keras 2 (tf.keras) model config entry
    ``{"class_name", "config"}`` and the models nested in it into a config
    Keras 3's legacy deserializer builds the same model from:

    - ``module``/``registered_name`` dropped (:func:`_strip_registration`);
    - ``/`` in layer names replaced (:func:`_slash_free_names`), in the
      nodes and ``input_layers``/``output_layers`` that refer to them too;
    - references to a nested model's nodes counted from 0 (:class:`_Refs`);
    - ``TFOpLambda`` nodes turned into :class:`TFOpLambda` configs
      (:func:`_tf_op_nodes`);
    - the single-entry ``input_layers``/``output_layers``
      (``[["conv_pw_13_relu", 0, 0]]``) Keras 2 writes for every
      functional model unwrapped: Keras 3 reads the wrapped form as a
      one-element *list* of outputs, so a nested model would hand
      ``[tensor]`` to the next layer (GlobalAveragePooling2D then returns
      garbage) where Keras 2 hands it a tensor.

    Layer entries without a ``layers`` list are left as they are, and so
    are functional configs Keras 3 wrote. Apply it once to a config (node
    indices would shift twice): ``nested_functionals=False`` leaves the
    functional models nested in ``entry`` to their own call (what
    :class:`Keras2Functional` does, which Keras calls for each of them).
    """
    inner = entry.get("config") if isinstance(entry, dict) else None
    if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
        return
    if "output_layers" not in inner:  # Sequential: no references between layers
        _rewrite_layers(inner, nested_functionals)
        return
    if not _is_keras2_functional(inner):
        return
    refs = _rewrite_layers(inner, nested_functionals)
    for key in ("input_layers", "output_layers"):
        nodes = inner.get(key)
        if isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], list):
            nodes = nodes[0]
        if nodes is not None:
            inner[key] = refs.nodes(nodes, io=True)


class Keras2Functional:
    """``custom_objects()["Functional"]``: builds a tf.keras (Keras 2)
    functional model config with Keras 3, after the rewrite of
    :func:`_rewrite_keras2`; any other config (a Keras 3 ``.keras`` file's)
    goes to ``keras.Model.from_config`` unchanged.

    Keras' loaders look ``Functional`` up in ``custom_objects`` before
    their own class, for the top-level model of a ``.h5`` file and for
    models nested in it alike, so with :func:`keras_zoo_plus.custom_objects`
    ``keras.saving.load_model`` builds tf.keras' functional models
    (``TFOpLambda`` nodes, ``/`` in names, nested models included). It
    returns a plain ``keras.Model``: saved again, the model never names
    this class.
    """

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if _is_keras2_functional(config):
            entry = {"class_name": "Functional", "config": copy.deepcopy(config)}
            # The functional models nested in this one come back here.
            _rewrite_keras2(entry, nested_functionals=False)
            config = entry["config"]
        return keras.Model.from_config(config, custom_objects=custom_objects)


def _names_class(config, class_name):
    if isinstance(config, dict):
        return config.get("class_name") == class_name or any(
            _names_class(value, class_name) for value in config.values()
        )
    if isinstance(config, list):
        return any(_names_class(value, class_name) for value in config)
    return False


def _build_keras2(config, objects):
    """The model of a rewritten Keras 2 config, built by Keras' legacy
    deserializer (what its ``.h5`` loader calls), without weights."""
    module_objects = {"Sequential": keras.Sequential, "Functional": keras.Model,
                      "Model": keras.Model}
    return keras.legacy.saving.deserialize_keras_object(
        config, module_objects=module_objects, custom_objects=objects,
        printable_module_name="layer",
    )


def _load_keras2_h5(path, objects, compile, safe_mode):
    """Load a Keras 2 ``.h5`` full model whose model config is rewritten by
    :func:`_rewrite_keras2` (top-level Sequential models included, which
    :class:`Keras2Functional` does not see).

    The model is built without running its initializers
    (:func:`keras_zoo_plus.deferred.build_without_initializers`), then
    every weight comes from the file (Keras' loader refuses a file that
    lacks one): JAX compiles each random initializer once per weight
    shape, which made a cold load of a tf.keras EfficientNetB0 take 20 s.
    A file with a training configuration to compile, or with ``Lambda``
    layers (whose code ``safe_mode`` guards), goes through
    ``keras.models.load_model`` instead, from a copy holding the rewritten
    config.
    """
    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
        has_training_config = f.attrs.get("training_config") is not None
    if raw is None:
        raise ValueError(
            f"{os.fspath(path)!r} holds no model config: it is a weights file. Build the "
            "model and call `model.load_weights(path)`, or pass it as `weights=` to a "
            "keras_zoo_plus constructor."
        )
    text = raw.decode("utf8") if isinstance(raw, bytes) else raw
    config = json.loads(text)
    _rewrite_keras2(config)
    # keras.legacy.saving is public API; without it, the ordinary loader.
    fast = hasattr(getattr(keras, "legacy", None), "saving")
    if fast and not (compile and has_training_config) and not _names_class(config, "Lambda"):
        model = deferred.build_without_initializers(_build_keras2, config, objects)
        model.load_weights(path)
        return model
    if config == json.loads(text):
        return keras.models.load_model(
            path, custom_objects=objects, compile=compile, safe_mode=safe_mode
        )
    with tempfile.TemporaryDirectory(prefix="keras_zoo_plus_") as tmp:
        copy_path = os.path.join(tmp, "model.h5")
        shutil.copyfile(path, copy_path)
        with h5py.File(copy_path, "r+") as f:
            f.attrs["model_config"] = json.dumps(config).encode("utf8")
        return keras.models.load_model(
            copy_path, custom_objects=objects, compile=compile, safe_mode=safe_mode
        )


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
    keras2 = _is_keras2_h5(path)
    if keras2:
        # The config is rewritten whole (top-level Sequential models
        # included) before Keras reads it: Keras must not rewrite its
        # functional models again (their node indices would shift twice).
        objects = {k: v for k, v in objects.items() if v is not Keras2Functional}
    try:
        with keras.saving.custom_object_scope(objects):
            if keras2:
                model = _load_keras2_h5(path, objects, compile, safe_mode)
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
