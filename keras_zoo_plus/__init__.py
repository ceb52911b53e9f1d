"""keras-zoo-plus: classic ImageNet architectures for Keras 3 on the
TensorFlow, PyTorch and JAX backends, in both data formats.

The package is light: ``import keras_zoo_plus`` imports neither Keras nor
a backend. Each public name below is imported on first access, so the
command line's ``list`` and ``info`` (which read only the model table)
start fast, and a model-building program pays only for what it uses.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> (module, attribute or None for the module itself)
_LAZY = {
    "applications": ("keras_zoo_plus.applications", None),
    "imagenet": ("keras_zoo_plus.imagenet", None),
    "layers": ("keras_zoo_plus.layers", None),
    "model_table": ("keras_zoo_plus.model_table", None),
    "ops": ("keras_zoo_plus.ops", None),
    "registry": ("keras_zoo_plus.registry", None),
    "weights": ("keras_zoo_plus.weights", None),
    "freeze": ("keras_zoo_plus.freeze", "freeze"),
    "freeze_batchnorm": ("keras_zoo_plus.freeze", "freeze_batchnorm"),
    "trainable_summary": ("keras_zoo_plus.freeze", "trainable_summary"),
    "unfreeze": ("keras_zoo_plus.freeze", "unfreeze"),
    "custom_objects": ("keras_zoo_plus.layers", "custom_objects"),
    "feature_extractor": ("keras_zoo_plus.features", "feature_extractor"),
    "export": ("keras_zoo_plus.exporting", "export"),
    "layout_map": ("keras_zoo_plus.distribution", "layout_map"),
    # bytes_per_device, MIN_SIZE (a module: ``layout_map`` is the function)
    "distribution": ("keras_zoo_plus.distribution", None),
    # ExportError, ExportResult, FORMATS ... (a module: ``export`` is the function)
    "exporting": ("keras_zoo_plus.exporting", None),
    "create_model": ("keras_zoo_plus.registry", "create_model"),
    "list_models": ("keras_zoo_plus.registry", "list_models"),
    "model_info": ("keras_zoo_plus.registry", "model_info"),
    "load_model": ("keras_zoo_plus.saving", "load_model"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The import system binds a submodule on its package once loaded
    (``keras_zoo_plus.freeze``); the public ``freeze`` is the function of
    that name, as it was when this package imported everything eagerly."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name, (None, None))[1] == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
