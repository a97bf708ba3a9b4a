"""The benchmark's report files, made from its run rows: summary.csv, report.md, PNG plots.

One summary row per (method label, sparsity): the mean and sample standard deviation (ddof 1; 0
for a single run) of the final test accuracy over seeds, and the mean of every other figure
(counts are the same for every seed of a method and sparsity; latency and wall time vary);
``latency_ms`` is the form a user would deploy: the realized one, or the dense model fused.
When the config names a ``reference`` label, the report adds every other method's paired
differences against it with Holm-corrected p-values; every plot shows its Pareto front
(:mod:`topoprune.experiments.comparison`).
For the graph methods (runs whose pruning made a graph), ASPL and accuracy are correlated over
the individual runs of each sparsity — across sparsities ASPL mostly measures the degree.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from topoprune.experiments.aspl_study import correlations
from topoprune.experiments.bench_config import BenchConfig
from topoprune.experiments.comparison import paired_differences, pareto_front
from topoprune.experiments.reach import Reach
from topoprune.files import write_text

AVERAGED = (
    "setting",
    "params",
    "macs",
    "dense_params",
    "dense_macs",
    "params_reduction",
    "macs_reduction",
    "nominal_reduction",
    "latency_dense_ms",
    "latency_masked_ms",
    "latency_realized_ms",
    "aspl",
    "spectral_gap",
    "nodes",
    "degree",
    "search_s",
    "wall_s",
)
SUMMARY_FIELDS = (
    "label",
    "method",
    "sparsity",
    "runs",
    "test_acc_mean",
    "test_acc_std",
    *AVERAGED,
    "latency_ms",
)


def _mean(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarize(rows: list[dict[str, Any]], config: BenchConfig) -> list[dict[str, Any]]:
    """One row per (label, sparsity) that has runs, in the configuration's order.

    >>> from topoprune.experiments.bench_config import load_config
    >>> config = load_config({"model": "lenet5", "dataset": "digits", "methods": ["random"],
    ...     "sparsities": [0.5], "seeds": 2})
    >>> rows = [{"label": "random", "method": "random", "sparsity": 0.5, "seed": s,
    ...     "test_acc": acc} for s, acc in ((0, 90.0), (1, 92.0))]
    >>> [(r["test_acc_mean"], round(r["test_acc_std"], 4)) for r in summarize(rows, config)]
    [(91.0, 1.4142)]
    """
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["label"], row["sparsity"]), []).append(row)
    order = list(dict.fromkeys(job.key[:2] for job in config.jobs()))
    summary = []
    for key in (k for k in order if k in groups):
        runs = groups[key]
        accuracies = np.array([r["test_acc"] for r in runs])
        summary.append(
            {
                "label": key[0],
                "method": runs[0]["method"],
                "sparsity": key[1],
                "runs": len(runs),
                "test_acc_mean": float(accuracies.mean()),
                "test_acc_std": float(accuracies.std(ddof=1)) if len(runs) > 1 else 0.0,
                **{name: _mean([r.get(name) for r in runs]) for name in AVERAGED},
            }
        )
        row = summary[-1]
        row["latency_ms"] = row["latency_realized_ms" if key[1] else "latency_dense_ms"]
    return summary


def aspl_correlations(rows: list[dict[str, Any]]) -> dict[float, dict[str, Any]]:
    """Per sparsity, ASPL vs test accuracy over the runs that have a graph, and the spectral
    gap vs test accuracy.

    Values: ``{"runs", "methods", "pearson_r", "pearson_p", "spearman_rho", "spearman_p",
    "gap_pearson_r", "gap_pearson_p"}`` (NaN where undefined: fewer than three runs, no spread,
    or rows without a spectral gap).
    """
    found: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("aspl") is not None:
            found.setdefault(row["sparsity"], []).append(row)
    result = {}
    for sparsity, runs in sorted(found.items()):
        accuracy = np.array([row["test_acc"] for row in runs])
        r, p, rho, p_rho = correlations(np.array([row["aspl"] for row in runs]), accuracy)
        gaps = np.array([row.get("spectral_gap") for row in runs], dtype=float)
        gap_r, gap_p = (
            correlations(gaps, accuracy)[:2] if np.isfinite(gaps).all() else (np.nan,) * 2
        )
        result[sparsity] = {
            "runs": len(runs),
            "methods": list(dict.fromkeys(row["label"] for row in runs)),
            "pearson_r": r,
            "pearson_p": p,
            "spearman_rho": rho,
            "spearman_p": p_rho,
            "gap_pearson_r": gap_r,
            "gap_pearson_p": gap_p,
        }
    return result


def summary_csv(summary: list[dict[str, Any]]) -> str:
    """The summary rows as CSV text, one column per ``SUMMARY_FIELDS`` entry."""
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(SUMMARY_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: row[name] for name in SUMMARY_FIELDS} for row in summary)
    return table.getvalue()


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _number(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _describe(config: BenchConfig) -> list[str]:
    t = config.training
    schedule = t.schedule + (
        f" (x{t.gamma} at {', '.join(map(str, t.milestones))})" if t.schedule == "multistep" else ""
    )
    steps = (
        ""
        if t.max_steps_per_epoch is None
        else f", at most {t.max_steps_per_epoch} steps per epoch"
    )
    methods = ", ".join(
        m.label + (f" ({', '.join(f'{k}={v}' for k, v in m.options.items())})" if m.options else "")
        for m in config.methods
    )
    return [
        f"Model `{config.model}`"
        + (f" (widths {list(config.widths)})" if config.widths else "")
        + f" on `{config.dataset}`; seeds {', '.join(map(str, config.seeds))}.",
        f"Training, the same budget for every method: {t.epochs} epochs{steps}, "
        f"batch {t.batch_size}, SGD lr {t.lr:g} (momentum {t.momentum:g}, weight decay "
        f"{t.weight_decay:g}), {schedule} schedule, label smoothing {t.label_smoothing:g}.",
        f"Methods: {methods}.",
        "Points: each method's sparsity (the fraction removed from the layers it masks)."
        if config.match == "sparsity"
        else f"Points: true fractions of the model's {config.match} removed; each method found "
        "its own setting for each (column `setting` of summary.csv).",
    ]


def markdown(
    config: BenchConfig,
    summary: list[dict[str, Any]],
    aspl: dict[float, dict[str, Any]],
    plots: list[str],
    reach: list[Reach] = (),
    differences: list[dict[str, Any]] = (),
) -> str:
    """The report: setting, the main table, the points out of reach, the paired differences
    against random, the Pareto fronts, the graph methods' ASPL table, the plots."""
    lines = [f"# Benchmark: {config.model} on {config.dataset}", "", *_describe(config), ""]
    point = "sparsity" if config.match == "sparsity" else f"{config.match} removed (asked)"
    latency = (
        f"median of a forward pass on a batch of {config.latency_batch}"
        if config.latency_batch is not None
        else "not measured"
    )
    lines += [
        f"| method | {point} | runs | test acc (%) | params | params removed (true / nominal) "
        "| MACs | MACs removed | latency dense / masked / realized (ms) | search (s) | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        timing = " / ".join(
            _number(row[f"latency_{kind}_ms"], 2) for kind in ("dense", "masked", "realized")
        )
        lines.append(
            f"| {row['label']} | {row['sparsity']:g} | {row['runs']} "
            f"| {row['test_acc_mean']:.2f} ± {row['test_acc_std']:.2f} "
            f"| {_number(row['params'])} "
            f"| {_pct(row['params_reduction'])} / {_pct(row['nominal_reduction'])} "
            f"| {_number(row['macs'])} | {_pct(row['macs_reduction'])} | {timing} "
            f"| {_number(row['search_s'])} | {_number(row['wall_s'])} |"
        )
    lines += [
        "",
        "Accuracy: final epoch, test split, mean ± std (ddof 1) over seeds. Params and MACs are "
        "true counts (dense first conv and classifier included, masks honoured); MACs are "
        "multiply-accumulates per input (FLOPs = 2 x MACs). Nominal: the fraction removed from "
        f"the prunable layers. Latency: {latency}, taken after all training, every model beside "
        "one dense model in one interleaved run (dense and realized fused for inference: "
        "BatchNorm folded, ReLU and residual adds in the convs; realized: the compact form, or "
        "a physically narrower model itself). Search: the search cost of a search method, outside "
        "the training budget. Wall: the whole run, pruning and timing included. Every method "
        "trains for the same total epochs (after-training methods: dense, then fine-tuning).",
    ]
    missed = [r for r in reach if not r.reachable]
    if missed:
        lines += [
            "",
            f"Not run, out of reach (the nearest setting misses the point by more than "
            f"{config.match_tolerance:g}): "
            + "; ".join(f"{r.label} at {r.point:g} ({_why(r)})" for r in missed)
            + ".",
        ]
    lines += _difference_lines(differences, config.reference) + _front_lines(summary)
    graph_rows = [row for row in summary if row["aspl"] is not None]
    if graph_rows:
        lines += [
            "",
            "## Graph methods: ASPL and accuracy",
            "",
            "| method | point | n | k | ASPL (mean) | spectral gap | test acc (%) |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {row['label']} | {row['sparsity']:g} | {row['nodes']:.0f} "
                f"| {row['degree']:.0f} | {row['aspl']:.4f} | {_number(row['spectral_gap'], 4)} "
                f"| {row['test_acc_mean']:.2f} ± {row['test_acc_std']:.2f} |"
                for row in graph_rows
            ),
            "",
            *(
                f"Point {sparsity:g}, {c['runs']} runs of {', '.join(c['methods'])}: ASPL "
                f"Pearson r = {c['pearson_r']:.3f} (p = {c['pearson_p']:.3g}), "
                f"Spearman rho = {c['spearman_rho']:.3f} (p = {c['spearman_p']:.3g}); "
                f"spectral gap Pearson r = {c['gap_pearson_r']:.3f} (p = {c['gap_pearson_p']:.3g})."
                for sparsity, c in aspl.items()
            ),
        ]
    if plots:
        lines += ["", "## Plots", "", *(f"![{Path(p).stem}]({p})" for p in plots)]
    return "\n".join(lines) + "\n"


