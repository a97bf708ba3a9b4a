"""The ASPL–accuracy study: is a shorter average path length worth accuracy?

RGP's claim (Chen et al.): across k-regular graphs of the same degree, ASPL is negatively
correlated with the accuracy of the network they prune. The study takes a bank of graphs spread
over the ASPL range (best found … ring lattice), trains one pruned network per graph and seed,
and reports the Pearson and Spearman correlations (with p-values) between ASPL and final test
accuracy, and between the spectral gap (:mod:`topoprune.graphs.spectrum`) and final test
accuracy, a CSV of every run and a scatter plot (mean ± std per graph).

Resumable: the bank is saved first and reused, and every finished run is recorded in
``runs.jsonl``; a rerun skips those and trains only what is missing.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from topoprune.files import write_json, write_jsonl, write_text
from topoprune.graphs import bank, load_graph, save_bank
from topoprune.graphs.spectrum import spectral_gap
from topoprune.training import TrainConfig

RUNS_FILE = "runs.jsonl"


@dataclass
class StudyResult:
    """Every run's row, the correlations between ASPL and test accuracy, and those between the
    spectral gap and test accuracy (``gap_*``)."""

    rows: list[dict[str, Any]]
    pearson_r: float
    pearson_p: float
    spearman_rho: float
    spearman_p: float
    gap_pearson_r: float = float("nan")
    gap_pearson_p: float = float("nan")
    gap_spearman_rho: float = float("nan")
    gap_spearman_p: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "pearson_r": self.pearson_r,
            "pearson_p": self.pearson_p,
            "spearman_rho": self.spearman_rho,
            "spearman_p": self.spearman_p,
            "gap_pearson_r": self.gap_pearson_r,
            "gap_pearson_p": self.gap_pearson_p,
            "gap_spearman_rho": self.gap_spearman_rho,
            "gap_spearman_p": self.gap_spearman_p,
            "runs": len(self.rows),
        }


def load_or_make_bank(
    folder: Path, nodes: int, degree: int, count: int, seed: int, seconds: float
) -> list[dict[str, Any]]:
    """The bank's index rows, each with its adjacency under ``"adj"``; made once, then reused."""
    index = folder / "index.json"
    if not index.exists():
        save_bank(folder, bank(nodes, degree, count, seed=seed, time_budget=seconds), seed=seed)
    rows = json.loads(index.read_text())["graphs"]
    return [{**row, "adj": load_graph(folder / row["file"])} for row in rows]


def _spread(values: np.ndarray) -> bool:
    """Whether ``values`` differ by more than float rounding (equal graphs' spectral gaps,
    computed from eigenvalues, differ in the last bits)."""
    return bool(np.ptp(values) > 1e-9 * max(1.0, float(np.abs(values).max())))


def correlations(aspls: np.ndarray, accuracies: np.ndarray) -> tuple[float, float, float, float]:
    """(Pearson r, its p-value, Spearman rho, its p-value); NaN where undefined: fewer than
    three values, or no spread in either.

    >>> correlations(np.array([0.1522, 0.1522 + 1e-15, 0.1522]), np.array([97.9, 97.4, 97.9]))
    (nan, nan, nan, nan)
    """
    if len(aspls) < 3 or not _spread(aspls) or not _spread(accuracies):
        return (float("nan"),) * 4
    pearson = stats.pearsonr(aspls, accuracies)
    spearman = stats.spearmanr(aspls, accuracies)
    return (
        float(pearson.statistic),
        float(pearson.pvalue),
        float(spearman.statistic),
        float(spearman.pvalue),
    )


def _layers_below(
    model: str, dataset: str, nodes: int, *, root: str | None, widths: list[int] | None
) -> list[str]:
    """Prunable layers with fewer channels than ``nodes``: they cannot carry the bank's graphs,
    so they stay dense (with a warning)."""
    from topoprune.experiments.runs import setup_run
    from topoprune.pruning import prunable_layers

    built = setup_run(model, dataset, root=root, widths=widths).model
    small = [
        layer.name
        for layer in prunable_layers(built)
        if min(layer.in_units, layer.out_units) < nodes
    ]
    if small:
        warnings.warn(
            f"{', '.join(small)}: fewer channels than the {nodes} graph nodes; left dense",
            stacklevel=3,
        )
    return small


