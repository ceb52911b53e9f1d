"""Model registry: what each model is, never how it is built.

The facts live in the model table (:mod:`keras_zoo_plus.model_table`, one
entry per model); this module is the public face of it:
:func:`list_models`, :func:`model_info`, :func:`create_model`. It imports
no model code and no Keras: a constructor is imported when
:func:`create_model` (or ``ModelInfo.constructor``) needs it.
"""

from __future__ import annotations

from keras_zoo_plus import model_table
from keras_zoo_plus.model_table import FeatureLevel, ModelInfo, WeightFile

__all__ = [
    "FeatureLevel",
    "ModelInfo",
    "WeightFile",
    "all_models",
    "create_model",
    "list_models",
    "model_info",
]


def list_models(pattern="*"):
    """Sorted registry names matching a shell-style wildcard (case-insensitive).

    Example:
        >>> list_models("resnet*")
        ['resnet101', 'resnet152', 'resnet50']
    """
    return model_table.names(pattern)


def model_info(name):
    """The :class:`ModelInfo` of ``name`` (registry or constructor name).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: unknown name (the message lists the known ones).
    """
    return model_table.get(name)


def create_model(name, *, features_only=False, levels=None, **kwargs):
    """Build a registered model: ``create_model("resnet50", weights=None)``.

    Args:
        name: registry or constructor name.
        features_only: return the model's feature pyramid instead,
            ``keras_zoo_plus.feature_extractor(model, levels)`` (a dict
            ``{"P1": ..., "P5": ...}`` of outputs); ``include_top`` then
            defaults to False.
        levels: with ``features_only``, the level names to keep (None: all).
        **kwargs: the constructor's arguments.

    Raises:
        TypeError: ``features_only`` is not a bool, or ``levels`` is given
            without ``features_only=True``.
        ValueError: an unknown model or level name (checked before building).

    Example:
        >>> p = create_model("resnet50", features_only=True, levels=["P4", "P5"])
    """
    info = model_info(name)
    if not isinstance(features_only, bool):
        raise TypeError(
            f"`features_only` must be a bool. Received: features_only={features_only!r}"
        )
    if not features_only:
        if levels is not None:
            raise TypeError(
                "`levels` is only taken with `features_only=True`. "
                f"Received: levels={levels!r}"
            )
        return info.constructor(**kwargs)
    from keras_zoo_plus import features

    features.select_levels(info, levels)  # refuse unknown names before building
    kwargs.setdefault("include_top", False)
    return features.feature_extractor(info.constructor(**kwargs), levels)


def all_models():
    """Every :class:`ModelInfo`, sorted by name."""
    return model_table.entries()
