"""The protocol runners: after-training splits the epochs, prunes, fine-tunes and resumes."""

from __future__ import annotations

import json

import pytest

from topoprune.errors import TopopruneError
from topoprune.experiments.protocols import run_pruned
from topoprune.measure import count
from topoprune.pruning.registry import AfterTrainingOptions
from topoprune.training import TrainConfig
from topoprune.training.trainer import Trainer


def test_the_budget_splits_into_dense_and_fine_tuning_epochs():
    assert AfterTrainingOptions().epochs(5) == (2, 3)
    assert AfterTrainingOptions(pretrain_fraction=0.75).epochs(100) == (75, 25)
    with pytest.raises(TopopruneError, match="at least one epoch on each side"):
        AfterTrainingOptions().epochs(1)
    with pytest.raises(TopopruneError, match="finetune_lr_scale must be > 0"):
        AfterTrainingOptions(finetune_lr_scale=0).validate(4)


def test_l1_trains_prunes_fine_tunes_then_resumes_to_the_same_numbers(tmp_path, monkeypatch):
    config = TrainConfig(
        epochs=4,
        max_steps_per_epoch=1,
        batch_size=32,
        lr=0.05,
        schedule="multistep",
        milestones=(2, 3),
    )
    options = {"pretrain_fraction": 0.5, "finetune_lr_scale": 0.5}

    def run(latency_batch, resume=False):
        return run_pruned(
            "lenet5",
            "digits",
            config,
            method="l1",
            sparsity=0.75,
            prune_options=options,
            out_dir=tmp_path,
            progress=False,
            latency_batch=latency_batch or 1,
            measure_speed=latency_batch is not None,
            resume=resume,
        )

    first = run(2)
    narrow = first.summary.trained
    channels = first.pruning.metrics["channels"]
    assert narrow.conv2.out_channels < 16 and channels["widths"]["conv2"][0] == 16
    assert first.summary.params == channels["params"] == count(narrow, (1, 8, 8)).params
    assert first.summary.macs == channels["macs"] <= channels["budget"]
    assert channels["dense_params"] == first.pretrain.params
    assert (first.pretrain.train.epochs, first.summary.train.epochs) == (2, 2)
    pretrain = json.loads((tmp_path / "pretrain" / "config.json").read_text())["train"]
    finetune = json.loads((tmp_path / "config.json").read_text())
    assert (pretrain["milestones"], pretrain["lr"]) == ([1, 2], 0.05)
    assert (finetune["train"]["milestones"], finetune["train"]["lr"]) == ([1, 2], 0.025)
    assert finetune["pruning"]["call"]["method"] == "l1"
    assert finetune["pruning"]["protocol"] == "after-training"
    assert set(first.latency_ms) == {"dense", "realized"}

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished phase was trained again")

    monkeypatch.setattr(Trainer, "_train_epoch", must_not_train)
    with pytest.raises(TopopruneError, match="already holds a run: --resume to continue it"):
        run(None)
    again = run(None, resume=True)
    assert again.summary.test_acc == first.summary.test_acc
    assert again.pruning.metrics["channels"] == channels and again.latency_ms == {}
