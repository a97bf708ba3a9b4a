"""The benchmark: files and row counts, exact summaries, resuming, refusing, parallel workers."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from topoprune.cli import main
from topoprune.errors import TopopruneError
from topoprune.experiments import bench
from topoprune.experiments.bench import run_bench
from topoprune.graphs.spectrum import spectral_gap
from topoprune.pruning import PruneResult
from topoprune.training.trainer import Trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMES = ("wall_s", "train_s")


def tiny(**changes):
    """Two methods x one sparsity x two seeds of LeNet-5 on 8x8 digits, two steps each."""
    base = {
        "model": "lenet5",
        "widths": [8, 16, 32, 16],
        "dataset": "digits",
        "training": {"epochs": 1, "max_steps_per_epoch": 2, "batch_size": 32, "lr": 0.05},
        "methods": ["dense", {"name": "rgp", "nodes": 8, "steps": 50}],
        "sparsities": [0.5],
        "seeds": 2,
        "latency_batch": None,
    }
    return {**base, **changes}


def without_times(rows):
    return sorted(
        ({k: v for k, v in row.items() if k not in TIMES} for row in rows),
        key=lambda row: (row["label"], row["sparsity"], row["seed"]),
    )


def fake_row(config, job, folder, progress=False):
    """What run_job returns, made up from the job (no training)."""
    return {
        "label": job.method.label,
        "method": job.method.name,
        "sparsity": job.sparsity,
        "seed": job.seed,
        "test_acc": 50.0 + 10 * job.seed + 100 * job.sparsity,
        "params": 100,
        "macs": 1000,
        "dense_params": 200,
        "dense_macs": 2000,
        "params_reduction": 0.5,
        "macs_reduction": 0.5,
        "nominal_reduction": job.sparsity,
        "aspl": None if job.method.name == "dense" else 1.5 + job.seed,
        "nodes": None if job.method.name == "dense" else 8,
        "degree": None if job.method.name == "dense" else 4,
        "wall_s": 1.0,
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A real tiny benchmark, run once for the tests that read its folder."""
    out = tmp_path_factory.mktemp("bench")
    config = tiny(latency_batch=2)
    return out, run_bench(config, out, progress=False)


