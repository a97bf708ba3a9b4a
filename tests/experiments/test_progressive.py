"""Pruning in stages (EXP's progressive schedule) through the protocol runner: the layout of a
run, the learning rate across stages, a real kill and resume, and starting from trained weights."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from topoprune.cli import main
from topoprune.experiments.protocols import run_pruned
from topoprune.models import create_model
from topoprune.pruning import prune, prune_progressively, pruning_stages
from topoprune.training import TrainConfig
from topoprune.training.checkpoint import load_checkpoint

STAGES = 18  # resnet20's convs after the first
DATA = ["--model", "resnet20", "--dataset", "digits", "--max-steps", "1", "--no-progress"]
EXP = ["prune", "--method", "exp", "--sparsity", "0.7", *DATA, "--latency-batch", "2"]


def _config(epochs: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, max_steps_per_epoch=1, batch_size=32, lr=0.1)


def test_without_fine_tuning_the_stages_give_the_one_shot_masks():
    for mode in ("A", "B"):
        staged = create_model("resnet20", in_channels=1, seed=3)
        one_shot = create_model("resnet20", in_channels=1, seed=3)
        stages = list(prune_progressively(staged, "exp", 0.6, mode=mode, seed=5))
        result = prune(one_shot, "exp", 0.6, mode=mode, seed=5)
        assert [stage.index for stage in stages] == list(range(STAGES))
        assert all(len(stage.result.masks) == stage.index + 1 for stage in stages)
        final = stages[-1].result
        assert final.masks.keys() == result.masks.keys()
        assert all(torch.equal(final.masks[n], result.masks[n]) for n in result.masks)
        assert final.metrics["nominal_reduction"] == result.metrics["nominal_reduction"]


def test_the_stages_follow_the_options():
    model = create_model("resnet20", in_channels=1)
    stages = pruning_stages(model, "exp", 0.7, finetune_epochs=3, finetune_schedule="restart")
    assert len(stages.layers) == STAGES and stages.layers[0] == ("layer1.0.conv1",)
    assert (stages.epochs, stages.restart, stages.total_epochs) == (3, True, 3 * STAGES)
    one_shot = pruning_stages(model, "exp", 0.7, one_shot=True, finetune_epochs=2)
    assert len(one_shot.layers) == 1 and len(one_shot.layers[0]) == STAGES
    assert one_shot.total_epochs == 2 * STAGES
    assert pruning_stages(model, "l1", 0.7) is None


def _exp_run(out, **options):
    """ResNet-20 on digits pruned by exp at 0.7: two dense epochs, then one per stage."""
    return run_pruned(
        "resnet20",
        "digits",
        _config(STAGES + 2),
        method="exp",
        sparsity=0.7,
        prune_options=options,
        out_dir=out,
        progress=False,
        measure_speed=False,
    )


def test_a_progressive_run_fine_tunes_after_every_conv_on_one_schedule(tmp_path):
    out = tmp_path / "run"
    run = _exp_run(out)
    assert sorted(p.name for p in (out / "stages").iterdir()) == [
        f"{i:02d}" for i in range(1, STAGES)
    ]
    assert (out / "checkpoint.pt").exists() and (out / "pretrain" / "checkpoint.pt").exists()
    assert len(run.stages) == STAGES and run.stages[-1]["layers"] == ["layer3.2.conv2"]
    assert len(run.pretrain.train.history) == 2  # the budget less one epoch per stage
    lrs = [
        load_checkpoint(out / "stages" / f"{i:02d}" / "checkpoint.pt")["history"][0]["lr"]
        for i in range(1, STAGES)
    ]
    lrs.append(run.summary.train.history[0]["lr"])
    assert lrs == pytest.approx(
        [0.05 * (1 + math.cos(math.pi * i / STAGES)) for i in range(STAGES)]
    )
    config = json.loads((out / "stages" / "05" / "config.json").read_text())
    assert config["stage"] == {"index": 5, "of": STAGES, "layers": ["layer1.2.conv1"]}
    assert config["train"]["epoch_offset"] == 4 and config["dense_epochs"] == 2
    masked = [n for n, m in run.summary.trained.named_modules() if hasattr(m, "weight_mask")]
    assert len(masked) == STAGES and run.pruning.metrics["macs_reduction"] > 0.6
    assert run.train_seconds() > run.summary.train.seconds


def test_one_shot_prunes_once_and_fine_tunes_the_same_epochs(tmp_path):
    run = _exp_run(tmp_path / "run", one_shot=True)
    assert not (tmp_path / "run" / "stages").exists() and run.stages == []
    assert len(run.pretrain.train.history) == 2 and len(run.summary.train.history) == STAGES


def test_a_killed_progressive_run_resumes_to_the_uninterrupted_numbers(tmp_path):
    # every run in a process of its own, with the same threads: float sums depend on them
    rates = "[0.0]+[0.6]*3+[0.0]*15"  # three stages of two epochs
    argv = [*EXP, "--rates", rates, "--epochs", "7", "--finetune-epochs", "2"]
    command = [sys.executable, "-m", "topoprune", *argv, "--out"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    assert subprocess.run([*command, str(tmp_path / "whole")], **quiet).returncode == 0
    killed = tmp_path / "killed"
    child = subprocess.Popen([*command, str(killed)], **quiet)
    mid_stage = killed / "stages" / "02" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not mid_stage.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert not (killed / "report.json").exists()  # it really stopped midway
    assert load_checkpoint(mid_stage)["epoch"] == 0  # inside stage 2, after its first epoch
    assert subprocess.run([*command, str(killed), "--resume"], **quiet).returncode == 0
    whole = json.loads((tmp_path / "whole" / "report.json").read_text())
    resumed = json.loads((killed / "report.json").read_text())
    assert resumed["stages"] == [
        {**row, "train_s": resumed["stages"][i]["train_s"]} for i, row in enumerate(whole["stages"])
    ]
    assert resumed["summary"]["train"]["history"] == [
        {**row, "seconds": resumed["summary"]["train"]["history"][i]["seconds"]}
        for i, row in enumerate(whole["summary"]["train"]["history"])
    ]
    final = [load_checkpoint(d / "checkpoint.pt")["model"] for d in (tmp_path / "whole", killed)]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[0])


def test_from_trained_weights_skips_the_dense_phase(tmp_path):
    dense = tmp_path / "dense"
    assert main(["train", *DATA, "--epochs", "1", "--out", str(dense)]) == 0
    out = tmp_path / "run"
    argv = [*EXP, "--epochs", str(STAGES), "--from", str(dense), "--out", str(out)]
    assert main(argv) == 0
    assert not (out / "pretrain").exists()
    record = json.loads((out / "run.json").read_text())["start_from"]
    assert record["source"] == str(dense / "checkpoint.pt") and len(record["sha256"]) == 64
    weights = create_model("resnet20", in_channels=1, num_classes=10, seed=9)
    run = run_pruned(
        "resnet20",
        "digits",
        _config(STAGES),
        method="exp",
        sparsity=0.7,
        start_from=weights,
        progress=False,
        measure_speed=False,
    )
    assert run.pretrain is None and len(run.stages) == STAGES


def test_one_shot_fine_tunes_finetune_total_epochs_when_given():
    from topoprune.errors import TopopruneError
    from topoprune.pruning.exp import ExpOptions, exp_stages

    model = create_model("resnet20", in_channels=1)
    stages = exp_stages(model, 0.7, ExpOptions(one_shot=True, finetune_total=3))
    assert len(stages.layers) == 1 and len(stages.layers[0]) == STAGES and stages.epochs == 3
    assert exp_stages(model, 0.7, ExpOptions(one_shot=True)).epochs == STAGES
    with pytest.raises(TopopruneError, match="applies to one_shot only"):
        prune(model, "exp", 0.7, finetune_total=3)
