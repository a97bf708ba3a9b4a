"""One trainer for every method: SGD, cosine or multistep schedule, seeded, resumable.

Determinism: the shuffling permutation and the augmentation of epoch ``e`` come from generators
seeded with ``(seed, e)`` (each sample's crop and flip are drawn for the whole epoch at once, so
they depend on the sample, not on the rank or batch that trains it), so an epoch depends only
on the model/optimiser state at its start. A checkpoint written atomically after every epoch
holds that state; ``resume=True`` reloads it and continues, and the resumed run ends with exactly
the numbers of an uninterrupted one (on CPU).

Accuracy reported is the final epoch's on the test split; the validation split is the only one
used to select anything (``best_val_acc`` is reported, never a best test accuracy).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from topoprune.data.memory import InMemoryImages, to_unit_float
from topoprune.data.transforms import BatchTransform
from topoprune.errors import TopopruneError
from topoprune.files import write_json, write_jsonl
from topoprune.training import distributed
from topoprune.training.checkpoint import check_model_state, load_checkpoint, save_checkpoint

Normalize = Callable[[torch.Tensor], torch.Tensor]
EpochCallback = Callable[[int, dict[str, Any]], None]

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"
RESULT_NAME = "result.json"


@dataclass
class TrainConfig:
    """Every knob of a training run; saved beside the run so that it can be replayed."""

    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    schedule: str = "cosine"  # "cosine" (per epoch), "multistep" or "constant"
    milestones: Sequence[int] = (30, 60, 90)
    gamma: float = 0.1
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision, used only on CUDA
    eval_batch_size: int = 512
    max_steps_per_epoch: int | None = None  # cap for smoke tests
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over every rank's batch
    # a run that is one window of a longer schedule (the stages of a progressive pruning):
    # its epoch e is epoch epoch_offset + e of a schedule of schedule_epochs epochs, for the
    # learning rate and the data order alike
    epoch_offset: int = 0
    schedule_epochs: int | None = None

    def validate(self) -> None:
        """Raise :class:`TopopruneError` (one line) on any setting that makes no sense."""
        if self.epochs < 1:
            raise TopopruneError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise TopopruneError(f"batch size must be >= 1, got {self.batch_size}")
        if self.eval_batch_size < 1:
            raise TopopruneError(f"eval batch size must be >= 1, got {self.eval_batch_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise TopopruneError(f"learning rate must be a finite number > 0, got {self.lr}")
        if not (math.isfinite(self.momentum) and 0 <= self.momentum):
            raise TopopruneError(f"momentum must be a finite number >= 0, got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise TopopruneError(f"weight decay must be >= 0, got {self.weight_decay}")
        if not (math.isfinite(self.gamma) and self.gamma > 0):
            raise TopopruneError(f"gamma must be a finite number > 0, got {self.gamma}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise TopopruneError(
                f"max steps per epoch must be >= 1 (or unset), got {self.max_steps_per_epoch}"
            )
        if any(m < 1 for m in self.milestones):
            raise TopopruneError(f"milestones must be epochs >= 1, got {list(self.milestones)}")
        distributed.check_device(self.device)
        if not 0 <= self.label_smoothing < 1:
            raise TopopruneError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.epoch_offset < 0:
            raise TopopruneError(f"epoch offset must be >= 0, got {self.epoch_offset}")
        if (
            self.schedule_epochs is not None
            and self.schedule_epochs < self.epoch_offset + self.epochs
        ):
            raise TopopruneError(
                f"a schedule of {self.schedule_epochs} epochs cannot hold epochs "
                f"{self.epoch_offset + 1}..{self.epoch_offset + self.epochs}"
            )
        if self.schedule not in ("cosine", "multistep", "constant"):
            raise TopopruneError(
                f"unknown schedule {self.schedule!r}: use cosine, multistep or constant"
            )

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["milestones"] = list(self.milestones)
        return record


@dataclass
class TrainResult:
    """What a run ends with. ``test_acc`` is the final epoch's, in percent.

    ``diverged``: the training loss became infinite or NaN; training stopped after that epoch
    and the figures are those of the diverged model (its losses are written as null).
    """

    test_acc: float
    test_loss: float
    val_acc: float | None
    best_val_acc: float | None
    best_val_epoch: int | None
    epochs: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    diverged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """An independent, reproducible generator per (seed, epoch, stream)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 7 + stream) % (2**63))


def _lr_factor(config: TrainConfig, epoch: int) -> float:
    """The multiplier of the base learning rate during ``epoch`` (0-based, of this run).

    >>> _lr_factor(TrainConfig(epochs=2, epoch_offset=2, schedule_epochs=4), 0)
    0.5
    """
    epoch += config.epoch_offset
    if config.schedule == "cosine":
        length = config.schedule_epochs or config.epochs
        return 0.5 * (1.0 + math.cos(math.pi * epoch / length))
    if config.schedule == "multistep":
        return config.gamma ** sum(epoch >= m for m in config.milestones)
    return 1.0


