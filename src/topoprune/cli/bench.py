"""``topoprune bench``: every method × sparsity × seed of a YAML config, one report with plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="compare methods x sparsities x seeds under one budget (YAML config)"
    )
    parser.add_argument(
        "--config", required=True, help="YAML file, e.g. configs/quick-mnist5k.yaml"
    )
    parser.add_argument(
        "--out", default=None, help="results folder (default runs/bench/<config name>)"
    )
    parser.add_argument("--workers", type=int, default=1, help="runs trained in parallel")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.experiments.bench import run_bench

    out = args.out or str(Path("runs") / "bench" / Path(args.config).stem)
    result = run_bench(args.config, out, workers=args.workers, progress=not args.no_progress)
    report = (result.out_dir / "report.md").read_text()
    print(report, end="")
    print(f"{len(result.rows)} runs ({result.trained} trained now); see {result.out_dir}")
    return 0
