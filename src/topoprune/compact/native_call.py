"""When a layer may call a native (ctypes) kernel instead of its torch ops.

A native kernel computes forward only, on float32 CPU tensors, and cannot be recorded by
``torch.jit``, ``torch.onnx`` or ``torch.compile``. Every compact form checks
:func:`can_run_natively` first (then its own shape limits) and otherwise runs its torch ops, which
compute the same outputs.

>>> import torch
>>> can_run_natively(torch.nn.Linear(2, 2), torch.zeros(1, 2))  # parameters need gradients
False
>>> with torch.no_grad():
...     can_run_natively(torch.nn.Linear(2, 2), torch.zeros(1, 2))
True
"""

from __future__ import annotations

import torch
from torch import nn


def exporting() -> bool:
    """Whether torch is tracing, compiling or exporting the model."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def can_run_natively(module: nn.Module, *tensors: torch.Tensor | None) -> bool:
    """Whether a native kernel may compute ``module`` on ``tensors`` (its input and, say, a
    residual; None entries are skipped): no autograd needed, nothing being recorded, and every
    tensor and the module's ``weight`` float32 on the CPU."""
    given = [tensor for tensor in tensors if tensor is not None]
    needs_grad = torch.is_grad_enabled() and (
        any(tensor.requires_grad for tensor in given)
        or any(parameter.requires_grad for parameter in module.parameters())
    )
    return (
        not needs_grad
        and not exporting()
        and all(
            t.dtype == torch.float32 and t.device.type == "cpu" for t in [*given, module.weight]
        )
    )
