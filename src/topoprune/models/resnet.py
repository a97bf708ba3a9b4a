"""ImageNet ResNets (He et al. 2016): 7x7 stride-2 stem, max-pool, projection shortcuts.

resnet18 uses the basic-block width format ``[w_1 … w_4, one inner width per block]`` (see
``resnet_cifar``). resnet50's bottleneck format is
``[stem, w_1 … w_4, then (reduce, spatial) for each block, stage by stage]``: w_s is the output
width of every block in stage s (tied by the residual adds); the stem width is free because
block 0 of every stage has a projection shortcut; reduce and spatial are a block's free widths
after its 1x1 and its 3x3 conv.

>>> from topoprune.models import default_widths
>>> default_widths("resnet50")[:7]
[64, 256, 512, 1024, 2048, 64, 64]
"""

from collections.abc import Sequence
from functools import partial

from torch import nn

from topoprune.models.registry import register_model
from topoprune.models.resnet_parts import (
    Bottleneck,
    ResNet,
    basic_resnet,
    projection_shortcut,
    stack_stages,
)
from topoprune.models.widths import check_widths

STAGE_BASE_WIDTHS = (64, 128, 256, 512)
STEM_WIDTH = 64
EXPANSION = 4
RESNET50_BLOCKS = (3, 4, 6, 3)
BOTTLENECK_LAYOUT = "[stem, one width per stage, then (reduce, spatial) per block]"


def imagenet_stem(in_channels: int, width: int) -> nn.Conv2d:
    """7x7 stride-2 convolution, padding 3, no bias."""
    return nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)


def bottleneck_resnet(
    arch: str,
    blocks_per_stage: Sequence[int],
    num_classes: int,
    in_channels: int,
    widths: Sequence[int] | None,
) -> ResNet:
    """ImageNet bottleneck ResNet in the bottleneck width format (module docstring)."""
    defaults = [STEM_WIDTH, *(EXPANSION * base for base in STAGE_BASE_WIDTHS)]
    for base, count in zip(STAGE_BASE_WIDTHS, blocks_per_stage, strict=True):
        defaults += [base, base] * count
    checked = check_widths(arch, widths, defaults, BOTTLENECK_LAYOUT)
    stage_count = len(STAGE_BASE_WIDTHS)
    inner_widths = iter(checked[1 + stage_count :])

    def make_block(block_in: int, block_out: int, stride: int, first: bool) -> Bottleneck:
        shortcut = projection_shortcut(block_in, block_out, stride) if first else nn.Identity()
        reduce, spatial = next(inner_widths), next(inner_widths)
        return Bottleneck(block_in, reduce, spatial, block_out, stride, shortcut)

    stage_widths = checked[1 : 1 + stage_count]
    stages = stack_stages(checked[0], stage_widths, blocks_per_stage, make_block)
    return ResNet(imagenet_stem(in_channels, checked[0]), True, stages, num_classes, checked)


@register_model
def resnet18(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> ResNet:
    """ImageNet ResNet-18 (11.7M params at 1000 classes); ``widths`` = 4 stage + 8 inner widths."""
    return basic_resnet(
        "resnet18",
        partial(imagenet_stem, in_channels),
        True,
        STAGE_BASE_WIDTHS,
        (2, 2, 2, 2),
        projection_shortcut,
        num_classes,
        widths,
    )


@register_model
def resnet50(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> ResNet:
    """ImageNet ResNet-50 (25,557,032 params at 1000 classes); ``widths`` = 1 + 4 + 2·16 = 37."""
    return bottleneck_resnet("resnet50", RESNET50_BLOCKS, num_classes, in_channels, widths)
