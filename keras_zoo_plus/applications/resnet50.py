"""keras.applications.resnet50-style module."""

from keras_zoo_plus.applications.resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "decode_predictions", "preprocess_input"]