def _why(reach: Reach) -> str:
    return reach.reason or f"its nearest removes {_pct(reach.achieved)}"


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3g}"


def _difference_lines(differences: list[dict[str, Any]], reference: str | None) -> list[str]:
    if not differences:
        return []
    return [
        "",
        f"## Paired differences against {reference}",
        "",
        f"Test accuracy minus {reference}'s at the same point and seed (mean ± std over the "
        "seeds both ran); p: two-sided paired t-test of a zero mean; Holm: adjusted over every "
        "row of this table (— where the differences have no spread).",
        "",
        "| method | point | pairs | difference (points) | p | p (Holm) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {d['label']} | {d['sparsity']:g} | {d['pairs']} "
            f"| {d['mean']:+.2f} ± {d['std']:.2f} | {_p(d['p'])} | {_p(d['p_holm'])} |"
            for d in differences
        ),
    ]


def _front_lines(summary: list[dict[str, Any]]) -> list[str]:
    lines = []
    for cost, what in (("macs", "true MACs"), ("latency_ms", "measured latency")):
        rows = [row for row in summary if row.get(cost) is not None]
        if not rows:
            continue
        front = pareto_front([r[cost] for r in rows], [r["test_acc_mean"] for r in rows])
        lines.append(
            f"Pareto front of mean accuracy against {what}: "
            + ", ".join(f"{rows[i]['label']} ({rows[i]['sparsity']:g})" for i in front)
            + "."
        )
    return ["", *lines] if lines else []


