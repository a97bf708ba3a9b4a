"""The method registry: one name, one options dataclass and one protocol per pruning method.

Every method is a module under :mod:`topoprune.pruning` that registers a function::

    @dataclass(frozen=True)
    class HalfOptions:
        scale: float = option(0.5, "fraction of each layer's kept weights that stay")

    @register_method("half", protocol="at-init", options=HalfOptions)
    def half(model, sparsity, options, context):
        '''Keep a random half of what ``sparsity`` allows (one line shown by --list-methods).'''
        return Pruning(masks=...)

and everything else reads the registry: :func:`topoprune.prune` checks a call's options against
the dataclass, the CLI (``topoprune prune --method half --scale 0.3``, ``--list-methods``) and
the bench YAML (``{name: half, scale: 0.3}``) read the same schema, and the protocol runners in
:mod:`topoprune.experiments.protocols` train the result the way its protocol says:

- ``at-init``: masks decided before training, then trained from scratch;
- ``after-training``: train dense, prune the trained model, fine-tune (the same total epochs);
- ``search``: search per-layer widths (the result carries ``widths``), build the physically
  narrower model, train it from scratch; the search's cost is reported on its own.

Options every method takes (:class:`CommonOptions`: ``seed``, ``layers``, ``exclude``) and
options of a protocol's runner (:class:`AfterTrainingOptions`) are part of the same schema.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.pruning.layers import PrunableLayer

PROTOCOLS = ("at-init", "after-training", "search")


def option(default: Any, doc: str, *, choices: tuple[Any, ...] | None = None) -> Any:
    """A dataclass field with its one-line ``doc`` (and allowed ``choices``) for the schema."""
    return field(default=default, metadata={"doc": doc, "choices": choices})


@dataclass(frozen=True)
class NoOptions:
    """A method without options of its own."""


@dataclass(frozen=True)
class CommonOptions:
    """Options of every method."""

    seed: int = option(0, "seed of every random choice the method makes")
    layers: tuple[str, ...] | None = option(
        None, "only mask layers matching these shell patterns (e.g. 'layer1.*')"
    )
    exclude: tuple[str, ...] = option((), "leave layers matching these shell patterns dense")


@dataclass(frozen=True)
class AfterTrainingOptions:
    """How an ``after-training`` method's runner splits the epochs of the budget."""

    pretrain_fraction: float = option(
        0.5, "share of the epochs trained dense before pruning; the rest fine-tune"
    )
    finetune_lr_scale: float = option(
        1.0, "fine-tuning learning rate / training learning rate (1: rewind the schedule)"
    )

    def epochs(self, total: int) -> tuple[int, int]:
        """(dense epochs, fine-tuning epochs) out of ``total``; both must be at least 1.

        >>> AfterTrainingOptions().epochs(5)
        (2, 3)
        """
        if not math.isfinite(self.pretrain_fraction):
            raise TopopruneError(
                f"pretrain_fraction must be a number, got {self.pretrain_fraction}"
            )
        dense = int(self.pretrain_fraction * total)
        if not 1 <= dense < total:
            raise TopopruneError(
                f"an after-training method trains dense for floor({self.pretrain_fraction} x "
                f"{total}) = {dense} of {total} epochs; it needs at least one epoch on each side "
                "of the pruning: raise the epochs or change pretrain_fraction"
            )
        return dense, total - dense

    def validate(self, total_epochs: int | None) -> None:
        """Raise :class:`TopopruneError` unless the split fits ``total_epochs`` (None: a method
        in stages, which splits the epochs itself)."""
        if not (math.isfinite(self.finetune_lr_scale) and self.finetune_lr_scale > 0):
            raise TopopruneError(f"finetune_lr_scale must be > 0, got {self.finetune_lr_scale!r}")
        if total_epochs is not None:
            self.epochs(total_epochs)


PROTOCOL_OPTIONS: dict[str, type] = {
    "at-init": NoOptions,
    "after-training": AfterTrainingOptions,
    "search": NoOptions,
}


@dataclass
class PruneContext:
    """What a method may read besides its options.

    layers: the layers it may mask (``CommonOptions.layers``/``exclude`` applied), in order.
    include, exclude: those name patterns, for a method that selects layers of its own.
    stage: during a progressive pruning (:func:`topoprune.pruning.prune_progressively`), the
        names of the layers this stage masks: the method masks those only (its choices for
        them as in a one-shot call); None: every layer at once.
    work_dir: a folder where a long-running method keeps resumable state (the runner gives
        ``OUT/search``), or None.
    input_size: (C, H, W) of one input, or None when the caller did not give it.
    data: the dataset splits (``topoprune.data.Splits``) for methods that need data, or None.
    """

    layers: list[PrunableLayer]
    seed: int
    input_size: tuple[int, int, int] | None = None
    data: Any = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    stage: tuple[str, ...] | None = None
    work_dir: Path | None = None

    def require_input_size(self, method: str) -> tuple[int, int, int]:
        if self.input_size is None:
            raise TopopruneError(f"{method} needs the input size: pass input_size=(C, H, W)")
        return self.input_size


