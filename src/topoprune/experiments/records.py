"""The run record: what a run folder was made with, checked before anything is written to it.

Every run folder holds ``run.json``: the command, the model, widths, dataset, root and split
seed, the method with every option (defaults filled in), the training configuration and the
resolved environment (:func:`environment`). :func:`claim_folder` is called once every input has
been checked and before any work starts:

- a folder that holds a run (``run.json``) is refused without ``resume`` (or ``overwrite``,
  which clears it first);
- ``resume`` refuses a folder without a run, and a run whose record differs from the one asked
  for, naming the first differing field;
- leftover temporary files of a killed atomic write are removed;
- an ``--out`` that is a file, lies under a file, or cannot be written is refused.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from topoprune.errors import TopopruneError
from topoprune.files import check_writable, is_main_process, strict, write_json

RECORD_FILE = "run.json"
NOT_COMPARED = ("command", "environment")


def environment(device: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """Versions (Python, torch, numpy, topoprune), git state, device, threads and seed."""
    import numpy
    import torch

    from topoprune import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "topoprune": __version__,
        "git": _git_state(),
        "platform": platform.platform(),
        "device": device,
        "threads": torch.get_num_threads(),
        "seed": seed,
    }


def _git_state() -> str | None:
    """``<commit>[+dirty]`` of the source checkout, or None outside a git work tree."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=source, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def first_difference(before: Any, after: Any, where: str = "") -> str | None:
    """The dotted path of the first field where two JSON values differ, or None.

    >>> first_difference({"a": 1, "b": {"c": [1, 2]}}, {"a": 1, "b": {"c": [1, 3]}})
    'b.c[1]'
    """
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after)):
            found = first_difference(before.get(key), after.get(key), f"{where}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (a, b) in enumerate(zip(before, after, strict=True)):
            found = first_difference(a, b, f"{where}[{index}]")
            if found is not None:
                return found
        return None
    return None if before == after else where.lstrip(".") or "the record"


def _value_at(record: Any, path: str) -> Any:
    value = record
    for part in path.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            value = value[int(part[1:-1])] if isinstance(value, list) else None
        else:
            value = value.get(part) if isinstance(value, Mapping) else None
    return value


def check_out_path(out: Path) -> None:
    """Refuse an ``--out`` that is a file, lies under a file, or cannot be written."""
    if out.is_file():
        raise TopopruneError(f"--out {out} is a file: give a folder")
    for parent in out.parents:
        if parent.is_file():
            raise TopopruneError(f"--out {out} lies under the file {parent}: give a folder")
    check_writable(out)


def check_claimable(out: Path, *, resume: bool, overwrite: bool, holds: bool | None = None) -> None:
    """The checks :func:`claim_folder` makes that need no record, made before any work starts:
    the path, a run there without ``resume``/``overwrite``, nothing there to resume.
    ``holds`` overrides whether the folder counts as holding a run. Under torchrun rank 0 alone
    checks and claims (a refusal there ends the job)."""
    if not is_main_process():
        return
    check_out_path(out)
    holds = (out / RECORD_FILE).is_file() if holds is None else holds
    if resume and not holds:
        raise TopopruneError(f"nothing to resume in {out}: it holds no run ({RECORD_FILE})")
    if holds and not resume and not overwrite:
        raise TopopruneError(
            f"{out} already holds a run: --resume to continue it, --overwrite to replace "
            "it, or a new --out"
        )


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary files a killed atomic write left in ``folder`` (recursively)."""
    leftovers = [path for path in folder.rglob(".*.tmp") if path.is_file()]
    for path in leftovers:
        path.unlink()
    return leftovers


def claim_folder(
    out: str | os.PathLike,
    record: dict[str, Any],
    *,
    resume: bool,
    overwrite: bool = False,
) -> None:
    """Check ``out`` against ``record`` (see the module docstring), then write ``run.json``."""
    out = Path(out)
    if not is_main_process():
        return
    check_claimable(out, resume=resume, overwrite=overwrite)
    path = out / RECORD_FILE
    if resume:
        before = read_record(path)
        compared = {k: v for k, v in record.items() if k not in NOT_COMPARED}
        kept = {k: v for k, v in before.items() if k not in NOT_COMPARED}
        field = first_difference(kept, json.loads(json.dumps(strict(compared))))
        if field is not None:
            raise TopopruneError(
                f"cannot resume {out}: it was run with {field} = "
                f"{json.dumps(_value_at(kept, field))}, not "
                f"{json.dumps(_value_at(compared, field))}; use the same settings or a new --out"
            )
        remove_leftovers(out)
        return
    if path.is_file():  # overwrite (check_claimable refused the rest)
        shutil.rmtree(out)
    write_json(path, record)


def read_record(path: Path) -> dict[str, Any]:
    """The run record at ``path``; one clear error when it is not one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TopopruneError(f"{path} is not a run record ({err.__class__.__name__})") from None
    if not isinstance(record, dict):
        raise TopopruneError(f"{path} is not a run record")
    return record


def command_line() -> list[str]:
    """The command that started this process."""
    return [Path(sys.argv[0]).name, *sys.argv[1:]]


def run_record(
    *,
    model: str,
    dataset: str,
    config: Any,
    root: str | None = None,
    split_seed: int = 0,
    widths: list[int] | None = None,
    method: str | None = None,
    sparsity: float = 0.0,
    options: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a run (``config`` a :class:`topoprune.training.TrainConfig`); the method's
    options are checked and completed with their defaults."""
    from topoprune.pruning.api import call_record

    config.validate()
    pruning = None if method is None else call_record(method, sparsity, dict(options or {}))
    return {
        "command": command_line(),
        "model": model,
        "widths": None if widths is None else list(widths),
        "dataset": dataset,
        "root": root,
        "split_seed": split_seed,
        "method": pruning,
        "train": config.to_dict(),
        **(extra or {}),
        "environment": environment(_device_used(config.device), config.seed),
    }


def _device_used(requested: str) -> str:
    """The device a run on this machine trains on (``auto`` resolved)."""
    from topoprune.training.distributed import pick_device

    return str(pick_device(requested))
