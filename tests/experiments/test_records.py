"""Run records: resume refuses what does not match, damaged or foreign files are one line."""

from __future__ import annotations

import json

import pytest
import torch

from topoprune.cli import main
from topoprune.errors import TopopruneError
from topoprune.experiments.records import first_difference, remove_leftovers

PRUNE = ["prune", "--method", "rgp", "--sparsity", "0.5", "--nodes", "6"]
TINY = ["--model", "lenet5", "--dataset", "digits", "--max-steps", "1", "--no-progress"]


@pytest.fixture
def pruned_run(tmp_path):
    out = tmp_path / "run"
    assert main([*PRUNE, *TINY, "--latency-batch", "2", "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (["--method", "lattice"], "method.method"),
        (["--sparsity", "0.75"], "method.sparsity"),
        (["--nodes", "8"], "method.nodes"),
        (["--dataset", "mnist5k"], "dataset"),
        (["--split-seed", "1"], "split_seed"),
    ],
)
def test_a_resume_with_another_setting_names_the_field(pruned_run, change, field, capsys):
    argv = [*PRUNE, *TINY, "--out", str(pruned_run), "--resume"]
    for i in range(0, len(change), 2):
        if change[i] in argv:
            argv[argv.index(change[i]) + 1] = change[i + 1]
        else:
            argv += change[i : i + 2]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"it was run with {field} = " in err[0]


def test_the_record_holds_the_whole_run(pruned_run):
    record = json.loads((pruned_run / "run.json").read_text())
    assert record["method"]["method"] == "rgp" and record["method"]["nodes"] == 6
    assert record["method"]["strategy"] == "anneal"  # defaults are filled in
    assert record["train"]["max_steps_per_epoch"] == 1 and record["dataset"] == "digits"
    environment = record["environment"]
    assert {"python", "torch", "numpy", "topoprune", "git", "device", "threads", "seed"} <= set(
        environment
    )
    assert environment["device"] == "cpu"


def test_a_resume_removes_leftover_temporary_files_and_finishes(pruned_run):
    leftover = pruned_run / ".checkpoint.pt.abc123.tmp"
    leftover.write_bytes(b"half a checkpoint")
    assert main([*PRUNE, *TINY, "--latency-batch", "2", "--out", str(pruned_run), "--resume"]) == 0
    assert not leftover.exists()
    assert remove_leftovers(pruned_run) == []


def test_a_checkpoint_of_another_model_is_refused_before_loading(pruned_run, capsys):
    checkpoint = torch.load(pruned_run / "checkpoint.pt", weights_only=False)
    checkpoint["model"]["fc1.bias"] = torch.zeros(7)
    torch.save(checkpoint, pruned_run / "checkpoint.pt")
    argv = [*PRUNE, *TINY, "--latency-batch", "2", "--out", str(pruned_run), "--resume"]
    assert main(argv) == 2
    assert "holds another model: 'fc1.bias' is (7,) there" in capsys.readouterr().err


def test_an_empty_or_foreign_checkpoint_is_one_line(tmp_path):
    from topoprune.training.checkpoint import load_checkpoint

    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(TopopruneError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "empty.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(TopopruneError, match="not a topoprune training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_first_difference_walks_nested_records():
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 3}]}) == "a[1].b"
    assert first_difference({"a": 1}, {"a": 1, "c": 2}) == "c"
    assert first_difference({"a": [1]}, {"a": [1, 2]}) == "a"
    assert first_difference({"x": 1.0}, {"x": 1.0}) is None
