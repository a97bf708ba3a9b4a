"""`topoprune prune`: prune before training, train, and report (Markdown + JSON)."""

from __future__ import annotations

import json

import pytest
import torch

from topoprune.cli import main
from topoprune.pruning import PruneResult


def test_prune_trains_and_reports(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "prune",
        "--method",
        "rgp",
        "--sparsity",
        "0.75",
        "--nodes",
        "16",
        "--steps",
        "200",
        "--model",
        "resnet20",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--batch-size",
        "32",
        "--latency-batch",
        "4",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| rgp |" in printed and "ASPL" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report["latency_ms"]) == {"dense", "masked", "realized"}
    assert report["pruning"]["metrics"]["graph"]["k"] == 4
    assert report["pruning"]["metrics"]["nominal_reduction"] == 0.75
    summary = report["summary"]
    assert summary["params"] < summary["dense_params"] and summary["macs"] < summary["dense_macs"]
    assert "| rgp |" in (out / "report.md").read_text()
    saved = PruneResult.load(out / "prune.pt")
    assert saved.record["call"]["nodes"] == 16
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    mask = checkpoint["model"]["layer1.0.conv1.weight_mask"]
    assert torch.equal(mask.bool(), saved.masks["layer1.0.conv1"])


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--sparsity", "1.5"], "sparsity"),
        (["--sparsity", "0.8", "--nodes", "15"], "even"),
        (["--sparsity", "0.75", "--method", "nope"], "unknown pruning method"),
        (["--sparsity", "0.75", "--nodez", "8"], "rgp has no option --nodez; its options"),
        (["--sparsity", "0.75", "--nodes", "eight"], "rgp option 'nodes' must be int | null"),
        (["--sparsity", "0.75", "stray"], "unexpected argument 'stray'"),
        (["--sparsity", "0.75", "--graph", "missing.npy"], "missing.npy"),
        (["--sparsity", "0.75", "--epochs", "0"], "epochs"),
    ],
)
def test_prune_bad_input_exits_2_and_writes_nothing(extra, fragment, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["prune", "--model", "resnet20", "--dataset", "digits", "--out", str(out)]
    argv += [*extra] if "--method" in extra else ["--method", "rgp", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert not out.exists()
