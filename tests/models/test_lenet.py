import pytest
import torch

from topoprune.errors import TopopruneError
from topoprune.models import create_model, default_widths, list_models


def lenet5_params(in_channels, conv1, conv2, fc1, fc2, classes):
    convs = (in_channels * 25 + 1) * conv1 + (conv1 * 25 + 1) * conv2
    return convs + (conv2 * 25 + 1) * fc1 + (fc1 + 1) * fc2 + (fc2 + 1) * classes


def caffe_params(in_channels, conv1, conv2, fc1, classes):
    convs = (in_channels * 25 + 1) * conv1 + (conv1 * 25 + 1) * conv2
    return convs + (conv2 * 16 + 1) * fc1 + (fc1 + 1) * classes


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_classic_parameter_count():
    assert lenet5_params(1, 6, 16, 120, 84, 10) == 61_706
    assert count(create_model("lenet5", in_channels=1)) == 61_706


def test_widths_set_every_layer():
    model = create_model("lenet5", num_classes=3, in_channels=2, widths=[4, 9, 30, 11])
    assert model.conv1.weight.shape == (4, 2, 5, 5)
    assert model.conv2.weight.shape == (9, 4, 5, 5)
    assert model.fc1.weight.shape == (30, 9 * 25)
    assert model.fc2.weight.shape == (11, 30)
    assert model.fc3.weight.shape == (3, 11)
    assert count(model) == lenet5_params(2, 4, 9, 30, 11, 3)


def test_conv_biases_start_at_zero_and_weights_are_kaiming_fan_out():
    torch.manual_seed(0)
    model = create_model("lenet5", widths=[600, 16, 120, 84])
    assert torch.count_nonzero(model.conv1.bias) == 0
    expected_std = (2.0 / (600 * 25)) ** 0.5
    assert abs(model.conv1.weight.std().item() / expected_std - 1) < 0.02


def test_caffe_lenet_is_registered_under_its_dashed_name():
    assert "lenet5-caffe" in list_models()
    model = create_model("lenet5-caffe", seed=0)
    assert model.arch_name == "lenet5-caffe" and model.config["name"] == "lenet5-caffe"
    assert default_widths("lenet5-caffe") == [20, 50, 500]
    assert (model.first_conv_name, model.classifier_name) == ("conv1", "fc2")
    assert model.image_size == (28, 28)


def test_caffe_parameter_count_is_han_et_al():
    assert caffe_params(1, 20, 50, 500, 10) == 431_080
    assert count(create_model("lenet5-caffe", in_channels=1)) == 431_080


def test_caffe_widths_set_every_layer():
    model = create_model("lenet5-caffe", num_classes=3, in_channels=2, widths=[4, 9, 30])
    assert model.conv1.weight.shape == (4, 2, 5, 5)
    assert model.conv2.weight.shape == (9, 4, 5, 5)
    assert model.fc1.weight.shape == (30, 9 * 16)
    assert model.fc2.weight.shape == (3, 30)
    assert count(model) == caffe_params(2, 4, 9, 30, 3)


def test_caffe_widths_are_checked():
    with pytest.raises(TopopruneError, match=r"lenet5-caffe takes 3 widths \[conv1, conv2, fc1\]"):
        create_model("lenet5-caffe", widths=[6, 16, 120, 84])


def test_caffe_logits_on_28x28():
    model = create_model("lenet5-caffe", num_classes=7, in_channels=1, seed=0)
    logits = model(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5, 7)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("height", "width"), [(32, 32), (8, 8), (28, 32)])
def test_caffe_refuses_other_input_sizes(height, width):
    model = create_model("lenet5-caffe", in_channels=1, seed=0)
    expected = f"^lenet5-caffe takes 28×28 inputs, got {height}×{width};[^\n]*$"
    with pytest.raises(TopopruneError, match=expected):
        model(torch.randn(2, 1, height, width))


def test_caffe_conv_biases_start_at_zero_and_weights_are_kaiming_fan_out():
    torch.manual_seed(0)
    model = create_model("lenet5-caffe", widths=[600, 50, 500])
    assert torch.count_nonzero(model.conv1.bias) == 0
    expected_std = (2.0 / (600 * 25)) ** 0.5
    assert abs(model.conv1.weight.std().item() / expected_std - 1) < 0.02
