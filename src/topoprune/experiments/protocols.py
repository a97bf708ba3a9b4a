"""The protocol runners: one per protocol of the method registry, one call for all of them.

:func:`run_pruned` builds the model, prunes and trains it as its method's protocol says (or
trains it dense with ``method=None``), measures the latency of the dense, masked and realized
forms and writes ``report.md`` and ``report.json`` beside the training files:

- ``at-init``: prune the fresh model, save the result (``prune.pt``), train it for E epochs with
  frozen masks. A resumed run re-applies the saved result rather than pruning again.
- ``after-training``: train dense for ``E1 = floor(pretrain_fraction · E)`` epochs (in
  ``OUT/pretrain``, the schedule compressed into those epochs: cosine over E1, multistep
  milestones scaled by E1 / E), prune the trained model, fine-tune it for the other E − E1
  epochs (learning rate × ``finetune_lr_scale``, the schedule restarted: 1 is "learning-rate
  rewinding", Renda, Frankle and Carbin, ICLR 2020). Pruning is seeded and reads only phase 1's
  final weights, so a resumed fine-tune prunes again into the same model before it loads its
  checkpoint. A method that prunes in stages (``exp``; :class:`topoprune.pruning.Stages`)
  fine-tunes its epochs after each stage (stage i in ``OUT/stages/NN``, the last in ``OUT``)
  and the dense phase gets the rest of E; a resumed run replays the finished stages (prune,
  load the stage's final checkpoint) and continues at the stage and epoch where it stopped.
  ``start_from`` (``--from``) replaces the dense phase with trained weights.
- ``search``: search the widths (its wall time is the search cost, reported on its own), build
  the physically narrower model and train it from scratch for E epochs; a resumed run reads the
  saved widths.

So every method gets the same total training epochs as dense (ShrinkBench's rule).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from topoprune.errors import TopopruneError
from topoprune.experiments.records import check_claimable, claim_folder, run_record
from topoprune.experiments.run_report import markdown_report
from topoprune.experiments.runs import RunSetup, RunSummary, setup_run, train_setup
from topoprune.experiments.speed import time_side_by_side
from topoprune.files import write_json, write_text
from topoprune.models import create_model
from topoprune.pruning import (
    PruneResult,
    Stage,
    Stages,
    get_method,
    prune,
    prune_progressively,
    pruning_stages,
)
from topoprune.pruning.registry import check_options
from topoprune.training import TrainConfig
from topoprune.training.checkpoint import check_model_state, trained_state
from topoprune.training.tensorboard import check_tensorboard
from topoprune.training.trainer import CHECKPOINT_NAME

PRUNE_FILE = "prune.pt"
PRETRAIN_DIR = "pretrain"
STAGES_DIR = "stages"
SEARCH_DIR = "search"


@dataclass
class PrunedRun:
    """A trained (pruned) model's figures; ``label`` names the row in comparison tables.

    pretrain: the dense phase of an ``after-training`` run; prune_s: seconds spent pruning (for a
    ``search`` method, the search cost); stages: for a method pruning in stages, one row per
    stage (layers, epochs, test accuracy after its fine-tuning, training seconds).
    """

    label: str
    summary: RunSummary
    pruning: PruneResult | None
    protocol: str | None = None
    pretrain: RunSummary | None = None
    prune_s: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    realize_choices: dict[str, str] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)

    def train_seconds(self) -> float:
        """Seconds of training in every phase: dense, each stage's fine-tuning, the last."""
        earlier = sum(row["train_s"] for row in self.stages[:-1])
        dense = self.pretrain.train.seconds if self.pretrain is not None else 0.0
        return dense + earlier + self.summary.train.seconds

    def dense_counts(self) -> tuple[int, int]:
        """(params, MACs) of the dense model the run started from: the pruning's own count
        where there is one (a narrowed or skip-projected model counts otherwise)."""
        metrics = self.pruning.metrics if self.pruning is not None else {}
        summary = self.summary
        return (
            metrics.get("dense_params", summary.dense_params),
            metrics.get("dense_macs", summary.dense_macs),
        )

    def reductions(self) -> dict[str, float]:
        """True fractions of params and MACs removed against :meth:`dense_counts`."""
        params, macs = self.dense_counts()
        return {"params": 1 - self.summary.params / params, "macs": 1 - self.summary.macs / macs}

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "protocol": self.protocol,
            "summary": self.summary.to_dict(),
            "pretrain": None if self.pretrain is None else self.pretrain.to_dict(),
            "prune_s": self.prune_s,
            "pruning": None if self.pruning is None else self.pruning.to_dict(),
            "latency_ms": self.latency_ms,
            "realize_choices": self.realize_choices,
            "stages": self.stages,
        }


