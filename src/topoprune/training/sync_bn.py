"""``--sync-bn``: BatchNorm statistics over the batch of every rank, on GPUs and on CPUs.

Under torchrun each rank sees only its own part of the global batch, so plain BatchNorm
normalises with per-rank statistics and N ranks no longer train like one process with N× the
batch. On CUDA, PyTorch's own :class:`torch.nn.SyncBatchNorm` fixes that; it refuses CPU
tensors, so on CPU (gloo) every BatchNorm2d becomes a :class:`GlobalBatchNorm2d`, which sums the
per-channel sums and sums of squares over the ranks with a differentiable all-reduce (the
gradients of the shared statistics flow back to every rank, as in SyncBatchNorm).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the batches of all ranks.

    Input (B, C, H, W). Outside training, or on one process, it is plain BatchNorm2d; the
    parameters and buffers are BatchNorm2d's, so state dicts are interchangeable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        wide = x.double()  # the sums of squares need the precision
        local = torch.stack([wide.sum(dims), (wide * wide).sum(dims)])  # (2, C)
        total = all_reduce(local)  # differentiable sum over the ranks
        count = torch.tensor([float(x.numel() // x.shape[1])], dtype=torch.float64)
        dist.all_reduce(count)
        n = count.item()
        mean = total[0] / n
        var = total[1] / n - mean * mean
        self._update_running(mean.detach(), var.detach() * n / max(n - 1, 1))
        shape = (1, -1, 1, 1)
        scale = torch.rsqrt(var + self.eps).to(x.dtype)
        y = (x - mean.to(x.dtype).view(shape)) * scale.view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        factor = (
            self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        )
        self.running_mean.mul_(1 - factor).add_(factor * mean.to(self.running_mean.dtype))
        self.running_var.mul_(1 - factor).add_(factor * unbiased_var.to(self.running_var.dtype))


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with batch statistics shared by all ranks: torch's SyncBatchNorm on CUDA,
    :class:`GlobalBatchNorm2d` (in place, same parameters and buffers) elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = GlobalBatchNorm2d
    return model
