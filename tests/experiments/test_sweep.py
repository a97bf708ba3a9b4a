"""--search: a sweep of short runs, the best by validation accuracy trained again, resumable."""

from __future__ import annotations

import json

import pytest
import torch

from topoprune.cli import main
from topoprune.errors import TopopruneError
from topoprune.experiments.sweep import run_search, sweep_grid
from topoprune.pruning import PruneResult
from topoprune.training import TrainConfig
from topoprune.training.trainer import Trainer

CONFIG = TrainConfig(epochs=2, max_steps_per_epoch=2, batch_size=32, lr=0.05)


def search(out, **changes):
    arguments = {
        "method": "smallworld",
        "sparsity": 0.8,
        "sweep_epochs": 1,
        "out_dir": out,
        "grid": {"rewire_p": [0.0, 1.0], "density": ["sqrt", "uniform"]},
        "prune_options": {"topology": False},
        "progress": False,
        "measure_speed": False,
        **changes,
    }
    return run_search("lenet5", "digits", CONFIG, **arguments)


def test_the_best_combination_by_validation_is_trained_again_with_its_masks(tmp_path):
    final, rows = search(tmp_path)
    assert [(row["rewire_p"], row["density"]) for row in rows] == [
        (0.0, "sqrt"),
        (0.0, "uniform"),
        (1.0, "sqrt"),
        (1.0, "uniform"),
    ]
    chosen = json.loads((tmp_path / "sweep.json").read_text())["chosen"]
    highest = max(row["val_acc"] for row in rows)
    first_best = next(row for row in rows if row["val_acc"] == highest)
    assert chosen == {key: first_best[key] for key in ("rewire_p", "density")}
    call = final.pruning.record["call"]
    assert (call["rewire_p"], call["density"]) == (chosen["rewire_p"], chosen["density"])
    trial = tmp_path / "sweep" / f"rewire_p={chosen['rewire_p']},density={chosen['density']}"
    short = PruneResult.load(trial / "prune.pt")
    assert all(torch.equal(short.masks[k], final.pruning.masks[k]) for k in short.masks)
    assert final.summary.train.epochs == 2
    assert json.loads((trial / "config.json").read_text())["train"]["epochs"] == 1
    assert "## Sweep: 1 epochs per combination" in (tmp_path / "report.md").read_text()


def test_a_finished_search_resumes_without_training(tmp_path, monkeypatch):
    first, rows = search(tmp_path)

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(Trainer, "_train_epoch", must_not_train)
    again, rows_again = search(tmp_path, resume=True)
    assert rows_again == rows and again.summary.test_acc == first.summary.test_acc


def test_the_method_default_grid_and_bad_grids():
    assert len(sweep_grid("smallworld", None)) == 15
    with pytest.raises(TopopruneError, match="rgp has no default sweep"):
        sweep_grid("rgp", None)


def test_a_bad_combination_fails_before_any_training(tmp_path):
    with pytest.raises(TopopruneError, match="rewire_p' must be float"):
        search(tmp_path, grid={"rewire_p": [0.1, "x"]})
    assert not (tmp_path / "sweep").exists()


def test_the_cli_searches_and_prints_the_sweep(tmp_path, capsys):
    argv = ["prune", "--method", "smallworld", "--sparsity", "0.8", "--search"]
    argv += ["--sweep", "rewire_p=0,1", "--sweep-epochs", "1", "--no-topology"]
    argv += ["--model", "lenet5", "--dataset", "digits", "--max-steps", "1", "--epochs", "2"]
    argv += ["--latency-batch", "2", "--no-progress", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| rewire_p | val acc (%) | params removed | chosen |" in printed
    assert main([*argv[:-1], str(tmp_path / "other"), "--sweep", "nonsense"]) == 2


def test_a_resumed_search_refuses_changed_settings_and_overwrite_spares_other_folders(tmp_path):
    search(tmp_path / "a", grid={"rewire_p": [0.0]})
    with pytest.raises(TopopruneError, match="it was run with method.sparsity = 0.8, not 0.7"):
        search(tmp_path / "a", grid={"rewire_p": [0.0]}, sparsity=0.7, resume=True)
    other = tmp_path / "b"
    other.mkdir()
    (other / "keep.txt").write_text("not a run")
    search(other, grid={"rewire_p": [0.0]}, overwrite=True)
    assert (other / "keep.txt").exists()
