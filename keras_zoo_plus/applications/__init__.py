"""Every constructor, keras.applications style.

    from keras_zoo_plus.applications import ResNet50
    from keras_zoo_plus.applications import resnet50
"""

from keras_zoo_plus.applications import densenet, mobilenet, resnet, resnet50, vgg16, vgg19
from keras_zoo_plus.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from keras_zoo_plus.applications.mobilenet import MobileNet
from keras_zoo_plus.applications.resnet import ResNet50, ResNet101, ResNet152
from keras_zoo_plus.applications.vgg import VGG16, VGG19

__all__ = [
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "MobileNet",
    "densenet",
    "mobilenet",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "VGG16",
    "VGG19",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
]
