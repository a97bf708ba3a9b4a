"""DDP through PyTorch's own engine: two CPU processes (gloo) train one model in lock step."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from topoprune.data import load_dataset
from topoprune.models import create_model
from topoprune.training import TrainConfig, train


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _join(rank: int, world: int, port: int) -> None:
    """Set what torchrun sets for this rank of ``world`` (the trainer joins the group)."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )


def _worker(rank: int, world: int, port: int, out: str) -> None:
    _join(rank, world, port)
    torch.set_num_threads(1)
    splits = load_dataset("digits")
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1)
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05, seed=0, max_steps_per_epoch=5)
    result = train(model, splits, config, progress=False, out_dir=out if rank == 0 else None)
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"acc": result.test_acc, "weights": weights}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_two_ranks_stay_in_lock_step(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert torch.equal(rank0["weights"], rank1["weights"])  # DDP keeps replicas identical
    assert rank0["acc"] == rank1["acc"]  # evaluation is all-reduced over the two stripes
    assert (tmp_path / "log.jsonl").exists()  # only rank 0 writes


def _prune_worker(rank: int, world: int, port: int, out: str) -> None:
    _join(rank, world, port)
    torch.set_num_threads(1)
    from topoprune.experiments.protocols import run_pruned

    config = TrainConfig(epochs=1, batch_size=16, lr=0.05, seed=0, max_steps_per_epoch=3)
    run = run_pruned(  # a time-budgeted graph search: the ranks' own graphs differ
        "resnet20",
        "digits",
        config,
        method="rgp",
        sparsity=0.75,
        prune_options={"nodes": 16, "seconds": 0.2, "strategy": "anneal"},
        out_dir=f"{out}/run",
        progress=False,
        measure_speed=False,
    )
    model = run.summary.trained
    masks = {n: b for n, b in model.named_buffers() if n.endswith("weight_mask")}
    weights = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"masks": masks, "weights": weights}, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_a_pruned_run_trains_under_two_ranks_with_rank_0s_masks(tmp_path):
    mp.spawn(_prune_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0["masks"].keys() == rank1["masks"].keys() and rank0["masks"]
    for name, mask in rank0["masks"].items():  # DDP broadcast rank 0's masks to rank 1
        assert torch.equal(mask, rank1["masks"][name])
    assert torch.equal(rank0["weights"], rank1["weights"])
    written = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "run.json" in written and "prune.pt" in written and "checkpoint.pt" in written
    assert not list((tmp_path / "run").glob(".*.tmp"))  # no rank raced on a write


def _weights(model) -> torch.Tensor:
    """Every parameter and BatchNorm running statistic, flattened."""
    state = [p.detach().flatten() for p in model.parameters()]
    state += [b.detach().float().flatten() for n, b in model.named_buffers() if "running" in n]
    return torch.cat(state)


def _train_steps(model_name: str, batch_size: int, sync_bn: bool):
    torch.set_num_threads(1)
    splits = load_dataset("digits")
    model = create_model(model_name, num_classes=10, in_channels=1, seed=0)
    config = TrainConfig(
        epochs=1, batch_size=batch_size, lr=0.05, seed=0, max_steps_per_epoch=5, sync_bn=sync_bn
    )
    train(model, splits, config, progress=False)
    return _weights(model)


def _lock_step_worker(rank: int, world: int, port: int, out: str, name: str, sync: bool) -> None:
    _join(rank, world, port)
    weights = _train_steps(name, 8, sync)
    torch.save(weights, f"{out}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize(("name", "sync"), [("lenet5", False), ("resnet20", True)])
def test_two_ranks_train_as_one_process_with_the_same_global_batch(tmp_path, name, sync):
    mp.spawn(
        _lock_step_worker, args=(2, _free_port(), str(tmp_path), name, sync), nprocs=2, join=True
    )
    ranks = torch.load(tmp_path / "rank0.pt")
    alone = _train_steps(name, 16, sync)  # one process, the global batch of the two ranks
    assert torch.equal(ranks, torch.load(tmp_path / "rank1.pt"))
    assert (ranks - alone).abs().max().item() < 1e-5


def test_without_sync_bn_the_ranks_normalise_with_their_own_statistics(tmp_path):
    mp.spawn(
        _lock_step_worker,
        args=(2, _free_port(), str(tmp_path), "resnet20", False),
        nprocs=2,
        join=True,
    )
    assert (
        torch.load(tmp_path / "rank0.pt") - _train_steps("resnet20", 16, False)
    ).abs().max() > 1e-4
