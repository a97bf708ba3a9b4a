import torch

from topoprune.models import create_model


def lenet5_params(in_channels, conv1, conv2, fc1, fc2, classes):
    convs = (in_channels * 25 + 1) * conv1 + (conv1 * 25 + 1) * conv2
    return convs + (conv2 * 25 + 1) * fc1 + (fc1 + 1) * fc2 + (fc2 + 1) * classes


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
