"""Every constructor, keras.applications style.

    from keras_zoo_plus.applications import ResNet50
    from keras_zoo_plus.applications import resnet50
"""

from keras_zoo_plus.applications import (
    densenet,
    inception_resnet_v2,
    inception_v3,
    mobilenet,
    nasnet,
    resnet,
    resnet50,
    vgg16,
    vgg19,
    xception,
)
from keras_zoo_plus.applications.densenet import DenseNet121, DenseNet169, DenseNet201
from keras_zoo_plus.applications.inception_resnet_v2 import InceptionResNetV2
from keras_zoo_plus.applications.inception_v3 import InceptionV3
from keras_zoo_plus.applications.mobilenet import MobileNet
from keras_zoo_plus.applications.nasnet import NASNetLarge, NASNetMobile
from keras_zoo_plus.applications.resnet import ResNet50, ResNet101, ResNet152
from keras_zoo_plus.applications.vgg import VGG16, VGG19
from keras_zoo_plus.applications.xception import Xception

__all__ = [
    "DenseNet121",
    "DenseNet169",
    "DenseNet201",
    "InceptionResNetV2",
    "InceptionV3",
    "MobileNet",
    "NASNetLarge",
    "NASNetMobile",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "VGG16",
    "VGG19",
    "Xception",
    "densenet",
    "inception_resnet_v2",
    "inception_v3",
    "mobilenet",
    "nasnet",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
    "xception",
]
