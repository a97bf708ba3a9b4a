"""``topoprune count``: params and MACs of a model, per layer and in total."""

from __future__ import annotations

import argparse

from topoprune.cli.options import parse_input_size


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("count", help="count params and MACs of a model")
    parser.add_argument("--model", help="model name")
    parser.add_argument("--input", default="3x32x32", help="input size CxHxW (default 3x32x32)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--list", action="store_true", help="list the model names and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from topoprune.errors import TopopruneError
    from topoprune.measure import count, format_counts
    from topoprune.models import create_model, list_models

    if args.list:
        print("\n".join(list_models()))
        return 0
    if not args.model:
        raise TopopruneError("count needs --model NAME (or --list to see the names)")
    channels, height, width = parse_input_size(args.input)
    model = create_model(args.model, num_classes=args.num_classes, in_channels=channels)
    print(format_counts(count(model, (channels, height, width))))
    return 0