def run_study(
    model: str,
    dataset: str,
    config: TrainConfig,
    *,
    nodes: int,
    degree: int,
    graphs: int = 8,
    seeds: int = 3,
    out_dir: str | Path,
    root: str | None = None,
    split_seed: int = 0,
    bank_seconds: float = 60.0,
    widths: list[int] | None = None,
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    tensorboard: str | Path | None = None,
) -> StudyResult:
    """Train ``graphs × seeds`` RGP-pruned networks and correlate ASPL with test accuracy.

    ``out_dir`` is claimed like a run folder (its record holds the study's settings): a study
    already there continues only with ``resume`` and the same settings, or is replaced with
    ``overwrite``. Finished runs are read back; a run cut off mid-way continues.
    """
    from topoprune.experiments.protocols import run_pruned
    from topoprune.experiments.records import RECORD_FILE, check_claimable, claim_folder, run_record

    config.validate()
    out = Path(out_dir)
    check_claimable(out, resume=resume, overwrite=overwrite)
    study = {"nodes": nodes, "degree": degree, "graphs": graphs, "seeds": seeds}
    record = run_record(
        model=model,
        dataset=dataset,
        config=config,
        root=root,
        split_seed=split_seed,
        widths=widths,
        extra={"study": {**study, "bank_seconds": bank_seconds}},
    )
    too_small = _layers_below(model, dataset, nodes, root=root, widths=widths)
    claim_folder(out, record, resume=resume, overwrite=overwrite)
    entries = load_or_make_bank(out / "bank", nodes, degree, graphs, config.seed, bank_seconds)
    runs_path = out / RUNS_FILE
    rows = (
        [json.loads(line) for line in runs_path.read_text().splitlines()]
        if runs_path.exists()
        else []
    )
    gaps = {entry["label"]: spectral_gap(entry["adj"]) for entry in entries}
    for row in rows:  # rows recorded before the gap was reported
        row.setdefault("spectral_gap", gaps.get(row["graph"]))
    done = {(row["graph"], row["seed"]) for row in rows}
    for entry in entries:
        for seed in range(config.seed, config.seed + seeds):
            if (entry["label"], seed) in done:
                continue
            run_dir = out / "runs" / f"{entry['label']}_seed{seed}"
            run = run_pruned(
                model,
                dataset,
                replace(config, seed=seed),
                method="rgp",
                sparsity=1.0 - degree / nodes,
                prune_options={"graph": entry["adj"], "seed": seed, "exclude": too_small},
                root=root,
                split_seed=split_seed,
                out_dir=run_dir,
                resume=(run_dir / RECORD_FILE).exists(),  # a run cut off mid-way
                progress=progress,
                measure_speed=False,
                widths=widths,
                label=entry["label"],
                tensorboard=None if tensorboard is None else Path(tensorboard) / run_dir.name,
            )
            rows.append(
                {
                    "graph": entry["label"],
                    "aspl": entry["aspl"],
                    "diameter": entry["diameter"],
                    "spectral_gap": gaps[entry["label"]],
                    "seed": seed,
                    "test_acc": run.summary.test_acc,
                }
            )
            write_jsonl(runs_path, rows)
    aspls, accuracies = _columns(rows)
    spectral = np.array([row["spectral_gap"] for row in rows], dtype=float)
    result = StudyResult(
        rows, *correlations(aspls, accuracies), *correlations(spectral, accuracies)
    )
    _write_reports(out, result, dict(model=model, dataset=dataset, nodes=nodes, degree=degree))
    return result


def _columns(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r["aspl"] for r in rows]), np.array([r["test_acc"] for r in rows])


def per_graph(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std (ddof 1) of test accuracy per graph, sorted by ASPL."""
    by_graph: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_graph.setdefault(row["graph"], []).append(row)
    table = []
    for label, runs in by_graph.items():
        accs = np.array([r["test_acc"] for r in runs])
        table.append(
            {
                "graph": label,
                "aspl": runs[0]["aspl"],
                "spectral_gap": runs[0].get("spectral_gap"),
                "mean_acc": float(accs.mean()),
                "std_acc": float(accs.std(ddof=1)) if len(accs) > 1 else 0.0,
                "runs": len(accs),
            }
        )
    return sorted(table, key=lambda g: g["aspl"])


def _gap(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _write_reports(out: Path, result: StudyResult, setting: dict[str, Any]) -> None:
    table = io.StringIO()
    fields = ["graph", "aspl", "diameter", "spectral_gap", "seed", "test_acc"]
    writer = csv.DictWriter(table, fieldnames=fields)
    writer.writeheader()
    writer.writerows(result.rows)
    write_text(out / "results.csv", table.getvalue())
    write_json(out / "correlation.json", {**setting, **result.to_dict()})
    graphs = per_graph(result.rows)
    lines = [
        f"# ASPL vs accuracy: {setting['model']} on {setting['dataset']}, "
        f"n = {setting['nodes']}, k = {setting['degree']}",
        "",
        "| graph | ASPL | spectral gap | test acc mean ± std (%) | runs |",
        "|---|---|---|---|---|",
        *(
            f"| {g['graph']} | {g['aspl']:.4f} | {_gap(g['spectral_gap'])} "
            f"| {g['mean_acc']:.2f} ± {g['std_acc']:.2f} | {g['runs']} |"
            for g in graphs
        ),
        "",
        f"ASPL: Pearson r = {result.pearson_r:.3f} (p = {result.pearson_p:.3g}); "
        f"Spearman rho = {result.spearman_rho:.3f} (p = {result.spearman_p:.3g}); "
        f"{len(result.rows)} runs.",
        f"Spectral gap: Pearson r = {result.gap_pearson_r:.3f} (p = {result.gap_pearson_p:.3g}); "
        f"Spearman rho = {result.gap_spearman_rho:.3f} (p = {result.gap_spearman_p:.3g}).",
    ]
    write_text(out / "study.md", "\n".join(lines) + "\n")
    from topoprune.experiments.plots import plot_aspl_accuracy

    plot_aspl_accuracy(out / "aspl_vs_accuracy.png", graphs, result.pearson_r, result.spearman_rho)
