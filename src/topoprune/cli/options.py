"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse

from topoprune.errors import TopopruneError


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3x32x32"`` -> ``(3, 32, 32)``; one clear error otherwise."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1:
        raise TopopruneError(f"--input must look like CxHxW, e.g. 3x32x32; got {text!r}")
    return size  # type: ignore[return-value]


def add_training_options(parser: argparse.ArgumentParser, *, epochs: int = 1) -> None:
    """The options every command that trains a model accepts."""
    parser.add_argument("--model", required=True, help="model name (see `topoprune count --list`)")
    parser.add_argument("--widths", default=None, help="per-layer widths, e.g. 32,64,64")
    parser.add_argument("--dataset", required=True, help="digits, mnist5k, cifar10, ...")
    parser.add_argument("--root", default=None, help="dataset folder for on-disk datasets")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "multistep", "constant"])
    parser.add_argument("--milestones", default="30,60,90", help="epochs for multistep, e.g. 30,60")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--sync-bn", action="store_true", help="under torchrun: BatchNorm over all ranks' batches"
    )
    parser.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch")
    parser.add_argument("--out", default=None, help="run folder (log, checkpoint, result)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--tensorboard", default=None, metavar="DIR", help="stream the epochs' scalars here"
    )


def parse_widths(text: str | None) -> list[int] | None:
    """``"32,64"`` -> ``[32, 64]``; None stays None (the model's default widths)."""
    if text is None:
        return None
    try:
        return [int(w) for w in text.split(",")]
    except ValueError:
        raise TopopruneError(f"--widths must be comma-separated integers, got {text!r}") from None


def run_options(args: argparse.Namespace) -> dict:
    """Keyword arguments every training command passes on: data, output folder, progress, widths."""
    return {
        "root": args.root,
        "split_seed": args.split_seed,
        "out_dir": args.out,
        "progress": not args.no_progress,
        "widths": parse_widths(args.widths),
        "overwrite": args.overwrite,
        "tensorboard": args.tensorboard,
    }


def training_config(args: argparse.Namespace):  # -> TrainConfig (torch imported lazily)
    """Build a :class:`TrainConfig` from the parsed training options."""
    from topoprune.training import TrainConfig

    try:
        milestones = tuple(int(m) for m in args.milestones.split(",") if m.strip())
    except ValueError as err:
        raise TopopruneError(
            f"--milestones must be comma-separated integers, got {args.milestones!r}"
        ) from err
    if args.resume and args.out is None:
        raise TopopruneError("--resume needs --out DIR pointing at the run to continue")
    if args.resume and args.overwrite:
        raise TopopruneError("--resume and --overwrite contradict each other: choose one")
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        milestones=milestones,
        label_smoothing=args.label_smoothing,
        seed=args.seed,
        device=args.device,
        max_steps_per_epoch=args.max_steps,
        sync_bn=args.sync_bn,
    )
