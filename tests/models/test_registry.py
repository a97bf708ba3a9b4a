import numpy as np
import pytest
import torch

from topoprune.errors import TopopruneError
from topoprune.models import create_model, default_widths, list_models, register_model
from topoprune.models.registry import _BUILDERS

ZOO = [
    "cresnet18",
    "lenet5",
    "lenet5-caffe",
    "mobilenetv2",
    "resnet110",
    "resnet18",
    "resnet20",
    "resnet50",
    "resnet56",
    "vgg11",
    "vgg16",
]


def test_list_models_is_the_sorted_zoo():
    assert list_models() == ZOO


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(TopopruneError, match="unknown model 'resnet21'.*resnet20, resnet50"):
        create_model("resnet21")
    with pytest.raises(TopopruneError, match="unknown model"):
        default_widths("nope")


@pytest.mark.parametrize("argument", ["num_classes", "in_channels"])
@pytest.mark.parametrize("value", [0, -3, 2.0, True, "10"])
def test_bad_class_or_channel_count_raises(argument, value):
    with pytest.raises(TopopruneError, match=argument):
        create_model("lenet5", **{argument: value})


def test_unknown_option_names_the_accepted_ones():
    with pytest.raises(TopopruneError, match="mobilenetv2 has no option depth.*small_input"):
        create_model("mobilenetv2", depth=3)
    with pytest.raises(TopopruneError, match="resnet20 has no option small_input.*none"):
        create_model("resnet20", small_input=True)


def test_registering_a_taken_name_raises():
    def lenet5(num_classes, in_channels, widths):
        raise AssertionError("never built")

    with pytest.raises(TopopruneError, match="already registered"):
        register_model(lenet5)
    assert _BUILDERS["lenet5"] is not lenet5


def test_register_model_makes_a_builder_creatable():
    def tiny_test_net(num_classes, in_channels, widths=None, bias=True):
        model = torch.nn.Linear(in_channels, num_classes, bias=bias)
        model.widths = []
        return model

    assert register_model(tiny_test_net) is tiny_test_net
    try:
        model = create_model("tiny_test_net", num_classes=4, in_channels=2, bias=False)
        assert "tiny_test_net" in list_models()
        assert model.weight.shape == (4, 2) and model.bias is None
        assert model.config == {
            "name": "tiny_test_net",
            "num_classes": 4,
            "in_channels": 2,
            "widths": [],
            "bias": False,
        }
    finally:
        del _BUILDERS["tiny_test_net"]


def test_register_model_takes_an_explicit_name():
    def tiny_named_net(num_classes, in_channels, widths=None):
        raise AssertionError("never built")

    assert register_model(name="tiny-named net")(tiny_named_net) is tiny_named_net
    try:
        assert _BUILDERS["tiny-named net"] is tiny_named_net
        assert "tiny_named_net" not in list_models()
        with pytest.raises(TopopruneError, match="'tiny-named net' is already registered"):
            register_model(name="tiny-named net")(tiny_named_net)
    finally:
        del _BUILDERS["tiny-named net"]


@pytest.mark.parametrize("name", ZOO)
def test_model_carries_its_config_and_named_ends(name):
    with torch.device("meta"):
        model = create_model(name, num_classes=7, in_channels=2)
    modules = dict(model.named_modules())
    first_conv = modules[model.first_conv_name]
    classifier = modules[model.classifier_name]
    assert model.arch_name == name
    assert model.widths == default_widths(name)
    assert model.config == {
        "name": name,
        "num_classes": 7,
        "in_channels": 2,
        "widths": default_widths(name),
    }
    assert isinstance(first_conv, torch.nn.Conv2d) and first_conv.in_channels == 2
    assert next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d)) is first_conv
    assert isinstance(classifier, torch.nn.Linear) and classifier.out_features == 7
    assert [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1] is classifier


def test_config_rebuilds_the_same_architecture():
    model = create_model("mobilenetv2", num_classes=5, small_input=True)
    rebuilt = create_model(**model.config)
    assert rebuilt.config == model.config
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in rebuilt.state_dict().items()}
    assert rebuilt.features[0].conv.stride == (1, 1)


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = create_model("resnet20", seed=7).state_dict()
    second = create_model("resnet20", seed=7).state_dict()
    other = create_model("resnet20", seed=8).state_dict()
    assert torch.equal(torch.rand(3), expected_next)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert not torch.equal(first["layer1.0.conv1.weight"], other["layer1.0.conv1.weight"])


def test_global_seed_gives_identical_init_too():
    torch.manual_seed(3)
    first = create_model("lenet5").state_dict()
    torch.manual_seed(3)
    second = create_model("lenet5").state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_numpy_widths_are_accepted_and_stored_as_ints():
    model = create_model("lenet5", widths=np.array([3, 5, 7, 9]))
    assert model.widths == [3, 5, 7, 9]
    assert all(type(width) is int for width in model.config["widths"])


def test_the_top_level_functions_are_not_shadowed_by_subpackages():
    import topoprune
    import topoprune.compact
    import topoprune.training

    assert callable(topoprune.realize) and callable(topoprune.train)
    assert topoprune.realize is topoprune.compact.realize
    assert topoprune.train is topoprune.training.train
