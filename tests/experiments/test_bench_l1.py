"""The L1 baseline's protocol: dense epochs, physical pruning, fine-tuning, resumable."""

from __future__ import annotations

import json

import pytest

from topoprune.errors import TopopruneError
from topoprune.experiments.bench_l1 import L1Protocol, run_l1
from topoprune.measure import count
from topoprune.train import TrainConfig
from topoprune.train.trainer import Trainer


def test_the_budget_splits_into_dense_and_fine_tuning_epochs():
    assert L1Protocol().epochs(5) == (2, 3)
    assert L1Protocol(pretrain_fraction=0.75).epochs(100) == (75, 25)
    with pytest.raises(TopopruneError, match="at least one epoch on each side"):
        L1Protocol().epochs(1)
    with pytest.raises(TopopruneError, match="finetune_lr_scale must be > 0"):
        L1Protocol(finetune_lr_scale=0).validate(4)


def test_train_prune_fine_tune_then_resume_to_the_same_numbers(tmp_path, monkeypatch):
    config = TrainConfig(
        epochs=4,
        max_steps_per_epoch=1,
        batch_size=32,
        lr=0.05,
        schedule="multistep",
        milestones=(2, 3),
    )
    protocol = L1Protocol(pretrain_fraction=0.5, finetune_lr_scale=0.5)
    run = run_l1(
        "lenet5",
        "digits",
        config,
        sparsity=0.75,
        protocol=protocol,
        out_dir=tmp_path,
        progress=False,
        latency_batch=2,
    )
    narrow = run.summary.trained
    assert narrow.conv2.out_channels < 16 and run.channels.widths["conv2"][0] == 16
    assert run.summary.params == run.channels.params == count(narrow, (1, 8, 8)).params
    assert run.summary.macs == run.channels.macs <= run.channels.budget
    assert run.channels.dense_params == run.pretrain.params
    assert (run.pretrain.train.epochs, run.summary.train.epochs) == (2, 2)
    pretrain = json.loads((tmp_path / "pretrain" / "config.json").read_text())["train"]
    finetune = json.loads((tmp_path / "config.json").read_text())
    assert (pretrain["milestones"], pretrain["lr"]) == ([1, 2], 0.05)
    assert (finetune["train"]["milestones"], finetune["train"]["lr"]) == ([1, 2], 0.025)
    assert finetune["prepare"]["channels"]["widths"] == run.channels.widths
    assert set(run.latency_ms) == {"dense", "realized"}

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished phase was trained again")

    monkeypatch.setattr(Trainer, "_train_epoch", must_not_train)
    again = run_l1(
        "lenet5",
        "digits",
        config,
        sparsity=0.75,
        protocol=protocol,
        out_dir=tmp_path,
        progress=False,
        latency_batch=None,
    )
    assert again.summary.test_acc == run.summary.test_acc
    assert again.channels == run.channels and again.latency_ms == {}
