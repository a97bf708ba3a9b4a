"""``topoprune train``: train a model from scratch and report accuracy, params and MACs."""

from __future__ import annotations

import argparse

from topoprune.cli.options import add_training_options, run_options, training_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train a model from scratch")
    add_training_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.experiments.records import run_record
    from topoprune.experiments.runs import run_training

    config = training_config(args)
    options = run_options(args)
    record = run_record(
        model=args.model,
        dataset=args.dataset,
        config=config,
        root=options["root"],
        split_seed=options["split_seed"],
        widths=options["widths"],
    )
    summary = run_training(
        args.model, args.dataset, config, resume=args.resume, record=record, **options
    )
    print(summary.describe())
    return 0
