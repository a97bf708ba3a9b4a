"""Graph engine benchmark: ASPL speed against networkx, and the ASPL the swap optimiser reaches.

Run ``python benchmarks/graphs.py`` (about 5 minutes) or ``--quick`` (budgets / 10, about 40 s).
``--seeds 5`` repeats every optimiser run with seeds ``seed .. seed + 4`` and reports the median,
the range and how many runs met the target; ``--graphs 64x8`` keeps only the optimiser runs named.
It prints two Markdown tables:

1. the time of one ASPL evaluation (``topoprune.graphs.paths.aspl`` on an adjacency matrix,
   validation included) against ``networkx.average_shortest_path_length``, on random regular
   graphs (256, 8), (1024, 8), (4096, 8);
2. the ASPL that ``topoprune.graphs.swap.optimize`` (default strategy, from a random regular
   graph) reaches in a fixed time budget, beside the Moore bound (Cerf et al. 1974), the best
   known Graph Golf graph (research.nii.ac.jp/graphgolf) and the best graph of the published
   RGP bank (Chen et al., arXiv 2110.15192).

Everything runs on one core (BLAS threads are pinned to 1 before numpy loads).
"""

from __future__ import annotations

import argparse
import os
import time

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from topoprune.graphs.engine import engine_available  # noqa: E402
from topoprune.graphs.generate import random_regular, ring_lattice  # noqa: E402
from topoprune.graphs.paths import aspl, moore_bound  # noqa: E402
from topoprune.graphs.swap import optimize  # noqa: E402

SPEED_SIZES = [(256, 8), (1024, 8), (4096, 8)]
# (n, k, time budget in seconds, target ASPL of the task or None)
# (n, k, seconds, target, symmetry): symmetric searches start from the ring lattice, the others
# from a random regular graph.
OPTIMISER_RUNS = [
    (64, 4, 5.0, 2.93, 1),
    (64, 8, 30.0, 1.95, 1),
    (256, 8, 120.0, 2.76, 4),
    (1024, 8, 120.0, None, 16),
]
# Graph Golf (order/degree problem, research.nii.ac.jp/graphgolf): best known ASPL.
GRAPH_GOLF_BEST = {(64, 8): 1.927, (256, 8): 2.736, (1024, 8): 3.505}
# Best graph (M0) of the published RGP graph bank, n = 64 (the RGP authors' code).
RGP_BANK_BEST = {(64, 4): 3.046, (64, 8): 2.128}


def best_time(run, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def speed_table(seed: int, quick: bool) -> list[str]:
    lines = [
        "| graph (n, k) | ASPL | topoprune | networkx | speed-up |",
        "|---|---|---|---|---|",
    ]
    for n, k in SPEED_SIZES:
        adj = random_regular(n, k, seed=seed)
        graph = nx.from_numpy_array(adj)
        ours = best_time(lambda adj=adj: aspl(adj), 5 if quick else 20)
        theirs = best_time(lambda graph=graph: nx.average_shortest_path_length(graph), 1)
        value = aspl(adj)
        lines.append(
            f"| ({n}, {k}) | {value:.4f} | {ours * 1e3:.2f} ms | {theirs * 1e3:.0f} ms "
            f"| {theirs / ours:.0f}x |"
        )
    return lines


def optimiser_table(
    seeds: list[int], quick: bool, progress: bool, graphs: set[str] | None
) -> list[str]:
    """One row per optimiser run; with several seeds, the median ASPL reached, its range and how
    many runs met the target."""
    lines = [
        "| graph (n, k) | budget | symmetry | start | reached | range | met target | diameter "
        "| swaps tried | target | Moore bound | Graph Golf best | RGP bank best |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, k, budget, target, symmetry in OPTIMISER_RUNS:
        if graphs is not None and f"{n}x{k}" not in graphs:
            continue
        budget = budget / 10 if quick else budget
        results = []
        for seed in seeds:
            start = ring_lattice(n, k) if symmetry > 1 else random_regular(n, k, seed=seed)
            results.append(
                optimize(start, seed=seed, time_budget=budget, progress=progress, symmetry=symmetry)
            )
        reached = [result.aspl for result in results]
        met = "-" if target is None else f"{sum(a <= target for a in reached)}/{len(reached)}"
        steps = int(np.median([result.steps for result in results]))
        lines.append(
            f"| ({n}, {k}) | {budget:g} s | {symmetry} | {results[0].start_aspl:.4f} "
            f"| **{np.median(reached):.4f}** | {min(reached):.4f}-{max(reached):.4f} | {met} "
            f"| {max(result.diameter for result in results)} | {steps:,} "
            f"| {_value(target)} | {moore_bound(n, k).aspl:.4f} "
            f"| {_value(GRAPH_GOLF_BEST.get((n, k)))} | {_value(RGP_BANK_BEST.get((n, k)))} |"
        )
    return lines


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="optimiser budgets divided by 10")
    parser.add_argument("--seed", type=int, default=0, help="seed of graphs and optimiser")
    parser.add_argument("--seeds", type=int, default=1, help="optimiser runs per graph")
    parser.add_argument("--graphs", help="optimiser runs to make, e.g. 64x4,64x8 (default: all)")
    parser.add_argument("--progress", action="store_true", help="show the optimiser's progress")
    options = parser.parse_args()
    seeds = list(range(options.seed, options.seed + options.seeds))
    graphs = None if options.graphs is None else set(options.graphs.split(","))
    print(f"numpy {np.__version__}, networkx {nx.__version__}, seeds {seeds}\n")
    if graphs is None:
        print("ASPL evaluation, best of several runs (networkx: one run)\n")
        print("\n".join(speed_table(options.seed, options.quick)))
    engine = "native" if engine_available() else "numpy (no C++ compiler)"
    print(f"\nSwap optimiser (strategy 'anneal', {engine} engine), fixed time budget\n")
    print("\n".join(optimiser_table(seeds, options.quick, options.progress, graphs)))
    print(
        "\nSources: Moore bound (Cerf et al. 1974); Graph Golf best known and published RGP "
        "graph bank best (M0, n = 64) from Graph Golf and the published RGP code."
    )


if __name__ == "__main__":
    main()
