"""CIFAR ResNets: He et al.'s resnet20/56/110 (option-A shortcuts) and the CIFAR ResNet-18.

All use a 3x3 stride-1 stem and no max-pool. Width format (shared by every basic-block ResNet):
``[w_1 … w_S, then one inner width per block, stage by stage]`` where w_s is the output width of
every block in stage s (tied by the residual adds; w_1 is also the stem's width) and a block's
inner width is the free width between its two 3x3 convs.

>>> from topoprune.models import create_model
>>> model = create_model("resnet20", widths=[8, 16, 32] + [4] * 9)
>>> tuple(model.layer2[0].conv1.weight.shape)
(4, 8, 3, 3)
"""

from collections.abc import Sequence
from functools import partial

from topoprune.models.registry import register_model
from topoprune.models.resnet_parts import (
    ResNet,
    ZeroPadShortcut,
    basic_resnet,
    conv3x3,
    projection_shortcut,
)

HE_STAGE_WIDTHS = (16, 32, 64)
CRESNET18_STAGE_WIDTHS = (64, 128, 256, 512)
CRESNET18_BLOCKS = (2, 2, 2, 2)


def he_cifar_resnet(
    arch: str, depth: int, num_classes: int, in_channels: int, widths: Sequence[int] | None
) -> ResNet:
    """He et al. (2016) CIFAR ResNet of ``depth`` = 6n + 2 layers: 3 stages of n basic blocks.

    Widths list: 3 stage widths then 3n inner widths (default 16, 32, 64 each).
    Shortcuts are parameter-free (option A: subsample, zero-pad channels).
    """
    blocks = (depth - 2) // 6
    return basic_resnet(
        arch,
        partial(conv3x3, in_channels),
        False,
        HE_STAGE_WIDTHS,
        (blocks,) * 3,
        ZeroPadShortcut,
        num_classes,
        widths,
    )


@register_model
def resnet20(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> ResNet:
    """ResNet-20 (0.27M params); ``widths`` = 3 stage + 9 inner widths."""
    return he_cifar_resnet("resnet20", 20, num_classes, in_channels, widths)


@register_model
def resnet56(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> ResNet:
    """ResNet-56 (0.85M params); ``widths`` = 3 stage + 27 inner widths."""
    return he_cifar_resnet("resnet56", 56, num_classes, in_channels, widths)


@register_model
def resnet110(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> ResNet:
    """ResNet-110 (1.7M params); ``widths`` = 3 stage + 54 inner widths."""
    return he_cifar_resnet("resnet110", 110, num_classes, in_channels, widths)


@register_model
def cresnet18(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> ResNet:
    """CIFAR ResNet-18 (11.2M params): 3x3 stem, no max-pool, 1x1 conv + BN projections.

    ``widths`` = 4 stage widths then 8 inner widths (default 64, 128, 256, 512, each twice).
    """
    return basic_resnet(
        "cresnet18",
        partial(conv3x3, in_channels),
        False,
        CRESNET18_STAGE_WIDTHS,
        CRESNET18_BLOCKS,
        projection_shortcut,
        num_classes,
        widths,
    )
