"""``topoprune study aspl``: train one pruned network per graph of a bank, correlate ASPL."""

from __future__ import annotations

import argparse

from topoprune.cli.options import add_training_options, run_options, training_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("study", help="experiments: the ASPL–accuracy study")
    studies = parser.add_subparsers(dest="study", metavar="STUDY", parser_class=type(parser))
    studies.required = True
    aspl = studies.add_parser("aspl", help="ASPL vs accuracy over a bank of k-regular graphs")
    aspl.add_argument("--nodes", type=int, required=True)
    aspl.add_argument("--degree", type=int, required=True)
    aspl.add_argument("--graphs", type=int, default=8, help="graphs in the bank")
    aspl.add_argument("--seeds", type=int, default=3, help="training seeds per graph")
    aspl.add_argument("--bank-seconds", type=float, default=60.0, help="bank search time")
    add_training_options(aspl)
    aspl.set_defaults(func=run_aspl)


def run_aspl(args: argparse.Namespace) -> int:
    from topoprune.errors import TopopruneError
    from topoprune.experiments.aspl_study import run_study
    from topoprune.graphs import check_regular

    if args.out is None:
        raise TopopruneError("study aspl needs --out DIR (runs are saved there and resumed)")
    if args.graphs < 2 or args.seeds < 1:
        raise TopopruneError("--graphs must be >= 2 and --seeds >= 1")
    check_regular(args.nodes, args.degree)
    result = run_study(
        args.model,
        args.dataset,
        training_config(args),
        nodes=args.nodes,
        degree=args.degree,
        graphs=args.graphs,
        seeds=args.seeds,
        bank_seconds=args.bank_seconds,
        resume=args.resume,
        **run_options(args),
    )
    print(
        f"{len(result.rows)} runs: "
        f"Pearson r = {result.pearson_r:.3f} (p = {result.pearson_p:.3g}), "
        f"Spearman rho = {result.spearman_rho:.3f} (p = {result.spearman_p:.3g}); see {args.out}"
    )
    return 0
