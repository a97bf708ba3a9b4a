"""The Markdown report of one or more runs: accuracy, true counts, latency, graphs per layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from topoprune.experiments.protocols import PrunedRun


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _fmt(value: object, spec: str = "") -> str:
    return "—" if value is None else format(value, spec)


def _degree(graph: dict) -> str:
    """k of a regular graph, else min/mean/max degree."""
    if graph.get("k") is not None:
        return str(graph["k"])
    return f"{graph['degree_min']}/{graph['degree_mean']:.2f}/{graph['degree_max']} (min/mean/max)"


def _layer_graphs(runs: list[PrunedRun]) -> list[str]:
    """The graph each masked layer really got, where some layer got another than the main one."""
    lines = []
    for run in runs:
        main = run.pruning.metrics["graph"]["n"]
        rows = run.pruning.layers
        if all(row.get("nodes") == main for row in rows):
            continue
        lines += [
            "",
            f"Graphs per layer of {run.label} (layers with fewer channels than {main} nodes "
            "get a graph of their own):",
            "",
            "| layer | nodes | degree | kept |",
            "|---|---|---|---|",
            *(
                f"| {row['name']} | {row['nodes']} | {_fmt(row.get('degree'))} "
                f"| {_fmt_pct(row['kept'])} |"
                for row in rows
            ),
        ]
    return lines


def _stages(runs: list[PrunedRun]) -> list[str]:
    """Accuracy and params removed after each stage of the runs that pruned in stages."""
    lines = []
    for run in runs:
        if not run.stages:
            continue
        lines += [
            "",
            f"Stages of {run.label} (each layer pruned, then fine-tuned):",
            "",
            "| stage | layers | epochs | test acc | params removed |",
            "|---|---|---|---|---|",
            *(
                f"| {row['stage']} | {', '.join(row['layers'])} | {row['epochs']} "
                f"| {row['test_acc']:.2f}% | {_fmt_pct(row['params_reduction'])} |"
                for row in run.stages
            ),
        ]
    return lines


def markdown_report(runs: list[PrunedRun]) -> str:
    """One Markdown table comparing ``runs``, then the graph metrics of the graph methods."""
    lines = [
        "| run | test acc (final epoch) | params | params removed (true / nominal) "
        "| MACs | MACs removed | latency dense / masked / realized (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.summary
        metrics = run.pruning.metrics if run.pruning else {}
        true = run.reductions()
        true_params, true_macs = true["params"], true["macs"]
        lat = " / ".join(
            f"{run.latency_ms[k]:.2f}" if k in run.latency_ms else "—"
            for k in ("dense", "masked", "realized")
        )
        lines.append(
            f"| {run.label} | {s.test_acc:.2f}% | {s.params:,} "
            f"| {_fmt_pct(true_params)} / {_fmt_pct(metrics.get('nominal_reduction'))} "
            f"| {s.macs:,} | {_fmt_pct(true_macs)} | {lat} |"
        )
    if any(run.latency_ms for run in runs):
        lines += [
            "",
            "Latency: median ms of one batch, timed side by side after training; dense and "
            "realized are fused for inference (BatchNorm folded, ReLU and residual adds in the "
            "convs), masked is the model as it trains.",
        ]
    graphs = [run for run in runs if run.pruning is not None and "graph" in run.pruning.metrics]
    if graphs:
        lines += [
            "",
            "| run | n | degree | ASPL | diameter | Moore bound ASPL | gap |",
            "|---|---|---|---|---|---|---|",
        ]
        for run in graphs:
            g = run.pruning.metrics["graph"]
            lines.append(
                f"| {run.label} | {g['n']} | {_degree(g)} | {_fmt(g['aspl'], '.4f')} "
                f"| {_fmt(g['diameter'])} | {_fmt(g['moore_aspl'], '.4f')} | {_fmt_pct(g['gap'])} |"
            )
        lines += _layer_graphs(graphs)
    lines += _stages(runs)
    lines += ["", "MACs are multiply-accumulates (FLOPs = 2 x MACs); counts are mask-aware."]
    return "\n".join(lines) + "\n"
