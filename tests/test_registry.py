"""Registry: list_models wildcards, create_model, model_info."""

import pytest

import keras_zoo_plus as kzp
from keras_zoo_plus import applications, registry, weights


def test_list_models_wildcards():
    assert kzp.list_models("resnet*") == [
        "resnet101", "resnet101v2", "resnet152", "resnet152v2", "resnet50", "resnet50v2",
        "resnetrs101", "resnetrs152", "resnetrs200", "resnetrs270", "resnetrs350",
        "resnetrs420", "resnetrs50"]
    assert kzp.list_models("resnet??") == ["resnet50"]
    assert kzp.list_models("regnety00?") == ["regnety002", "regnety004", "regnety006", "regnety008"]
    assert kzp.list_models("resnet*v2") == ["resnet101v2", "resnet152v2", "resnet50v2"]
    assert kzp.list_models("VGG1?") == ["vgg16", "vgg19"]
    assert kzp.list_models("nothing*") == []
    names = kzp.list_models()
    assert names == sorted(names)
    assert {"vgg16", "vgg19", "resnet50", "resnet101", "resnet152"} <= set(names)


def test_every_registered_model_is_exported_and_consistent():
    for info in registry.all_models():
        assert getattr(applications, info.constructor_name) is info.constructor
        assert info.preprocess in ("caffe", "tf", "torch", "none")
        assert 0 < info.min_size <= info.default_size
        files = info.weight_files()
        assert set(files) == {"top", "notop"}, info.name
        for wf in files.values():
            assert wf.url.startswith(wf.root or weights.DEFAULT_BASE_URL)


def test_model_info_by_registry_or_constructor_name():
    info = kzp.model_info("resnet50")
    assert kzp.model_info("ResNet50") is info
    assert info.params == 25_636_712
    assert info.default_size == 224 and info.min_size == 32
    assert info.preprocess == "caffe"
    assert info.weight_files()["top"].md5 == "2cb95161c43110f7111970584f804107"
    assert info.weight_files()["top"].file_hash == "2cb95161c43110f7111970584f804107"
    assert info.weight_files()["top"].hash_algorithm == "md5"
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


def test_registry_is_a_leaf_and_light():
    """The registry and the model table import no model code and no Keras."""
    import subprocess
    import sys

    code = (
        "import sys, keras_zoo_plus as kzp\n"
        "names = kzp.list_models()\n"
        "info = kzp.model_info('mobilenet')\n"
        "assert info.weight_file(include_top=False, alpha=0.25, rows=128).fname "
        "== 'mobilenet_2_5_128_tf_no_top.h5'\n"
        "bad = [m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules]\n"
        "bad += [m for m in sys.modules if m.startswith('keras_zoo_plus.applications.')]\n"
        "print(len(names), bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(None, 1) == [str(len(kzp.list_models())), "[]\n"]


def test_weight_file_variants_and_errors():
    info = kzp.model_info("mobilenet")
    assert info.weight_file(include_top=True, alpha=1.0, rows=224).fname == "mobilenet_1_0_224_tf.h5"
    with pytest.raises(
        ValueError,
        match=r"No official imagenet weights for mobilenet with include_top=True, alpha=0.3, "
        r"rows=224\. Variants with official files: alpha=0.25, rows=128; ",
    ):
        info.weight_file(include_top=True, alpha=0.3, rows=224)
    with pytest.raises(ValueError, match=r"No official imagenet weights for vgg16 with "
                       r"include_top=False, alpha=1\.0\. Variants with official files: \(default\)\."):
        kzp.model_info("vgg16").weight_file(include_top=False, alpha=1.0)
