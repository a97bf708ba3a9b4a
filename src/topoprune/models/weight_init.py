"""The from-scratch initialisation every zoo model gets."""

from torch import nn


def kaiming_init(model: nn.Module) -> None:
    """Initialise ``model`` in place for training from scratch.

    Convolutions get Kaiming-normal weights (fan_out, ReLU gain) and zero biases; batch norms get
    weight 1 and bias 0. Linear layers keep PyTorch's default initialisation. Layers on the meta
    device hold no values and are left alone (filling them would only import torch's compiler).
    """
    for module in model.modules():
        if not isinstance(module, nn.Conv2d | nn.BatchNorm2d) or module.weight is None:
            continue
        if module.weight.is_meta:
            continue
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        else:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
