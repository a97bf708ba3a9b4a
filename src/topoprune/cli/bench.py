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
    parser.add_argument(
        "--publish",
        default=None,
        metavar="FILE",
        help="also write the report to FILE (e.g. docs/results.md), its plots in img/ beside it",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.errors import TopopruneError
    from topoprune.experiments.bench import merge_reports, parse_shard, run_bench
    from topoprune.files import check_writable

    if (args.config is None) == (args.report is None):
        raise TopopruneError("bench needs --config FILE to run, or --report DIR to merge shards")
    if args.publish is not None:
        if args.shard is not None:
            raise TopopruneError("--publish needs the whole grid: publish with --report DIR")
        check_writable(Path(args.publish).parent)
    out = args.out or str(Path("runs") / "bench" / Path(args.config or "").stem)
    if args.report is not None:
        result = merge_reports(args.report)
    else:
        shard = None if args.shard is None else parse_shard(args.shard)
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
    if args.publish is not None:
        from topoprune.experiments.publish import publish_report

        publish_report(result.out_dir, args.publish, _command(args, out))
    print((result.out_dir / "report.md").read_text(), end="")
    print(f"{len(result.rows)} runs ({result.trained} trained now); see {result.out_dir}")
    return 0


def _command(args: argparse.Namespace, out: str) -> str:
    """The command that makes the published report again (finished runs are not rerun)."""
    if args.report is not None:
        return f"topoprune bench --report {args.report} --publish {args.publish}"
    workers = f" --workers {args.workers}" if args.workers != 1 else ""
    return f"topoprune bench --config {args.config} --out {out}{workers} --publish {args.publish}"
