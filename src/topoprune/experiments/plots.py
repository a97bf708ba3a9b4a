"""PNG plots of experiment results (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from topoprune.files import atomic_write


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG atomically, then close it."""
    figure.tight_layout()
    written = atomic_write(path, lambda handle: figure.savefig(handle, format="png"))
    _pyplot().close(figure)
    return written


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
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=120)
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


COST_LABELS = {
    "macs": "MACs per input, mask-aware (FLOPs = 2 x MACs)",
    "params": "parameters, mask-aware",
}


def plot_accuracy_vs_cost(path: str | Path, points: list[dict[str, Any]], cost: str) -> Path:
    """Test accuracy (mean ± std over seeds) against ``cost`` (``"macs"`` or ``"params"``).

    ``points``: rows with ``label``, ``sparsity``, ``test_acc_mean``, ``test_acc_std`` and
    ``cost`` (one per method and sparsity, as ``bench_report.summarize`` gives). Each method
    is a line through its points in cost order; the dense model (sparsity 0) is a star with a
    dashed level. The cost axis is logarithmic.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    labels = list(dict.fromkeys(p["label"] for p in points))
    for label in labels:
        mine = sorted((p for p in points if p["label"] == label), key=lambda p: p[cost])
        x = [p[cost] for p in mine]
        y = [p["test_acc_mean"] for p in mine]
        error = [p["test_acc_std"] for p in mine]
        if mine[0].get("sparsity") == 0:
            bar = axes.errorbar(x, y, yerr=error, fmt="*", markersize=12, capsize=4, label=label)
            axes.axhline(y[0], linestyle="--", linewidth=0.8, color=bar.lines[0].get_color())
        else:
            axes.errorbar(x, y, yerr=error, fmt="o-", capsize=4, label=label)
    axes.set_xscale("log")
    axes.set_xlabel(COST_LABELS[cost])
    axes.set_ylabel("final test accuracy (%), mean ± std")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small")
    return _save(figure, path)
