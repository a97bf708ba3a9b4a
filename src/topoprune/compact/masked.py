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

from topoprune.errors import TopopruneError


def is_masked_conv(module: nn.Module) -> bool:
    """Whether ``module`` is an ``nn.Conv2d`` with a pruning mask on its weight."""
    return (
        isinstance(module, nn.Conv2d)
        and hasattr(module, "weight_mask")
        and hasattr(module, "weight_orig")
    )


def is_compactable(conv: nn.Conv2d) -> bool:
    """Whether compact forms can stand for this conv: ungrouped, zero-padded."""
    return conv.groups == 1 and conv.padding_mode == "zeros"


def require_compactable(conv: nn.Module, form: str) -> None:
    """TopopruneError unless ``conv`` is a masked, compactable ``nn.Conv2d`` (for ``form``)."""
    if not is_masked_conv(conv):
        raise TopopruneError(
            f"{form}.from_masked needs an nn.Conv2d pruned with torch.nn.utils.prune "
            "(weight_orig + weight_mask); apply a mask first"
        )
    if not is_compactable(conv):
        raise TopopruneError(
            f"{form} supports convs with groups=1 and padding_mode='zeros'; keep this conv dense"
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


class StandsForMaskedConv:
    """What a compact form of a masked ``nn.Conv2d`` (``CompactConv2d``, ``SliceSparseConv2d``)
    derives from its ``kept_slices()`` (the (out, in) kernel slices it really stores),
    ``dense_weight()`` and ``channel_mask()``: its counts for :func:`topoprune.count` and the
    masked conv it stands for. The form has the conv's geometry attributes and ``bias``."""

    def param_counts(self) -> tuple[int, int]:
        """``(params, dense_params)``: the kept weights plus the bias, and the same for the dense
        conv it stands for."""
        bias = 0 if self.bias is None else self.out_channels
        weights, dense_weights = self._weight_counts()
        return weights + bias, dense_weights + bias

    def mac_counts(self, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """``(macs, dense_macs)`` of one call with input ``x`` and output ``y`` (B, C_out, H', W'):
        every kept weight applied once per output position, as for the masked conv."""
        positions = y.numel() // self.out_channels if self.out_channels else 0
        weights, dense_weights = self._weight_counts()
        return positions * weights, positions * dense_weights

    def to_masked(self) -> nn.Conv2d:
        """A dense ``nn.Conv2d`` with this layer's weights and a prune mask (``weight_mask``).

        Its ``state_dict`` is the masked model's, for export or to resume mask-based training.
        """
        return masked_conv_from(self, self.dense_weight().detach(), self.channel_mask())

    def _weight_counts(self) -> tuple[int, int]:
        """Kept weights, and the dense conv's."""
        kernel = self.kernel_size[0] * self.kernel_size[1]
        dense = self.out_channels * self.in_channels * kernel
        return self.kept_slices() * kernel, dense


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
