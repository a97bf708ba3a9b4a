"""A smoke test of `topoprune demo` on tiny settings: three runs, one table, and it replays."""

from __future__ import annotations

import json

from topoprune.cli import main


def test_the_demo_runs_twice_and_writes_its_table(tmp_path, capsys):
    argv = ["demo", "--epochs", "1", "--max-steps", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert main(argv) == 0  # the demo replaces its runs rather than refusing the folder
    table = (tmp_path / "report.md").read_text()
    for label in ("dense", "rgp", "lattice"):
        assert f"| {label} |" in table
        assert (tmp_path / label / "run.json").exists()
    assert "| rgp | 64 | 4 |" in table  # the paper's 64_4 graph
    assert table in capsys.readouterr().out

    # timed side by side after training: one dense timing, shared by every row
    reports = {
        label: json.loads((tmp_path / label / "report.json").read_text())
        for label in ("dense", "rgp", "lattice")
    }
    assert len({report["latency_ms"]["dense"] for report in reports.values()}) == 1
    for label in ("rgp", "lattice"):
        assert set(reports[label]["latency_ms"]) == {"dense", "masked", "realized"}
