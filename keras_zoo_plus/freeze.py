"""Freezing utilities for fine-tuning.

All functions work on the *leaf* layers of a model: the layers of
``model.layers``, with nested models (a zoo model used as a layer inside a
Sequential or functional classifier) opened up in place, in network order.
They change ``layer.trainable`` and nothing else, so the state is saved in
``.keras`` files like any trainability set by hand.

Keras facts these functions rely on:

- A frozen ``BatchNormalization`` layer runs in inference mode (Keras 3 uses
  the batch statistics only when ``training and layer.trainable``), so its
  moving mean and variance stay put while the rest of the model trains.
- A model reads trainability when its train function is built, which
  ``compile()`` resets: after changing trainability of a compiled model,
  compile it again. The functions warn when they change a compiled model.

Example:
    >>> import keras, keras_zoo_plus as kzp
    >>> base = kzp.applications.ResNet50(weights=None, include_top=False, pooling="avg")
    >>> model = keras.Sequential([base, keras.layers.Dense(10)])
    >>> kzp.freeze(base)                      # phase 1: train the new head
    >>> kzp.unfreeze(model, stages=1)         # phase 2: also conv5 (BN stays frozen)
    >>> print(kzp.trainable_summary(model))
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import keras

__all__ = ["TrainableSummary", "freeze", "freeze_batchnorm", "trainable_summary", "unfreeze"]

# The registry stage that holds the classifier of ``include_top=True``
# models. It is reported by trainable_summary but never counted by
# ``unfreeze(stages=N)``: the stages are the architecture's feature stages.
TOP_STAGE = "top"


# --------------------------------------------------------------------------
# Walking the model
# --------------------------------------------------------------------------


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")


def _walk(model, ancestors=()):
    """``(layer, ancestors)`` for every leaf layer, nested models opened up
    in place; each layer object once (shared layers are listed where they
    first appear)."""
    seen = set()

    def visit(container, parents):
        for layer in container.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):
                yield from visit(layer, parents + (layer,))
            elif not isinstance(layer, keras.layers.InputLayer):
                yield layer, parents

    yield from visit(model, tuple(ancestors) + (model,))


def _submodels(model):
    """``model`` and every nested model, outermost first."""
    out = [model]
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_submodels(layer))
    return out


def _is_batchnorm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _effectively_trainable(layer, ancestors):
    return layer.trainable and all(a.trainable for a in ancestors)


def _n_params(variables):
    return sum(math.prod(int(d) for d in v.shape) for v in variables)


def _compile_warning(model, changed):
    if changed and getattr(model, "compiled", False):
        warnings.warn(
            f"Trainability of layers of the compiled model {model.name!r} changed; call "
            "`model.compile()` again before training so the change takes effect.",
            UserWarning,
            stacklevel=3,
        )


def _set_trainable(layer, ancestors, value):
    """Set ``layer.trainable``; when enabling, enable the ancestors too
    without letting Keras cascade ``trainable=True`` into their other
    layers (Keras' setter propagates to every sublayer). Returns whether
    anything changed."""
    before = _effectively_trainable(layer, ancestors), layer.trainable
    if value:
        for parent in ancestors:
            if not parent.trainable:
                saved = [(sub, sub.trainable) for sub, _ in _walk_all(parent)]
                parent.trainable = True
                for sub, state in saved:
                    sub.trainable = state
    layer.trainable = value
    return before != (_effectively_trainable(layer, ancestors), layer.trainable)


def _walk_all(model):
    """Every layer below ``model`` (nested models included), pre-order, so
    that restoring states in this order leaves each layer's own value."""
    for layer in model.layers:
        yield layer, None
        if isinstance(layer, keras.Model):
            yield from _walk_all(layer)


def _pattern(match):
    if isinstance(match, re.Pattern):
        return match
    if not isinstance(match, str):
        raise TypeError(
            f"`match` must be a regular expression string. Received: match={match!r}"
        )
    try:
        return re.compile(match)
    except re.error as error:
        raise ValueError(f"`match` is not a valid regular expression ({error}). Received: match={match!r}") from None


def _position(model, leaves, where, arg):
    """Index in ``leaves`` of the last (``up_to``) or first (``from_layer``)
    leaf selected by a layer name or a ``model.layers`` index."""
    if isinstance(where, bool) or not isinstance(where, (str, int)):
        raise TypeError(
            f"`{arg}` must be a layer name (str) or an index into model.layers (int). "
            f"Received: {arg}={where!r}"
        )
    if isinstance(where, int):
        n = len(model.layers)
        if not -n <= where < n:
            raise ValueError(
                f"`{arg}` must be an index into model.layers, in [{-n}, {n}). Received: {arg}={where}"
            )
        target = model.layers[where]
    else:
        target = None
        for sub in _submodels(model)[1:]:
            if sub.name == where:
                target = sub
                break
        if target is None:
            for layer, _ in leaves:
                if layer.name == where:
                    target = layer
                    break
        if target is None:
            raise ValueError(
                f"`{arg}`: no layer named {where!r} in model {model.name!r} "
                "(nested models included)."
            )
    if isinstance(target, keras.Model):
        inside = [i for i, (layer, parents) in enumerate(leaves) if target in parents]
        if not inside:
            raise ValueError(f"`{arg}`: model {target.name!r} has no layers to select.")
        return inside[-1] if arg == "up_to" else inside[0]
    if isinstance(target, keras.layers.InputLayer):
        # An input layer holds no weights: "up to the input" selects nothing
        # before it, "from the input" selects everything.
        return -1 if arg == "up_to" else 0
    for i, (layer, _) in enumerate(leaves):
        if layer is target:
            return i
    raise ValueError(f"`{arg}`: layer {where!r} is not part of model {model.name!r}.")


def _one_selector(**selectors):
    given = [k for k, v in selectors.items() if v is not None]
    if len(given) > 1:
        raise ValueError(
            f"Pass at most one of {', '.join(f'`{k}`' for k in selectors)}. "
            f"Received: {', '.join(f'{k}={selectors[k]!r}' for k in given)}"
        )


# --------------------------------------------------------------------------
# Stages of zoo architectures
# --------------------------------------------------------------------------


def find_stages(model):
    """The registry stages of the zoo architecture inside ``model``.

    The rule, in order:

    1. ``model`` or a model nested in it is *named* like a registered model
       (``"resnet50"``, the default name of ``ResNet50``; registry or
       constructor name, ignoring case, ``-`` and ``_``, so Keras' default
       ``"efficientnetv2-s"`` names EfficientNetV2S): that entry's stages,
       applied to the layers of that (sub)model.
    2. Otherwise, the registered families whose every (non-``top``) stage
       regex matches at least one weighted layer are candidates; the one
       whose regexes match the most weighted layers wins. Two candidates
       with different stages and the same count are ambiguous.

    Args:
        model: a ``keras.Model``.

    Returns:
        ``(info, stages, scope)``: the matched :class:`~keras_zoo_plus.registry.ModelInfo`,
        its ``((stage_name, compiled_regex), ...)``, and the (sub)model whose
        layers the stages apply to.

    Raises:
        ValueError: if no registered family matches, or the match is ambiguous.
    """
    from keras_zoo_plus import registry

    infos = [info for info in registry.all_models() if info.stages]

    def plain(name):
        return name.lower().replace("-", "").replace("_", "")

    for sub in _submodels(model):
        for info in infos:
            if plain(sub.name) in (plain(info.name), plain(info.constructor_name)):
                return info, _compile_stages(info.stages), sub

    names = [layer.name for layer, _ in _walk(model) if layer.weights]
    best, best_count, tied = None, 0, []
    for info in infos:
        stages = [(s, p) for s, p in _compile_stages(info.stages) if s != TOP_STAGE]
        if not all(any(p.search(n) for n in names) for _, p in stages):
            continue
        count = sum(1 for n in names if any(p.search(n) for _, p in stages))
        if count > best_count:
            best, best_count, tied = info, count, []
        elif count == best_count and best is not None and info.stages != best.stages:
            tied.append(info)
    if best is None:
        raise ValueError(
            f"Cannot tell which zoo architecture model {model.name!r} is: it is not named "
            "like a registered model (e.g. 'resnet50') and no registered family's stages "
            "cover its layer names. Use `from_layer=` or `match=` instead of `stages=`."
        )
    if tied:
        raise ValueError(
            f"Model {model.name!r} matches the stages of several families "
            f"({', '.join(i.name for i in [best, *tied])}). Use `from_layer=` or `match=`."
        )
    return best, _compile_stages(best.stages), model


def _compile_stages(stages):
    return tuple((name, re.compile(regex)) for name, regex in stages)


def _stage_of(name, stages):
    for stage, pattern in stages:
        if pattern.search(name):
            return stage
    return None


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def freeze(model, up_to=None, match=None):
    """Make layers non-trainable.

    Args:
        model: a ``keras.Model``; nested models are opened up.
        up_to: a layer name (searched in nested models too; a nested model's
            name means its last layer) or an index into ``model.layers``:
            freeze that layer and every layer before it.
        match: a regular expression; freeze the layers whose name it
            matches (``re.search``).

        With neither, every layer is frozen.

    Returns:
        The names of the layers it froze, in network order.

    Raises:
        TypeError: if ``model`` is not a ``keras.Model`` or a selector has
            the wrong type.
        ValueError: if both selectors are given, or ``up_to`` names no layer.

    Example:
        >>> freeze(model, up_to="conv4_block6_out")
    """
    _check_model(model)
    _one_selector(up_to=up_to, match=match)
    leaves = list(_walk(model))
    if up_to is not None:
        selected = leaves[: _position(model, leaves, up_to, "up_to") + 1]
    elif match is not None:
        pattern = _pattern(match)
        selected = [(layer, parents) for layer, parents in leaves if pattern.search(layer.name)]
    else:
        selected = leaves
    changed = False
    for layer, parents in selected:
        changed |= _set_trainable(layer, parents, False)
    _compile_warning(model, changed)
    return [layer.name for layer, _ in selected]


def unfreeze(model, stages=None, from_layer=None, match=None, batchnorm=False):
    """Make layers trainable again; BatchNormalization stays frozen unless
    ``batchnorm=True``.

    Args:
        model: a ``keras.Model``; nested models are opened up (a frozen
            parent model is re-enabled without unfreezing its other layers).
        stages: unfreeze the last ``stages`` stages of the zoo architecture
            in ``model`` (the ``stages`` of its registry entry, see
            :func:`find_stages`; the classifier stage ``"top"`` is not
            counted and left as it is).
        from_layer: a layer name or an index into ``model.layers``: unfreeze
            that layer and every layer after it.
        match: a regular expression on layer names (``re.search``).

        With none of the three, every layer is unfrozen.
        batchnorm: also unfreeze ``BatchNormalization`` layers (they then
            train in training mode and update their moving statistics).

    Returns:
        The names of the layers it unfroze, in network order.

    Raises:
        TypeError: for arguments of the wrong type.
        ValueError: if more than one selector is given, ``stages`` is out of
            range, ``from_layer`` names no layer, or ``stages`` is used on a
            model that matches no registered architecture.

    Example:
        >>> freeze(model)
        >>> unfreeze(model, stages=1)   # ResNet50: conv5 (without its BN layers)
    """
    _check_model(model)
    _one_selector(stages=stages, from_layer=from_layer, match=match)
    if not isinstance(batchnorm, bool):
        raise TypeError(f"`batchnorm` must be True or False. Received: batchnorm={batchnorm!r}")
    leaves = list(_walk(model))
    if stages is not None:
        if isinstance(stages, bool) or not isinstance(stages, int):
            raise TypeError(f"`stages` must be a positive int. Received: stages={stages!r}")
        info, named, scope = find_stages(model)
        feature_stages = [s for s, _ in named if s != TOP_STAGE]
        if not 1 <= stages <= len(feature_stages):
            raise ValueError(
                f"`stages` must be between 1 and {len(feature_stages)} for {info.name} "
                f"(stages {', '.join(feature_stages)}). Received: stages={stages}"
            )
        wanted = set(feature_stages[-stages:])
        selected = [
            (layer, parents)
            for layer, parents in leaves
            if (scope is model or scope in parents) and _stage_of(layer.name, named) in wanted
        ]
    elif from_layer is not None:
        selected = leaves[_position(model, leaves, from_layer, "from_layer") :]
    elif match is not None:
        pattern = _pattern(match)
        selected = [(layer, parents) for layer, parents in leaves if pattern.search(layer.name)]
    else:
        selected = leaves
    if not batchnorm:
        selected = [(layer, parents) for layer, parents in selected if not _is_batchnorm(layer)]
    changed = False
    for layer, parents in selected:
        changed |= _set_trainable(layer, parents, True)
    _compile_warning(model, changed)
    return [layer.name for layer, _ in selected]


def freeze_batchnorm(model):
    """Freeze every ``BatchNormalization`` layer (nested models included),
    so it runs in inference mode and keeps its moving statistics.

    Args:
        model: a ``keras.Model``.

    Returns:
        The names of the BatchNormalization layers, in network order.

    Example:
        >>> freeze_batchnorm(model)
    """
    _check_model(model)
    selected = [(layer, parents) for layer, parents in _walk(model) if _is_batchnorm(layer)]
    changed = False
    for layer, parents in selected:
        changed |= _set_trainable(layer, parents, False)
    _compile_warning(model, changed)
    return [layer.name for layer, _ in selected]


@dataclasses.dataclass(frozen=True)
class TrainableSummary:
    """What :func:`trainable_summary` reports.

    Attributes:
        trainable_params: number of scalars the optimizer updates.
        non_trainable_params: all other weights (frozen layers and
            BatchNormalization moving statistics).
        trainable_layers: names of the layers with weights that train.
        frozen_layers: names of the layers with weights that do not.
        family: the registry name whose stages group the table, or None.
        rows: ``(group, layers, trainable_layers, trainable_params,
            non_trainable_params)`` per stage (or per top-level layer when
            the model matches no registered architecture).
    """

    trainable_params: int
    non_trainable_params: int
    trainable_layers: tuple
    frozen_layers: tuple
    family: str | None
    rows: tuple

    def __str__(self):
        head = ("stage" if self.family else "layer", "layers", "trainable", "trainable params", "frozen params")
        body = [(g, str(n), str(t), f"{tp:,}", f"{fp:,}") for g, n, t, tp, fp in self.rows]
        total = (
            "total",
            str(len(self.trainable_layers) + len(self.frozen_layers)),
            str(len(self.trainable_layers)),
            f"{self.trainable_params:,}",
            f"{self.non_trainable_params:,}",
        )
        table = [head, *body, total]
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]

        def line(row):
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            return "  ".join(cells)

        rule = "  ".join("-" * w for w in widths)
        title = f"Trainable summary ({self.family} stages)" if self.family else "Trainable summary"
        return "\n".join([title, line(head), rule, *map(line, body), rule, line(total)])


