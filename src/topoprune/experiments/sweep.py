"""``--search``: sweep a method's options with short training runs, keep the best by validation
accuracy, then train the final model from scratch with the chosen options.

The grid is the method's own (``Method.sweep``, e.g. small-world's ``rewire_p`` × ``density``)
or the caller's. Every combination trains for ``sweep_epochs`` in ``OUT/sweep/<key=value,...>``
with the final run's settings otherwise; the one with the highest final-epoch validation
accuracy (the first listed on a tie; the test split is never read) is trained again, from
scratch and for the full epochs, in ``OUT``. Same seed, same masks: the final model carries
exactly the masks its short run had (unless the method's search is time-budgeted, such as
``rgp`` with ``seconds``). Resumable: finished combinations are read back, a
combination cut off mid-way continues from its checkpoint (with ``resume=True``).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from topoprune.errors import TopopruneError
from topoprune.experiments.protocols import PrunedRun, run_pruned
from topoprune.experiments.records import RECORD_FILE, check_claimable
from topoprune.files import write_json, write_text
from topoprune.pruning import get_method
from topoprune.pruning.registry import check_options
from topoprune.training import TrainConfig

SWEEP_DIR = "sweep"


def sweep_grid(method: str, given: Mapping[str, Sequence[Any]] | None) -> list[dict[str, Any]]:
    """Every combination of the grid (``given`` or the method's own), in listed order.

    >>> [sorted(c.items()) for c in sweep_grid("smallworld", {"rewire_p": [0, 1]})]
    [[('rewire_p', 0)], [('rewire_p', 1)]]
    """
    grid = dict(given) if given else get_method(method).sweep
    if not grid:
        raise TopopruneError(f"{method} has no default sweep: give one with --sweep KEY=V1,V2")
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def _holds_search(out: Path) -> bool:
    return (out / RECORD_FILE).is_file() or (out / SWEEP_DIR).is_dir()


def _folder_name(combination: Mapping[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in combination.items())


def run_search(
    model_name: str,
    dataset: str,
    config: TrainConfig,
    *,
    method: str,
    sparsity: float,
    sweep_epochs: int,
    out_dir: str | Path,
    grid: Mapping[str, Sequence[Any]] | None = None,
    prune_options: dict[str, Any] | None = None,
    **run_kwargs: Any,
) -> tuple[PrunedRun, list[dict[str, Any]]]:
    """Sweep, choose by validation accuracy, train the choice; (final run, sweep rows).

    ``run_kwargs`` go to every :func:`run_pruned` call (root, split_seed, widths, progress,
    latency_batch); ``measure_speed`` applies to the final run only, ``tensorboard`` gets a
    subfolder per sweep run; ``resume`` continues a
    search in ``out_dir`` (each run's record compared), ``overwrite`` replaces one.
    """
    options = dict(prune_options or {})
    combinations = sweep_grid(method, grid)
    spec = get_method(method)
    for combination in combinations:  # every combination is checked before any training
        check_options(spec, {**options, **combination}, sparsity)
    if not 1 <= sweep_epochs:
        raise TopopruneError(f"sweep epochs must be >= 1, got {sweep_epochs}")
    out = Path(out_dir)
    short = replace(config, epochs=sweep_epochs)
    measure = run_kwargs.pop("measure_speed", True)
    resume = run_kwargs.pop("resume", False)
    overwrite = run_kwargs.pop("overwrite", False)
    board = run_kwargs.pop("tensorboard", None)
    check_claimable(out, resume=resume, overwrite=overwrite, holds=_holds_search(out))
    if overwrite and _holds_search(out):
        shutil.rmtree(out)  # the whole search: its sweep and its final run
    rows = []
    for combination in combinations:
        folder = out / SWEEP_DIR / _folder_name(combination)
        trial = run_pruned(  # a finished one is read back, after its record is compared
            model_name,
            dataset,
            short,
            method=method,
            sparsity=sparsity,
            prune_options={**options, **combination},
            out_dir=folder,
            resume=resume and (folder / RECORD_FILE).exists(),
            measure_speed=False,
            tensorboard=None if board is None else Path(board) / SWEEP_DIR / folder.name,
            **run_kwargs,
        )
        if trial.summary.train.val_acc is None:
            raise TopopruneError("the sweep selects by validation accuracy: use a validation split")
        rows.append(
            {
                **combination,
                "val_acc": trial.summary.train.val_acc,
                "params_reduction": trial.reductions()["params"],
            }
        )
    best = max(range(len(rows)), key=lambda i: (rows[i]["val_acc"], -i))
    chosen = combinations[best]
    final = run_pruned(
        model_name,
        dataset,
        config,
        method=method,
        sparsity=sparsity,
        prune_options={**options, **chosen},
        out_dir=out,
        resume=resume and (out / RECORD_FILE).exists(),
        measure_speed=measure,
        tensorboard=board,
        **run_kwargs,
    )
    write_json(out / "sweep.json", {"epochs": sweep_epochs, "rows": rows, "chosen": chosen})
    report = out / "report.md"
    write_text(report, report.read_text() + sweep_markdown(rows, chosen, sweep_epochs))
    return final, rows


def sweep_markdown(rows: list[dict[str, Any]], chosen: Mapping[str, Any], epochs: int) -> str:
    """The sweep's table: one row per combination, the chosen one marked."""
    keys = [key for key in rows[0] if key not in ("val_acc", "params_reduction")]
    lines = [
        "",
        f"## Sweep: {epochs} epochs per combination, chosen by validation accuracy",
        "",
        "| " + " | ".join(keys) + " | val acc (%) | params removed | chosen |",
        "|" + "---|" * (len(keys) + 3),
    ]
    for row in rows:
        mark = "✓" if all(row[key] == chosen[key] for key in keys) else ""
        values = " | ".join(str(row[key]) for key in keys)
        lines.append(
            f"| {values} | {row['val_acc']:.2f} | {100 * row['params_reduction']:.2f}% | {mark} |"
        )
    return "\n".join(lines) + "\n"
