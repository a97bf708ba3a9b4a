"""MobileNetV2 (Sandler et al. 2018): inverted residual blocks with depthwise 3x3 convs.

Width format: ``[stem, g_1 … g_7, head, then one expanded width per expanding block]``.
g_i is the output width of every block of group i (tied by the residual adds inside a group);
head is the width of the last 1x1 conv; an expanded width is the free width a block's 1x1
expansion produces and its depthwise conv keeps. Group 1 (expansion 1) has no expansion conv:
its depthwise conv works on the stem's channels. Default:
``[32, 16, 24, 32, 64, 96, 160, 320, 1280, 96, 144, 144, 192, 192, 192, 384, 384, 384, 384,
576, 576, 576, 960, 960, 960]`` (25 entries).

>>> from topoprune.models import create_model
>>> model = create_model("mobilenetv2", small_input=True)
>>> model.classifier_name
'classifier.1'
"""

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from topoprune.models.registry import register_model
from topoprune.models.weight_init import kaiming_init
from topoprune.models.widths import check_widths

# (expansion factor, output width, blocks, stride of the first block), one row per group
GROUPS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
STEM_WIDTH = 32
HEAD_WIDTH = 1280
DROPOUT = 0.2
LAYOUT = "[stem, 7 group widths, head, then one expanded width per expanding block]"


class ConvBNAct(nn.Sequential):
    """``conv`` → ``bn`` (→ ``act``, ReLU6, when ``activation``); "same" padding, no bias."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        activation: bool = True,
    ) -> None:
        layers = OrderedDict(
            conv=nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=kernel_size // 2,
                groups=groups,
                bias=False,
            ),
            bn=nn.BatchNorm2d(out_channels),
        )
        if activation:
            layers["act"] = nn.ReLU6(inplace=True)
        super().__init__(layers)


class InvertedResidual(nn.Module):
    """[``expand`` 1x1] → ``depthwise`` 3x3(stride, groups = width) → ``project`` 1x1 (linear).

    ``expanded`` must equal ``in_channels`` when ``expand`` is False. ``residual`` adds the input
    to the output (set for every block but the first of a group, where in = out and stride 1).
    """

    def __init__(
        self,
        in_channels: int,
        expanded: int,
        out_channels: int,
        stride: int,
        expand: bool,
        residual: bool,
    ) -> None:
        super().__init__()
        self.expand = ConvBNAct(in_channels, expanded) if expand else nn.Identity()
        self.depthwise = ConvBNAct(expanded, expanded, 3, stride, groups=expanded)
        self.project = ConvBNAct(expanded, out_channels, activation=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """``features`` (stem, 17 inverted residual blocks, head 1x1) → average → ``classifier``.

    ``features.0`` is the stem, ``features.1`` … ``features.17`` the blocks, ``features.18`` the
    head; ``classifier`` is dropout then ``classifier.1``, the linear layer. With
    ``small_input`` the stem and group 2 use stride 1 (total stride 8 instead of 32: 32x32
    inputs end on a 4x4 map). Input (B, in_channels, H, W) → logits (B, num_classes).
    """

    def __init__(
        self, num_classes: int, in_channels: int, widths: Sequence[int], small_input: bool
    ) -> None:
        super().__init__()
        stem, *group_widths = widths[: 1 + len(GROUPS)]
        head = widths[1 + len(GROUPS)]
        expanded_widths = iter(widths[2 + len(GROUPS) :])
        layers: list[nn.Module] = [ConvBNAct(in_channels, stem, 3, 1 if small_input else 2)]
        channels = stem
        for group, ((expansion, _, count, stride), out_channels) in enumerate(
            zip(GROUPS, group_widths, strict=True)
        ):
            if small_input and group == 1:
                stride = 1
            for block in range(count):
                expand = expansion != 1
                expanded = next(expanded_widths) if expand else channels
                layers.append(
                    InvertedResidual(
                        channels,
                        expanded,
                        out_channels,
                        stride if block == 0 else 1,
                        expand,
                        residual=block > 0,
                    )
                )
                channels = out_channels
        layers.append(ConvBNAct(channels, head))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(DROPOUT), nn.Linear(head, num_classes))
        self.widths = list(widths)
        self.first_conv_name = "features.0.conv"
        self.classifier_name = "classifier.1"
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def mobilenetv2_default_widths() -> list[int]:
    """The full-size width list (module docstring)."""
    expanded = []
    channels = STEM_WIDTH
    for expansion, out_channels, count, _ in GROUPS:
        for _ in range(count):
            if expansion != 1:
                expanded.append(channels * expansion)
            channels = out_channels
    return [STEM_WIDTH, *(group[1] for group in GROUPS), HEAD_WIDTH, *expanded]


@register_model
def mobilenetv2(
    num_classes: int = 10,
    in_channels: int = 3,
    widths: Sequence[int] | None = None,
    small_input: bool = False,
) -> MobileNetV2:
    """MobileNetV2 (3,504,872 params at 1000 classes); ``widths`` has 25 entries (module doc).

    ``small_input=True`` keeps more resolution for 32x32 inputs (stem and group 2 at stride 1).
    """
    checked = check_widths("mobilenetv2", widths, mobilenetv2_default_widths(), LAYOUT)
    return MobileNetV2(num_classes, in_channels, checked, bool(small_input))
