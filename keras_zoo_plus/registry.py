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


def create_model(name, **kwargs):
    """Build a registered model: ``create_model("resnet50", weights=None)``."""
    return model_info(name).constructor(**kwargs)


def all_models():
    """Every :class:`ModelInfo`, sorted by name."""
    return model_table.entries()
