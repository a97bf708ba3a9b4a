"""A whole training run from names: load the data, build the model, train, count, summarise.

:func:`setup_run` loads the dataset and builds the model; :func:`train_setup` trains it with the
one trainer (:class:`topoprune.training.Trainer`) and counts it; :func:`run_training` does both for
``topoprune train``. Every run writes the same files: ``config.json`` (the replay record),
``log.jsonl`` (one row per epoch), ``checkpoint.pt``, ``result.json`` and ``summary.json``.
The protocol runners (:mod:`topoprune.experiments.protocols`) prune the set-up model between
the two steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from topoprune.data import load_dataset
from topoprune.files import write_json
from topoprune.measure import count
from topoprune.models import create_model
from topoprune.training.trainer import CHECKPOINT_NAME, TrainConfig, Trainer, TrainResult


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


@dataclass
class RunSetup:
    """A run's data and freshly built model, and the record of how they were made.

    input_size: (C, H, W) of one input; model_kwargs: what ``create_model`` was given.
    """

    model_name: str
    dataset: str
    splits: Any
    model: nn.Module
    model_kwargs: dict[str, Any]
    input_size: tuple[int, int, int]
    record: dict[str, Any]


def setup_run(
    model_name: str,
    dataset: str,
    *,
    seed: int = 0,
    root: str | None = None,
    split_seed: int = 0,
    widths: list[int] | None = None,
) -> RunSetup:
    """Load ``dataset`` and build ``model_name`` (initialised with ``seed``) for it."""
    splits = load_dataset(dataset, root=root, split_seed=split_seed)
    model_kwargs = {
        "num_classes": splits.num_classes,
        "in_channels": splits.in_channels,
        "widths": widths,
    }
    model = create_model(model_name, **model_kwargs, seed=seed)
    record = {
        "model": model_name,
        "dataset": dataset,
        "root": root,
        "split_seed": split_seed,
        "widths": widths,
    }
    input_size = (splits.in_channels, *splits.image_size)
    return RunSetup(model_name, dataset, splits, model, model_kwargs, input_size, record)


def train_setup(
    setup: RunSetup,
    config: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    record: dict[str, Any] | None = None,
    tensorboard: str | Path | None = None,
) -> RunSummary:
    """Train ``setup.model`` (as it is: masked, narrowed, ...) and return its summary.

    ``record`` (JSON) is saved in ``config.json`` beside the setup's own record;
    ``tensorboard``: a folder to stream the epochs' scalars to.
    """
    from topoprune.training.tensorboard import scalar_writer

    result = Trainer(
        setup.model,
        setup.splits,
        config,
        out_dir=out_dir,
        resume=resume,
        progress=progress,
        record={**setup.record, **(record or {})},
        on_epoch_end=None if tensorboard is None else scalar_writer(tensorboard),
    ).fit()
    model = setup.model.cpu()  # counting and the reports' latencies run on the CPU
    counts = count(model, setup.input_size)
    summary = RunSummary(
        model=setup.model_name,
        dataset=setup.dataset,
        test_acc=result.test_acc,
        params=counts.params,
        macs=counts.macs,
        dense_params=counts.dense_params,
        dense_macs=counts.dense_macs,
        input_size=setup.input_size,
        model_kwargs=setup.model_kwargs,
        train=result,
        trained=model,
    )
    if out_dir is not None:
        write_json(Path(out_dir) / "summary.json", summary.to_dict())
    return summary


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
    widths: list[int] | None = None,
    record: dict[str, Any] | None = None,
    overwrite: bool = False,
    tensorboard: str | Path | None = None,
) -> RunSummary:
    """Train ``model_name`` from scratch on ``dataset`` and return its summary.

    With a ``record`` (:func:`topoprune.experiments.records.run_record`) the output folder is
    claimed once every input has been checked: an existing run there needs ``resume`` with the
    same record, or ``overwrite``.
    """
    from topoprune.experiments.records import check_claimable, claim_folder
    from topoprune.training.tensorboard import check_tensorboard

    config.validate()  # before anything is written
    if tensorboard is not None:
        check_tensorboard()
    claiming = out_dir is not None and record is not None
    if claiming:
        check_claimable(Path(out_dir), resume=resume, overwrite=overwrite)
    setup = setup_run(
        model_name, dataset, seed=config.seed, root=root, split_seed=split_seed, widths=widths
    )
    if claiming:
        claim_folder(out_dir, record, resume=resume, overwrite=overwrite)
        resume = resume and (Path(out_dir) / CHECKPOINT_NAME).exists()
    return train_setup(
        setup, config, out_dir=out_dir, resume=resume, progress=progress, tensorboard=tensorboard
    )
