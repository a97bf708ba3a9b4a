"""The trained model of a finished run folder, rebuilt; and its realized form in one call.

A run folder (``topoprune train``, ``prune`` or ``bench``) holds the run record (``run.json``),
the summary (``summary.json``: model name, ``create_model`` arguments, input size, counts), the
final weights (``checkpoint.pt``, read with :func:`topoprune.training.checkpoint.trained_state`,
the loader of ``--from``) and, for a pruned run, the pruning (``prune.pt``).
:func:`trained_model` builds the model named in the summary, re-attaches the pruning's skip
projections, narrows the layers a channel-pruning method narrowed (their shapes are read from
the checkpoint), puts the checkpoint's masks on, loads the weights and checks the params count
against the summary's. :func:`realize_run` then realizes that model on a batch of the run's
input size.

>>> from topoprune.experiments.trained import run_example
>>> tuple(run_example((1, 28, 28), batch=2).shape)
(2, 1, 28, 28)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.errors import TopopruneError


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TopopruneError(
            f"{path} is not a readable {what} ({err.__class__.__name__})"
        ) from None
    if not isinstance(value, dict):
        raise TopopruneError(f"{path} is not a {what}")
    return value


def check_run_folder(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path when it holds a finished run; one clear error otherwise."""
    from topoprune.experiments.records import RECORD_FILE
    from topoprune.training.trainer import CHECKPOINT_NAME

    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise TopopruneError(f"no such run folder: {run_dir}")
    if not run_dir.is_dir():
        raise TopopruneError(f"{run_dir} is a file, not a run folder")
    if not (run_dir / RECORD_FILE).is_file():
        raise TopopruneError(
            f"{run_dir} is not a run folder (no {RECORD_FILE}): give a folder written by "
            "topoprune train, prune or bench"
        )
    for name in ("summary.json", CHECKPOINT_NAME):
        if not (run_dir / name).is_file():
            raise TopopruneError(
                f"{run_dir} holds no finished training (no {name}): finish it with --resume"
            )
    return run_dir


def _conformed(module: nn.Module, prefix: str, state: dict[str, torch.Tensor]) -> nn.Module | None:
    """A fresh layer of ``module``'s kind with the shapes ``state`` holds for it, when they differ
    (a layer a channel-pruning method narrowed); None when they agree or it is no such layer."""
    weight = state.get(f"{prefix}weight", state.get(f"{prefix}weight_orig"))
    bias = f"{prefix}bias" in state
    kind = type(module)
    if kind is nn.Conv2d and weight is not None and weight.shape != module.weight.shape:
        out_channels, group_in = weight.shape[:2]
        depthwise = module.groups > 1 and module.groups == module.in_channels
        groups = out_channels if depthwise and group_in == 1 else module.groups
        return nn.Conv2d(
            group_in * groups,
            out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            groups,
            bias=bias,
            padding_mode=module.padding_mode,
        )
    if kind is nn.Linear and weight is not None and weight.shape != module.weight.shape:
        return nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        stats = state.get(f"{prefix}running_mean", weight)
        if stats is not None and stats.shape[0] != module.num_features:
            return kind(
                stats.shape[0],
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
            )
    return None


def model_from_state(
    model: nn.Module, state: dict[str, torch.Tensor], *, where: str = "the state"
) -> nn.Module:
    """Make ``model`` (freshly built, unmasked) take ``state``: layers narrowed to its shapes,
    its masks (``*_orig`` + ``*_mask``) put on, its tensors loaded. In place; returns ``model``."""
    from topoprune.training.checkpoint import check_model_state

    for name, module in list(model.named_modules()):
        replacement = _conformed(module, f"{name}." if name else "", state)
        if replacement is not None:
            replacement.train(module.training)
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, replacement)
    for key, mask in state.items():
        if key.endswith("_mask") and f"{key[: -len('_mask')]}_orig" in state:
            module_name, _, parameter = key[: -len("_mask")].rpartition(".")
            module = model.get_submodule(module_name)
            if isinstance(getattr(module, parameter, None), nn.Parameter):
                prune.custom_from_mask(module, parameter, mask)
    advice = "its files do not fit together; train it again"
    check_model_state(where, state, model.state_dict(), advice)
    model.load_state_dict(state)
    return model


def trained_model(run_dir: str | Path) -> tuple[nn.Module, tuple[int, int, int]]:
    """The trained (masked) model of a finished run folder, on the CPU in eval mode, and the
    run's input size (C, H, W). See the module docstring for how it is rebuilt."""
    from topoprune.experiments.protocols import PRUNE_FILE
    from topoprune.measure import count
    from topoprune.models import create_model
    from topoprune.pruning import PruneResult
    from topoprune.training.checkpoint import trained_state

    run_dir = check_run_folder(run_dir)
    summary = _read_json(run_dir / "summary.json", "run summary")
    try:
        name, kwargs = summary["model"], dict(summary["model_kwargs"])
        input_size = tuple(int(size) for size in summary["input_size"])
    except (KeyError, TypeError, ValueError):
        raise TopopruneError(f"{run_dir / 'summary.json'} is not a run summary") from None
    try:
        state, _ = trained_state(run_dir)
    except TopopruneError as err:  # its messages speak of --from
        raise TopopruneError(str(err).removeprefix("--from ")) from None
    model = create_model(name, **kwargs)
    if (run_dir / PRUNE_FILE).is_file():
        pruning = PruneResult.load(run_dir / PRUNE_FILE)
        if pruning.skips:
            from topoprune.pruning.skips import attach_skips

            attach_skips(model, pruning.skips, seed=pruning.record["call"].get("seed", 0))
    model_from_state(model, state, where=str(run_dir / "checkpoint.pt"))
    model.eval()
    params = count(model, input_size).params
    if "params" in summary and params != summary["params"]:
        raise TopopruneError(
            f"the model rebuilt from {run_dir} has {params:,} params, its summary says "
            f"{summary['params']:,}: the run's files do not fit together"
        )
    return model, input_size  # type: ignore[return-value]


def run_example(input_size: tuple[int, ...], batch: int = 64, seed: int = 0) -> torch.Tensor:
    """A seeded standard-normal batch ``(batch, *input_size)``, to realize and check on."""
    if batch < 1:
        raise TopopruneError(f"the batch must be >= 1, got {batch}")
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *input_size, generator=generator)


def realize_run(run_dir: str | Path, batch: int = 64, **realize_options: Any) -> nn.Module:
    """The realized form of a finished run's trained model, in one call: :func:`trained_model`,
    then :func:`topoprune.compact.realize` on a batch of ``batch`` inputs of the run's size
    (``realize_options``: ``repeats``, ``warmup``, ``candidates``, ``remove_empty``)."""
    from topoprune.compact.autotune import realize

    if batch < 1:
        raise TopopruneError(f"the batch must be >= 1, got {batch}")
    model, input_size = trained_model(run_dir)
    return realize(model, run_example(input_size, batch), **realize_options)
