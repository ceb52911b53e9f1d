"""Feature pyramids of zoo models: :func:`feature_extractor`.

The levels come from the model table (``model_info(name).feature_levels``:
``P1`` ... ``P5``, level ``Pn`` at output stride ``2**n``, each the last
layer of the network at that stride). The extractor is a plain
``keras.Model`` made of the zoo model's own layers, so it shares every
weight with it: training one trains the other, and
:func:`keras_zoo_plus.freeze` / :func:`keras_zoo_plus.unfreeze` work on
either.

Example:
    >>> import keras_zoo_plus as kzp
    >>> base = kzp.create_model("resnet50", weights=None, include_top=False)
    >>> features = kzp.feature_extractor(base, levels=["P3", "P4", "P5"])
    >>> {k: v.shape for k, v in features.output.items()}  # doctest: +SKIP
    {'P3': (None, 28, 28, 512), 'P4': (None, 14, 14, 1024), 'P5': (None, 7, 7, 2048)}
"""

from __future__ import annotations

import keras

from keras_zoo_plus import model_table

__all__ = ["feature_extractor", "find_zoo_model", "select_levels"]


def _submodels(model, path=()):
    """``(submodel, path)`` for ``model`` and every model nested in it,
    outermost first; ``path`` lists the models from ``model`` down to the
    submodel, itself included."""
    path = (*path, model)
    yield model, path
    seen = set()
    for layer in model.layers:
        if isinstance(layer, keras.Model) and id(layer) not in seen:
            seen.add(id(layer))
            yield from _submodels(layer, path)


def _levels_present(sub, entry):
    """Positions in ``sub.layers`` of ``entry``'s level layers, or None when
    one is missing."""
    index = {layer.name: i for i, layer in enumerate(sub.layers)}
    found = [index.get(level.layer) for level in entry.feature_levels]
    return None if not found or None in found else found


def find_zoo_model(model):
    """The zoo model inside ``model`` and its table entry.

    The rule: the outermost of ``model`` and the models nested in it whose
    layers hold every feature-level layer of a registered model. Among
    registered models that fit one (sub)model, the one it is named after
    (``"resnet50"``, the constructors' default name) wins; otherwise the
    one whose level layers sit deepest in the network (a ResNet152 also
    holds ResNet50's ``conv4_block6_out``, but its own ``conv4_block36_out``
    comes later).

    Returns:
        ``(entry, submodel, path)``: the :class:`~keras_zoo_plus.registry.ModelInfo`,
        the (sub)model holding the levels, and the models from ``model``
        down to it.

    Raises:
        TypeError: ``model`` is not a ``keras.Model``.
        ValueError: no (sub)model holds the levels of a registered model.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    entries = [e for e in model_table.entries() if e.feature_levels]
    for sub, path in _submodels(model):
        fits = []
        for entry in entries:
            positions = _levels_present(sub, entry)
            if positions is not None:
                fits.append((entry, positions))
        if not fits:
            continue
        name = sub.name.lower()
        for entry, _ in fits:
            if name in (entry.name, entry.constructor_name.lower()):
                return entry, sub, path
        entry, _ = max(fits, key=lambda fit: sum(fit[1]))
        return entry, sub, path
    raise ValueError(
        f"Cannot find a zoo model in model {model.name!r}: neither it nor a model nested in "
        "it has the feature-level layers of a registered model (keras_zoo_plus.list_models()). "
        "`feature_extractor` takes a model built by keras_zoo_plus, or a model containing one."
    )


def select_levels(entry, levels):
    """The :class:`FeatureLevel` s ``levels`` names, in pyramid order."""
    available = [level.name for level in entry.feature_levels]
    if levels is None:
        return list(entry.feature_levels)
    if isinstance(levels, str):
        levels = [levels]
    if not isinstance(levels, (list, tuple)) or not all(isinstance(n, str) for n in levels):
        raise TypeError(
            "`levels` must be None or a list of level names such as ['P3', 'P4']. "
            f"Received: levels={levels!r}"
        )
    if not levels:
        raise ValueError(
            f"`levels` must name at least one level. Received: levels={levels!r}. "
            f"Levels of {entry.name}: {', '.join(available)}"
        )
    unknown = [n for n in levels if n not in available]
    if unknown:
        raise ValueError(
            f"Unknown feature level(s) {', '.join(repr(n) for n in unknown)} for {entry.name}. "
            f"Received: levels={list(levels)!r}. Levels of {entry.name}: "
            + ", ".join(
                f"{lv.name} ({lv.layer}, stride {lv.stride})" for lv in entry.feature_levels
            )
        )
    wanted = set(levels)
    return [level for level in entry.feature_levels if level.name in wanted]


def _single(inputs):
    """One input tensor as itself (Keras warns when a one-input model made
    from a list is called on a tensor)."""
    return inputs[0] if len(inputs) == 1 else inputs


def _graph(container):
    """The functional graph of ``container`` (a Sequential holds one)."""
    return getattr(container, "_functional", None) or container


def _call_node(graph, child):
    """The node of ``graph`` where ``child`` is called, or None (not found,
    called more than once, or a Keras without these internals)."""
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if not isinstance(by_depth, dict):
        return None
    nodes = [node for nodes in by_depth.values() for node in nodes if node.operation is child]
    return nodes[0] if len(nodes) == 1 else None


def _lift(container, child, features):
    """``features`` (a model from ``child``'s input to the levels) fed from
    ``container``'s input through the layers ``container`` applies before
    ``child``; ``features`` itself where that path cannot be found."""
    graph = _graph(container)
    node = _call_node(graph, child)
    if node is None:
        return features
    tensors = node.input_tensors
    outputs = features(tensors[0] if len(tensors) == 1 else tensors)
    return keras.Model(_single(graph.inputs), outputs, name=features.name)


def feature_extractor(model, levels=None):
    """A model mapping ``model``'s input to its feature pyramid.

    Args:
        model: a zoo model (any constructor of keras_zoo_plus, any data
            format and input size, with or without its top), or a model of
            yours that contains one (``Sequential([ResNet50(...), Dense(5)])``
            or a functional model calling it).
        levels: None (every level, ``P1`` ... ``P5``) or a list of level
            names; ``Pn`` has output stride ``2**n``.

    Returns:
        A ``keras.Model`` whose output is a dict ``{"P1": ..., "P5": ...}``
        (the levels asked for) of tensors in the model's data format. It
        is made of the zoo model's own layers, so it shares their weights
        (and trainability) with ``model``. Its input is ``model``'s input:
        for a zoo model nested in yours, the layers your model applies
        before it are applied first (a zoo model called more than once
        gives its own input).

    Raises:
        TypeError: ``model`` is not a ``keras.Model``, or ``levels`` is not
            a list of strings.
        ValueError: no zoo model is found in ``model``, or ``levels`` names
            a level the model does not have (the message lists its levels).

    Example:
        >>> base = ResNet50(weights=None, include_top=False)
        >>> p = feature_extractor(base, levels=["P4", "P5"])
        >>> sorted(p.output)
        ['P4', 'P5']
    """
    entry, zoo, path = find_zoo_model(model)
    chosen = select_levels(entry, levels)
    outputs = {level.name: zoo.get_layer(level.layer).output for level in chosen}
    features = keras.Model(_single(zoo.inputs), outputs, name=f"{zoo.name}_features")
    for container, child in zip(reversed(path[:-1]), reversed(path[1:])):
        features = _lift(container, child, features)
    return features
