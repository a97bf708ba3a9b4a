"""The model zoo: our own LeNet, VGG, ResNet and MobileNetV2, every width configurable.

>>> from topoprune.models import create_model, list_models
>>> "resnet56" in list_models()
True
>>> model = create_model("resnet56", num_classes=100, seed=0)
"""

from topoprune.models import lenet, mobilenetv2, resnet, resnet_cifar, vgg  # noqa: F401 (register)
from topoprune.models.registry import create_model, default_widths, list_models, register_model

__all__ = ["create_model", "default_widths", "list_models", "register_model"]
