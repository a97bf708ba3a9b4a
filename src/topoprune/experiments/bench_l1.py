"""The L1 filter-pruning baseline's protocol: train dense, remove channels by L1, fine-tune.

The mask methods prune before training and train for E epochs. L1 pruning needs trained weights
(a channel's L1 norm says nothing at initialisation), so under the same budget of E epochs:

1. train the dense model from scratch for ``E1 = floor(pretrain_fraction · E)`` epochs, with the
   run's training settings and its schedule compressed into those E1 epochs (cosine over E1
   epochs; multistep milestones scaled by E1 / E);
2. remove the channels with the lowest group L1 norm, physically
   (:func:`topoprune.pruning.l1.l1_prune`), until the narrower model has at most the MACs (or
   params, ``target``) that a mask method keeps at the same sparsity;
3. fine-tune the narrower model for the other ``E − E1`` epochs: same settings, learning rate
   × ``finetune_lr_scale``, the schedule restarted and compressed into those epochs.

``finetune_lr_scale`` defaults to 1: the fine-tuning repeats the schedule from its start
("learning-rate rewinding", which Renda, Frankle and Carbin, ICLR 2020, found to beat
fine-tuning at the final small learning rate); 0.1 gives the classic low-rate fine-tuning.

Reported accuracy is the last fine-tuning epoch's on the test split; params and MACs are those
of the narrower model. Phase 1 runs in ``OUT/pretrain`` and phase 2 in ``OUT``, each with its own
checkpoint; the widths depend only on the architecture and the ratio, and the ratio only on the
budget, so a resumed fine-tune re-prunes phase 1's final weights into the same narrow model
before it loads its checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from topoprune.errors import TopopruneError
from topoprune.measure import latency
from topoprune.models import create_model
from topoprune.pruning.l1 import ChannelPruning, check_target, l1_prune
from topoprune.train import TrainConfig
from topoprune.train.run import RunSummary, run_training

PRETRAIN_DIR = "pretrain"


@dataclass(frozen=True)
class L1Protocol:
    """How the E epochs of the budget are split, what is matched, how fine-tuning starts."""

    pretrain_fraction: float = 0.5
    target: str = "macs"
    finetune_lr_scale: float = 1.0

    def epochs(self, total: int) -> tuple[int, int]:
        """(dense epochs, fine-tuning epochs) out of ``total``; both must be at least 1.

        >>> L1Protocol().epochs(5)
        (2, 3)
        """
        dense = math.floor(self.pretrain_fraction * total)
        if not 1 <= dense < total:
            raise TopopruneError(
                f"l1 trains dense for floor({self.pretrain_fraction} x {total}) = {dense} of "
                f"{total} epochs; it needs at least one epoch on each side of the pruning: "
                "raise training.epochs or change pretrain_fraction"
            )
        return dense, total - dense

    def validate(self, total_epochs: int) -> None:
        """Raise :class:`TopopruneError` unless the protocol fits ``total_epochs``."""
        check_target(self.target)
        if not 0.0 < self.finetune_lr_scale:
            raise TopopruneError(f"finetune_lr_scale must be > 0, got {self.finetune_lr_scale!r}")
        self.epochs(total_epochs)


@dataclass
class L1Run:
    """The fine-tuned narrow model's summary, the dense phase's, and what was removed."""

    summary: RunSummary
    pretrain: RunSummary
    channels: ChannelPruning
    protocol: L1Protocol
    latency_ms: dict[str, float] = field(default_factory=dict)


def _phase(config: TrainConfig, epochs: int, lr: float) -> TrainConfig:
    """``config`` for a phase of ``epochs`` epochs: milestones scaled, learning rate ``lr``."""
    scale = epochs / config.epochs
    milestones = tuple(round(m * scale) for m in config.milestones)
    return replace(config, epochs=epochs, lr=lr, milestones=milestones)


def _resumable(folder: Path | None) -> bool:
    return folder is not None and (folder / "checkpoint.pt").exists()


def run_l1(
    model_name: str,
    dataset: str,
    config: TrainConfig,
    *,
    sparsity: float,
    protocol: L1Protocol = L1Protocol(),
    root: str | None = None,
    widths: list[int] | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    latency_batch: int | None = 64,
) -> L1Run:
    """Train, L1-prune to the budget of ``sparsity`` and fine-tune, in ``config.epochs`` epochs.

    ``latency_batch``: time the dense and the narrow model on a batch this size (None: skip).
    """
    protocol.validate(config.epochs)
    dense_epochs, finetune_epochs = protocol.epochs(config.epochs)
    out = Path(out_dir) if out_dir is not None else None
    pretrain_dir = out / PRETRAIN_DIR if out is not None else None
    pretrain = run_training(
        model_name,
        dataset,
        _phase(config, dense_epochs, config.lr),
        root=root,
        out_dir=pretrain_dir,
        resume=_resumable(pretrain_dir),
        progress=progress,
        widths=widths,
    )
    pruned: dict[str, ChannelPruning] = {}

    def prepare(model: nn.Module) -> dict[str, Any]:
        model.load_state_dict(pretrain.trained.state_dict())
        pruned["channels"] = l1_prune(model, sparsity, pretrain.input_size, target=protocol.target)
        return {
            "method": "l1",
            "sparsity": sparsity,
            "protocol": asdict(protocol),
            "dense_epochs": dense_epochs,
            "channels": pruned["channels"].to_dict(),
        }

    summary = run_training(
        model_name,
        dataset,
        _phase(config, finetune_epochs, config.lr * protocol.finetune_lr_scale),
        root=root,
        out_dir=out,
        resume=_resumable(out),
        progress=progress,
        prepare=prepare,
        widths=widths,
    )
    run = L1Run(summary, pretrain, pruned["channels"], protocol)
    if latency_batch is not None:
        dense = create_model(summary.model, **summary.model_kwargs)
        run.latency_ms["dense"] = latency(dense, summary.input_size, latency_batch).median_ms
        narrow = latency(summary.trained, summary.input_size, latency_batch).median_ms
        run.latency_ms["realized"] = narrow
    return run
