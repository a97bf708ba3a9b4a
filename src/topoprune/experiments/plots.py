"""PNG plots of experiment results (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from topoprune.files import atomic_write


def plot_aspl_accuracy(
    path: str | Path, graphs: list[dict[str, Any]], pearson_r: float, spearman_rho: float
) -> Path:
    """Scatter of ASPL vs test accuracy, one point per graph with a ±std error bar.

    ``graphs``: rows with ``graph``, ``aspl``, ``mean_acc``, ``std_acc`` (from ``per_graph``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    axes.set_title(f"Pearson r = {pearson_r:.3f}, Spearman rho = {spearman_rho:.3f}")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    written = atomic_write(path, lambda handle: figure.savefig(handle, format="png"))
    plt.close(figure)
    return written
