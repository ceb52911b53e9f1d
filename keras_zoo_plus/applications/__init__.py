"""Every constructor, keras.applications style.

    from keras_zoo_plus.applications import ResNet50
    from keras_zoo_plus.applications import resnet50

Constructors and family modules are imported on first access: the model
table (:mod:`keras_zoo_plus.model_table`) says which module holds which
constructor, so importing this package costs nothing per model.
"""

from __future__ import annotations

import importlib

from keras_zoo_plus import model_table

#: keras.applications-style module names that re-export one model
#: (``keras.applications.resnet50``, ``vgg16``, ``vgg19``).
_ALIAS_MODULES = ("resnet50", "vgg16", "vgg19")


def _constructors():
    return {e.constructor_name: e.module for e in model_table.entries()}


def _modules():
    return sorted(set(model_table.FAMILY_MODULES) - {"vgg"} | set(_ALIAS_MODULES))


def __getattr__(name):
    constructors = _constructors()
    if name in constructors:
        module = importlib.import_module(f"{__name__}.{constructors[name]}")
        value = getattr(module, name)
    elif name in _modules() or name == "vgg":
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = sorted(_constructors()) + _modules()
