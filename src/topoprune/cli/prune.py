"""``topoprune prune``: prune before training, train from scratch, report what was gained."""

from __future__ import annotations

import argparse

from topoprune.cli.options import add_training_options, run_options, training_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune", help="prune a model (RGP and baselines), train it from scratch, write a report"
    )
    parser.add_argument("--method", default="rgp", help="rgp, lattice, random-regular, random")
    parser.add_argument("--sparsity", type=float, required=True, help="fraction removed, [0, 1)")
    parser.add_argument("--nodes", type=int, default=64, help="graph nodes (channel blocks)")
    parser.add_argument("--graph", default=None, help="use this graph file (.npy/.json/.txt)")
    parser.add_argument("--strategy", default="anneal", help="anneal, greedy or rgp")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="graph swaps to try (default 200,000 unless --seconds is given)",
    )
    parser.add_argument("--seconds", type=float, default=None, help="graph search time limit")
    parser.add_argument("--self-loops", action="store_true", help="keep each node's own block")
    parser.add_argument("--layers", action="append", default=None, help="only layers matching")
    parser.add_argument("--exclude", action="append", default=[], help="skip layers matching")
    parser.add_argument("--latency-batch", type=int, default=64)
    add_training_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.experiments.pruned_run import markdown_report, run_pruned
    from topoprune.pruning.rgp import DEFAULT_STEPS

    config = training_config(args)
    steps = DEFAULT_STEPS if args.steps is None and args.seconds is None else args.steps
    graph = None
    if args.graph is not None:
        from topoprune.graphs.io import load_graph

        graph = load_graph(args.graph)
    options = {
        "nodes": args.nodes,
        "graph": graph,
        "strategy": args.strategy,
        "steps": steps,
        "seconds": args.seconds,
        "self_loops": args.self_loops,
        "layers": args.layers,
        "exclude": args.exclude,
        "seed": args.seed,
    }
    run_ = run_pruned(
        args.model,
        args.dataset,
        config,
        method=args.method,
        sparsity=args.sparsity,
        prune_options=options,
        resume=args.resume,
        latency_batch=args.latency_batch,
        **run_options(args),
    )
    print(markdown_report([run_]), end="")
    return 0