def batches(
    dataset: Dataset, indices: torch.Tensor, batch_size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (index: B long, x: B×C×H×W float, y: B long) over ``indices`` in order,
    ``batch_size`` at a time; ``index`` holds the samples' positions in ``dataset``."""
    chunks = [indices[s : s + batch_size] for s in range(0, len(indices), batch_size)]
    if isinstance(dataset, InMemoryImages):  # fast path: slice the stored tensors directly
        for chunk in chunks:
            yield chunk, to_unit_float(dataset.images[chunk]), dataset.labels[chunk]
        return
    loader = DataLoader(dataset, batch_sampler=[c.tolist() for c in chunks], num_workers=0)
    for chunk, (images, labels) in zip(chunks, loader, strict=True):
        yield chunk, images, labels


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    normalize: Normalize,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    ctx: distributed.DistContext | None = None,
) -> tuple[float, float]:
    """Return (accuracy in percent, mean cross-entropy) of ``model`` on ``dataset``.

    Under DDP every rank evaluates its own stripe and the sums are all-reduced.
    """
    ctx = ctx or distributed.DistContext(device=torch.device(device))
    was_training = model.training
    model.eval()
    indices = torch.arange(len(dataset))[ctx.rank :: ctx.world_size]
    totals = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # loss sum, correct, count
    with torch.inference_mode():
        for _, images, labels in batches(dataset, indices, batch_size):
            images, labels = images.to(ctx.device), labels.to(ctx.device)
            logits = model(normalize(images)).float()
            totals[0] += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            totals[1] += (logits.argmax(1) == labels).sum().item()
            totals[2] += len(labels)
    distributed.all_reduce_sum(totals, ctx)
    model.train(was_training)
    count = max(totals[2].item(), 1.0)
    return 100.0 * totals[1].item() / count, totals[0].item() / count


