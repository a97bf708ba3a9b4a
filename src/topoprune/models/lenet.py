"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for 8x8, 28x28 and 32x32 inputs.

Also Caffe's LeNet-5 (``lenet5-caffe``), the one the pruning literature uses, for 28x28 only.
"""

from collections.abc import Sequence

import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.models.registry import register_model
from topoprune.models.weight_init import kaiming_init
from topoprune.models.widths import check_widths

LENET5_WIDTHS = (6, 16, 120, 84)
LENET5_LAYOUT = "[conv1, conv2, fc1, fc2] output widths"
POOLED_SIDE = 5
CAFFE_NAME = "lenet5-caffe"
CAFFE_WIDTHS = (20, 50, 500)
CAFFE_LAYOUT = "[conv1, conv2, fc1] output widths"
CAFFE_IMAGE_SIZE = (28, 28)
CAFFE_POOLED_SIDE = 4  # 28 → conv 24 → pool 12 → conv 8 → pool 4


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


@torch.fx.wrap  # traced as one call, so torch.fx (inference fusion) can trace the model
def check_caffe_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` (B, C, 28, 28) unchanged; TopopruneError for any other image size."""
    if tuple(x.shape[-2:]) != CAFFE_IMAGE_SIZE:
        got = "×".join(str(side) for side in x.shape[-2:])
        raise TopopruneError(
            f"{CAFFE_NAME} takes 28×28 inputs, got {got}; "
            "resize the images to 28×28 or use lenet5, which takes any size"
        )
    return x


class LeNet5Caffe(nn.Module):
    """conv1 → pool → conv2 → pool → flatten → fc1 → fc2, as in Caffe's ``lenet_train_test``.

    The LeNet-5 of the pruning literature since Han et al. (NeurIPS 2015): unpadded 5x5 convs
    and 2x2 max pools take a 28x28 input to a 4x4 map, so fc1 sees conv2·4·4 = 800 inputs and the
    model has 431,080 parameters for 1 input channel and 10 classes. Caffe's net has a ReLU after
    fc1 only; this one adds a ReLU after each conv → pool too, which trains more reliably from
    scratch and leaves every shape and the parameter count unchanged. Input
    (B, in_channels, 28, 28) → logits (B, num_classes); any other H x W raises TopopruneError.
    """

    def __init__(self, num_classes: int, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        conv1, conv2, fc1 = widths
        self.conv1 = nn.Conv2d(in_channels, conv1, kernel_size=5)
        self.conv2 = nn.Conv2d(conv1, conv2, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(conv2 * CAFFE_POOLED_SIDE * CAFFE_POOLED_SIDE, fc1)
        self.fc2 = nn.Linear(fc1, num_classes)
        self.relu = nn.ReLU(inplace=True)
        self.widths = list(widths)
        self.first_conv_name = "conv1"
        self.classifier_name = "fc2"
        self.image_size = CAFFE_IMAGE_SIZE
        kaiming_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(check_caffe_input(x))))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


@register_model(name=CAFFE_NAME)
def lenet5_caffe(
    num_classes: int = 10, in_channels: int = 3, widths: Sequence[int] | None = None
) -> LeNet5Caffe:
    """Caffe's LeNet-5 (28x28 only); ``widths`` = [conv1, conv2, fc1], default [20, 50, 500]."""
    checked = check_widths(CAFFE_NAME, widths, CAFFE_WIDTHS, CAFFE_LAYOUT)
    return LeNet5Caffe(num_classes, in_channels, checked)
