"""A whole training run from names: load the data, build the model, train, count, summarise.

The CLI's ``train`` and ``demo`` commands (and later methods that prune before training) go through
:func:`run_training` so that every run writes the same files: ``config.json`` (the replay record),
``log.jsonl`` (one row per epoch), ``checkpoint.pt`` and ``result.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from topoprune.data import load_dataset
from topoprune.files import write_json
from topoprune.measure import count
from topoprune.models import create_model
from topoprune.train.trainer import TrainConfig, Trainer, TrainResult


@dataclass
class RunSummary:
    """The figures a person asks for after a run."""

    model: str
    dataset: str
    test_acc: float
    params: int
    macs: int
    dense_params: int
    dense_macs: int
    input_size: tuple[int, int, int]
    model_kwargs: dict[str, Any]
    train: TrainResult
    trained: nn.Module = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        summary = {k: v for k, v in self.__dict__.items() if k not in ("train", "trained")}
        return {**summary, "flops": 2 * self.macs, "train": self.train.to_dict()}

    def describe(self) -> str:
        return (
            f"{self.model} on {self.dataset}: test accuracy {self.test_acc:.2f}% (final epoch), "
            f"params {self.params:,} (dense {self.dense_params:,}), "
            f"MACs {self.macs:,} (dense {self.dense_macs:,}; FLOPs = 2 x MACs)"
        )


def run_training(
    model_name: str,
    dataset: str,
    config: TrainConfig,
    *,
    root: str | None = None,
    split_seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    prepare: Callable[[nn.Module], dict[str, Any]] | None = None,
    widths: list[int] | None = None,
) -> RunSummary:
    """Train ``model_name`` from scratch on ``dataset`` and return its summary.

    ``prepare(model)`` may change the freshly built model in place (e.g. apply pruning masks) before
    training and returns a JSON-serialisable record of what it did, saved in ``config.json``.
    """
    config.validate()  # before anything is written
    splits = load_dataset(dataset, root=root, split_seed=split_seed)
    model_kwargs = {
        "num_classes": splits.num_classes,
        "in_channels": splits.in_channels,
        "widths": widths,
    }
    model = create_model(model_name, **model_kwargs, seed=config.seed)
    record: dict[str, Any] = {
        "model": model_name,
        "dataset": dataset,
        "root": root,
        "split_seed": split_seed,
        "widths": widths,
    }
    if prepare is not None:
        record["prepare"] = prepare(model)
    result = Trainer(
        model, splits, config, out_dir=out_dir, resume=resume, progress=progress, record=record
    ).fit()
    model.cpu()  # counting and the reports' latencies run on the CPU
    input_size = (splits.in_channels, *splits.image_size)
    counts = count(model, input_size)
    summary = RunSummary(
        model=model_name,
        dataset=dataset,
        test_acc=result.test_acc,
        params=counts.params,
        macs=counts.macs,
        dense_params=counts.dense_params,
        dense_macs=counts.dense_macs,
        input_size=input_size,
        model_kwargs=model_kwargs,
        train=result,
        trained=model,
    )
    if out_dir is not None:
        write_json(Path(out_dir) / "summary.json", summary.to_dict())
    return summary