def test_the_folder_holds_every_file_with_the_right_row_counts(finished):
    out, result = finished
    rows = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(rows) == len(result.rows) == 4 and result.trained == 4
    assert sorted((r["label"], r["seed"]) for r in rows) == [
        ("dense", 0),
        ("dense", 1),
        ("rgp", 0),
        ("rgp", 1),
    ]
    with open(out / "summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert [(s["label"], s["sparsity"], s["runs"]) for s in summary] == [
        ("dense", "0.0", "2"),
        ("rgp", "0.5", "2"),
    ]
    for name in ("accuracy_vs_macs.png", "accuracy_vs_params.png", "aspl_vs_accuracy_s0.5.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    report = (out / "report.md").read_text()
    assert "| dense | 0 | 2 |" in report and "| rgp | 0.5 | 2 |" in report
    assert "![accuracy_vs_macs](accuracy_vs_macs.png)" in report
    assert json.loads((out / "bench.json").read_text())["sparsities"] == [0.5]
    assert all((out / "runs" / name / "checkpoint.pt").exists() for name in ("rgp_s0.5_seed1",))


def test_rows_hold_true_counts_graph_figures_and_latencies(finished):
    _, result = finished
    by_label = {(r["label"], r["seed"]): r for r in result.rows}
    dense, rgp = by_label[("dense", 0)], by_label[("rgp", 0)]
    assert dense["params"] == dense["dense_params"] == rgp["dense_params"]
    assert dense["params_reduction"] == 0.0 and dense["nominal_reduction"] == 0.0
    assert rgp["params"] < dense["params"] and rgp["nominal_reduction"] == 0.5
    assert rgp["params_reduction"] == 1 - rgp["params"] / rgp["dense_params"]
    assert (rgp["nodes"], rgp["degree"]) == (8, 4) and rgp["aspl"] > 1.0
    pruned = PruneResult.load(finished[0] / "runs" / "rgp_s0.5_seed0" / "prune.pt")
    assert rgp["spectral_gap"] == pytest.approx(spectral_gap(np.asarray(pruned.graph)))
    assert dense["spectral_gap"] is None
    assert dense["latency_masked_ms"] is None and dense["latency_dense_ms"] > 0
    assert rgp["latency_masked_ms"] > 0 and rgp["latency_realized_ms"] > 0
    # timed side by side after training: one dense timing shared by every row of the call
    assert len({row["latency_dense_ms"] for row in result.rows}) == 1


def test_the_summary_is_the_exact_mean_and_std_of_the_rows(finished):
    _, result = finished
    for entry in result.summary:
        runs = [r for r in result.rows if r["label"] == entry["label"]]
        accuracies = np.array([r["test_acc"] for r in runs])
        assert entry["test_acc_mean"] == float(accuracies.mean())
        assert entry["test_acc_std"] == float(accuracies.std(ddof=1))
        assert entry["params"] == runs[0]["params"]
        assert entry["wall_s"] == float(np.mean([r["wall_s"] for r in runs]))


def test_a_rerun_skips_finished_runs(finished, monkeypatch):
    out, result = finished

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(bench, "run_job", must_not_run)
    again = run_bench(tiny(latency_batch=2), out, progress=False)
    assert again.trained == 0 and again.rows == result.rows
    retimed = run_bench(tiny(latency_batch=2), out, progress=False, retime=True)
    assert retimed.trained == 0 and len(retimed.rows) == len(result.rows)
    assert len({row["latency_dense_ms"] for row in retimed.rows}) == 1  # one new side-by-side run
    for before, after in zip(result.rows, retimed.rows, strict=True):
        assert {k: v for k, v in before.items() if not k.startswith("latency")} == {
            k: v for k, v in after.items() if not k.startswith("latency")
        }
        assert (before["latency_masked_ms"] is None) == (after["latency_masked_ms"] is None)


def test_only_missing_runs_are_trained_and_rows_of_other_configs_are_kept(tmp_path, monkeypatch):
    calls = []

    def counting(config, job, folder, progress=False):
        calls.append(job.key)
        return fake_row(config, job, folder)

    monkeypatch.setattr(bench, "run_job", counting)
    run_bench(tiny(), tmp_path, progress=False)
    assert len(calls) == 4
    more = run_bench(tiny(seeds=3, sparsities=[0.5, 0.75]), tmp_path, progress=False)
    assert sorted(calls[4:]) == [
        ("dense", 0.0, 2),
        ("rgp", 0.5, 2),
        ("rgp", 0.75, 0),
        ("rgp", 0.75, 1),
        ("rgp", 0.75, 2),
    ]
    assert more.trained == 5 and len(more.rows) == 9
    fewer = run_bench(tiny(seeds=[1]), tmp_path, progress=False)
    assert len(calls) == 9 and len(fewer.rows) == 2
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 9  # nothing is thrown away
    assert [s["runs"] for s in fewer.summary] == [1, 1]


def test_a_folder_of_another_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_job", fake_row)
    run_bench(tiny(), tmp_path, progress=False)
    with pytest.raises(TopopruneError, match="another 'training'"):
        run_bench(tiny(training={"epochs": 1, "lr": 0.2}), tmp_path, progress=False)
    changed = tiny(methods=["dense", {"name": "rgp", "nodes": 8, "steps": 60}])
    with pytest.raises(TopopruneError, match="runs of 'rgp' with other options"):
        run_bench(changed, tmp_path, progress=False)
    relabelled = tiny(methods=["dense", {"name": "rgp", "label": "rgp60", "nodes": 8}])
    assert run_bench(relabelled, tmp_path, progress=False).trained == 2


def test_a_run_cut_off_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    config = tiny(methods=["dense"], seeds=[0], training={"epochs": 2, "max_steps_per_epoch": 2})
    whole = run_bench(config, tmp_path / "whole", progress=False)
    real_epoch = Trainer._train_epoch

    def stop_in_epoch_two(self, model, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real_epoch(self, model, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", stop_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run_bench(config, tmp_path / "cut", progress=False)
    assert not (tmp_path / "cut" / "runs.jsonl").exists()
    assert (tmp_path / "cut" / "runs" / "dense_seed0" / "checkpoint.pt").exists()
    epochs = []

    def count_epochs(self, model, epoch):
        epochs.append(epoch)
        return real_epoch(self, model, epoch)

    monkeypatch.setattr(Trainer, "_train_epoch", count_epochs)
    resumed = run_bench(config, tmp_path / "cut", progress=False)
    assert epochs == [1]
    assert without_times(resumed.rows) == without_times(whole.rows)


def test_a_worker_process_gives_the_same_row_as_this_one(tmp_path):
    config = tiny(methods=["dense"], seeds=[1], training={"epochs": 1, "max_steps_per_epoch": 1})
    here = run_bench(config, tmp_path / "here", progress=False)
    pooled = run_bench(config, tmp_path / "pooled", workers=2, progress=False)
    assert without_times(pooled.rows) == without_times(here.rows) and len(pooled.rows) == 1


def test_bad_workers_are_refused(tmp_path):
    with pytest.raises(TopopruneError, match="workers must be an integer >= 1"):
        run_bench(tiny(), tmp_path / "out", workers=0)
    assert not (tmp_path / "out").exists()


def test_a_missing_dataset_root_fails_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(TopopruneError, match="root"):
        run_bench(tiny(dataset="cifar10"), out, progress=False)
    assert not out.exists()


def test_the_cli_runs_a_config_and_prints_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_job", fake_row)
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(tiny()))  # JSON is YAML
    out = tmp_path / "out"
    assert main(["bench", "--config", str(config), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "# Benchmark: lenet5 on digits" in printed
    assert f"4 runs (4 trained now); see {out}" in printed


def test_matched_points_record_requested_setting_and_achieved(tmp_path):
    config = tiny(
        methods=[
            {"name": "rgp", "nodes": 8, "steps": 20},
            {"name": "random", "label": "random-like-rgp", "like": "rgp"},
        ],
        match="params",
        sparsities=[0.6],
        seeds=1,
    )
    result = run_bench(config, tmp_path, progress=False)
    rows = {row["label"]: row for row in result.rows}
    rgp, like = rows["rgp"], rows["random-like-rgp"]
    assert rgp["match"] == "params" and rgp["sparsity"] == 0.6
    assert rgp["setting"] in {1 - k / 8 for k in range(2, 8)}  # a degree on 8 nodes
    assert abs(rgp["params_reduction"] - 0.6) < 0.1
    assert like["params"] == rgp["params"] and like["setting"] == rgp["setting"]
    saved = json.loads((tmp_path / "bench.json").read_text())
    like_options = next(m for m in saved["methods"] if m["label"] == "random-like-rgp")
    assert like_options["like"] == "rgp" and like_options["like_options"]["nodes"] == 8
    summary = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert {row["label"]: float(row["setting"]) for row in summary}["rgp"] == rgp["setting"]


def test_shards_split_the_grid_and_the_report_merges_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_job", fake_row)
    whole = run_bench(tiny(seeds=3), tmp_path / "whole", progress=False)
    out = tmp_path / "sharded"
    parts = [run_bench(tiny(seeds=3), out, progress=False, shard=(i, 3)) for i in (1, 2, 3)]
    assert [len(part.rows) for part in parts] == [2, 2, 2] and all(not p.summary for p in parts)
    keys = [{(r["label"], r["seed"]) for r in part.rows} for part in parts]
    assert set.union(*keys) == {(r["label"], r["seed"]) for r in whole.rows}
    assert sum(len(k) for k in keys) == 6  # no run in two shards
    assert sorted(p.name for p in out.glob("runs*.jsonl")) == [
        "runs-shard1of3.jsonl",
        "runs-shard2of3.jsonl",
        "runs-shard3of3.jsonl",
    ]
    assert not (out / "report.md").exists()
    assert main(["bench", "--report", str(out)]) == 0
    merged = list(csv.DictReader((out / "summary.csv").open()))
    expected = list(csv.DictReader((tmp_path / "whole" / "summary.csv").open()))
    assert [r["test_acc_mean"] for r in merged] == [r["test_acc_mean"] for r in expected]
    assert "| rgp |" in capsys.readouterr().out
    assert run_bench(tiny(seeds=3), out, progress=False, shard=(2, 3)).trained == 0


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "2"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(TopopruneError, match="--shard must look like I/N"):
        bench.parse_shard(text)


def test_a_search_method_searches_once_per_point_and_every_seed_trains_it(tmp_path):
    from topoprune.pruning import Pruning, register_method, unregister_method

    calls = []

    @register_method("test-count-search", protocol="search")
    def counted(model, sparsity, options, context):
        """Halve every width and count the calls (a test search)."""
        calls.append((options, context.seed, context.work_dir))
        return Pruning(widths=[max(1, w // 2) for w in model.widths])

    try:
        config = tiny(methods=["test-count-search"], seeds=3)
        result = run_bench(config, tmp_path, progress=False)
    finally:
        unregister_method("test-count-search")
    assert len(calls) == 1 and calls[0][1] == 0  # one search, seeded 0 whatever the run's seed
    assert calls[0][2] == tmp_path / "searches" / "test-count-search_s0.5"
    assert (calls[0][2] / "prune.pt").exists()
    assert sorted(row["seed"] for row in result.rows) == [0, 1, 2]
    assert len({row["params"] for row in result.rows}) == 1  # the same widths for every seed
    assert len({row["test_acc"] for row in result.rows}) > 1  # trained from other seeds
    assert all(row["search_s"] is not None for row in result.rows)


def test_a_matched_point_a_method_cannot_reach_is_not_run_and_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_job", fake_row)
    config = tiny(
        methods=["dense", {"name": "random", "granularity": "kernel"}, {"name": "rgp", "nodes": 8}],
        match="params",
        sparsities=[0.5, 0.9, 0.995],
        seeds=1,
    )
    result = run_bench(config, tmp_path, progress=False)
    ran = {(row["label"], row["sparsity"]) for row in result.rows}
    assert set(result.seconds) == {"reach", "training", "latency"}
    assert min(result.seconds.values()) >= 0.0
    # rgp's degree k >= 2 on 8 nodes removes at most 73% of the params; random at most 99.x%
    assert ran == {("dense", 0.0), ("random", 0.5), ("random", 0.9), ("rgp", 0.5)}
    reach = {(r["label"], r["point"]): r for r in json.loads((tmp_path / "reach.json").read_text())}
    assert reach[("rgp", 0.9)]["reachable"] is False
    assert reach[("rgp", 0.9)]["achieved"] == pytest.approx(0.7304, abs=1e-3)
    assert (
        reach[("random", 0.995)]["achieved"] is None
        and "ask for less" in (reach[("random", 0.995)]["reason"])
    )
    report = (tmp_path / "report.md").read_text()
    assert "rgp at 0.9 (its nearest removes 73.04%)" in report
    assert "random at 0.995 (random removes less than 0.995" in report
    merged = bench.merge_reports(tmp_path)  # the shards' merge reads the same reach
    assert "rgp at 0.995 (its nearest removes 73.04%)" in (tmp_path / "report.md").read_text()
    assert len(merged.rows) == 4


def test_the_report_compares_against_random_and_publishes_as_a_document(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(bench, "run_job", fake_row)
    config = tiny(methods=["dense", "random", {"name": "rgp", "nodes": 8}], seeds=3)
    config["reference"] = "random"
    out = tmp_path / "bench"
    run_bench(config, out, progress=False)
    report = (out / "report.md").read_text()
    assert "## Paired differences against random" in report
    assert "| rgp | 0.5 | 3 | +0.00 ± 0.00 | — | — |" in report  # fake rows: equal accuracies
    assert "Pareto front of mean accuracy against true MACs: " in report
    document = tmp_path / "docs" / "results.md"
    argv = ["bench", "--report", str(out), "--publish", str(document)]
    assert main(argv) == 0
    text = document.read_text()
    assert text.startswith(f"<!-- Generated by `topoprune bench --report {out} --publish")
    links = re.findall(r"\]\((img/results/[^)]+\.png)\)", text)
    assert "img/results/accuracy_vs_macs.png" in links
    for link in links:
        assert (document.parent / link).read_bytes().startswith(PNG_MAGIC)
    assert main(["bench", "--config", "x.yaml", "--shard", "1/2", "--publish", "d.md"]) == 2
    assert "--publish needs the whole grid" in capsys.readouterr().err