@dataclass
class RunPlan:
    """Where and how a run trains: data, output folder and its record, resuming, progress.

    The runners call :meth:`claim` once every input has been checked (data loaded, model built,
    the pruning done or about to be read back) and before anything is written to the folder
    (:func:`topoprune.experiments.records.claim_folder`).
    """

    model_name: str
    dataset: str
    root: str | None = None
    split_seed: int = 0
    widths: list[int] | None = None
    out_dir: Path | None = None
    resume: bool = False
    progress: bool = True
    record: dict[str, Any] | None = None
    overwrite: bool = False
    tensorboard: Path | None = None
    claimed: bool = False
    start_from: dict[str, torch.Tensor] | None = None
    search_dir: Path | None = None

    def setup(self, seed: int, widths: list[int] | None = None) -> RunSetup:
        return setup_run(
            self.model_name,
            self.dataset,
            seed=seed,
            root=self.root,
            split_seed=self.split_seed,
            widths=self.widths if widths is None else widths,
        )

    def claim(self) -> None:
        """Claim the output folder with the run record (once)."""
        if not self.claimed and self.out_dir is not None and self.record is not None:
            claim_folder(self.out_dir, self.record, resume=self.resume, overwrite=self.overwrite)
        self.claimed = True

    def train(
        self,
        setup: RunSetup,
        config: TrainConfig,
        record: dict[str, Any],
        subfolder: str | None = None,
    ) -> RunSummary:
        """Train ``setup.model`` in the output folder (or its ``subfolder``, with a TensorBoard
        subfolder of the same name), continuing its checkpoint on resume."""
        folder, board = self.out_dir, self.tensorboard
        if subfolder is not None:
            folder = None if folder is None else folder / subfolder
            board = None if board is None else board / subfolder
        return train_setup(
            setup,
            config,
            out_dir=folder,
            resume=self.resumable(folder),
            progress=self.progress,
            record=record,
            tensorboard=board,
        )

    def resumable(self, folder: Path | None) -> bool:
        """Whether training in ``folder`` continues: a resumed run with a checkpoint there."""
        return self.resume and folder is not None and (folder / CHECKPOINT_NAME).exists()


def _timed_prune(
    setup: RunSetup,
    method: str,
    sparsity: float,
    options: dict[str, Any],
    work_dir: Path | None = None,
) -> tuple[PruneResult, float]:
    """Prune ``setup.model`` in place; (the result, seconds it took)."""
    started = time.perf_counter()
    result = prune(
        setup.model,
        method,
        sparsity,
        input_size=setup.input_size,
        data=setup.splits,
        work_dir=work_dir,
        **options,
    )
    return result, time.perf_counter() - started


def _prune_once(
    setup: RunSetup, method: str, sparsity: float, options: dict[str, Any], plan: RunPlan
) -> tuple[PruneResult, float | None]:
    """Prune ``setup.model`` (or re-apply the saved result of a resumed run); (result, seconds).

    A search method claims the folder first and keeps its resumable state in ``OUT/search``,
    or in the plan's shared ``search_dir``: there the first run searches (under a lock) and
    the others read its result, so that runs of several seeds share one search.
    """
    saved = plan.out_dir / PRUNE_FILE if plan.out_dir is not None else None
    if plan.resume and saved is not None and saved.exists():
        plan.claim()  # the record must match before the saved pruning is read back
        result = PruneResult.load(saved)
        if result.widths is None:
            result.apply_to(setup.model)
        return result, result.metrics.get("search_s")
    if get_method(method).protocol == "search":
        plan.claim()  # before the search writes its state
        work_dir = plan.search_dir
        if work_dir is None and plan.out_dir is not None:
            work_dir = plan.out_dir / SEARCH_DIR
        result, seconds = _search_once(setup, method, sparsity, options, work_dir)
    else:
        result, seconds = _timed_prune(setup, method, sparsity, options)
        plan.claim()
    if saved is not None:
        result.save(saved)
    return result, seconds


