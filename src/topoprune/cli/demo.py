"""``topoprune demo``: the main job on a bundled dataset, in about a minute on two cores."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="train a small model on bundled MNIST images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/demo")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.train import TrainConfig
    from topoprune.train.run import run_training

    config = TrainConfig(epochs=args.epochs, batch_size=64, lr=0.05, seed=args.seed)
    summary = run_training("lenet5", "mnist5k", config, out_dir=args.out)
    print(summary.describe())
    return 0
