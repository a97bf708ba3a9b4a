"""The trainer: seeded, resumable to the exact numbers, masks respected, schedules exact."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.data import load_dataset
from topoprune.errors import TopopruneError
from topoprune.models import create_model
from topoprune.training import TrainConfig, Trainer, train
from topoprune.training.trainer import _lr_factor

CONFIG = dict(epochs=3, batch_size=64, lr=0.05, seed=3, max_steps_per_epoch=6)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", split_seed=0)


def fresh_model(seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("lenet5", num_classes=10, in_channels=1)


def without_time(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def assert_same_state(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_same_seed_same_numbers(digits):
    first, second = fresh_model(), fresh_model()
    r1 = train(first, digits, TrainConfig(**CONFIG), progress=False)
    r2 = train(second, digits, TrainConfig(**CONFIG), progress=False)
    assert without_time(r1.history) == without_time(r2.history)
    assert_same_state(first, second)
    assert r1.epochs == 3 and r1.test_acc == r1.history[-1]["test_acc"]


def test_interrupted_and_resumed_equals_uninterrupted(digits, tmp_path):
    whole = fresh_model()
    expected = train(whole, digits, TrainConfig(**CONFIG), out_dir=tmp_path / "a", progress=False)

    def crash_after_second_epoch(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            fresh_model(),
            digits,
            TrainConfig(**CONFIG),
            out_dir=tmp_path / "b",
            progress=False,
            on_epoch_end=crash_after_second_epoch,
        )
    log = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2
    resumed_model = fresh_model(seed=99)  # different init: everything must come from the checkpoint
    resumed = train(
        resumed_model,
        digits,
        TrainConfig(**CONFIG),
        out_dir=tmp_path / "b",
        resume=True,
        progress=False,
    )
    assert without_time(resumed.history) == without_time(expected.history)
    assert resumed.test_acc == expected.test_acc
    assert_same_state(resumed_model, whole)
    rows = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert json.loads((tmp_path / "b" / "result.json").read_text())["test_acc"] == expected.test_acc


def test_resume_with_other_settings_is_refused(digits, tmp_path):
    train(fresh_model(), digits, TrainConfig(**{**CONFIG, "epochs": 1}), out_dir=tmp_path)
    with pytest.raises(TopopruneError, match="other training settings"):
        Trainer(
            fresh_model(),
            digits,
            TrainConfig(**{**CONFIG, "lr": 0.2}),
            out_dir=tmp_path,
            resume=True,
        )


def test_resume_without_checkpoint_is_refused(digits, tmp_path):
    with pytest.raises(TopopruneError, match="nothing to resume"):
        Trainer(fresh_model(), digits, TrainConfig(**CONFIG), out_dir=tmp_path, resume=True)


def test_masked_weights_stay_zero(digits):
    model = fresh_model()
    conv = model.get_submodule(model.first_conv_name)
    mask = torch.ones_like(conv.weight)
    mask[::2] = 0
    prune.custom_from_mask(conv, "weight", mask)
    train(model, digits, TrainConfig(**CONFIG), progress=False)
    assert torch.count_nonzero(conv.weight[::2]) == 0
    assert torch.count_nonzero(conv.weight[1::2]) == conv.weight[1::2].numel()


def test_training_learns_digits(digits):
    config = TrainConfig(epochs=3, batch_size=32, lr=0.05, seed=0)
    result = train(fresh_model(0), digits, config, progress=False)
    assert result.test_acc > 80.0
    assert result.best_val_epoch in (1, 2, 3)


def test_schedules_are_exact():
    cosine = TrainConfig(epochs=4, schedule="cosine")
    assert [_lr_factor(cosine, e) for e in range(4)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    )
    steps = TrainConfig(epochs=10, schedule="multistep", milestones=(3, 6), gamma=0.1)
    assert [_lr_factor(steps, e) for e in (0, 2, 3, 5, 6, 9)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )


@pytest.mark.parametrize(
    "bad",
    [
        dict(epochs=0),
        dict(batch_size=0),
        dict(lr=0.0),
        dict(schedule="linear"),
        dict(label_smoothing=1.0),
        dict(weight_decay=-1.0),
    ],
)
def test_bad_settings_raise(bad):
    with pytest.raises(TopopruneError):
        TrainConfig(**bad).validate()


def test_a_diverged_run_stops_says_so_and_writes_strict_json(tmp_path):
    import json

    from topoprune.data import load_dataset
    from topoprune.models import create_model

    def refuse(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")

    splits = load_dataset("digits")
    model = create_model("lenet5", num_classes=10, in_channels=1, seed=0)
    config = TrainConfig(epochs=3, lr=1e12, max_steps_per_epoch=3, batch_size=32)
    result = Trainer(model, splits, config, out_dir=tmp_path, progress=False).fit()
    assert result.diverged and result.epochs == 1  # stopped after the epoch that diverged
    log = [json.loads(line, parse_constant=refuse) for line in open(tmp_path / "log.jsonl")]
    assert log[-1]["diverged"] is True and log[-1]["train_loss"] is None
    saved = json.loads((tmp_path / "result.json").read_text(), parse_constant=refuse)
    assert saved["diverged"] is True
    again = Trainer(model, splits, config, out_dir=tmp_path, resume=True, progress=False).fit()
    assert again.diverged and again.epochs == 1  # a resumed diverged run does not go on
