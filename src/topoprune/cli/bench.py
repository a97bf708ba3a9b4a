"""``topoprune bench``: every method × sparsity × seed of a YAML config, one report with plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="compare methods x sparsities x seeds under one budget (YAML config)"
    )
    parser.add_argument("--config", help="YAML file, e.g. configs/quick-mnist5k.yaml")
    parser.add_argument(
        "--out", default=None, help="results folder (default runs/bench/<config name>)"
    )
    parser.add_argument("--workers", type=int, default=1, help="runs trained in parallel")
    parser.add_argument(
        "--shard", default=None, metavar="I/N", help="run only the I-th of N slices of the grid"
    )
    parser.add_argument(
        "--report", default=None, metavar="DIR", help="merge the shards' rows in DIR, report"
    )
    parser.add_argument(
        "--retime",
        action="store_true",
        help="time every run of the folder again, side by side (not only the ones trained now)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.errors import TopopruneError
    from topoprune.experiments.bench import merge_reports, parse_shard, run_bench

    if (args.config is None) == (args.report is None):
        raise TopopruneError("bench needs --config FILE to run, or --report DIR to merge shards")
    if args.report is not None:
        result = merge_reports(args.report)
    else:
        shard = None if args.shard is None else parse_shard(args.shard)
        out = args.out or str(Path("runs") / "bench" / Path(args.config).stem)
        result = run_bench(
            args.config,
            out,
            workers=args.workers,
            progress=not args.no_progress,
            shard=shard,
            retime=args.retime,
        )
        if shard is not None:
            print(
                f"shard {shard[0]}/{shard[1]}: {len(result.rows)} runs ({result.trained} trained "
                f"now); when every shard is done: topoprune bench --report {result.out_dir}"
            )
            return 0
    print((result.out_dir / "report.md").read_text(), end="")
    print(f"{len(result.rows)} runs ({result.trained} trained now); see {result.out_dir}")
    return 0
