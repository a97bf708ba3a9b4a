"""--tensorboard streams the scalars of log.jsonl; without the package it is one clear error."""

from __future__ import annotations

import json
import sys
import types

import pytest

from topoprune.cli import main
from topoprune.errors import TopopruneError
from topoprune.training.tensorboard import check_tensorboard


class _FakeWriter:
    written: list[tuple[str, str, float, int]] = []

    def __init__(self, log_dir: str) -> None:
        self.log_dir = log_dir

    def add_scalar(self, name: str, value: float, step: int) -> None:
        self.written.append((self.log_dir, name, value, step))

    def flush(self) -> None:
        pass


@pytest.fixture
def fake_tensorboard(monkeypatch):
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = _FakeWriter
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    _FakeWriter.written = []
    return _FakeWriter


def test_every_epoch_scalar_of_the_log_reaches_tensorboard(tmp_path, fake_tensorboard):
    board = tmp_path / "tb"
    argv = ["train", "--model", "lenet5", "--dataset", "digits", "--epochs", "2"]
    argv += ["--max-steps", "1", "--no-progress", "--out", str(tmp_path / "run")]
    assert main([*argv, "--tensorboard", str(board)]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    expected = {
        (str(board), name, value, row["epoch"])
        for row in log
        for name, value in row.items()
        if name != "epoch"
    }
    assert set(fake_tensorboard.written) == expected
    assert {name for _, name, _, _ in fake_tensorboard.written} >= {"train_loss", "test_acc", "lr"}


def test_without_the_package_it_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(TopopruneError, match="needs the tensorboard package"):
        check_tensorboard()
