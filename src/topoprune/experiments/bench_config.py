"""The benchmark's configuration: read from YAML (or a dict) and checked before anything runs.

A configuration names one model and dataset, one training budget, the methods, the operating
points and the seeds::

    model: vgg11
    widths: [32, 64, 64, 64, 128, 128, 128, 128]   # optional, the model's own by default
    dataset: mnist5k
    root: null                  # folder of an on-disk dataset (cifar10, imagefolder, ...)
    training: {epochs: 4, batch_size: 64, lr: 0.05}  # TrainConfig fields, but not seed
    methods:
      - dense                   # the reference: trained once per seed, not per point
      - random
      - {name: rgp, nodes: 16}  # any registered method; options as `prune --list-methods` says
      - {name: rgp, label: rgp-greedy, nodes: 16, strategy: greedy}
      - {name: random, label: random-like-rgp, like: rgp, granularity: kernel}
      - {name: l1, pretrain_fraction: 0.5}
    sparsities: [0.75, 0.875]
    match: sparsity             # or params / macs: the points are true fractions removed
    match_tolerance: 0.03       # matched: a method whose nearest setting misses a point by
                                # more is not run there (reported as out of reach)
    reference: random           # optional: the label every other method is tested against,
                                # paired by seed (report: differences, Holm-corrected p-values)
    seeds: 3                    # seeds 0, 1, 2; or a list such as [0, 7]
    latency_batch: 64           # batch of the latency measurements; null skips them

``match: sparsity`` gives every method the same ``sparsity`` (the fraction of weights removed
from the layers it masks); ``match: params`` or ``macs`` makes each method find its own setting
that removes that true fraction of the whole model's params or MACs
(:func:`topoprune.pruning.match_sparsity`). ``random`` with ``like: LABEL`` copies the per-layer
kept counts of the method with that label in the same config (its options included).

Every run's training and pruning seed is its seed, unless a method fixes ``seed`` in its options
(then only the training varies over seeds). A ``search`` method searches once per point (seed 0
unless its options fix one) and every seed trains the widths it found. Every mistake raises
:class:`TopopruneError` with one line that says what to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from topoprune.errors import TopopruneError
from topoprune.pruning.match import KINDS
from topoprune.pruning.registry import check_options, get_method, list_methods
from topoprune.training import TrainConfig

DENSE = "dense"
MATCHES = ("sparsity", *KINDS)
TOP_KEYS = (
    "model",
    "widths",
    "dataset",
    "root",
    "training",
    "methods",
    "sparsities",
    "match",
    "match_tolerance",
    "reference",
    "seeds",
    "latency_batch",
)
REQUIRED_KEYS = ("model", "dataset", "methods", "sparsities")
LABEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def bench_methods() -> tuple[str, ...]:
    """Every method the benchmark runs: dense and each registered method."""
    return (DENSE, *(method.name for method in list_methods()))


@dataclass(frozen=True)
class MethodSpec:
    """One method of the benchmark: ``label`` names its rows, ``options`` configure it."""

    label: str
    name: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Job:
    """One run: a method at an operating point (0 for dense) with a seed.

    ``sparsity`` is the point as the config gives it: the method's sparsity, or the true
    fraction of params or MACs to remove (``BenchConfig.match``).
    """

    method: MethodSpec
    sparsity: float
    seed: int

    @property
    def key(self) -> tuple[str, float, int]:
        return (self.method.label, self.sparsity, self.seed)

    @property
    def folder(self) -> str:
        """The run's folder name inside ``OUT/runs``."""
        if self.method.name == DENSE:
            return f"{self.method.label}_seed{self.seed}"
        return f"{self.method.label}_s{self.sparsity:g}_seed{self.seed}"


