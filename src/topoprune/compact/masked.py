"""Masked convs in the torch.nn.utils.prune convention: recognise them, fold them, copy them.

A masked conv has a ``weight_orig`` parameter, a ``weight_mask`` buffer and a forward pre-hook
that sets ``weight = weight_orig * weight_mask`` before every call.

>>> import torch
>>> from torch.nn.utils import prune
>>> eye = torch.eye(2)[:, :, None, None]
>>> conv = prune.custom_from_mask(torch.nn.Conv2d(2, 2, 1), "weight", eye)
>>> is_masked_conv(conv), is_masked_conv(folded_conv(conv))
(True, False)
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune


def is_masked_conv(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.Conv2d`` with a pruning mask on its weight."""
    return (
        isinstance(module, nn.Conv2d)
        and hasattr(module, "weight_mask")
        and hasattr(module, "weight_orig")
    )


def masked_weight(conv: nn.Conv2d) -> torch.Tensor:
    """The weight the masked conv computes with, ``weight_orig * weight_mask``, detached."""
    return (conv.weight_orig * conv.weight_mask).detach()


def copy_model(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also copies pruned modules.

    A pruned module's computed ``weight`` (``weight_orig * weight_mask``, not a parameter) keeps
    its autograd history, which ``deepcopy`` refuses; the copy gets it detached instead (the
    pruning hook recomputes it before the next forward anyway). ``model`` is not modified.
    """
    memo: dict[int, object] = {}
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, torch.Tensor) and value.grad_fn is not None:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(model, memo)


def folded_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of a masked conv as a plain conv: the mask multiplied into the weight, no hook."""
    plain = copy_model(conv)
    prune.remove(plain, "weight")
    return plain


def masked_conv_from(layer: nn.Module, weight: torch.Tensor, support: torch.Tensor) -> nn.Conv2d:
    """A dense ``nn.Conv2d`` with ``layer``'s geometry (channels, kernel, stride, padding,
    dilation) and bias, the dense ``weight`` (C_out, C_in, kh, kw), and a prune mask made of the
    (C_out, C_in) 0/1 ``support``: the masked conv a compact form stands for."""
    conv = nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=layer.bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if layer.bias is not None:
            conv.bias.copy_(layer.bias)
    mask = support[:, :, None, None].expand_as(conv.weight)
    return prune.custom_from_mask(conv, "weight", mask.contiguous())
