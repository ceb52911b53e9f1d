"""Every constructor, keras.applications style.

    from keras_zoo_plus.applications import ResNet50
    from keras_zoo_plus.applications import resnet50
"""

from keras_zoo_plus.applications import (
    inception_resnet_v2,
    inception_v3,
    resnet,
    resnet50,
    vgg16,
    vgg19,
    xception,
)
from keras_zoo_plus.applications.inception_resnet_v2 import InceptionResNetV2
from keras_zoo_plus.applications.inception_v3 import InceptionV3
from keras_zoo_plus.applications.resnet import ResNet50, ResNet101, ResNet152
from keras_zoo_plus.applications.vgg import VGG16, VGG19
from keras_zoo_plus.applications.xception import Xception

__all__ = [
    "InceptionResNetV2",
    "InceptionV3",
    "ResNet50",
    "ResNet101",
    "ResNet152",
    "VGG16",
    "VGG19",
    "Xception",
    "inception_resnet_v2",
    "inception_v3",
    "resnet",
    "resnet50",
    "vgg16",
    "vgg19",
    "xception",
]
