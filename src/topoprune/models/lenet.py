"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for 8x8, 28x28 and 32x32 inputs."""

from collections.abc import Sequence

import torch
from torch import nn

from topoprune.models.registry import register_model
from topoprune.models.weight_init import kaiming_init
from topoprune.models.widths import check_widths

LENET5_WIDTHS = (6, 16, 120, 84)
LENET5_LAYOUT = "[conv1, conv2, fc1, fc2] output widths"
POOLED_SIDE = 5


class LeNet5(nn.Module):
    """conv1 → pool → conv2 → pool → 5x5 adaptive average → fc1 → fc2 → fc3.

    Both 5x5 convolutions keep the map size (padding 2) so that 8x8 digits survive the two
    poolings; the adaptive average pool then always hands fc1 the classic 16·5·5 inputs, so the
    parameter count is the classic one (61,706 for 1 input channel and 10 classes) whatever the
    input size. Input (B, in_channels, H, W) with H, W ≥ 1 → logits (B, num_classes).
    """

    def __init__(self, num_classes: int, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        conv1, conv2, fc1, fc2 = widths
        self.conv1 = nn.Conv2d(in_channels, conv1, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(conv1, conv2, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.resize = nn.AdaptiveAvgPool2d(POOLED_SIDE)
        self.fc1 = nn.Linear(conv2 * POOLED_SIDE * POOLED_SIDE, fc1)
        self.fc2 = nn.Linear(fc1, fc2)
        self.fc3 = nn.Linear(fc2, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.widths = list(widths)
        self.first_conv_name = "conv1"
        self.classifier_name = "fc3"
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = torch.flatten(self.resize(x), 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


@register_model
def lenet5(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> LeNet5:
    """LeNet-5; ``widths`` = [conv1, conv2, fc1, fc2] output widths, default [6, 16, 120, 84]."""
    checked = check_widths("lenet5", widths, LENET5_WIDTHS, LENET5_LAYOUT)
    return LeNet5(num_classes, in_channels, checked)