@dataclass
class Pruning:
    """What a method's function returns.

    masks: layer name -> bool tensor shaped like that layer's weight (True = kept); empty for a
        method that changes the model's widths instead.
    graph: the (n, n) adjacency mapped onto the layers, for graph methods.
    metrics: JSON-serialisable figures of the method (graph metrics, ...).
    layers: one JSON row per masked layer (name, shape, kept fraction, ...); made from the masks
        when the method gives none.
    widths: for ``search`` methods, the model's width list to build and train.
    skips: skip projections to add between Linear layers before the masks
        (:func:`topoprune.pruning.skips.attach_skips` specs); their masks are in ``masks``.
    """

    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    graph: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    widths: list[int] | None = None
    skips: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Stages:
    """How an ``after-training`` method prunes in stages, with fine-tuning between them.

    layers: per stage, the names of the layers it masks, in order.
    epochs: fine-tuning epochs after each stage (the dense phase gets the rest of the budget).
    restart: each stage restarts the learning-rate schedule (over its own epochs); otherwise
        the stages share one schedule over all their epochs.
    """

    layers: list[tuple[str, ...]]
    epochs: int
    restart: bool = False

    @property
    def total_epochs(self) -> int:
        return self.epochs * len(self.layers)


MethodFunction = Callable[[nn.Module, float, Any, PruneContext], Pruning]
StagesFunction = Callable[[nn.Module, float, Any], Stages]
MatchFunction = Callable[..., tuple[float, dict[str, Any]] | None]
CheckFunction = Callable[[float, Any], None]


@dataclass(frozen=True)
class OptionSpec:
    """One option of the schema: its name, type hint, default, one-line doc and choices."""

    name: str
    hint: Any
    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None

    @property
    def type_name(self) -> str:
        return _type_name(self.hint)


@dataclass(frozen=True)
class Method:
    """A registered method.

    match: ``match(model, kind, target, checked, input_size=..., data=...)`` maps a true
        fraction ``target`` of ``kind`` ("params"/"macs") to remove onto (sparsity, option
        overrides), ``checked`` being the call's :class:`CheckedOptions`; None (or a match
        returning None) uses the generic bisection over ``sparsity``.
    check: ``check(sparsity, options)`` raises :class:`TopopruneError` when the options cannot
        work at that sparsity, so that a bench or CLI call fails before any training.
    sweep: the options ``topoprune prune --search`` sweeps by default, with their values.
    stages: ``stages(model, sparsity, options) -> Stages`` for an ``after-training`` method
        that prunes in stages; None: one stage, the runner's ``pretrain_fraction`` split.
    sets_budget: ``sets_budget(options) -> bool``, True when these options fix how much the
        method removes by themselves (``sparsity`` is then unused and may be omitted).
    """

    name: str
    protocol: str
    options: type
    function: MethodFunction
    match: MatchFunction | None = None
    check: CheckFunction | None = None
    sweep: dict[str, tuple[Any, ...]] | None = None
    stages: StagesFunction | None = None
    sets_budget: Callable[[Any], bool] | None = None

    @property
    def summary(self) -> str:
        """The first line of the method function's docstring."""
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def schema(self) -> list[OptionSpec]:
        """Every option a call of this method may set: common, protocol, then its own."""
        protocol = option_specs(PROTOCOL_OPTIONS[self.protocol])
        if self.stages is not None:  # its stages set the dense epochs, not pretrain_fraction
            protocol = [spec for spec in protocol if spec.name != "pretrain_fraction"]
        return [*option_specs(CommonOptions), *protocol, *option_specs(self.options)]


_METHODS: dict[str, Method] = {}


def register_method(
    name: str,
    *,
    protocol: str,
    options: type = NoOptions,
    match: MatchFunction | None = None,
    check: CheckFunction | None = None,
    sweep: dict[str, tuple[Any, ...]] | None = None,
    stages: StagesFunction | None = None,
    sets_budget: Callable[[Any], bool] | None = None,
) -> Callable[[MethodFunction], MethodFunction]:
    """Decorator: register ``function(model, sparsity, options, context) -> Pruning``.

    ``options`` is a frozen dataclass whose fields all have defaults (made with :func:`option`,
    so that each has a line of doc); its field names must not repeat a common or protocol option.
    """
    if protocol not in PROTOCOLS:
        raise TopopruneError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    if stages is not None and protocol != "after-training":
        raise TopopruneError(f"{name!r}: only after-training methods prune in stages")
    if not dataclasses.is_dataclass(options):
        raise TopopruneError(f"the options of {name!r} must be a dataclass")
    shared = {spec.name for spec in option_specs(CommonOptions)}
    shared |= {spec.name for spec in option_specs(PROTOCOL_OPTIONS[protocol])}
    clash = [spec.name for spec in option_specs(options) if spec.name in shared]
    if clash:
        raise TopopruneError(f"option {clash[0]!r} of {name!r} repeats a common or protocol option")

    def decorate(function: MethodFunction) -> MethodFunction:
        if name in _METHODS:
            raise TopopruneError(f"a pruning method named {name!r} is already registered")
        _METHODS[name] = Method(
            name, protocol, options, function, match, check, sweep, stages, sets_budget
        )
        return function

    return decorate


