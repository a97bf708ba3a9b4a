"""Prune a fresh model before training, train it from scratch, and measure what was gained.

One call, :func:`run_pruned`, does what ``topoprune prune`` and the demo do: build the model,
prune it (or leave it dense with ``method=None``), train, then measure the latency of the dense,
masked and realized forms and write ``report.md`` and ``report.json`` beside the training files.
A resumed run re-applies the saved masks (``prune.pt``) rather than pruning again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from topoprune.files import write_json, write_text
from topoprune.measure import latency
from topoprune.models import create_model
from topoprune.pruning import PruneResult, prune
from topoprune.train import TrainConfig
from topoprune.train.run import RunSummary, run_training

PRUNE_FILE = "prune.pt"


@dataclass
class PrunedRun:
    """A trained (pruned) model's figures; ``label`` names the row in comparison tables."""

    label: str
    summary: RunSummary
    pruning: PruneResult | None
    latency_ms: dict[str, float] = field(default_factory=dict)
    realize_choices: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "summary": self.summary.to_dict(),
            "pruning": None if self.pruning is None else self.pruning.to_dict(),
            "latency_ms": self.latency_ms,
            "realize_choices": self.realize_choices,
        }


def run_pruned(
    model_name: str,
    dataset: str,
    config: TrainConfig,
    *,
    method: str | None = "rgp",
    sparsity: float = 0.9,
    prune_options: dict[str, Any] | None = None,
    root: str | None = None,
    split_seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    latency_batch: int = 64,
    label: str | None = None,
    widths: list[int] | None = None,
    measure_speed: bool = True,
) -> PrunedRun:
    """Train ``model_name`` on ``dataset`` pruned by ``method`` (dense when None) and report."""
    options = dict(prune_options or {})
    saved = Path(out_dir) / PRUNE_FILE if out_dir is not None else None
    outcome: dict[str, Any] = {}

    def prepare(model: nn.Module) -> dict[str, Any]:
        if method is None:
            return {"method": "dense"}
        if resume and saved is not None and saved.exists():
            result = PruneResult.load(saved)
            result.apply_to(model)
        else:
            result = prune(model, method, sparsity, **options)
            if saved is not None:
                result.save(saved)
        outcome["pruning"] = result
        return result.record

    summary = run_training(
        model_name,
        dataset,
        config,
        root=root,
        split_seed=split_seed,
        out_dir=out_dir,
        resume=resume,
        progress=progress,
        prepare=prepare,
        widths=widths,
    )
    run = PrunedRun(label or (method or "dense"), summary, outcome.get("pruning"))
    if measure_speed:
        _measure_speed(run, summary, latency_batch)
    if out_dir is not None:
        write_json(Path(out_dir) / "report.json", run.to_dict())
        write_text(Path(out_dir) / "report.md", markdown_report([run]))
    return run


def _measure_speed(run: PrunedRun, summary: RunSummary, batch: int) -> None:
    """Latency (median ms) of the dense model, the masked model and its realized form."""
    from topoprune.realize import realize

    model = summary.trained
    input_size = summary.input_size
    dense = create_model(summary.model, **summary.model_kwargs)
    run.latency_ms["dense"] = latency(dense, input_size, batch).median_ms
    if run.pruning is None:
        return
    run.latency_ms["masked"] = latency(model, input_size, batch).median_ms
    example = torch.randn(batch, *input_size)
    realized = realize(model, example)  # a copy: the trained masked model stays as it is
    run.latency_ms["realized"] = latency(realized, input_size, batch).median_ms
    run.realize_choices = {row.name: row.chosen for row in realized.realize_report.layers}


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def markdown_report(runs: list[PrunedRun]) -> str:
    """One Markdown table comparing ``runs``, then the graph metrics of the graph methods."""
    lines = [
        "| run | test acc (final epoch) | params | params removed (true / nominal) "
        "| MACs | MACs removed | latency dense / masked / realized (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.summary
        metrics = run.pruning.metrics if run.pruning else {}
        true_params = 1 - s.params / s.dense_params
        true_macs = 1 - s.macs / s.dense_macs
        lat = " / ".join(
            f"{run.latency_ms[k]:.2f}" if k in run.latency_ms else "—"
            for k in ("dense", "masked", "realized")
        )
        lines.append(
            f"| {run.label} | {s.test_acc:.2f}% | {s.params:,} "
            f"| {_fmt_pct(true_params)} / {_fmt_pct(metrics.get('nominal_reduction'))} "
            f"| {s.macs:,} | {_fmt_pct(true_macs)} | {lat} |"
        )
    graphs = [run for run in runs if run.pruning is not None and "graph" in run.pruning.metrics]
    if graphs:
        lines += [
            "",
            "| run | n | k | ASPL | diameter | Moore bound ASPL | gap |",
            "|---|---|---|---|---|---|---|",
        ]
        for run in graphs:
            g = run.pruning.metrics["graph"]
            lines.append(
                f"| {run.label} | {g['n']} | {g['k']} | {g['aspl']:.4f} | {g['diameter']} "
                f"| {g['moore_aspl']:.4f} | {_fmt_pct(g['gap'])} |"
            )
    lines += ["", "MACs are multiply-accumulates (FLOPs = 2 x MACs); counts are mask-aware."]
    return "\n".join(lines) + "\n"