def _search_once(
    setup: RunSetup,
    method: str,
    sparsity: float,
    options: dict[str, Any],
    work_dir: Path | None,
) -> tuple[PruneResult, float]:
    """Run a search in ``work_dir`` or read the result a finished one left there."""
    if work_dir is None:
        result, seconds = _timed_prune(setup, method, sparsity, options)
        result.metrics["search_s"] = seconds
        return result, seconds
    work_dir.mkdir(parents=True, exist_ok=True)
    with (work_dir / "search.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run of the same search waits for its result
        done = work_dir / PRUNE_FILE
        if done.exists():
            result = PruneResult.load(done)
            return result, result.metrics["search_s"]
        result, seconds = _timed_prune(setup, method, sparsity, options, work_dir)
        result.metrics["search_s"] = seconds
        result.save(done)
    return result, seconds


def _at_init(
    config: TrainConfig, plan: RunPlan, method: str, sparsity: float, options: dict[str, Any]
) -> PrunedRun:
    setup = plan.setup(config.seed)
    result, seconds = _prune_once(setup, method, sparsity, options, plan)
    summary = plan.train(setup, config, {"pruning": result.record})
    return PrunedRun(method, summary, result, "at-init", prune_s=seconds)


def phase(config: TrainConfig, epochs: int, lr: float) -> TrainConfig:
    """``config`` for a phase of ``epochs`` epochs: milestones scaled (to at least epoch 1),
    learning rate ``lr``."""
    scale = epochs / config.epochs
    milestones = tuple(max(1, round(m * scale)) for m in config.milestones)
    return replace(config, epochs=epochs, lr=lr, milestones=milestones)


def _after_training(
    config: TrainConfig, plan: RunPlan, method: str, sparsity: float, options: dict[str, Any]
) -> PrunedRun:
    checked = check_options(get_method(method), options)
    setup = plan.setup(config.seed)
    stages = pruning_stages(setup.model, method, sparsity, **options)
    dense_epochs, finetune_epochs = _split_epochs(config, checked.protocol, stages, plan)
    if plan.start_from is not None:
        advice = f"--from needs trained weights of {plan.model_name} at these widths, unpruned"
        check_model_state("--from", plan.start_from, setup.model.state_dict(), advice)
        setup.model.load_state_dict(plan.start_from)
    plan.claim()  # before the dense phase writes to the folder
    pretrain = None
    if plan.start_from is None:
        dense = phase(config, dense_epochs, config.lr)
        pretrain = plan.train(setup, dense, {"phase": "dense"}, subfolder=PRETRAIN_DIR)
    lr = config.lr * checked.protocol.finetune_lr_scale
    staged = prune_progressively(
        setup.model, method, sparsity, input_size=setup.input_size, data=setup.splits, **options
    )
    rows: list[dict[str, Any]] = []
    seconds = 0.0
    while True:
        started = time.perf_counter()
        stage = next(staged, None)
        seconds += time.perf_counter() - started
        if stage is None:
            break
        result = stage.result
        if plan.out_dir is not None:
            stage.result.save(plan.out_dir / PRUNE_FILE)
        last = stage.index == stage.count - 1
        folder = None if last else f"{STAGES_DIR}/{stage.index + 1:02d}"
        tune = _stage_config(config, stage, lr, finetune_epochs)
        record = {"pruning": stage.result.record, "dense_epochs": dense_epochs}
        if stage.count > 1:
            record["stage"] = {"index": stage.index + 1, "of": stage.count, "layers": stage.layers}
        summary = plan.train(setup, tune, record, subfolder=folder)
        if stage.count > 1:
            rows.append(_stage_row(stage, summary))
    run = PrunedRun(method, summary, result, "after-training", pretrain, seconds)
    run.stages = rows
    return run


def _split_epochs(
    config: TrainConfig,
    schedule: Any,
    stages: Stages | None,
    plan: RunPlan,
) -> tuple[int, int]:
    """(dense epochs, fine-tuning epochs) of an after-training run of ``config.epochs``.

    Without stages, ``pretrain_fraction`` splits the budget; a method in stages takes its
    fine-tuning epochs and leaves the rest to the dense phase (skipped with ``start_from``).
    """
    schedule.validate(None if stages is not None else config.epochs)
    if stages is None:
        return schedule.epochs(config.epochs)
    finetune = stages.total_epochs
    if not stages.layers:
        raise TopopruneError("the method found no layer to prune at these settings")
    dense = config.epochs - finetune
    if dense < 1 and plan.start_from is None:
        raise TopopruneError(
            f"{len(stages.layers)} stage(s) x {stages.epochs} fine-tuning epoch(s) = {finetune} "
            f"leave {max(dense, 0)} of the {config.epochs} epoch(s) for dense training: raise "
            "the epochs above that, lower finetune_epochs, or start --from a trained model"
        )
    return dense, finetune


def _stage_config(config: TrainConfig, stage: Stage, lr: float, finetune: int) -> TrainConfig:
    """The training settings of ``stage``'s fine-tuning: its own schedule when it restarts
    (or is the only stage), else its window of one schedule over every stage's epochs."""
    if stage.epochs is None:  # a method without stages: one fine-tuning of the rest
        return phase(config, finetune, lr)
    if stage.restart or stage.count == 1:
        return phase(config, stage.epochs, lr)
    return replace(
        phase(config, finetune, lr),
        epochs=stage.epochs,
        epoch_offset=stage.index * stage.epochs,
        schedule_epochs=finetune,
    )


def _stage_row(stage: Stage, summary: RunSummary) -> dict[str, Any]:
    return {
        "stage": stage.index + 1,
        "layers": list(stage.layers),
        "epochs": summary.train.epochs,
        "test_acc": summary.test_acc,
        "params_reduction": stage.result.metrics.get("params_reduction"),
        "train_s": summary.train.seconds,
    }


def _search(
    config: TrainConfig, plan: RunPlan, method: str, sparsity: float, options: dict[str, Any]
) -> PrunedRun:
    result, seconds = _prune_once(plan.setup(config.seed), method, sparsity, options, plan)
    setup = plan.setup(config.seed, widths=result.widths)
    record = {"pruning": result.record, "searched_widths": result.widths}
    summary = plan.train(setup, config, record)
    return PrunedRun(method, summary, result, "search", prune_s=seconds)


RUNNERS = {"at-init": _at_init, "after-training": _after_training, "search": _search}


def run_pruned(
    model_name: str,
    dataset: str,
    config: TrainConfig,
    *,
    method: str | None,
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
    overwrite: bool = False,
    tensorboard: str | Path | None = None,
    start_from: str | Path | torch.nn.Module | None = None,
    search_dir: str | Path | None = None,
) -> PrunedRun:
    """Train ``model_name`` on ``dataset`` pruned by ``method`` (dense when None) and report.

    Every input is checked before anything is written; ``out_dir`` gets the run record
    (``run.json``): an existing run there needs ``resume`` (same record) or ``overwrite``.
    ``start_from``: trained weights of the same model (a module, a run folder, a checkpoint or
    a state-dict file) that replace the dense phase of an ``after-training`` method.
    ``search_dir``: a folder shared by runs that should share one search (a ``search`` method:
    the first run searches there, the others wait for and read its result).
    """
    config.validate()
    start, start_record = None, None
    if start_from is not None:
        if method is None or get_method(method).protocol != "after-training":
            raise TopopruneError(
                "--from gives an after-training method its trained weights; "
                f"{method or 'dense'} trains from scratch"
            )
        start, start_record = trained_state(start_from)
    if tensorboard is not None:
        check_tensorboard()
    if measure_speed and latency_batch < 1:
        raise TopopruneError(f"the latency batch must be >= 1, got {latency_batch}")
    record = run_record(
        model=model_name,
        dataset=dataset,
        config=config,
        root=root,
        split_seed=split_seed,
        widths=widths,
        method=method,
        sparsity=sparsity,
        options=prune_options,
        extra=None if start_record is None else {"start_from": start_record},
    )
    if out_dir is not None:
        check_claimable(Path(out_dir), resume=resume, overwrite=overwrite)
    plan = RunPlan(
        model_name,
        dataset,
        root,
        split_seed,
        widths,
        Path(out_dir) if out_dir is not None else None,
        resume,
        progress,
        record,
        overwrite,
        None if tensorboard is None else Path(tensorboard),
        start_from=start,
        search_dir=None if search_dir is None else Path(search_dir),
    )
    if method is None:
        setup = plan.setup(config.seed)
        plan.claim()
        summary = plan.train(setup, config, {"pruning": None})
        run = PrunedRun("dense", summary, None)
    else:
        runner = RUNNERS[get_method(method).protocol]
        run = runner(config, plan, method, sparsity, dict(prune_options or {}))
    run.label = label or run.label
    if measure_speed:
        measure_latencies([run], latency_batch, widths)
    if out_dir is not None:
        write_run_report(Path(out_dir), run)
    return run


def write_run_report(out_dir: Path, run: PrunedRun) -> None:
    """``OUT/report.json`` and ``OUT/report.md`` of one run."""
    write_json(out_dir / "report.json", run.to_dict())
    write_text(out_dir / "report.md", markdown_report([run]))


def measure_latencies(
    runs: Sequence[PrunedRun], batch: int, dense_widths: list[int] | None
) -> None:
    """Set each run's latencies and realize choices: the dense model (``dense_widths``), each
    masked model and each realized form, timed side by side after training
    (:func:`topoprune.experiments.speed.time_side_by_side`). ``runs`` share one model and input
    size (those of the first run)."""
    first = runs[0].summary
    dense = create_model(first.model, **{**first.model_kwargs, "widths": dense_widths})
    trained = {
        index: None if run.pruning is None else run.summary.trained
        for index, run in enumerate(runs)
    }
    for index, timed in time_side_by_side(dense, trained, first.input_size, batch).items():
        runs[index].latency_ms.update(timed.latency_ms)
        runs[index].realize_choices = timed.realize_choices
