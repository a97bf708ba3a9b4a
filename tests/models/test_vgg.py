import pytest
import torch
from torch import nn

from topoprune.models import create_model, default_widths

VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
VGG11_WIDTHS = [64, 128, 256, 256, 512, 512, 512, 512]


def vgg_params(in_channels, widths, classes):
    """3x3 convs without bias, a batch norm (2 params per channel) each, one linear."""
    total, previous = 0, in_channels
    for width in widths:
        total += 9 * previous * width + 2 * width
        previous = width
    return total + (previous + 1) * classes


def test_default_widths():
    assert default_widths("vgg16") == VGG16_WIDTHS
    assert default_widths("vgg11") == VGG11_WIDTHS


@pytest.mark.parametrize(("name", "expected"), [("vgg16", 14_724_042), ("vgg11", 9_228_362)])
def test_parameter_count(name, expected):
    assert vgg_params(3, default_widths(name), 10) == expected
    assert sum(p.numel() for p in create_model(name).parameters()) == expected


def test_layout_names_and_pools():
    model = create_model("vgg11")
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert kinds.count("MaxPool2d") == 5 and kinds.count("Conv2d") == 8
    assert model.first_conv_name == "features.0" and model.classifier_name == "classifier"


def test_widths_set_every_conv_and_the_classifier():
    widths = [3, 5, 7, 2, 4, 6, 8, 9]
    model = create_model("vgg11", num_classes=4, in_channels=1, widths=widths)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == widths
    assert [c.in_channels for c in convs] == [1, *widths[:-1]]
    assert model.classifier.weight.shape == (4, 9)
    assert sum(p.numel() for p in model.parameters()) == vgg_params(1, widths, 4)


def test_batch_norm_starts_as_identity_affine():
    model = create_model("vgg16")
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 13
    assert all(torch.equal(n.weight, torch.ones_like(n.weight)) for n in norms)
    assert all(torch.count_nonzero(n.bias) == 0 for n in norms)
