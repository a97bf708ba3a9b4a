"""The benchmark: every method × sparsity × seed on one model and dataset, under one budget.

:func:`run_bench` reads a configuration (:mod:`topoprune.experiments.bench_config`), trains every
run and writes the results folder:

- ``bench.json``: the configuration; a later call on the same folder must share its setting
  (model, dataset, training, latency batch) and give each method label the same options;
- ``runs.jsonl``: one row per finished run (rewritten atomically after each);
- ``runs/<label>_s<sparsity>_seed<seed>/``: each run's own files (checkpoint, logs, report);
- ``searches/<label>_s<sparsity>/``: a ``search`` method's one search per point (seeded with
  its ``seed`` option, 0 by default), which every seed's run then trains from scratch;
- ``reach.json``: with ``match: params|macs``, what each method's matched setting achieves at
  each point; a point it misses by more than ``match_tolerance`` is not run
  (:mod:`topoprune.experiments.reach`);
- ``summary.csv``, ``report.md`` and the PNG plots (:mod:`topoprune.experiments.bench_report`).

Methods: ``dense`` (once per seed) and every registered method, each run by its protocol's
runner (:func:`topoprune.experiments.protocols.run_pruned`) with the same total training epochs.
With ``match: params|macs`` each run first finds its method's setting for the requested true
reduction (:func:`topoprune.pruning.match_sparsity`); rows keep the requested point
(``sparsity``), the setting used (``setting``) and what was achieved (``params_reduction``,
``macs_reduction``).

Resumable: runs already in ``runs.jsonl`` are skipped, and a run cut off mid-way continues from
its last epoch checkpoint, so a crash or Ctrl-C loses at most the epochs in progress.
``workers > 1`` trains runs in parallel processes (spawned; each with
``max(1, cores // workers)`` torch threads); only this process writes ``runs.jsonl``, as the
results come back. Latencies are taken once every run of the call has finished, in this process:
each trained model is rebuilt from its folder and timed beside one dense model (fused for
inference) in one interleaved run, so no latency is measured while other runs train.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from topoprune.errors import TopopruneError
from topoprune.experiments.bench_config import DENSE, BenchConfig, Job, load_config
from topoprune.experiments.reach import Reach, find_reach, out_of_reach
from topoprune.experiments.records import RECORD_FILE
from topoprune.files import write_json, write_jsonl
from topoprune.pruning import get_method

CONFIG_FILE = "bench.json"
REACH_FILE = "reach.json"
RUNS_FILE = "runs.jsonl"
RUNS_DIR = "runs"
SEARCHES_DIR = "searches"


@dataclass
class BenchResult:
    """The configuration, every run's row (this configuration's only), and the summary rows.

    ``seconds``: wall time of this call's phases: ``reach`` (which method reaches which
    point), ``training`` (every run trained now), ``latency`` (timing them side by side).
    """

    config: BenchConfig
    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    out_dir: Path
    trained: int
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": len(self.rows), "trained": self.trained, "summary": self.summary}


def _latencies(latency_ms: Mapping[str, float]) -> dict[str, float | None]:
    return {f"latency_{k}_ms": latency_ms.get(k) for k in ("dense", "masked", "realized")}


def _setting(config: BenchConfig, job: Job) -> tuple[float, dict[str, Any]]:
    """(the sparsity the method runs at, option overrides) for the job's point."""
    if config.match == "sparsity" or job.method.name == DENSE:
        return job.sparsity, {}
    from topoprune.experiments.runs import setup_run
    from topoprune.pruning import match_sparsity

    setup = setup_run(
        config.model,
        config.dataset,
        seed=job.seed,
        root=config.root,
        widths=None if config.widths is None else list(config.widths),
    )
    options = {"seed": job.seed, **job.method.options}
    found = match_sparsity(
        setup.model,
        job.method.name,
        config.match,
        job.sparsity,
        options,
        input_size=setup.input_size,
        data=setup.splits,
        measure=False,  # the run itself reports what it achieved
    )
    return found.sparsity, found.overrides