def trainable_summary(model):
    """What trains in ``model``, grouped by the stages of its zoo
    architecture (see :func:`find_stages`; layers outside every stage, such
    as a new head, are grouped as ``"other"``) or by top-level layer.

    Args:
        model: a ``keras.Model``.

    Returns:
        A :class:`TrainableSummary`; ``print`` it for the table.

    Example:
        >>> print(trainable_summary(model))
    """
    _check_model(model)
    try:
        info, stages, scope = find_stages(model)
    except ValueError:
        info, stages, scope = None, None, None

    groups = {}
    trainable_layers, frozen_layers = [], []
    for layer, parents in _walk(model):
        if not layer.weights:
            continue
        on = _effectively_trainable(layer, parents)
        tp = _n_params(layer.trainable_weights) if on else 0
        fp = _n_params(layer.weights) - tp
        (trainable_layers if tp else frozen_layers).append(layer.name)
        if info is not None:
            stage = _stage_of(layer.name, stages) if (scope is model or scope in parents) else None
            group = stage or "other"
        else:
            group = parents[1].name if len(parents) > 1 else layer.name
        row = groups.setdefault(group, [0, 0, 0, 0])
        row[0] += 1
        row[1] += bool(tp)
        row[2] += tp
        row[3] += fp
    order = [s for s, _ in stages] + ["other"] if info is not None else list(groups)
    rows = tuple((g, *groups[g]) for g in order if g in groups)
    return TrainableSummary(
        trainable_params=_n_params(model.trainable_weights),
        non_trainable_params=_n_params(model.non_trainable_weights),
        trainable_layers=tuple(trainable_layers),
        frozen_layers=tuple(frozen_layers),
        family=info.name if info is not None else None,
        rows=rows,
    )
