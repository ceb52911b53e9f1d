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
    "nasnet_mobile_top": ("NASNetMobile", {"include_top": True}, (224, 224), 1, ()),
    "nasnet_mobile_notop": ("NASNetMobile", {"include_top": False}, (63, 72), 1, ()),
    "nasnet_large_top": ("NASNetLarge", {"include_top": True}, (331, 331), 1, ("slow",)),
    "nasnet_large_notop": ("NASNetLarge", {"include_top": False}, (64, 64), 1, ("slow",)),
}


def input_shape_last(case):
    _, _, (h, w), batch, _ = CASES[case]
    return (batch, h, w, 3)