def run_job(config: BenchConfig, job: Job, folder: Path, progress: bool = False) -> dict[str, Any]:
    """Train one run (resuming its checkpoint if there is one) and return its row."""
    from topoprune.experiments.protocols import run_pruned

    started = time.perf_counter()
    dense = job.method.name == DENSE
    sparsity, overrides = _setting(config, job)
    search_dir, seed = None, job.seed
    if not dense and get_method(job.method.name).protocol == "search":
        search_dir = folder.parent.parent / SEARCHES_DIR / f"{job.method.label}_s{job.sparsity}"
        seed = 0  # one search per point (unless the options fix its seed); each seed trains it
    run = run_pruned(
        config.model,
        config.dataset,
        replace(config.training, seed=job.seed),
        method=None if dense else job.method.name,
        sparsity=sparsity,
        prune_options={"seed": seed, **job.method.options, **overrides},
        root=config.root,
        out_dir=folder,
        resume=(folder / RECORD_FILE).exists(),  # a run cut off mid-way continues
        progress=progress,
        latency_batch=config.latency_batch or 1,
        label=job.method.label,
        widths=None if config.widths is None else list(config.widths),
        measure_speed=False,  # timed after every run is trained, side by side: _time_rows
        search_dir=search_dir,
    )
    s = run.summary
    metrics = run.pruning.metrics if run.pruning is not None else {}
    graph = metrics.get("graph", {})
    dense_params, dense_macs = run.dense_counts()
    return {
        "label": job.method.label,
        "method": job.method.name,
        "protocol": run.protocol,
        "sparsity": job.sparsity,
        "match": config.match,
        "setting": sparsity,
        "seed": job.seed,
        "test_acc": s.test_acc,
        "val_acc": s.train.val_acc,
        "diverged": s.train.diverged,
        "params": s.params,
        "macs": s.macs,
        "dense_params": dense_params,
        "dense_macs": dense_macs,
        "params_reduction": run.reductions()["params"],
        "macs_reduction": run.reductions()["macs"],
        "nominal_reduction": metrics.get("nominal_reduction", 0.0),
        **_latencies(run.latency_ms),
        "aspl": graph.get("aspl"),
        "spectral_gap": graph.get("spectral_gap"),
        "diameter": graph.get("diameter"),
        "nodes": graph.get("n"),
        "degree": graph.get("k"),
        "train_s": run.train_seconds(),
        "prune_s": run.prune_s,
        "search_s": run.prune_s if run.protocol == "search" else None,
        "wall_s": time.perf_counter() - started,
    }


def _time_rows(config: BenchConfig, folders: Mapping[int, Path], rows: list[dict]) -> None:
    """Fill ``rows[i]``'s latencies for each ``i`` in ``folders`` (its run folder): every trained
    model rebuilt in this process and timed beside one dense model in one interleaved run, after
    all training has finished (:func:`topoprune.experiments.speed.time_side_by_side`)."""
    from topoprune.experiments.speed import time_side_by_side
    from topoprune.experiments.trained import trained_model
    from topoprune.models import create_model

    trained = {  # a dense run is timed as the dense model: no need to rebuild it
        index: None if rows[index]["method"] == DENSE else trained_model(folder)[0]
        for index, folder in folders.items()
    }
    summary = json.loads((next(iter(folders.values())) / "summary.json").read_text())
    widths = None if config.widths is None else list(config.widths)
    dense = create_model(config.model, **{**summary["model_kwargs"], "widths": widths})
    input_size = tuple(summary["input_size"])
    timed = time_side_by_side(dense, trained, input_size, config.latency_batch)
    for index, result in timed.items():
        rows[index].update(_latencies(result.latency_ms))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _execute(
    config: BenchConfig, jobs: list[Job], out: Path, workers: int, progress: bool
) -> Iterator[dict[str, Any]]:
    """Yield each job's row as it finishes: in this process, or in ``workers`` spawned ones."""
    folders = [out / RUNS_DIR / job.folder for job in jobs]
    if workers == 1:
        for job, folder in zip(jobs, folders, strict=True):
            yield run_job(config, job, folder, progress)
        return
    threads = max(1, _cores() // workers)
    # seed by seed, so that parallel workers take different methods, not the seeds of one
    # search method that wait for its one search
    order = sorted(zip(jobs, folders, strict=True), key=lambda pair: pair[0].seed)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(threads,)
    ) as pool:
        pending = {pool.submit(run_job, config, job, folder) for job, folder in order}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_folder(out: Path, config: BenchConfig) -> None:
    """Refuse a folder whose earlier runs were made with another setting or method options."""
    path = out / CONFIG_FILE
    if not path.exists():
        return
    before = json.loads(path.read_text())
    if {k: before.get(k) for k in config.setting()} != config.setting():
        changed = next(k for k, v in config.setting().items() if before.get(k) != v)
        raise TopopruneError(
            f"{out} holds runs made with another {changed!r}: use a new --out, "
            "or the same setting (methods, sparsities and seeds may change)"
        )
    options = {m["label"]: m for m in before.get("methods", [])}
    for method in config.to_dict()["methods"]:
        if method["label"] in options and options[method["label"]] != method:
            raise TopopruneError(
                f"{out} holds runs of {method['label']!r} with other options: "
                "give the changed method a new label, or use a new --out"
            )


def _check_runnable(config: BenchConfig) -> None:
    """Load the dataset and build the model once, so that a bad root or widths fail early."""
    from topoprune.data import load_dataset
    from topoprune.models import create_model

    splits = load_dataset(config.dataset, root=config.root)
    create_model(
        config.model,
        num_classes=splits.num_classes,
        in_channels=splits.in_channels,
        widths=None if config.widths is None else list(config.widths),
    )


