import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topoprune.models import create_model, default_widths
from topoprune.models.resnet_parts import ZeroPadShortcut

from .resnet_reference import basic_resnet_params


def count(model):
    return sum(p.numel() for p in model.parameters())


def he_resnet_params(blocks, classes):
    """He et al. CIFAR ResNet, widths 16/32/64, option-A shortcuts, written out by hand."""
    stem = 3 * 16 * 9 + 2 * 16
    total = stem
    previous = 16
    for width in (16, 32, 64):
        first = 9 * previous * width + 9 * width * width + 4 * width
        total += first + (blocks - 1) * (18 * width * width + 4 * width)
        previous = width
    return total + 64 * classes + classes


@pytest.mark.parametrize(
    ("name", "blocks", "expected"),
    [("resnet20", 3, 269_722), ("resnet56", 9, 853_018), ("resnet110", 18, 1_727_962)],
)
def test_he_resnet_parameter_counts(name, blocks, expected):
    assert he_resnet_params(blocks, 10) == expected
    assert count(create_model(name)) == expected


def test_resnet56_for_cifar100():
    assert count(create_model("resnet56", num_classes=100)) == he_resnet_params(9, 100) == 858_868


def test_cresnet18_parameter_count():
    widths = [64, 128, 256, 512]
    inner = [w for w in widths for _ in range(2)]
    expected = basic_resnet_params(3 * 9, widths, inner, (2, 2, 2, 2), 10, projection=True)
    assert expected == 11_173_962
    assert count(create_model("cresnet18")) == expected


def test_default_widths_are_stages_then_blocks():
    assert default_widths("resnet20") == [16, 32, 64] + [16] * 3 + [32] * 3 + [64] * 3
    assert default_widths("cresnet18") == [64, 128, 256, 512, 64, 64, 128, 128, 256, 256, 512, 512]


def test_stem_and_shortcut_layout():
    model = create_model("resnet20")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert isinstance(model.layer1[0].shortcut, torch.nn.Identity)
    assert isinstance(model.layer2[0].shortcut, ZeroPadShortcut)
    assert model.layer2[0].conv1.stride == (2, 2)
    projected = create_model("cresnet18")
    assert isinstance(projected.layer1[0].shortcut, torch.nn.Identity)
    assert projected.layer3[0].shortcut[0].weight.shape == (256, 128, 1, 1)
    assert projected.layer3[0].shortcut[0].stride == (2, 2)


def test_widths_set_tied_and_inner_convs():
    widths = [8, 12, 20] + [3, 4, 5, 6, 7, 9, 10, 11, 13]
    model = create_model("resnet20", num_classes=5, widths=widths)
    assert model.conv1.weight.shape == (8, 3, 3, 3)
    assert model.layer1[1].conv1.weight.shape == (4, 8, 3, 3)
    assert model.layer1[1].conv2.weight.shape == (8, 4, 3, 3)
    assert model.layer2[0].conv1.weight.shape == (6, 8, 3, 3)
    assert model.layer2[0].conv2.weight.shape == (12, 6, 3, 3)
    assert model.layer3[2].conv1.weight.shape == (13, 20, 3, 3)
    assert model.fc.weight.shape == (5, 20)
    full = create_model("resnet20")
    assert [n for n, _ in model.named_modules()] == [n for n, _ in full.named_modules()]


@settings(max_examples=15, deadline=None)
@given(
    stages=st.lists(st.integers(1, 12), min_size=4, max_size=4),
    inner=st.lists(st.integers(1, 12), min_size=8, max_size=8),
)
def test_any_cresnet18_widths_build_and_count_as_the_formula(stages, inner):
    model = create_model("cresnet18", num_classes=3, in_channels=1, widths=stages + inner)
    expected = basic_resnet_params(9, stages, inner, (2, 2, 2, 2), 3, projection=True)
    assert count(model) == expected
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)


@settings(max_examples=15, deadline=None)
@given(
    stages=st.lists(st.integers(1, 12), min_size=3, max_size=3),
    inner=st.lists(st.integers(1, 12), min_size=9, max_size=9),
)
def test_any_resnet20_widths_build_and_count_as_the_formula(stages, inner):
    model = create_model("resnet20", num_classes=4, widths=stages + inner)
    assert count(model) == basic_resnet_params(27, stages, inner, (3, 3, 3), 4, projection=False)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_zero_pad_shortcut_subsamples_then_pads_channels():
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).view(2, 2, 5, 5)
    out = ZeroPadShortcut(2, 5, stride=2)(x)
    assert out.shape == (2, 5, 3, 3)
    assert torch.equal(out[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 2:]) == 0


def test_zero_pad_shortcut_keeps_leading_channels_when_narrowing():
    x = torch.randn(1, 4, 4, 4)
    assert torch.equal(ZeroPadShortcut(4, 3, stride=1)(x), x[:, :3])
    assert list(ZeroPadShortcut(4, 3, stride=2).parameters()) == []
