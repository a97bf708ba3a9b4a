"""Training the PruningNet (a random width configuration per batch) and scoring candidates.

Training is seeded and resumable: the data order, the augmentation and every batch's sampled
ratios come from generators seeded with ``(seed, epoch)``, and a checkpoint written after every
epoch holds the rest, so a resumed training ends with the uninterrupted one's weights.

A candidate (one keep ratio per node) is scored with the weights the PruningNet generates for
it: BatchNorm statistics recalibrated on a fixed set of training batches (the same for every
candidate), then loss and accuracy on the validation split.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from topoprune.data.transforms import normalize, train_augment
from topoprune.errors import TopopruneError
from topoprune.pruning.graphpruning.pruning_net import RATIOS, PruningNet, candidate_model
from topoprune.training.checkpoint import save_checkpoint
from topoprune.training.trainer import batches, epoch_generator, evaluate

CHECKPOINT = "pruningnet.pt"


@dataclass(frozen=True)
class NetSchedule:
    """How the PruningNet trains: epochs, batch, SGD with a cosine learning rate."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4


def sample_ratios(nodes: int, generator: torch.Generator) -> torch.Tensor:
    """(nodes,) keep ratios, each drawn uniformly from :data:`RATIOS`."""
    picks = torch.randint(len(RATIOS), (nodes,), generator=generator)
    return torch.tensor([RATIOS[i] for i in picks.tolist()])


def train_pruning_net(
    net: PruningNet,
    splits: Any,
    schedule: NetSchedule,
    *,
    seed: int = 0,
    folder: Path | None = None,
    progress: bool = False,
) -> list[dict[str, float]]:
    """Train ``net`` in place, one random configuration per batch; the history, one row per
    epoch (loss, accuracy of the sampled configurations, seconds). With ``folder``, resumes
    from and writes ``pruningnet.pt`` there."""
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=schedule.lr,
        momentum=schedule.momentum,
        weight_decay=schedule.weight_decay,
    )
    history: list[dict[str, float]] = []
    path = None if folder is None else folder / CHECKPOINT
    if path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["schedule"] != asdict(schedule) or state["seed"] != seed:
            raise TopopruneError(f"{path} was trained with other settings: use a new --out")
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        history = state["history"]
    augment = train_augment(splits)
    criterion = nn.CrossEntropyLoss()
    for epoch in range(len(history), schedule.epochs):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr * 0.5 * (1 + math.cos(math.pi * epoch / schedule.epochs))
        order = torch.randperm(len(splits.train), generator=epoch_generator(seed, epoch, 0))
        draws = augment.draw(len(splits.train), epoch_generator(seed, epoch, 1))
        choices = epoch_generator(seed, epoch, 2)
        net.train()
        totals = [0.0, 0.0, 0]
        steps = math.ceil(len(order) / schedule.batch_size)
        bar = tqdm(
            batches(splits.train, order, schedule.batch_size),
            total=steps,
            desc=f"PruningNet epoch {epoch + 1}/{schedule.epochs}",
            disable=not progress,
            leave=False,
        )
        for index, images, labels in bar:
            images = augment.apply(images, draws.take(index))
            logits = net(images, sample_ratios(len(net.graph.nodes), choices))
            loss = criterion(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals[0] += loss.item() * len(labels)
            totals[1] += (logits.argmax(1) == labels).sum().item()
            totals[2] += len(labels)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": totals[0] / totals[2],
                "acc": 100.0 * totals[1] / totals[2],
                "seconds": time.perf_counter() - started,
            }
        )
        if path is not None:
            state = {
                "net": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                "history": history,
                "schedule": asdict(schedule),
                "seed": seed,
            }
            save_checkpoint(path, state)
    return history


@torch.no_grad()
def recalibrate(model: nn.Module, splits: Any, batch_count: int, batch_size: int) -> nn.Module:
    """Recompute every BatchNorm's running statistics as the plain average over the first
    ``batch_count`` batches of a fixed order of the training split (no augmentation)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    scale = normalize(splits)
    order = torch.randperm(len(splits.train), generator=epoch_generator(0, 0, 3))
    order = order[: batch_count * batch_size]
    model.train()
    for _, images, _ in batches(splits.train, order, batch_size):
        model(scale(images))
    return model.eval()


def score(
    net: PruningNet, ratios: torch.Tensor, splits: Any, batch_count: int, batch_size: int
) -> tuple[float, float]:
    """(validation loss, validation accuracy %) of the generated weights for ``ratios``."""
    model = recalibrate(candidate_model(net, ratios), splits, batch_count, batch_size)
    if splits.val is None or len(splits.val) == 0:
        raise TopopruneError("graphpruning scores candidates on a validation split; this has none")
    accuracy, loss = evaluate(model, splits.val, normalize(splits), batch_size=512)
    return loss, accuracy
