"""Oracle cases: one entry per (model, top/no-top) golden file.

Read by tests/golden/generate.py (tf_keras, Keras 2) and by the parity
tests (our models, every backend). ``ctor`` is the constructor name in
both ``tf_keras.applications`` and ``keras_zoo_plus.applications``.
"""

SEED = 1234

# name: (ctor, kwargs for both sides, input (H, W), batch, marks)
CASES = {
    "vgg16_top": ("VGG16", {"include_top": True}, (224, 224), 2, ()),
    "vgg16_notop": ("VGG16", {"include_top": False}, (64, 64), 2, ()),
    "vgg19_top": ("VGG19", {"include_top": True}, (224, 224), 2, ()),
    "vgg19_notop": ("VGG19", {"include_top": False}, (48, 64), 2, ()),
    "resnet50_top": ("ResNet50", {"include_top": True}, (224, 224), 2, ()),
    "resnet50_notop": ("ResNet50", {"include_top": False}, (64, 64), 2, ()),
    "resnet101_top": ("ResNet101", {"include_top": True}, (224, 224), 1, ()),
    "resnet101_notop": ("ResNet101", {"include_top": False}, (64, 96), 1, ()),
    "resnet152_top": ("ResNet152", {"include_top": True}, (224, 224), 1, ()),
    "resnet152_notop": ("ResNet152", {"include_top": False}, (64, 64), 1, ()),
    "xception_top": ("Xception", {"include_top": True}, (299, 299), 1, ("slow",)),
    "xception_notop": ("Xception", {"include_top": False}, (75, 96), 2, ()),
    "inception_v3_top": ("InceptionV3", {"include_top": True}, (299, 299), 1, ("slow",)),
    "inception_v3_notop": ("InceptionV3", {"include_top": False}, (107, 139), 2, ()),
    "inception_resnet_v2_top": ("InceptionResNetV2", {"include_top": True}, (299, 299), 1, ("slow",)),
    "inception_resnet_v2_notop": ("InceptionResNetV2", {"include_top": False}, (107, 139), 1, ()),
    "mobilenet_100_top": ("MobileNet", {"alpha": 1.0, "include_top": True}, (224, 224), 1, ()),
    "mobilenet_025_top": ("MobileNet", {"alpha": 0.25, "include_top": True}, (224, 224), 2, ()),
    "mobilenet_050_notop": ("MobileNet", {"alpha": 0.5, "include_top": False}, (96, 96), 2, ()),
    "mobilenet_075_notop": ("MobileNet", {"alpha": 0.75, "include_top": False}, (64, 80), 2, ()),
    "mobilenet_050_dm2_top": (
        "MobileNet", {"alpha": 0.5, "depth_multiplier": 2, "include_top": True}, (96, 96), 2, (),
    ),
    "densenet121_top": ("DenseNet121", {"include_top": True}, (224, 224), 1, ()),
    "densenet121_notop": ("DenseNet121", {"include_top": False}, (64, 64), 2, ("slow",)),
    "densenet169_top": ("DenseNet169", {"include_top": True}, (224, 224), 1, ("slow",)),
    "densenet169_notop": ("DenseNet169", {"include_top": False}, (64, 64), 1, ("slow",)),
    "densenet201_top": ("DenseNet201", {"include_top": True}, (224, 224), 1, ("slow",)),
    "densenet201_notop": ("DenseNet201", {"include_top": False}, (64, 96), 1, ("slow",)),
    "nasnet_mobile_top": ("NASNetMobile", {"include_top": True}, (224, 224), 1, ("slow",)),
    "nasnet_mobile_notop": ("NASNetMobile", {"include_top": False}, (63, 72), 1, ()),
    "nasnet_large_top": ("NASNetLarge", {"include_top": True}, (331, 331), 1, ("slow",)),
    "nasnet_large_notop": ("NASNetLarge", {"include_top": False}, (64, 64), 1, ("slow",)),
}


def input_shape_last(case):
    _, _, (h, w), batch, _ = CASES[case]
    return (batch, h, w, 3)
