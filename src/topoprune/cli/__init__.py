"""The ``topoprune`` command: a thin argparse front over the library.

Each sub-command lives in its own module in this package and exposes ``add_parser(subparsers)``,
which registers the sub-command and sets ``func`` (a callable taking the parsed namespace and
returning an exit code). Errors a user can cause surface as :class:`TopopruneError`: they are
printed as one line and the process exits with code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from topoprune.errors import TopopruneError
from topoprune.files import is_main_process

_COMMAND_MODULES = ("demo", "train", "prune", "study", "bench", "count", "graph", "export")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"topoprune: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="topoprune", description="Topology-driven neural-network pruning.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        import_module(f"topoprune.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_method_flags", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.method_flags = extra
    try:
        with contextlib.ExitStack() as stack:
            if not is_main_process():  # under torchrun only rank 0 prints (and writes)
                stack.enter_context(contextlib.redirect_stdout(stack.enter_context(_devnull())))
            return int(args.func(args) or 0)
    except TopopruneError as err:
        print(f"topoprune: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("topoprune: interrupted", file=sys.stderr)
        return 130
    finally:
        _leave_process_group()


def _devnull():  # noqa: ANN202
    return open(os.devnull, "w")  # noqa: SIM115 (closed by the ExitStack)


def _leave_process_group() -> None:
    """Tear the torchrun process group down once the command is done (if one was made)."""
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
