"""``topoprune demo``: RGP against the dense model and the ring lattice on bundled MNIST images.

A CIFAR-style VGG-11 with 64 channels in every layer (so that it trains in seconds per epoch on
two cores) is trained three times from the same initialisation: dense, pruned with RGP (an
ASPL-optimised 4-regular graph on 64 nodes: 93.75% of every masked layer's connections removed,
the paper's 64_4 setting), and pruned with the ring lattice of the same degree (the highest
ASPL). The comparison table is printed and written to ``OUT/report.md``.
"""

from __future__ import annotations

import argparse

DEMO_MODEL = "vgg11"
DEMO_WIDTHS = [64] * 8
DEMO_NODES = 64
DEMO_SPARSITY = 0.9375
DEMO_LATENCY_BATCH = 64


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="RGP vs dense vs ring lattice on bundled MNIST")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/demo", help="replaced on every run")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from topoprune.experiments.protocols import measure_latencies, run_pruned, write_run_report
    from topoprune.experiments.run_report import markdown_report
    from topoprune.files import write_text
    from topoprune.training import TrainConfig

    config = TrainConfig(
        epochs=args.epochs,
        batch_size=64,
        lr=0.05,
        seed=args.seed,
        max_steps_per_epoch=args.max_steps,
    )
    runs = []
    for method in (None, "rgp", "lattice"):
        label = method or "dense"
        print(f"== {label} ==")
        runs.append(
            run_pruned(
                DEMO_MODEL,
                "mnist5k",
                config,
                method=method,
                sparsity=DEMO_SPARSITY,
                prune_options={"nodes": DEMO_NODES, "seed": args.seed},
                out_dir=Path(args.out) / label,
                widths=DEMO_WIDTHS,
                label=label,
                progress=not args.no_progress,
                overwrite=True,  # the demo replays from scratch every time
                measure_speed=False,  # timed below, side by side, once all three are trained
            )
        )
    measure_latencies(runs, DEMO_LATENCY_BATCH, DEMO_WIDTHS)
    for run in runs:  # their reports again, now with the latencies
        write_run_report(Path(args.out) / run.label, run)
    table = markdown_report(runs)
    write_text(Path(args.out) / "report.md", table)
    print(table, end="")
    return 0
