"""``topoprune graph``: make, optimise, inspect and bank graphs for regular-graph pruning.

    topoprune graph make --nodes 64 --degree 8 --kind regular --seed 0 --out g.json
    topoprune graph optimize --nodes 64 --sparsity 0.875 --seconds 10 --out best.json --plot run.png
    topoprune graph info best.json
    topoprune graph bank --nodes 64 --degree 4 --count 8 --seconds 60 --out bank/

The graph file format follows the extension: ``.npy``, ``.json`` (with metadata) or
``.txt``/``.edges`` (Graph Golf edge list).
"""

from __future__ import annotations

import argparse

import numpy as np

from topoprune.errors import TopopruneError

KINDS = ("regular", "lattice", "ws", "er", "complete")
BANK_FORMATS = {"json": ".json", "npy": ".npy", "txt": ".txt"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("graph", help="make, optimise, inspect and bank graphs")
    commands = parser.add_subparsers(dest="graph_command", metavar="ACTION")
    commands.required = True

    make = commands.add_parser("make", help="generate a graph and write it to a file")
    _add_size_options(make, degree_required=False)
    make.add_argument("--kind", choices=KINDS, default="regular", help="default: regular")
    make.add_argument(
        "--p",
        type=float,
        default=None,
        help="rewiring (ws) or edge (er) chance; er default k/(n-1)",
    )
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--out", required=True, help="output file: .npy, .json, .txt or .edges")
    make.set_defaults(func=run_make)

    optimize = commands.add_parser("optimize", help="lower a regular graph's ASPL by edge swaps")
    optimize.add_argument(
        "--in",
        dest="source",
        default=None,
        help="start graph file (default: a random regular graph of --nodes and --degree)",
    )
    _add_size_options(optimize, degree_required=False)
    optimize.add_argument("--strategy", choices=("anneal", "greedy", "rgp"), default="anneal")
    optimize.add_argument("--seconds", type=float, default=None, help="time budget")
    optimize.add_argument("--steps", type=int, default=None, help="swaps to try")
    optimize.add_argument("--seed", type=int, default=0)
    optimize.add_argument(
        "--symmetry",
        type=int,
        default=1,
        help="search graphs invariant under v -> v + n/G (native engine; starts from the ring "
        "lattice unless --in is given); G = n/64 speeds up n >= 256",
    )
    optimize.add_argument("--out", required=True, help="output file: .npy, .json, .txt or .edges")
    optimize.add_argument("--plot", default=None, help="PNG of the ASPL over the swaps")
    optimize.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    optimize.set_defaults(func=run_optimize)

    info = commands.add_parser("info", help="print the facts about a graph file")
    info.add_argument("file", help="graph file: .npy, .json, .txt or .edges")
    info.set_defaults(func=run_info)

    bank = commands.add_parser("bank", help="graphs spread from the best ASPL to the ring lattice")
    _add_size_options(bank, degree_required=True)
    bank.add_argument("--count", type=int, required=True, help="number of graphs (>= 2)")
    bank.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    bank.add_argument("--seed", type=int, default=0)
    bank.add_argument("--format", choices=tuple(BANK_FORMATS), default="json")
    bank.add_argument("--out", required=True, help="output folder (created if needed)")
    bank.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    bank.set_defaults(func=run_bank)


def _add_size_options(parser: argparse.ArgumentParser, *, degree_required: bool) -> None:
    parser.add_argument("--nodes", type=int, required=degree_required, help="node count n")
    degree = parser.add_mutually_exclusive_group(required=degree_required)
    degree.add_argument("--degree", type=int, default=None, help="degree k")
    degree.add_argument("--sparsity", type=float, default=None, help="k = round(n (1 - sparsity))")


def _degree(args: argparse.Namespace) -> int:
    """The degree from ``--degree`` or ``--sparsity`` (RGP rule), for ``--nodes`` nodes."""
    from topoprune.graphs.generate import check_regular, degree_for

    if args.nodes is None:
        raise TopopruneError("give --nodes N")
    if args.sparsity is not None:
        k = degree_for(args.nodes, args.sparsity)
    elif args.degree is not None:
        k = args.degree
    else:
        raise TopopruneError("give --degree K or --sparsity S")
    check_regular(args.nodes, k)
    return k


def _make_graph(args: argparse.Namespace) -> np.ndarray:
    from topoprune.graphs import generate

    if args.kind == "complete":
        return generate.complete(args.nodes)
    if args.kind == "er":
        p = args.p if args.p is not None else _degree(args) / (args.nodes - 1)
        return generate.erdos_renyi(args.nodes, p, seed=args.seed)
    k = _degree(args)
    if args.kind == "regular":
        return generate.random_regular(args.nodes, k, seed=args.seed)
    if args.kind == "lattice":
        return generate.ring_lattice(args.nodes, k)
    if args.p is None:
        raise TopopruneError("--kind ws needs --p P, the rewiring probability")
    return generate.watts_strogatz(args.nodes, k, args.p, seed=args.seed)


def _summary(adj: np.ndarray) -> str:
    from topoprune.graphs.io import graph_metadata

    meta = graph_metadata(adj)
    degree = (
        f"k={meta['k']}"
        if meta["k"] is not None
        else f"degree {meta['degree_min']}/{meta['degree_mean']:.2f}/{meta['degree_max']} "
        "(min/mean/max)"
    )
    text = f"n={meta['n']}, edges={meta['edge_count']}, {degree}"
    if not meta["connected"]:
        return f"{text}, disconnected"
    text += f", ASPL={meta['aspl']:.4f}, diameter={meta['diameter']}"
    if meta["gap"] is not None:
        text += f", Moore ASPL={meta['moore_aspl']:.4f} (gap {meta['gap']:+.2%})"
    return text


def run_make(args: argparse.Namespace) -> int:
    from topoprune.graphs.io import check_output_path, save_graph

    if args.nodes is None:
        raise TopopruneError("graph make needs --nodes N")
    check_output_path(args.out)
    adj = _make_graph(args)
    save_graph(args.out, adj, seed=args.seed, strategy=f"make:{args.kind}")
    print(f"wrote {args.out}: {_summary(adj)}")
    return 0


def _start_graph(args: argparse.Namespace) -> np.ndarray:
    from topoprune.graphs.generate import random_regular, ring_lattice
    from topoprune.graphs.io import load_graph

    if args.source is not None:
        if args.nodes is not None or args.degree is not None or args.sparsity is not None:
            raise TopopruneError("give either --in FILE or --nodes with --degree/--sparsity")
        return load_graph(args.source)
    if getattr(args, "symmetry", 1) > 1:
        return ring_lattice(args.nodes, _degree(args))
    return random_regular(args.nodes, _degree(args), seed=args.seed)


def _check_plot_path(path: str | None) -> None:
    from pathlib import Path

    if path is None:
        return
    if Path(path).suffix.lower() != ".png":
        raise TopopruneError(f"--plot must name a .png file, got {path!r}")


def run_optimize(args: argparse.Namespace) -> int:
    from topoprune.graphs.io import check_output_path, save_graph
    from topoprune.graphs.paths import distance_stats, moore_bound
    from topoprune.graphs.swap import optimize

    check_output_path(args.out)
    _check_plot_path(args.plot)
    start = _start_graph(args)
    result = optimize(
        start,
        strategy=args.strategy,
        seed=args.seed,
        time_budget=args.seconds,
        max_steps=args.steps,
        progress=not args.no_progress,
        symmetry=args.symmetry,
    )
    save_graph(args.out, result.adj, seed=args.seed, strategy=args.strategy, extra=result.to_dict())
    n, k = result.adj.shape[0], int(result.adj[0].sum())
    bound = moore_bound(n, k)
    print(
        f"ASPL {result.start_aspl:.4f} -> {result.aspl:.4f} "
        f"(Moore {bound.aspl:.4f}, gap {result.aspl / bound.aspl - 1:+.2%}), "
        f"diameter {result.start_diameter} -> {result.diameter}; "
        f"{result.steps} swaps tried, {result.accepted} kept in {result.seconds:.1f} s"
    )
    print(f"wrote {args.out}")
    if args.plot is not None:
        from topoprune.experiments.plots import plot_optimization

        plot_optimization(
            args.plot,
            result.trajectory,
            distance_stats(result.adj).histogram,
            moore_aspl=bound.aspl,
            title=f"{args.strategy}: n={n}, k={k}, seed={args.seed}",
        )
        print(f"wrote {args.plot}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from topoprune.graphs.io import graph_metadata, load_graph
    from topoprune.graphs.smallworld import average_clustering

    adj = load_graph(args.file)
    meta = graph_metadata(adj)

    def show(value: object, fmt: str = "") -> str:
        return "n/a" if value is None else format(value, fmt)

    rows = [
        ("file", args.file),
        ("nodes", meta["n"]),
        ("edges", meta["edge_count"]),
        (
            "degree",
            meta["k"]
            if meta["k"] is not None
            else f"{meta['degree_min']}..{meta['degree_max']} (mean {meta['degree_mean']:.2f})",
        ),
        ("regular", "yes" if meta["k"] is not None else "no"),
        ("connected", "yes" if meta["connected"] else "no"),
        ("ASPL", show(meta["aspl"], ".4f")),
        ("diameter", show(meta["diameter"])),
        ("Moore ASPL", show(meta["moore_aspl"], ".4f")),
        ("Moore diameter", show(meta["moore_diameter"])),
        ("gap to Moore", show(meta["gap"], "+.2%")),
        ("clustering", f"{average_clustering(adj):.4f}"),
    ]
    for name, value in rows:
        print(f"{name + ':':<16} {value}")
    return 0


def run_bank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from topoprune.graphs.io import save_bank
    from topoprune.graphs.swap import bank

    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise TopopruneError(f"--out {args.out!r} is a file; give a folder for the graph bank")
    k = _degree(args)
    graphs = bank(
        args.nodes,
        k,
        args.count,
        seed=args.seed,
        time_budget=args.seconds,
        progress=not args.no_progress,
    )
    index = save_bank(args.out, graphs, extension=BANK_FORMATS[args.format], seed=args.seed)
    for graph in graphs:
        print(f"{graph.label:<4} ASPL {graph.aspl:.4f}  diameter {graph.diameter}")
    print(f"wrote {len(graphs)} graphs and {index}")
    return 0
