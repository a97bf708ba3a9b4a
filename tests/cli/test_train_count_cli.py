"""`topoprune train`, `count` and `demo` from the command line: outputs, files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from topoprune.cli import main


def test_train_writes_a_replayable_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "lenet5",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--lr",
        "0.05",
        "--max-steps",
        "3",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "MACs" in printed
    for name in ("config.json", "log.jsonl", "checkpoint.pt", "result.json", "summary.json"):
        assert (out / name).exists(), name
    record = json.loads((out / "config.json").read_text())
    assert record["model"] == "lenet5" and record["train"]["epochs"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["flops"] == 2 * summary["macs"]
    assert len((out / "log.jsonl").read_text().splitlines()) == 2


def test_resume_of_a_finished_run_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--model",
        "lenet5",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    first = json.loads((out / "result.json").read_text())
    assert main([*argv, "--resume"]) == 0
    assert json.loads((out / "result.json").read_text())["test_acc"] == first["test_acc"]


def test_count_prints_params_and_macs(capsys):
    assert main(["count", "--model", "resnet20", "--input", "3x32x32"]) == 0
    printed = capsys.readouterr().out
    assert "MACs" in printed and "FLOPs" in printed


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["count", "--model", "nosuchnet"], "nosuchnet"),
        (["count", "--model", "resnet20", "--input", "3x32"], "CxHxW"),
        (["train", "--model", "lenet5", "--dataset", "nosuchdata"], "nosuchdata"),
        (["train", "--model", "lenet5", "--dataset", "cifar10"], "--root"),
        (["train", "--model", "lenet5", "--dataset", "digits", "--epochs", "0"], "epochs"),
        (["train", "--model", "lenet5", "--dataset", "digits", "--resume"], "--out"),
        (["train", "--model", "lenet5"], "--dataset"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_console_script_runs_as_a_process():
    done = subprocess.run(
        [sys.executable, "-m", "topoprune", "count", "--model", "lenet5", "--input", "1x28x28"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "topoprune", "count", "--model", "lenet5", "--input", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