def _describe(row: dict[str, Any]) -> str:
    where = "" if row["method"] == DENSE else f" s={row['sparsity']:g}"
    return (
        f"{row['label']}{where} seed {row['seed']}: {row['test_acc']:.2f}% "
        f"(MACs -{100 * row['macs_reduction']:.1f}%) in {row['wall_s']:.0f} s"
    )


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> ``(2, 4)``: the second of four slices of the grid.

    >>> parse_shard("2/4")
    (2, 4)
    """
    index, _, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (0, 0)
    if not 1 <= shard[0] <= shard[1]:
        raise TopopruneError(f"--shard must look like I/N with 1 <= I <= N, e.g. 2/4; got {text!r}")
    return shard


def shard_file(shard: tuple[int, int] | None) -> str:
    """The rows file of a shard (``runs.jsonl`` for the whole grid)."""
    return RUNS_FILE if shard is None else f"runs-shard{shard[0]}of{shard[1]}.jsonl"


def _all_rows(out: Path) -> list[dict[str, Any]]:
    """The rows of every rows file in ``out`` (the whole grid's and each shard's), once each."""
    rows: dict[tuple[str, float, int], dict[str, Any]] = {}
    for path in sorted(out.glob("runs*.jsonl")):
        for row in _read_rows(path):
            rows.setdefault((row["label"], row["sparsity"], row["seed"]), row)
    return list(rows.values())


def run_bench(
    config: BenchConfig | Mapping[str, Any] | str | Path,
    out_dir: str | Path,
    *,
    workers: int = 1,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
    retime: bool = False,
) -> BenchResult:
    """Run every missing run of ``config`` (a file, a mapping or a :class:`BenchConfig`).

    Checks the configuration and the folder before anything is written; returns this
    configuration's rows (including runs finished by earlier calls) and their summary.
    ``shard=(i, n)`` runs only every n-th job from the i-th (1-based) and writes its rows to a
    file of its own, so that n machines sharing the folder split the grid; it writes no report:
    :func:`merge_reports` (``topoprune bench --report OUT``) makes it from every shard's rows.
    ``retime``: time every run of this configuration in the folder again, side by side (by
    default only the runs trained by this call are timed).
    """
    from topoprune.experiments.bench_report import write_reports

    if not isinstance(config, BenchConfig):
        config = load_config(config)
    if not isinstance(workers, int) or workers < 1:
        raise TopopruneError(f"workers must be an integer >= 1, got {workers!r}")
    out = Path(out_dir)
    _check_folder(out, config)
    _check_runnable(config)
    started = time.perf_counter()
    reach = find_reach(config)
    seconds = {"reach": time.perf_counter() - started}
    write_json(out / CONFIG_FILE, config.to_dict())
    write_json(out / REACH_FILE, [r.to_dict() for r in reach])
    runs_path = out / shard_file(shard)
    rows = _read_rows(runs_path)
    done = {(row["label"], row["sparsity"], row["seed"]) for row in _all_rows(out)}
    skipped = out_of_reach(reach)
    runnable = [job for job in config.jobs() if job.key[:2] not in skipped]
    mine_to_run = runnable if shard is None else runnable[shard[0] - 1 :: shard[1]]
    jobs = [job for job in mine_to_run if job.key not in done]
    bar = tqdm(total=len(jobs), desc="bench runs", unit="run", disable=not progress)
    folders = {job.key: out / RUNS_DIR / job.folder for job in mine_to_run}
    new_rows: dict[int, Path] = {}
    if retime:
        new_rows = {
            index: folders[key]
            for index, row in enumerate(rows)
            if (key := (row["label"], row["sparsity"], row["seed"])) in folders
        }
    started = time.perf_counter()
    with bar:
        for row in _execute(config, jobs, out, workers, progress and workers == 1):
            new_rows[len(rows)] = folders[(row["label"], row["sparsity"], row["seed"])]
            rows.append(row)
            write_jsonl(runs_path, rows)
            if progress:
                bar.write(_describe(row))
            bar.update()
    seconds["training"] = time.perf_counter() - started
    started = time.perf_counter()
    if config.latency_batch is not None and new_rows:
        _time_rows(config, new_rows, rows)
        write_jsonl(runs_path, rows)
    seconds["latency"] = time.perf_counter() - started
    wanted = {job.key for job in mine_to_run}
    mine = [row for row in rows if (row["label"], row["sparsity"], row["seed"]) in wanted]
    summary = [] if shard is not None else write_reports(out, config, mine, reach)
    return BenchResult(config, mine, summary, out, trained=len(jobs), seconds=seconds)


def read_reach(out: Path) -> list[Reach]:
    """The reach a bench folder recorded (none for an unmatched bench or an older folder)."""
    path = out / REACH_FILE
    return [Reach(**entry) for entry in json.loads(path.read_text())] if path.exists() else []


def merge_reports(out_dir: str | Path) -> BenchResult:
    """The reports of a bench folder from the rows of every shard (and of whole-grid runs)."""
    from topoprune.experiments.bench_report import write_reports

    out = Path(out_dir)
    if not (out / CONFIG_FILE).is_file():
        raise TopopruneError(f"{out} holds no bench ({CONFIG_FILE}): give the folder of a bench")
    config = load_config(json.loads((out / CONFIG_FILE).read_text()))
    wanted = {job.key for job in config.jobs()}
    rows = [r for r in _all_rows(out) if (r["label"], r["sparsity"], r["seed"]) in wanted]
    summary = write_reports(out, config, rows, read_reach(out))
    return BenchResult(config, rows, summary, out, trained=0)
