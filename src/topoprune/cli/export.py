"""``topoprune export``: realize a run's trained model and write it as an ONNX file.

``topoprune export RUN_DIR --onnx OUT.onnx [--batch N] [--no-check]`` rebuilds the trained
model of a finished run folder (:func:`topoprune.experiments.trained.trained_model`), realizes
it on a batch of N inputs of the run's size (:func:`topoprune.compact.realize`), exports it
with a dynamic batch (:func:`topoprune.compact.export.export_onnx`) and, unless ``--no-check``,
compares onnxruntime's outputs with PyTorch's before the file is written. Every input is
checked first: a bad one is one line and exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from topoprune import files
from topoprune.errors import TopopruneError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="realize a run's trained model and write it as an ONNX file"
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run folder (topoprune train, prune or bench)"
    )
    parser.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the file to write")
    parser.add_argument(
        "--batch",
        type=int,
        default=64,
        help="inputs to realize and check on (default 64; the file takes any batch)",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime vs PyTorch comparison"
    )
    parser.set_defaults(func=run)


def check_output_file(path: Path, option: str = "--onnx") -> None:
    """Refuse an output file that could not be written, before any work starts."""
    if path.is_dir():
        raise TopopruneError(f"{option} {path} is a folder: give a file path")
    folder = path.parent
    if not folder.exists():
        raise TopopruneError(f"cannot write {path}: its folder {folder} does not exist")
    if not folder.is_dir():
        raise TopopruneError(f"cannot write {path}: {folder} is a file")
    if not files.can_create(folder):
        raise TopopruneError(f"cannot write in {folder}: choose another {option} path")


def _choices(realized) -> str:  # noqa: ANN001 (a realized module)
    report = getattr(realized, "realize_report", None)
    if report is None or not report.layers:
        return "no masked conv or max pool to realize"
    kinds = Counter(layer.chosen.rstrip("0123456789x") for layer in report.layers)
    return f"{len(report.layers)} layers realized: " + ", ".join(
        f"{count} {kind}" for kind, count in kinds.most_common()
    )


def run(args: argparse.Namespace) -> int:
    from topoprune.compact.autotune import realize
    from topoprune.compact.export import check_export_packages, export_onnx
    from topoprune.experiments.trained import check_run_folder, run_example, trained_model

    if args.batch < 1:
        raise TopopruneError(f"--batch must be >= 1, got {args.batch}")
    check_export_packages(check=not args.no_check)
    out = Path(args.onnx)
    check_output_file(out)
    check_run_folder(args.run_dir)
    model, input_size = trained_model(args.run_dir)
    example = run_example(input_size, args.batch)
    realized = realize(model, example)
    print(f"{args.run_dir}: {_choices(realized)}")
    report = export_onnx(realized, example, out, check=not args.no_check)
    print(report.describe())
    return 0
