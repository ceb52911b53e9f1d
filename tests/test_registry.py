"""Registry: list_models wildcards, create_model, model_info."""

import pytest

import keras_zoo_plus as kzp
from keras_zoo_plus import applications, registry, weights


def test_list_models_wildcards():
    assert kzp.list_models("resnet*") == ["resnet101", "resnet152", "resnet50"]
    assert kzp.list_models("VGG1?") == ["vgg16", "vgg19"]
    assert kzp.list_models("nothing*") == []
    names = kzp.list_models()
    assert names == sorted(names)
    assert {"vgg16", "vgg19", "resnet50", "resnet101", "resnet152"} <= set(names)


def test_every_registered_model_is_exported_and_consistent():
    for info in registry.all_models():
        assert getattr(applications, info.constructor_name) is info.constructor
        assert info.preprocess in ("caffe", "tf", "torch")
        assert 0 < info.min_size <= info.default_size
        files = info.weight_files()
        assert set(files) == {"top", "notop"}, info.name
        for wf in files.values():
            assert wf.url.startswith(weights.DEFAULT_BASE_URL)


def test_model_info_by_registry_or_constructor_name():
    info = kzp.model_info("resnet50")
    assert kzp.model_info("ResNet50") is info
    assert info.params == 25_636_712
    assert info.default_size == 224 and info.min_size == 32
    assert info.preprocess == "caffe"
    assert info.weight_files()["top"].md5 == "2cb95161c43110f7111970584f804107"
    assert info.weight_files()["notop"].fname == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_unknown_model_errors():
    with pytest.raises(ValueError, match=r"Unknown model name: 'resnet5'. Known models: .*resnet50"):
        kzp.model_info("resnet5")
    with pytest.raises(TypeError, match=r"`pattern` must be a string. Received: pattern=3"):
        kzp.list_models(3)


def test_create_model_builds_through_the_constructor():
    model = kzp.create_model("vgg16", weights=None, include_top=False, input_shape=(32, 32, 3))
    assert model.name == "vgg16"
    assert model.output_shape == (None, 1, 1, 512)
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        kzp.create_model("vgg16", weights=None, include_top=False, pooling="sum")


def test_register_refuses_a_second_constructor_under_the_same_name():
    def Fake():  # noqa: N802
        pass

    with pytest.raises(ValueError, match="Model 'vgg16' is registered twice."):
        registry.register("vgg16", family="x", default_size=1, min_size=1, preprocess="tf",
                          weights_key=None, params=0)(Fake)
