"""Every constructor, keras.applications style.

    from keras_zoo_plus.applications import ResNet50
    from keras_zoo_plus.applications import resnet50
"""

from keras_zoo_plus.applications import nasnet, resnet, resnet50, vgg16, vgg19
from keras_zoo_plus.applications.nasnet import NASNetLarge, NASNetMobile
from keras_zoo_plus.applications.resnet import ResNet50, ResNet101, ResNet152
from keras_zoo_plus.applications.vgg import VGG16, VGG19

__all__ = [
    "NASNetLarge",
    "NASNetMobile",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "VGG16",
    "VGG19",
    "nasnet",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
]
