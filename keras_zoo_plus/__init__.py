"""keras-zoo-plus: classic ImageNet architectures for Keras 3 on the
TensorFlow, PyTorch and JAX backends, in both data formats."""

__version__ = "0.1.0"

from keras_zoo_plus import applications, imagenet, layers, ops, registry, weights
from keras_zoo_plus.freeze import freeze, freeze_batchnorm, trainable_summary, unfreeze
from keras_zoo_plus.layers import custom_objects
from keras_zoo_plus.registry import create_model, list_models, model_info
from keras_zoo_plus.saving import load_model

__all__ = [
    "__version__",
    "applications",
    "create_model",
    "custom_objects",
    "freeze",
    "freeze_batchnorm",
    "imagenet",
    "layers",
    "list_models",
    "load_model",
    "model_info",
    "ops",
    "registry",
    "trainable_summary",
    "unfreeze",
    "weights",
]
