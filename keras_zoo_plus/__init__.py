"""keras-zoo-plus: classic ImageNet architectures for Keras 3 on the
TensorFlow, PyTorch and JAX backends, in both data formats."""

__version__ = "0.1.0"

from keras_zoo_plus import applications, imagenet, layers, ops, registry, weights
from keras_zoo_plus.layers import custom_objects
from keras_zoo_plus.registry import create_model, list_models, model_info

__all__ = [
    "__version__",
    "applications",
    "create_model",
    "custom_objects",
    "imagenet",
    "layers",
    "list_models",
    "model_info",
    "ops",
    "registry",
    "weights",
]
