"""keras.applications.vgg16-style module."""

from keras_zoo_plus.applications.vgg import VGG16, decode_predictions, preprocess_input

__all__ = ["VGG16", "decode_predictions", "preprocess_input"]
