"""What runs after a conv in a fused inference model: bias already added, then a residual, then a
clamp (ReLU = ``(0, inf)``, ReLU6 = ``(0, 6)``, none = ``(-inf, inf)``).

Native kernels do this in the pass that writes their output; every other form calls
:func:`apply_epilogue` on its result, in place when autograd does not need the tensor.

>>> import torch
>>> apply_epilogue(torch.tensor([-2.0, 1.0, 7.0]), torch.ones(3), RELU6).tolist()
[0.0, 2.0, 6.0]
"""

from __future__ import annotations

import math

import torch

Clamp = tuple[float, float]
NO_CLAMP: Clamp = (-math.inf, math.inf)
RELU: Clamp = (0.0, math.inf)
RELU6: Clamp = (0.0, 6.0)


def apply_epilogue(
    y: torch.Tensor, residual: torch.Tensor | None = None, clamp: Clamp = NO_CLAMP
) -> torch.Tensor:
    """``clamp(y + residual, *clamp)`` for ``y`` and ``residual`` of one shape (B, C, H, W)."""
    in_place = not (torch.is_grad_enabled() and y.requires_grad)
    if residual is not None:
        y = y.add_(residual) if in_place else y + residual
    if clamp == NO_CLAMP:
        return y
    low = None if math.isinf(clamp[0]) else clamp[0]
    high = None if math.isinf(clamp[1]) else clamp[1]
    return y.clamp_(low, high) if in_place else y.clamp(low, high)