@dataclass(frozen=True)
class BenchConfig:
    """A checked benchmark configuration (see the module docstring for the file format)."""

    model: str
    dataset: str
    training: TrainConfig
    methods: tuple[MethodSpec, ...]
    sparsities: tuple[float, ...]
    seeds: tuple[int, ...]
    root: str | None = None
    widths: tuple[int, ...] | None = None
    latency_batch: int | None = 64
    match: str = "sparsity"
    match_tolerance: float = 0.03
    reference: str | None = None

    def jobs(self) -> list[Job]:
        """Every run, in order: methods as listed, then sparsities, then seeds."""
        return [
            Job(method, sparsity, seed)
            for method in self.methods
            for sparsity in ((0.0,) if method.name == DENSE else self.sparsities)
            for seed in self.seeds
        ]

    def setting(self) -> dict[str, Any]:
        """What every run shares; a results folder holds runs of one setting only."""
        training = self.training.to_dict()
        del training["seed"]
        return {
            "model": self.model,
            "match": self.match,
            "widths": None if self.widths is None else list(self.widths),
            "dataset": self.dataset,
            "root": self.root,
            "training": training,
            "latency_batch": self.latency_batch,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form; ``load_config(config.to_dict())`` gives the same configuration back."""
        return {
            **self.setting(),
            "methods": [{"name": m.name, "label": m.label, **m.options} for m in self.methods],
            "sparsities": list(self.sparsities),
            "match": self.match,
            "match_tolerance": self.match_tolerance,
            "reference": self.reference,
            "seeds": list(self.seeds),
        }


def _fail(message: str) -> TopopruneError:
    return TopopruneError(f"bench config: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_type(where: str, value: Any, default: Any) -> Any:
    """``value`` if it has the type of ``default``; numbers widen to float, lists to tuples.

    Anything goes where the default is None.
    """
    if default is None:
        return value
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = _is_int(value)
    elif isinstance(default, float):
        ok = _is_int(value) or isinstance(value, float)
    elif isinstance(default, (tuple, list)):
        ok = isinstance(value, (list, tuple))
        for item in value if ok and default else ():
            _check_type(f"every item of {where}", item, default[0])
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise _fail(f"{where} must be of type {type(default).__name__}, got {value!r}")
    if isinstance(default, float):
        return float(value)
    return tuple(value) if isinstance(default, (tuple, list)) else value


def _plain(value: Any) -> Any:
    """Tuples back to lists, so that options compare equal to their JSON form."""
    return list(value) if isinstance(value, tuple) else value


def _check_keys(where: str, given: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = [key for key in given if key not in allowed]
    if unknown:
        raise _fail(
            f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(allowed) or 'none'}"
        )


def _training(raw: Any) -> TrainConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail("training must be a mapping of TrainConfig fields")
    if "seed" in raw:
        raise _fail("training.seed is not used: list the seeds at the top level (seeds: ...)")
    defaults = TrainConfig()
    names = tuple(f.name for f in fields(TrainConfig) if f.name != "seed")
    _check_keys("training", raw, names)
    values = {k: _check_type(f"training.{k}", v, getattr(defaults, k)) for k, v in raw.items()}
    if values.get("max_steps_per_epoch") is not None:
        _check_type("training.max_steps_per_epoch", values["max_steps_per_epoch"], 1)
        if values["max_steps_per_epoch"] < 1:
            raise _fail("training.max_steps_per_epoch must be >= 1 (or null: whole epochs)")
    config = TrainConfig(**values)
    config.validate()
    return config


def _method(raw: Any, index: int) -> MethodSpec:
    entry = {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise _fail(f"methods[{index}] must be a method name or a mapping with a 'name'")
    options = dict(entry)
    name = options.pop("name")
    label = options.pop("label", name)
    if name not in bench_methods():
        raise _fail(f"unknown method {name!r}: use one of {', '.join(bench_methods())}")
    if not isinstance(label, str) or not LABEL_PATTERN.fullmatch(label):
        raise _fail(f"label {label!r} of {name} must be letters, digits, '.', '_' or '-'")
    if name == DENSE:
        if options:
            raise _fail(f"unknown key {next(iter(options))!r} in method {label}; dense has none")
        return MethodSpec(label, name, {})
    try:
        check_options(get_method(name), options)
    except TopopruneError as err:
        raise _fail(f"method {label}: {err}") from None
    return MethodSpec(label, name, {k: _plain(v) for k, v in options.items()})


def _sparsities(raw: Any) -> tuple[float, ...]:
    if not isinstance(raw, list) or not raw:
        raise _fail("sparsities must be a non-empty list of fractions, e.g. [0.75, 0.875]")
    for value in raw:
        if not (_is_int(value) or isinstance(value, float)) or not 0.0 < value < 1.0:
            raise _fail(f"every sparsity must lie in (0, 1) (dense is a method); got {value!r}")
    if len(set(raw)) != len(raw):
        raise _fail(f"sparsities repeat a value: {raw}")
    return tuple(float(value) for value in raw)


def _seeds(raw: Any) -> tuple[int, ...]:
    if _is_int(raw) and raw >= 1:
        return tuple(range(raw))
    if (
        isinstance(raw, list)
        and raw
        and all(_is_int(s) and s >= 0 for s in raw)
        and len(set(raw)) == len(raw)
    ):
        return tuple(raw)
    raise _fail(f"seeds must be a count >= 1 or a list of distinct integers >= 0; got {raw!r}")


def _resolve_like(method: MethodSpec, methods: tuple[MethodSpec, ...]) -> MethodSpec:
    """``like: LABEL`` naming another method of the config becomes that method and its options."""
    like = method.options.get("like")
    by_label = {m.label: m for m in methods}
    if "like_options" in method.options or like not in by_label or by_label[like].name == DENSE:
        return method
    other = by_label[like]
    options = {**method.options, "like": other.name, "like_options": dict(other.options)}
    return MethodSpec(method.label, method.name, options)


def _check_method_fits(method: MethodSpec, config: BenchConfig) -> None:
    """The checks that need the whole configuration: every point and the epoch split."""
    if method.name == DENSE:
        return
    spec = get_method(method.name)
    options = dict(method.options)
    if spec.protocol == "after-training":
        try:
            epochs = None if spec.stages is not None else config.training.epochs  # its own split
            check_options(spec, options).protocol.validate(epochs)
        except TopopruneError as err:
            raise _fail(f"method {method.label}: {err}") from None
    if config.match != "sparsity":
        return
    for sparsity in config.sparsities:
        try:
            check_options(spec, options, sparsity)
        except TopopruneError as err:
            raise _fail(f"method {method.label} at sparsity {sparsity}: {err}") from None


def _read(source: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    import yaml

    path = Path(source)
    if not path.is_file():
        raise TopopruneError(f"no bench config at {path}: pass a YAML file (see configs/)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise TopopruneError(f"{path} is not a text file, so not a YAML config") from None
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0]
        raise TopopruneError(f"{path} is not valid YAML: {first}") from None
    if not isinstance(raw, Mapping):
        raise TopopruneError(f"{path} must hold a mapping (model:, dataset:, methods:, ...)")
    return raw


def load_config(source: str | Path | Mapping[str, Any]) -> BenchConfig:
    """Read and check a benchmark configuration from a YAML file or a mapping.

    >>> config = load_config({"model": "lenet5", "dataset": "digits", "methods": ["dense",
    ...     "random"], "sparsities": [0.5], "seeds": 2, "training": {"epochs": 1}})
    >>> [job.folder for job in config.jobs()]
    ['dense_seed0', 'dense_seed1', 'random_s0.5_seed0', 'random_s0.5_seed1']
    """
    from topoprune.data import list_datasets
    from topoprune.models import list_models

    raw = _read(source)
    _check_keys("the config", raw, TOP_KEYS)
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise _fail(f"missing key {missing[0]!r} (needs {', '.join(REQUIRED_KEYS)})")
    if raw["model"] not in list_models():
        raise _fail(f"unknown model {raw['model']!r}: use one of {', '.join(list_models())}")
    if raw["dataset"] not in list_datasets():
        raise _fail(f"unknown dataset {raw['dataset']!r}: use one of {', '.join(list_datasets())}")
    widths = raw.get("widths")
    if widths is not None and not (
        isinstance(widths, list) and widths and all(_is_int(w) and w >= 1 for w in widths)
    ):
        raise _fail(f"widths must be a list of positive integers, got {widths!r}")
    root = raw.get("root")
    if root is not None and not isinstance(root, str):
        raise _fail(f"root must be a folder path, got {root!r}")
    latency_batch = raw.get("latency_batch", 64)
    if latency_batch is not None and not (_is_int(latency_batch) and latency_batch >= 1):
        raise _fail(f"latency_batch must be an integer >= 1 or null, got {latency_batch!r}")
    if not isinstance(raw["methods"], list) or not raw["methods"]:
        raise _fail("methods must be a non-empty list, e.g. [dense, random, rgp]")
    methods = tuple(_method(entry, i) for i, entry in enumerate(raw["methods"]))
    methods = tuple(_resolve_like(method, methods) for method in methods)
    labels = [m.label for m in methods]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise _fail(f"two methods share the label {repeated[0]!r}: give one a 'label'")
    match = raw.get("match", "sparsity")
    if match not in MATCHES:
        raise _fail(f"match must be one of {', '.join(MATCHES)}, got {match!r}")
    tolerance = _check_type("match_tolerance", raw.get("match_tolerance", 0.03), 0.03)
    if not 0.0 < tolerance < 1.0:
        raise _fail(f"match_tolerance must lie in (0, 1), got {tolerance!r}")
    reference = raw.get("reference")
    if reference is not None and reference not in [m.label for m in methods if m.name != DENSE]:
        raise _fail(f"reference {reference!r} must be the label of a pruning method in methods")
    config = BenchConfig(
        model=raw["model"],
        dataset=raw["dataset"],
        training=_training(raw.get("training")),
        methods=methods,
        sparsities=_sparsities(raw["sparsities"]),
        seeds=_seeds(raw.get("seeds", 3)),
        root=root,
        widths=None if widths is None else tuple(widths),
        latency_batch=latency_batch,
        match=match,
        match_tolerance=tolerance,
        reference=reference,
    )
    for method in methods:
        _check_method_fits(method, config)
    return config