def unregister_method(name: str) -> None:
    """Remove ``name`` from the registry (for methods registered by tests and sessions; a
    built-in method removed stays removed for the rest of the process)."""
    _METHODS.pop(name, None)


def list_methods() -> list[Method]:
    """Every registered method, by name."""
    _load_builtin_methods()
    return [_METHODS[name] for name in sorted(_METHODS)]


def get_method(name: str) -> Method:
    """The method registered as ``name``; one clear error naming the others otherwise."""
    _load_builtin_methods()
    if not isinstance(name, str) or name not in _METHODS:
        raise TopopruneError(
            f"unknown pruning method {name!r}: use one of {', '.join(sorted(_METHODS))}"
        )
    return _METHODS[name]


def _load_builtin_methods() -> None:
    import topoprune.pruning.methods  # noqa: F401  (registers the built-in methods)


def option_specs(options: type) -> list[OptionSpec]:
    """The :class:`OptionSpec` of every field of an options dataclass."""
    hints = typing.get_type_hints(options)
    return [
        OptionSpec(
            f.name,
            hints[f.name],
            f.default,
            f.metadata.get("doc", ""),
            f.metadata.get("choices"),
        )
        for f in dataclasses.fields(options)
    ]


@dataclass(frozen=True)
class CheckedOptions:
    """A call's options split by who reads them."""

    common: CommonOptions
    protocol: Any
    method: Any

    def to_dict(self) -> dict[str, Any]:
        """Every option's value, JSON-friendly (tuples as lists), for the run record."""
        values: dict[str, Any] = {}
        for part in (self.common, self.protocol, self.method):
            for f in dataclasses.fields(part):
                values[f.name] = _plain(getattr(part, f.name))
        return values


def check_options(
    method: Method, given: Mapping[str, Any], sparsity: float | None = None
) -> CheckedOptions:
    """Check ``given`` against ``method``'s schema and build its option dataclasses.

    An unknown option, a value of the wrong type or outside its choices raises one
    :class:`TopopruneError` line that names the valid options; with ``sparsity``, the method's
    own ``check`` runs too.
    """
    specs = {spec.name: spec for spec in method.schema()}
    unknown = [key for key in given if key not in specs]
    if unknown:
        raise TopopruneError(
            f"{method.name} has no option {unknown[0]!r}; its options: {', '.join(specs)}"
        )
    values = {key: coerce(value, specs[key], method.name) for key, value in given.items()}

    def build(options: type) -> Any:
        names = {f.name for f in dataclasses.fields(options)}
        return options(**{k: v for k, v in values.items() if k in names})

    checked = CheckedOptions(
        build(CommonOptions), build(PROTOCOL_OPTIONS[method.protocol]), build(method.options)
    )
    if sparsity is not None and method.check is not None:
        method.check(sparsity, checked.method)
    return checked


def coerce(value: Any, spec: OptionSpec, method: str) -> Any:
    """``value`` as the option's type (ints widen to float, lists to tuples), or one clear error."""
    ok, converted = _convert(value, spec.hint)
    if not ok:
        raise TopopruneError(
            f"{method} option {spec.name!r} must be {spec.type_name}, got {value!r}"
        )
    if spec.choices is not None and converted not in spec.choices:
        allowed = ", ".join(map(str, spec.choices))
        raise TopopruneError(
            f"{method} option {spec.name!r} must be one of {allowed}, got {value!r}"
        )
    return converted


def _convert(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            ok, converted = _convert(value, member)
            if ok:
                return True, converted
        return False, value
    if hint is type(None):
        return value is None, None
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number, float(value) if number else value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        item_hint = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        items = [_convert(item, item_hint) for item in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, tuple(converted for _, converted in items)
    if origin is dict or hint is dict:
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(member) for member in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin in (tuple, list):
        args = typing.get_args(hint)
        return f"list of {_type_name(args[0])}" if args else "list"
    if hint is Any:
        return "any value"
    return getattr(hint, "__name__", str(hint))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return f"<array {'x'.join(map(str, value.shape))}>"
    return value
