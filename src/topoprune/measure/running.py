"""Running a model for measurement: a checked example input and a temporary eval mode."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from topoprune.errors import TopopruneError


def parse_input_size(input_size: Sequence[int]) -> tuple[int, ...]:
    """``input_size`` as a tuple of positive ints, such as ``(3, 32, 32)`` (no batch dimension)."""
    sizes = tuple(input_size) if isinstance(input_size, Sequence) else ()
    valid = all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes)
    if not sizes or not valid:
        raise TopopruneError(
            f"input_size must be a tuple of positive ints without the batch dimension, "
            f"such as (3, 32, 32); got {input_size!r}"
        )
    return sizes


def parse_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device that exists on this machine."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise TopopruneError(f"unknown device {device!r}; use 'cpu' or 'cuda'") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise TopopruneError("CUDA is not available on this machine; use device='cpu'")
    return parsed


def example_input(
    model: nn.Module, input_size: Sequence[int], batch: int, device: str | torch.device
) -> torch.Tensor:
    """A zero tensor of shape ``(batch, *input_size)`` on ``device``, in the model's float dtype.

    Raises TopopruneError when the model's tensors live on another device.
    """
    sizes = parse_input_size(input_size)
    target = parse_device(device)
    tensors = [*model.parameters(), *model.buffers()]
    for tensor in tensors:
        same_type = tensor.device.type == target.type
        if not same_type or (target.index is not None and tensor.device.index != target.index):
            raise TopopruneError(
                f"the model is on {tensor.device} but device={str(target)!r}; "
                f"pass device={str(tensor.device)!r} or move the model with model.to(device)"
            )
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.float32)
    return torch.zeros(batch, *sizes, dtype=dtype, device=target)


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, with a shape or dtype failure turned into a TopopruneError on input_size."""
    try:
        return model(x)
    except RuntimeError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise TopopruneError(
            f"the model failed on an input of shape {tuple(x.shape)} ({reason}); check input_size"
        ) from error


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore every module's own mode."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
