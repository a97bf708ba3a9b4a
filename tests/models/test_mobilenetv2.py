import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from topoprune.models import create_model, default_widths

DEFAULT = [32, 16, 24, 32, 64, 96, 160, 320, 1280]
EXPANDED = [96, 144, 144, 192, 192, 192, 384, 384, 384, 384, 576, 576, 576, 960, 960, 960]


def test_parameter_count_at_1000_classes():
    assert sum(p.numel() for p in create_model("mobilenetv2", num_classes=1000).parameters()) == (
        3_504_872
    )


def test_default_widths():
    assert default_widths("mobilenetv2") == DEFAULT + EXPANDED


def test_depthwise_convs_have_one_group_per_channel():
    model = create_model("mobilenetv2")
    depthwise = [m for n, m in model.named_modules() if n.endswith("depthwise.conv")]
    assert len(depthwise) == 17
    assert all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    assert depthwise[0].in_channels == 32 and depthwise[-1].in_channels == 960


def test_residual_only_inside_a_group():
    model = create_model("mobilenetv2")
    blocks = list(model.features)[1:-1]
    assert [b.residual for b in blocks] == [
        False, False, True, False, True, True, False, True, True, True,
        False, True, True, False, True, True, False,
    ]  # fmt: skip


def test_widths_set_every_layer():
    widths = [8, 4, 6, 8, 10, 12, 14, 16, 40] + list(range(20, 36))
    model = create_model("mobilenetv2", num_classes=3, in_channels=1, widths=widths)
    features = model.features
    assert features[0].conv.weight.shape == (8, 1, 3, 3)
    assert isinstance(features[1].expand, nn.Identity)
    assert features[1].depthwise.conv.weight.shape == (8, 1, 3, 3)
    assert features[1].project.conv.weight.shape == (4, 8, 1, 1)
    assert features[2].expand.conv.weight.shape == (20, 4, 1, 1)
    assert features[3].expand.conv.weight.shape == (21, 6, 1, 1)
    assert features[3].project.conv.weight.shape == (6, 21, 1, 1)
    assert features[17].depthwise.conv.weight.shape == (35, 1, 3, 3)
    assert features[17].project.conv.weight.shape == (16, 35, 1, 1)
    assert features[18].conv.weight.shape == (40, 16, 1, 1)
    assert model.classifier[1].weight.shape == (3, 40)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=25, max_size=25))
def test_any_widths_run(widths):
    model = create_model("mobilenetv2", num_classes=2, widths=widths)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2)


@pytest.mark.parametrize("small_input", [False, True])
def test_stem_stride(small_input):
    model = create_model("mobilenetv2", small_input=small_input)
    stride = 1 if small_input else 2
    assert model.features[0].conv.stride == (stride, stride)
    assert model.features[2].depthwise.conv.stride == (stride, stride)
