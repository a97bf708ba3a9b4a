"""Multiply-accumulate (MAC) rules, one per module type.

Each rule takes a module, the input tensor and the output tensor of one call and returns
``(macs, dense_macs)``: the mask-aware count and the count as if the module had no mask.

Conventions (one MAC = one multiply-accumulate, or one elementwise op where there is no multiply):

- Convolution (1-3 d): every kept weight is applied once per output position, so
  ``macs = positions × kept weights``, ``positions = N × out_H × out_W = out_elems / C_out``.
  Dense, this is ``out_elems × (C_in / groups) × kh × kw``. Transposed convolution applies every
  kept weight once per *input* position instead. A pruned conv therefore counts exactly its kept
  (out, in) kernel slices when its mask is slice-wise (all or nothing per ``mask[o, i]``), and its
  kept individual weights when the mask is fine-grained.
- Linear: ``rows × kept weights`` with ``rows = out_elems / out_features``.
- Bias is not counted: a bias add is not a multiply-accumulate (thop and fvcore agree).
- BatchNorm: one MAC per input element, the inference form ``y = x·s + t`` with the running
  statistics and the affine parameters folded into ``s`` and ``t`` (affine or not). thop counts
  4 per element when affine and 2 when not.
- Pooling: one op per window element per output element. Fixed-kernel pools (max, avg) count the
  full kernel (padding positions included); adaptive pools count their exact, possibly uneven,
  windows. The division of average pooling is not counted. thop counts 0 for max pooling, 1 per
  output for average pooling and ``window + 1`` per output for adaptive average pooling.
- Activations, dropout, and functional ops (residual adds, ``torch.cat``, ``F.*`` calls) are not
  counted: forward hooks do not see functional ops.

No rule propagates sparsity across layers: a channel left with no kept weights upstream does not
lower the count of the layers after it.

Example
-------
>>> import torch
>>> conv = torch.nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False)
>>> x = torch.zeros(1, 4, 5, 5)
>>> mac_rule(conv)(conv, x, conv(x))  # 25 positions × 6·2·9 weights
(2700, 2700)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from topoprune.measure.masks import kept_numel

MacRule = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[int, int]]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_POOL_DIMS: dict[type[nn.Module], int] = {
    nn.MaxPool1d: 1,
    nn.MaxPool2d: 2,
    nn.MaxPool3d: 3,
    nn.AvgPool1d: 1,
    nn.AvgPool2d: 2,
    nn.AvgPool3d: 3,
}
_ADAPTIVE_POOL_DIMS: dict[type[nn.Module], int] = {
    nn.AdaptiveMaxPool1d: 1,
    nn.AdaptiveMaxPool2d: 2,
    nn.AdaptiveMaxPool3d: 3,
    nn.AdaptiveAvgPool1d: 1,
    nn.AdaptiveAvgPool2d: 2,
    nn.AdaptiveAvgPool3d: 3,
}


def _weight_macs(module: nn.Module, positions: int) -> tuple[int, int]:
    """Every weight applied once per position: mask-aware and dense."""
    return positions * kept_numel(module, "weight"), positions * module.weight.numel()


def conv_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Conv1d/2d/3d: ``N·out_spatial × kept weights``."""
    return _weight_macs(module, y.numel() // module.out_channels)


def transposed_conv_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """ConvTranspose1d/2d/3d: ``N·in_spatial × kept weights``."""
    return _weight_macs(module, x.numel() // module.in_channels)


def linear_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Linear on ``(..., in_features)``: ``rows × kept weights``."""
    return _weight_macs(module, y.numel() // module.out_features)


def batch_norm_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """BatchNorm: one MAC per input element."""
    return x.numel(), x.numel()


def pool_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Max/avg pooling: ``out_elems × kernel area``."""
    return window_macs(y, module.kernel_size, _POOL_DIMS[type(module)])


def window_macs(y: torch.Tensor, kernel: int | tuple[int, ...], dims: int) -> tuple[int, int]:
    """``(macs, dense_macs)`` of a pool with a fixed ``kernel`` over ``dims`` spatial axes whose
    output is ``y``: one op per window element per output element.

    >>> window_macs(torch.zeros(1, 3, 4, 4), 2, dims=2)
    (192, 192)
    """
    area = math.prod(kernel) if isinstance(kernel, tuple) else kernel**dims
    return y.numel() * area, y.numel() * area


def adaptive_window_total(in_size: int, out_size: int) -> int:
    """Sum over the ``out_size`` adaptive windows along one axis of their lengths.

    Window ``i`` spans ``[floor(i·in/out), ceil((i+1)·in/out))``, as in PyTorch.

    >>> adaptive_window_total(5, 3)  # windows [0, 2), [1, 4), [3, 5)
    7
    """
    return sum(
        -(-(i + 1) * in_size // out_size) - (i * in_size // out_size) for i in range(out_size)
    )


def adaptive_pool_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Adaptive max/avg pooling: the exact window elements summed over all outputs."""
    dims = _ADAPTIVE_POOL_DIMS[type(module)]
    in_spatial, out_spatial = x.shape[-dims:], y.shape[-dims:]
    planes = y.numel() // math.prod(out_spatial)
    windows = math.prod(
        adaptive_window_total(i, o) for i, o in zip(in_spatial, out_spatial, strict=True)
    )
    return planes * windows, planes * windows


def own_macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """A module that counts itself: its ``mac_counts(x, y)``."""
    return module.mac_counts(x, y)


def mac_rule(module: nn.Module) -> MacRule | None:
    """The MAC rule for ``module``'s type, or None when the type has no rule (counted as 0). A
    module with a ``mac_counts(x, y)`` method (realize's ``CompactConv2d``) counts itself."""
    if callable(getattr(module, "mac_counts", None)):
        return own_macs
    if isinstance(module, _TRANSPOSED_CONVS):
        return transposed_conv_macs
    if isinstance(module, _CONVS):
        return conv_macs
    if isinstance(module, nn.Linear):
        return linear_macs
    if isinstance(module, _BATCH_NORMS):
        return batch_norm_macs
    if type(module) in _POOL_DIMS:
        return pool_macs
    if type(module) in _ADAPTIVE_POOL_DIMS:
        return adaptive_pool_macs
    return None
