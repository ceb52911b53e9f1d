"""keras.applications.vgg19-style module."""

from keras_zoo_plus.applications.vgg import VGG19, decode_predictions, preprocess_input

__all__ = ["VGG19", "decode_predictions", "preprocess_input"]
