"""``topoprune prune``: prune with any registered method, train by its protocol, report.

Method options are flags named after the options (``--nodes 16``, ``--self-loops``,
``--no-self-loops``, ``--layers 'layer1.*' --layers 'layer2.*'``); values are read as YAML
scalars or lists (``--like-options '{nodes: 16}'``), exactly as the bench YAML reads them, and
checked against the method's schema. ``--list-methods`` prints every method, its protocol and
its options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from topoprune.cli.options import add_training_options, run_options, training_config
from topoprune.errors import TopopruneError


class _ListMethods(argparse.Action):
    """``--list-methods``: print the registry and exit, like ``--help``."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        print(describe_methods(), end="")
        parser.exit(0)


def describe_methods() -> str:
    """Every registered method with its protocol, summary and options (type, default, doc)."""
    from topoprune.pruning import list_methods

    lines = []
    for method in list_methods():
        lines += [f"{method.name}  [{method.protocol}]  {method.summary}"]
        for spec in method.schema():
            flag = "--" + spec.name.replace("_", "-")
            choices = f" (one of {', '.join(map(str, spec.choices))})" if spec.choices else ""
            lines.append(
                f"    {flag} ({spec.type_name}, default {spec.default!r}): {spec.doc}{choices}"
            )
        lines.append("")
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="prune a model with any method, train it by the method's protocol, write a report",
        description="Method options follow as flags: see --list-methods.",
        allow_abbrev=False,
    )
    parser.add_argument("--list-methods", action=_ListMethods, help="list methods and options")
    parser.add_argument("--method", required=True, help="a registered method (--list-methods)")
    parser.add_argument(
        "--sparsity",
        type=float,
        default=None,
        help="fraction removed, [0, 1) (not needed when the method's options set the budget)",
    )
    parser.add_argument(
        "--from",
        dest="start_from",
        default=None,
        metavar="PATH",
        help="after-training methods: start from these trained weights (a run folder, a "
        "checkpoint or a state-dict file of the same model) instead of training dense",
    )
    parser.add_argument("--latency-batch", type=int, default=64)
    parser.add_argument(
        "--search",
        action="store_true",
        help="sweep the method's options with short runs, train the best (by validation)",
    )
    parser.add_argument(
        "--sweep",
        action="append",
        default=None,
        metavar="KEY=V1,V2",
        help="values of one option to sweep (repeatable); default: the method's own grid",
    )
    parser.add_argument(
        "--sweep-epochs", type=int, default=None, help="epochs per swept combination (E // 5)"
    )
    add_training_options(parser)
    parser.set_defaults(func=run, takes_method_flags=True)


def _flag_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def method_flags(tokens: list[str], method: str) -> dict[str, Any]:
    """The method options in ``tokens`` (the flags argparse did not know), checked by name.

    ``--name VALUE`` / ``--name=VALUE`` give a value; a bare ``--name`` is True and
    ``--no-name`` False; a flag given twice collects a list.
    """
    from topoprune.pruning import get_method

    specs = {spec.name: spec for spec in get_method(method).schema()}
    found: dict[str, list[Any]] = {}
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if not token.startswith("--"):
            raise TopopruneError(f"unexpected argument {token!r}: method options are --name VALUE")
        name, has_value, text = token[2:].partition("=")
        key = name.replace("-", "_")
        value: Any
        if has_value:
            value = _flag_value(text)
        elif key.startswith("no_") and key[3:] in specs and key not in specs:
            key, value = key[3:], False
        elif position + 1 < len(tokens) and not tokens[position + 1].startswith("--"):
            position += 1
            value = _flag_value(tokens[position])
        else:
            value = True
        if key not in specs:
            raise TopopruneError(
                f"{method} has no option --{name}; its options: "
                + ", ".join("--" + spec.replace("_", "-") for spec in specs)
            )
        found.setdefault(key, []).append(value)
        position += 1
    options = {}
    for key, values in found.items():
        single = len(values) == 1
        listed = single and (isinstance(values[0], list) or not _is_sequence(specs[key].hint))
        options[key] = values[0] if listed else values
    return options


def _is_sequence(hint: Any) -> bool:
    import typing

    members = typing.get_args(hint) if typing.get_origin(hint) is not None else (hint,)
    origins = {typing.get_origin(member) for member in members} | set(members)
    return bool(origins & {tuple, list})


def parse_sweep(texts: list[str] | None) -> dict[str, list[Any]] | None:
    """``["rewire_p=0,0.1", "density=sqrt"]`` -> ``{"rewire_p": [0, 0.1], "density": ["sqrt"]}``."""
    if not texts:
        return None
    grid = {}
    for text in texts:
        key, has_values, values = text.partition("=")
        if not has_values or not key or not values:
            raise TopopruneError(f"--sweep must look like KEY=V1,V2,...; got {text!r}")
        grid[key.replace("-", "_")] = [_flag_value(value) for value in values.split(",")]
    return grid


def run(args: argparse.Namespace) -> int:
    from topoprune.experiments.protocols import run_pruned
    from topoprune.experiments.run_report import markdown_report
    from topoprune.experiments.sweep import run_search
    from topoprune.pruning import get_method
    from topoprune.pruning.registry import check_options

    config = training_config(args)
    options = {"seed": args.seed, **method_flags(args.method_flags, args.method)}
    spec = get_method(args.method)
    sparsity = args.sparsity
    if sparsity is None:
        own = spec.sets_budget is not None and spec.sets_budget(check_options(spec, options).method)
        if not own:
            raise TopopruneError(
                f"{args.method} needs --sparsity, the fraction of weights to remove (e.g. 0.9)"
            )
        sparsity = 0.0
    check_options(spec, options, sparsity)  # before any work
    grid = parse_sweep(args.sweep)
    shared = {
        "method": args.method,
        "sparsity": sparsity,
        "prune_options": options,
        "resume": args.resume,
        "latency_batch": args.latency_batch,
        **run_options(args),
    }
    if not (args.search or grid):
        run_ = run_pruned(args.model, args.dataset, config, start_from=args.start_from, **shared)
    else:
        if args.out is None:
            raise TopopruneError("--search needs --out DIR for its sweep runs")
        if args.start_from is not None:
            raise TopopruneError("--from starts one run; it does not combine with --search")
        epochs = args.sweep_epochs or max(1, config.epochs // 5)
        run_, _ = run_search(
            args.model, args.dataset, config, sweep_epochs=epochs, grid=grid, **shared
        )
    if args.out is not None:
        print((Path(args.out) / "report.md").read_text(), end="")
    else:
        print(markdown_report([run_]), end="")
    return 0
