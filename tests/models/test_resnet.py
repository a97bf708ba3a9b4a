import torch
from torch import nn

from topoprune.models import create_model, default_widths

from .resnet_reference import basic_resnet_params

RESNET50_BLOCKS = (3, 4, 6, 3)
BASES = (64, 128, 256, 512)


def count(model):
    return sum(p.numel() for p in model.parameters())


def conv_linear_macs(model, x):
    """(MACs of every Conv2d and Linear, logits shape) from one forward pass (hooks)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * module.in_channels // module.groups * kernel
        else:
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    with torch.no_grad():
        logits = model(x)
    for handle in handles:
        handle.remove()
    return total, logits.shape


def resnet50_reference_macs(side=224, classes=1000):
    """ResNet-50 (stride on the 3x3 conv) conv + linear MACs, layer by layer."""
    side //= 2
    total = side * side * 64 * 3 * 49
    side //= 2
    channels = 64
    for stage, (base, count_) in enumerate(zip(BASES, RESNET50_BLOCKS, strict=True)):
        for block in range(count_):
            out_side = side // 2 if stage > 0 and block == 0 else side
            total += side * side * channels * base
            total += out_side * out_side * base * base * 9
            total += out_side * out_side * base * 4 * base
            if block == 0:
                total += out_side * out_side * channels * 4 * base
            side, channels = out_side, 4 * base
    return total + 2048 * classes


def test_resnet50_parameter_count():
    with torch.device("meta"):
        assert count(create_model("resnet50", num_classes=1000)) == 25_557_032


def test_resnet18_parameter_count():
    inner = [b for b in BASES for _ in range(2)]
    expected = basic_resnet_params(3 * 49, BASES, inner, (2, 2, 2, 2), 1000, projection=True)
    assert expected == 11_689_512
    with torch.device("meta"):
        assert count(create_model("resnet18", num_classes=1000)) == expected


def test_resnet50_macs_at_224():
    model = create_model("resnet50", num_classes=1000, seed=0).eval()
    macs, logits_shape = conv_linear_macs(model, torch.zeros(1, 3, 224, 224))
    assert logits_shape == (1, 1000)
    assert macs == resnet50_reference_macs() == 4_089_184_256
    # 4.12 G in REFERENCE.md also counts batch norm, ReLU, pooling and adds
    assert abs(macs / 4.12e9 - 1) < 0.01


def test_imagenet_stem():
    with torch.device("meta"):
        model = create_model("resnet18")
    assert model.conv1.weight.shape == (64, 3, 7, 7) and model.conv1.stride == (2, 2)
    assert isinstance(model.maxpool, nn.MaxPool2d)
    assert isinstance(model.layer1[0].shortcut, nn.Identity)
    assert model.layer2[0].shortcut[0].weight.shape == (128, 64, 1, 1)


def test_resnet50_default_widths():
    widths = default_widths("resnet50")
    assert widths[:5] == [64, 256, 512, 1024, 2048]
    inner = [b for b, n in zip(BASES, RESNET50_BLOCKS, strict=True) for _ in range(2 * n)]
    assert widths[5:] == inner and len(widths) == 37


def test_resnet50_widths_set_stem_stages_and_block_convs():
    stem, stages = 10, [20, 24, 28, 32]
    inner = list(range(1, 33))
    with torch.device("meta"):
        model = create_model("resnet50", num_classes=6, widths=[stem, *stages, *inner])
        full = create_model("resnet50")
    assert model.conv1.weight.shape == (10, 3, 7, 7)
    first = model.layer1[0]
    assert first.conv1.weight.shape == (1, 10, 1, 1)
    assert first.conv2.weight.shape == (2, 1, 3, 3)
    assert first.conv3.weight.shape == (20, 2, 1, 1)
    assert first.shortcut[0].weight.shape == (20, 10, 1, 1)
    last = model.layer4[2]
    assert last.conv1.weight.shape == (31, 32, 1, 1)
    assert last.conv2.weight.shape == (32, 31, 3, 3)
    assert last.conv3.weight.shape == (32, 32, 1, 1)
    assert model.layer4[0].shortcut[0].weight.shape == (32, 28, 1, 1)
    assert model.fc.weight.shape == (6, 32)
    assert [n for n, _ in model.named_modules()] == [n for n, _ in full.named_modules()]


def test_narrow_resnet50_runs():
    widths = [max(1, w // 16) for w in default_widths("resnet50")]
    model = create_model("resnet50", num_classes=3, in_channels=1, widths=widths)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)
