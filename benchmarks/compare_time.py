"""How long the whole comparison takes: run its first seed, project every seed.

    python benchmarks/compare_time.py [--config configs/compare-mnist5k.yaml]
        [--out runs/compare] [--workers 2] [--target-hours 3]

Runs every (method, point) the config can reach at its first seed, with ``--workers`` parallel
runs of one thread each. These are real runs in the folder the whole comparison uses, so a later
``topoprune bench --config ... --out runs/compare --workers 2`` only adds the other seeds. Then
it projects the whole grid from what it measured:

- each later seed repeats every run (its matching, pruning and training) but not a search
  method's one search per point (``search_s``), which every seed reuses;
- the projected runs are scheduled as the bench schedules them (seed by seed, each to the first
  free worker) and the latest finish is the training time;
- before any run the bench checks which method reaches which point (once), and after every run
  it times the latencies, scaled here by the number of seeds, as their models are. Both are
  measured in this call: the latencies of every run of the first seed are taken again
  (``retime``), so a second call on a finished folder measures them too.

It prints the measured wall time, the projection and the target side by side.
"""

from __future__ import annotations

import argparse
import heapq
import time
from pathlib import Path

from topoprune.experiments.bench import run_bench
from topoprune.experiments.bench_config import load_config


def makespan(durations: list[float], workers: int) -> float:
    """When the last of ``durations`` (in submission order) ends on ``workers`` workers that
    each take the next run as soon as they are free.

    >>> makespan([3.0, 1.0, 1.0, 1.0], 2)
    3.0
    """
    free = [0.0] * workers
    for duration in durations:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/compare-mnist5k.yaml")
    parser.add_argument("--out", default="runs/compare")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--target-hours", type=float, default=3.0)
    args = parser.parse_args()

    config = load_config(args.config)
    first = {**config.to_dict(), "seeds": [config.seeds[0]]}
    started = time.perf_counter()
    result = run_bench(first, args.out, workers=args.workers, progress=False, retime=True)
    wall = time.perf_counter() - started
    rows = result.rows
    seed_zero = [row["wall_s"] for row in rows]
    later = [row["wall_s"] - (row.get("search_s") or 0.0) for row in rows]
    seeds = len(config.seeds)
    training = makespan(seed_zero + later * (seeds - 1), args.workers)
    reach_s, timing = result.seconds["reach"], result.seconds["latency"]
    projected = reach_s + training + timing * seeds
    print(f"config {args.config}: {len(rows)} runs at seed {config.seeds[0]}, {seeds} seeds")
    print(
        f"measured, first seed: {wall / 60:.1f} min wall ({result.trained} runs trained now, "
        f"{result.seconds['training'] / 60:.1f} min; reach check {reach_s:.0f} s, latency "
        f"timing {timing:.0f} s; one seed's runs scheduled: "
        f"{makespan(seed_zero, args.workers) / 60:.1f} min)"
    )
    searches = sum(row.get("search_s") or 0.0 for row in rows)
    print(f"search cost, once per point: {searches:.0f} s of one worker")
    print(
        f"projected, {seeds} seeds on {args.workers} workers: {projected / 3600:.2f} h "
        f"(target < {args.target_hours:g} h: "
        f"{'met' if projected < args.target_hours * 3600 else 'missed'})"
    )
    if result.trained < len(rows):
        print("some runs were already in the folder: their times come from their rows")
    print(f"report of the first seed: {Path(args.out) / 'report.md'}")


if __name__ == "__main__":
    main()
