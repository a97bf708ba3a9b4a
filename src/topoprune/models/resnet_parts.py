"""Parts shared by the CIFAR and ImageNet ResNets: shortcuts, blocks and the network skeleton.

Which blocks get a shortcut module (and of which kind) depends only on a block's position, never
on the widths, so a narrower model has exactly the module names of the full-size one.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from topoprune.models.weight_init import kaiming_init
from topoprune.models.widths import check_widths

ShortcutFactory = Callable[[int, int, int], nn.Module]
BlockFactory = Callable[[int, int, int, bool], nn.Module]
BASIC_LAYOUT = "[one width per stage, then one inner width per block]"


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a batch norm follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias (a batch norm follows)."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """He et al.'s parameter-free option-A shortcut.

    Keeps every ``stride``-th pixel, then zero-pads the channels up to ``out_channels`` (new
    channels come last), or keeps the first ``out_channels`` when a width list makes the stage
    narrower than the one before. (B, C_in, H, W) → (B, C_out, ceil(H/stride), ceil(W/stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra > 0:
            return F.pad(x, (0, 0, 0, 0, 0, extra))
        return x[:, : self.out_channels]

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """1x1 strided convolution + batch norm (named ``shortcut.0`` and ``shortcut.1``)."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """conv3x3(stride) → BN → ReLU → conv3x3 → BN, plus ``shortcut(x)``, then ReLU.

    ``inner`` is the free width between the two convs; ``out_channels`` is tied to the stage.
    """

    def __init__(
        self, in_channels: int, inner: int, out_channels: int, stride: int, shortcut: nn.Module
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, inner, stride)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = conv3x3(inner, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1x1 → conv3x3(stride) → conv1x1, each with BN (ReLU after the first two), + shortcut.

    ``reduce`` and ``spatial`` are the free widths after conv1 and conv2; ``out_channels`` is tied
    to the stage. The stride sits on the 3x3 conv (the "v1.5" variant torchvision trains).
    """

    def __init__(
        self,
        in_channels: int,
        reduce: int,
        spatial: int,
        out_channels: int,
        stride: int,
        shortcut: nn.Module,
    ) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_channels, reduce)
        self.bn1 = nn.BatchNorm2d(reduce)
        self.conv2 = conv3x3(reduce, spatial, stride)
        self.bn2 = nn.BatchNorm2d(spatial)
        self.conv3 = conv1x1(spatial, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = shortcut
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    """Stem (``conv1`` → ``bn1`` → ReLU → ``maxpool``) → ``layer1`` … ``layerS`` → average → ``fc``.

    ``stages`` holds the blocks of each stage (each block has ``out_channels``); ``maxpool`` is
    an identity for the CIFAR stem. Input (B, C, H, W) → logits (B, num_classes).
    """

    def __init__(
        self,
        stem_conv: nn.Conv2d,
        use_maxpool: bool,
        stages: Sequence[Sequence[nn.Module]],
        num_classes: int,
        widths: Sequence[int],
    ) -> None:
        super().__init__()
        self.conv1 = stem_conv
        self.bn1 = nn.BatchNorm2d(stem_conv.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if use_maxpool else nn.Identity()
        self.stage_names = [f"layer{i + 1}" for i in range(len(stages))]
        for name, blocks in zip(self.stage_names, stages, strict=True):
            self.add_module(name, nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(stages[-1][-1].out_channels, num_classes)
        self.widths = list(widths)
        self.first_conv_name = "conv1"
        self.classifier_name = "fc"
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def stack_stages(
    stem_width: int,
    stage_widths: Sequence[int],
    blocks_per_stage: Sequence[int],
    make_block: BlockFactory,
) -> list[list[nn.Module]]:
    """Blocks of every stage: ``make_block(in_channels, out_channels, stride, first_in_stage)``.

    Block 0 of stages 2…S gets stride 2, every other block stride 1; each block's input width is
    the previous block's output width (the stem's for the very first block).
    """
    channels = stem_width
    stages = []
    for stage, (out_channels, count) in enumerate(zip(stage_widths, blocks_per_stage, strict=True)):
        blocks = []
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            blocks.append(make_block(channels, out_channels, stride, block == 0))
            channels = out_channels
        stages.append(blocks)
    return stages


def basic_resnet(
    arch: str,
    stem_conv: Callable[[int], nn.Conv2d],
    use_maxpool: bool,
    stage_widths: Sequence[int],
    blocks_per_stage: Sequence[int],
    make_shortcut: ShortcutFactory,
    num_classes: int,
    widths: Sequence[int] | None,
) -> ResNet:
    """A ResNet of basic blocks from the width format shared by every basic-block ResNet.

    ``widths`` = [w_1 … w_S, then one inner width per block, stage by stage]; w_s is the output
    width of every block of stage s (tied by the residual adds) and w_1 is also the stem's width.
    Default: ``stage_widths`` then each block's inner width equal to its stage width.
    Block 0 of stages 2…S has stride 2 and the shortcut ``make_shortcut(in, out, 2)``; every other
    block has an identity shortcut. ``stem_conv(w_1)`` builds the first conv.
    """
    defaults = [*stage_widths]
    for width, count in zip(stage_widths, blocks_per_stage, strict=True):
        defaults += [width] * count
    checked = check_widths(arch, widths, defaults, BASIC_LAYOUT)
    stage_count = len(stage_widths)
    inner_widths = iter(checked[stage_count:])

    def make_block(block_in: int, block_out: int, stride: int, first: bool) -> BasicBlock:
        shortcut = make_shortcut(block_in, block_out, stride) if stride > 1 else nn.Identity()
        return BasicBlock(block_in, next(inner_widths), block_out, stride, shortcut)

    stages = stack_stages(checked[0], checked[:stage_count], blocks_per_stage, make_block)
    return ResNet(stem_conv(checked[0]), use_maxpool, stages, num_classes, checked)
