"""Plots of graph optimisation runs (matplotlib, Agg backend, no pyplot state).

>>> import tempfile, pathlib, numpy as np
>>> path = pathlib.Path(tempfile.mkdtemp()) / "run.png"
>>> trajectory = np.array([[0, 3.0, 6], [40, 2.5, 5], [90, 2.2, 4]])
>>> plot_optimization(path, trajectory, np.array([0, 32, 60, 28]), moore_aspl=2.0)
>>> path.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from topoprune.files import atomic_write

__all__ = ["plot_optimization"]


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
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
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
    atomic_write(path, lambda file: figure.savefig(file, format="png", dpi=100))
