"""PNG plots of experiment results.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot state, no global backend
switch) and written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from topoprune.files import atomic_write


def _figure(width: float, height: float) -> Figure:
    """A new figure of ``width`` × ``height`` inches on an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG atomically."""
    return atomic_write(path, lambda handle: figure.savefig(handle, format="png"))


def plot_aspl_accuracy(
    path: str | Path,
    graphs: list[dict[str, Any]],
    pearson_r: float,
    spearman_rho: float,
    context: str = "",
) -> Path:
    """Scatter of ASPL vs test accuracy, one point per graph with a ±std error bar.

    ``graphs``: rows with ``graph``, ``aspl``, ``mean_acc``, ``std_acc`` (from ``per_graph``).
    ``context``: what the points share (e.g. ``"sparsity 0.75"``), put before the title.
    """
    figure = _figure(6, 4)
    axes = figure.subplots()
    axes.errorbar(
        [g["aspl"] for g in graphs],
        [g["mean_acc"] for g in graphs],
        yerr=[g["std_acc"] for g in graphs],
        fmt="o",
        capsize=4,
    )
    for g in graphs:
        axes.annotate(
            g["graph"], (g["aspl"], g["mean_acc"]), textcoords="offset points", xytext=(4, 4)
        )
    axes.set_xlabel("average shortest path length (ASPL)")
    axes.set_ylabel("final test accuracy (%)")
    title = f"Pearson r = {pearson_r:.3f}, Spearman rho = {spearman_rho:.3f}"
    axes.set_title(f"{context}: {title}" if context else title)
    axes.grid(alpha=0.3)
    return _save(figure, path)


MARKERS = "os^vDPXh<>p"
"""One marker per method (cycled), so that methods sharing a colour stay apart."""
COST_LABELS = {
    "macs": "MACs per input, mask-aware (FLOPs = 2 x MACs)",
    "params": "parameters, mask-aware",
    "latency": "measured latency (ms): realized form, or dense fused",
}


def plot_accuracy_vs_cost(path: str | Path, points: list[dict[str, Any]], cost: str) -> Path:
    """Test accuracy (mean ± std over seeds) against ``cost`` (``"macs"``, ``"params"`` or
    ``"latency"``), with the Pareto front of the means as a grey step line.

    ``points``: rows with ``label``, ``sparsity``, ``test_acc_mean``, ``test_acc_std`` and
    ``cost`` (one per method and sparsity, as ``bench_report.summarize`` gives); rows without a
    cost are left out. Each method is a line through its points in cost order; the dense model
    (sparsity 0) is a star with a dashed level. The cost axis is logarithmic.
    """
    from topoprune.experiments.comparison import pareto_front

    figure = _figure(7.5, 4.8)
    axes = figure.subplots()
    points = [p for p in points if p.get(cost) is not None]
    front = [
        points[i]
        for i in pareto_front([p[cost] for p in points], [p["test_acc_mean"] for p in points])
    ]
    axes.plot(
        [p[cost] for p in front],
        [p["test_acc_mean"] for p in front],
        drawstyle="steps-post",
        color="0.6",
        linewidth=3,
        alpha=0.5,
        label="Pareto front",
    )
    labels = list(dict.fromkeys(p["label"] for p in points))
    for number, label in enumerate(labels):
        mine = sorted((p for p in points if p["label"] == label), key=lambda p: p[cost])
        x = [p[cost] for p in mine]
        y = [p["test_acc_mean"] for p in mine]
        error = [p["test_acc_std"] for p in mine]
        if mine[0].get("sparsity") == 0:
            bar = axes.errorbar(x, y, yerr=error, fmt="*", markersize=12, capsize=4, label=label)
            axes.axhline(y[0], linestyle="--", linewidth=0.8, color=bar.lines[0].get_color())
        else:
            marker = MARKERS[number % len(MARKERS)]
            axes.errorbar(x, y, yerr=error, fmt=f"{marker}-", capsize=4, label=label)
    axes.set_xscale("log")
    if cost == "latency":  # milliseconds read better as plain numbers
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.xaxis.set_minor_formatter(ScalarFormatter())
    axes.set_xlabel(COST_LABELS[cost])
    axes.set_ylabel("final test accuracy (%), mean ± std")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(figure, path)


def plot_optimization(
    path: str | os.PathLike,
    trajectory: np.ndarray,
    histogram: np.ndarray,
    *,
    moore_aspl: float | None = None,
    title: str | None = None,
) -> None:
    """Write a two-panel PNG: ASPL over the swaps tried, and the final distance histogram.

    ``trajectory`` has shape ``(m, 3)``, rows ``(step, aspl, diameter)`` as in
    ``SwapResult.trajectory``; ``histogram[d]`` counts the node pairs at distance ``d``
    (``histogram[0]`` unused). ``moore_aspl`` draws the Moore bound as a dashed horizontal line.
    The file is written atomically.
    """
    figure = _figure(10, 4)
    over_time, distances = figure.subplots(1, 2)

    steps, values = trajectory[:, 0], trajectory[:, 1]
    over_time.plot(steps, values, drawstyle="steps-post", label="ASPL")
    if moore_aspl is not None:
        over_time.axhline(
            moore_aspl, color="black", linestyle="--", label=f"Moore {moore_aspl:.4f}"
        )
    over_time.set_xlabel("swaps tried")
    over_time.set_ylabel("average shortest path length")
    over_time.legend()

    lengths = np.arange(1, len(histogram))
    distances.bar(lengths, histogram[1:])
    distances.set_xticks(lengths)
    distances.set_xlabel("distance")
    distances.set_ylabel("node pairs")
    final_aspl = float(lengths @ histogram[1:]) / float(histogram[1:].sum())
    distances.set_title(f"final: ASPL {final_aspl:.4f}, diameter {len(histogram) - 1}")

    if title:
        figure.suptitle(title)
    _save(figure, path)


def plot_best_so_far(curves: dict[str, list[float]], path: str | Path) -> Path:
    """Validation accuracy of the best candidate so far against candidates scored, one line
    per search (``curves``: search name -> accuracy after each evaluation)."""
    figure = _figure(5, 3.5)
    axes = figure.subplots()
    for label, curve in curves.items():
        axes.plot(range(1, len(curve) + 1), curve, label=label)
    axes.set_xlabel("candidates scored")
    axes.set_ylabel("best validation accuracy (%)")
    axes.legend()
    return _save(figure, path)