class Trainer:
    """Train ``model`` on ``splits`` (a :class:`topoprune.data.DatasetSplits`) with ``config``.

    Example::

        splits = load_dataset("digits")
        model = create_model("lenet5", num_classes=10, in_channels=1)
        result = Trainer(model, splits, TrainConfig(epochs=2, lr=0.05), out_dir="runs/x").fit()
        print(result.test_acc)
    """

    def __init__(
        self,
        model: nn.Module,
        splits: Any,
        config: TrainConfig,
        *,
        out_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        on_epoch_end: EpochCallback | None = None,
        record: dict[str, Any] | None = None,
    ) -> None:
        from topoprune.data.transforms import normalize, train_augment

        config.validate()
        self.config = config
        self.splits = splits
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.resume = resume
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        self.record = record or {}
        self.ctx = distributed.setup(config.device)
        self.model = model.to(self.ctx.device)
        self.augment: BatchTransform = train_augment(splits)
        self.normalize: Normalize = normalize(splits)
        self.use_amp = config.amp and self.ctx.device.type == "cuda"
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        if resume:
            self._load()

    # -- persistence -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.out_dir / CHECKPOINT_NAME if self.out_dir is not None else None

    def _load(self) -> None:
        path = self.checkpoint_path
        if path is None:
            raise TopopruneError("--resume needs --out DIR pointing at the run to continue")
        if not path.exists():
            raise TopopruneError(f"nothing to resume: {path} does not exist")
        state = load_checkpoint(path, map_location=self.ctx.device)
        if state["config"] != self.config.to_dict():
            raise TopopruneError(
                f"cannot resume {path}: it was started with other training settings; "
                "use the same options or a new --out"
            )
        check_model_state(path, state["model"], self.model.state_dict())
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = state["history"]
        self.start_epoch = state["epoch"] + 1

    def _save(self, epoch: int) -> None:
        if self.out_dir is None or not self.ctx.is_main:
            return
        save_checkpoint(
            self.checkpoint_path,
            {
                "epoch": epoch,
                "config": self.config.to_dict(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "history": self.history,
            },
        )
        write_jsonl(self.out_dir / LOG_NAME, self.history)

    # -- training ----------------------------------------------------------------------------
    def _train_epoch(self, model: nn.Module, epoch: int) -> tuple[float, float]:
        """One epoch over this rank's shard; returns (mean loss, accuracy %) over the samples
        of every rank (summed across ranks under torchrun)."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr * _lr_factor(config, epoch)
        draw_epoch = config.epoch_offset + epoch  # of the whole schedule
        torch.manual_seed(config.seed * 1_000_003 + draw_epoch)  # dropout and other global draws
        order = torch.randperm(
            len(self.splits.train), generator=epoch_generator(config.seed, draw_epoch, 0)
        )
        shard = order[self.ctx.rank :: self.ctx.world_size]
        steps = math.ceil(len(shard) / config.batch_size)
        if config.max_steps_per_epoch is not None:
            steps = min(steps, config.max_steps_per_epoch)
            shard = shard[: steps * config.batch_size]
        # every sample's crop and flip depend only on (seed, epoch, sample), not on the rank
        # or the batch it lands in, so N ranks train exactly as one process with N× the batch
        draws = self.augment.draw(
            len(self.splits.train), epoch_generator(config.seed, draw_epoch, 1)
        )
        model.train()
        totals = torch.zeros(3, dtype=torch.float64)
        bar = tqdm(
            batches(self.splits.train, shard, config.batch_size),
            total=steps,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not (self.progress and self.ctx.is_main),
            leave=False,
        )
        for index, images, labels in bar:
            images = self.augment.apply(images, draws.take(index))
            images = images.to(self.ctx.device, non_blocking=True)
            labels = labels.to(self.ctx.device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.use_amp):
                logits = model(images)
                loss = self.criterion(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            totals[0] += loss.item() * len(labels)
            totals[1] += (logits.argmax(1) == labels).sum().item()
            totals[2] += len(labels)
            bar.set_postfix(loss=f"{totals[0].item() / totals[2].item():.3f}")
        distributed.all_reduce_sum(totals, self.ctx)  # the whole epoch's figures, every rank
        count = max(totals[2].item(), 1.0)
        return totals[0].item() / count, 100.0 * totals[1].item() / count

    def fit(self) -> TrainResult:
        """Train from ``start_epoch`` to ``config.epochs``; return the final-epoch result."""
        config = self.config
        if self.out_dir is not None and self.ctx.is_main and self.start_epoch == 0:
            write_json(self.out_dir / "config.json", {"train": config.to_dict(), **self.record})
        if self.ctx.enabled and config.sync_bn:
            from topoprune.training.sync_bn import sync_batchnorm

            self.model = sync_batchnorm(self.model, self.ctx.device)
        model = self.model
        if self.ctx.enabled:
            device_ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        started = time.perf_counter()
        first = config.epochs if self._diverged() else self.start_epoch
        for epoch in range(first, config.epochs):
            epoch_start = time.perf_counter()
            train_loss, train_acc = self._train_epoch(model, epoch)
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "lr": self.optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
                "train_acc": train_acc,
            }
            if self.splits.val is not None and len(self.splits.val) > 0:
                row["val_acc"], row["val_loss"] = self._evaluate(self.splits.val)
            row["test_acc"], row["test_loss"] = self._evaluate(self.splits.test)
            row["seconds"] = time.perf_counter() - epoch_start
            if not math.isfinite(train_loss):
                row["diverged"] = True
            self.history.append(row)
            self._save(epoch)
            if self.progress and self.ctx.is_main:
                tqdm.write(_format_row(row))
            if self.on_epoch_end is not None:
                self.on_epoch_end(epoch, row)
            if self._diverged():
                break
        result = self._result(time.perf_counter() - started)
        if self.out_dir is not None and self.ctx.is_main:
            write_json(self.out_dir / RESULT_NAME, result.to_dict())
        return result

    def _evaluate(self, dataset: Dataset) -> tuple[float, float]:
        return evaluate(
            self.model,
            dataset,
            self.normalize,
            batch_size=self.config.eval_batch_size,
            ctx=self.ctx,
        )

    def _diverged(self) -> bool:
        return bool(self.history) and bool(self.history[-1].get("diverged"))

    def _result(self, seconds: float) -> TrainResult:
        last = self.history[-1]
        with_val = [row for row in self.history if "val_acc" in row]
        best = max(with_val, key=lambda row: row["val_acc"]) if with_val else None
        return TrainResult(
            test_acc=last["test_acc"],
            test_loss=last["test_loss"],
            val_acc=last.get("val_acc"),
            best_val_acc=best["val_acc"] if best else None,
            best_val_epoch=best["epoch"] if best else None,
            epochs=len(self.history),
            seconds=seconds,
            history=list(self.history),
            diverged=self._diverged(),
        )


def _format_row(row: dict[str, Any]) -> str:
    val = f" val {row['val_acc']:.2f}%" if "val_acc" in row else ""
    return (
        f"epoch {row['epoch']}: lr {row['lr']:.4g} loss {row['train_loss']:.4f} "
        f"train {row['train_acc']:.2f}%{val} test {row['test_acc']:.2f}%"
    )


def train(
    model: nn.Module,
    splits: Any,
    config: TrainConfig | None = None,
    **options: Any,
) -> TrainResult:
    """Train ``model`` on ``splits``: shorthand for ``Trainer(model, splits, config).fit()``."""
    return Trainer(model, splits, config or TrainConfig(), **options).fit()
