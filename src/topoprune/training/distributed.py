"""Training on many GPUs through PyTorch's own engine: launched by ``torchrun``, wrapped in DDP.

``torchrun --nproc_per_node 4 -m topoprune train ...`` sets RANK, WORLD_SIZE and LOCAL_RANK; the
trainer then calls :func:`setup` and every rank trains on its own shard of each epoch's seeded
permutation. Only rank 0 writes logs and checkpoints. On one CPU nothing of this is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from topoprune.errors import TopopruneError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when the usual torchrun environment variables are set with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def check_device(requested: str) -> None:
    """Refuse a device name torch does not know, or a CUDA device this machine lacks."""
    if requested == "auto":
        return
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise TopopruneError(
            f"unknown device {requested!r}: use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TopopruneError(
                f"--device {requested}: this machine (or this torch build) has no CUDA device; "
                "use cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TopopruneError(
                f"--device {requested}: only {torch.cuda.device_count()} CUDA devices here"
            )
    elif device.type not in ("cpu", "cuda"):
        raise TopopruneError(f"--device {requested}: topoprune trains on cpu or cuda")


def pick_device(requested: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` means this rank's CUDA device when there is one, else the CPU."""
    if requested == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def setup(requested_device: str = "auto") -> DistContext:
    """Join the process group when launched by torchrun; otherwise a single-process context."""
    if not launched_by_torchrun():
        return DistContext(device=pick_device(requested_device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device)


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over all ranks (a no-op on one process)."""
    if ctx.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def teardown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
