"""The ASPL study: files, exact correlations, and finished runs never repeated."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
from scipy import stats

from topoprune.cli import main
from topoprune.experiments import aspl_study
from topoprune.experiments.aspl_study import correlations, per_graph
from topoprune.graphs import load_graph
from topoprune.graphs.spectrum import spectral_gap


def test_correlations_match_scipy():
    aspl = np.array([1.8, 2.0, 2.2, 2.5, 3.0])
    acc = np.array([95.0, 94.0, 94.5, 92.0, 90.0])
    r, p, rho, p_rho = correlations(aspl, acc)
    assert r == pytest.approx(stats.pearsonr(aspl, acc).statistic)
    assert p == pytest.approx(stats.pearsonr(aspl, acc).pvalue)
    assert rho == pytest.approx(stats.spearmanr(aspl, acc).statistic) and rho < 0
    assert p_rho == pytest.approx(stats.spearmanr(aspl, acc).pvalue)
    assert np.isnan(correlations(np.array([2.0, 2.0, 2.0]), acc[:3])[0])


def test_per_graph_mean_and_std():
    rows = [
        {"graph": "M1", "aspl": 2.5, "test_acc": 90.0},
        {"graph": "M0", "aspl": 2.0, "test_acc": 94.0},
        {"graph": "M0", "aspl": 2.0, "test_acc": 96.0},
    ]
    table = per_graph(rows)
    assert [g["graph"] for g in table] == ["M0", "M1"]
    assert table[0]["mean_acc"] == 95.0 and table[0]["std_acc"] == pytest.approx(np.sqrt(2.0))
    assert table[1]["std_acc"] == 0.0 and table[1]["runs"] == 1


def test_study_runs_resumes_and_reports(tmp_path, monkeypatch):
    out = tmp_path / "study"
    argv = [
        "study",
        "aspl",
        "--model",
        "lenet5",
        "--dataset",
        "digits",
        "--nodes",
        "8",
        "--degree",
        "4",
        "--graphs",
        "3",
        "--seeds",
        "2",
        "--bank-seconds",
        "0.5",
        "--epochs",
        "1",
        "--max-steps",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # lenet5's 6-channel conv gets its own graph
        assert main(argv) == 0
    with open(out / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {r["seed"] for r in rows} == {"0", "1"}
    assert len({r["graph"] for r in rows}) == 3
    summary = json.loads((out / "correlation.json").read_text())
    aspl = np.array([float(r["aspl"]) for r in rows])
    acc = np.array([float(r["test_acc"]) for r in rows])
    expected = correlations(aspl, acc)
    assert summary["runs"] == 6
    if np.isnan(expected[0]):  # undefined: strict JSON writes it as null
        assert summary["pearson_r"] is None
    else:
        assert summary["pearson_r"] == pytest.approx(expected[0])
    gaps = np.array([float(r["spectral_gap"]) for r in rows])
    bank_index = json.loads((out / "bank" / "index.json").read_text())["graphs"]
    by_label = {entry["label"]: entry["file"] for entry in bank_index}
    for row in rows:  # each row's gap is its graph's
        adj = load_graph(out / "bank" / by_label[row["graph"]])
        assert float(row["spectral_gap"]) == pytest.approx(spectral_gap(adj))
    expected_gap = correlations(gaps, acc)
    if not np.isnan(expected_gap[0]):
        assert summary["gap_pearson_r"] == pytest.approx(expected_gap[0])
    assert (out / "aspl_vs_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Pearson" in (out / "study.md").read_text()
    assert "Spectral gap: Pearson" in (out / "study.md").read_text()

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("topoprune.experiments.protocols.run_pruned", must_not_train)
    assert main(argv) == 2  # the folder holds a study: continuing it needs --resume
    assert main([*argv, "--resume"]) == 0
    assert len((out / aspl_study.RUNS_FILE).read_text().splitlines()) == 6
    changed = [*argv, "--resume"]
    changed[changed.index("--degree") + 1] = "2"
    assert main(changed) == 2  # another degree would reuse the old bank: refused


def test_study_bad_input_exits_2(tmp_path, capsys):
    base = ["study", "aspl", "--model", "lenet5", "--dataset", "digits"]
    assert main([*base, "--nodes", "7", "--degree", "3", "--out", str(tmp_path / "x")]) == 2
    assert main([*base, "--nodes", "8", "--degree", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "even" in err[0] and "--out" in err[1]
    assert not (tmp_path / "x").exists()