def write_plots(
    out: Path, summary: list[dict[str, Any]], aspl: dict[float, dict[str, Any]]
) -> list[str]:
    """Accuracy vs MACs and vs params, and ASPL vs accuracy per sparsity; the file names."""
    from topoprune.experiments.plots import plot_accuracy_vs_cost, plot_aspl_accuracy

    names = []
    for cost in ("macs", "params"):
        names.append(f"accuracy_vs_{cost}.png")
        plot_accuracy_vs_cost(out / names[-1], summary, cost)
    timed = [{**row, "latency": row["latency_ms"]} for row in summary]
    if any(row["latency"] is not None for row in timed):
        names.append("accuracy_vs_latency.png")
        plot_accuracy_vs_cost(out / names[-1], timed, "latency")
    for sparsity, found in aspl.items():
        graphs = [
            {
                "graph": row["label"],
                "aspl": row["aspl"],
                "mean_acc": row["test_acc_mean"],
                "std_acc": row["test_acc_std"],
            }
            for row in summary
            if row["sparsity"] == sparsity and row["aspl"] is not None
        ]
        names.append(f"aspl_vs_accuracy_s{sparsity:g}.png")
        plot_aspl_accuracy(
            out / names[-1],
            graphs,
            found["pearson_r"],
            found["spearman_rho"],
            context=f"sparsity {sparsity:g}, {found['runs']} runs",
        )
    return names


def write_reports(
    out: Path, config: BenchConfig, rows: list[dict[str, Any]], reach: list[Reach] = ()
) -> list[dict[str, Any]]:
    """Write summary.csv, the plots and report.md into ``out``; return the summary rows."""
    summary = summarize(rows, config)
    aspl = aspl_correlations(rows)
    write_text(out / "summary.csv", summary_csv(summary))
    plots = write_plots(out, summary, aspl)
    order = {job.key: index for index, job in enumerate(config.jobs())}
    in_order = sorted(rows, key=lambda r: order.get((r["label"], r["sparsity"], r["seed"]), -1))
    reference = config.reference
    differences = [] if reference is None else paired_differences(in_order, reference)
    write_text(out / "report.md", markdown(config, summary, aspl, plots, reach, differences))
    return summary
