"""CIFAR-style VGG with batch norm: 3x3 convs, five max-pools, one linear classifier."""

from collections.abc import Sequence

import torch
from torch import nn

from topoprune.models.registry import register_model
from topoprune.models.weight_init import kaiming_init
from topoprune.models.widths import check_widths

POOL = "M"
VGG_PLANS = {
    "vgg11": (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg16": (
        64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL,
        512, 512, 512, POOL, 512, 512, 512, POOL,
    ),
}  # fmt: skip
VGG_LAYOUT = "[one output width per conv, in order]"


class VGG(nn.Module):
    """``features`` (conv3x3 → BN → ReLU, max-pools between stages) → global average → linear.

    The max-pools use ``ceil_mode`` so a 1x1 map stays 1x1: 8x8 inputs survive all five pools.
    Convs have no bias (a batch norm follows each). Layer names: ``features.0`` is the first conv,
    ``features.{3i}`` ... as the plan unrolls, ``classifier`` the final linear.
    Input (B, in_channels, H, W) → logits (B, num_classes).
    """

    def __init__(
        self, plan: Sequence[int | str], num_classes: int, in_channels: int, widths: Sequence[int]
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        conv_widths = iter(widths)
        channels = in_channels
        for step in plan:
            if step == POOL:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            width = next(conv_widths)
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self.widths = list(widths)
        self.first_conv_name = "features.0"
        self.classifier_name = "classifier"
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def build_vgg(arch: str, num_classes: int, in_channels: int, widths: Sequence[int] | None) -> VGG:
    """VGG ``arch`` (a key of ``VGG_PLANS``) with one width per conv."""
    plan = VGG_PLANS[arch]
    defaults = [step for step in plan if step != POOL]
    checked = check_widths(arch, widths, defaults, VGG_LAYOUT)
    return VGG(plan, num_classes, in_channels, checked)


@register_model
def vgg11(num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None) -> VGG:
    """VGG-11-BN; ``widths`` = 8 conv output widths, default [64, 128, 256, 256, 512 × 4]."""
    return build_vgg("vgg11", num_classes, in_channels, widths)


@register_model
def vgg16(num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None) -> VGG:
    """VGG-16-BN; ``widths`` = 13 conv output widths, default [64, 64, 128, 128, 256 × 3, 512 × 6].

    With 10 classes it has 14,724,042 parameters (the ~15.0M often quoted counts an extra 512-wide
    hidden linear layer that this single-linear classifier leaves out).
    """
    return build_vgg("vgg16", num_classes, in_channels, widths)
