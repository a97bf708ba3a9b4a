"""Which method reaches which operating point of a matched bench (``match: params|macs``).

A method's settings are discrete or bounded: RGP's degree k on n nodes removes 1 − k/n of each
masked layer and k ≥ 2, l1 keeps at least one channel per layer. Asked for a true fraction it
cannot reach, a method would run at the nearest point it can, and its row would stand beside
the others at a point it does not share. Before any run, :func:`find_reach` prunes a copy of the
model once per (method, point) with seed 0 and measures what the matched setting achieves; a
point off by more than the config's ``match_tolerance`` is left out and reported as out of
reach. ``search`` methods are budgets (at most that many params or MACs) and are not checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from topoprune.errors import TopopruneError
from topoprune.experiments.bench_config import DENSE, BenchConfig
from topoprune.pruning import get_method


@dataclass(frozen=True)
class Reach:
    """What ``label``'s matched setting achieves at ``point`` (a true fraction removed); a
    method that cannot get near it at any setting has no ``setting``/``achieved`` and says why
    in ``reason``."""

    label: str
    point: float
    setting: float | None
    achieved: float | None
    reachable: bool
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_reach(config: BenchConfig) -> list[Reach]:
    """One :class:`Reach` per checked method and point of a matched ``config`` (none with
    ``match: sparsity``)."""
    from topoprune.experiments.runs import setup_run
    from topoprune.pruning import match_sparsity

    if config.match == "sparsity":
        return []
    setup = setup_run(
        config.model,
        config.dataset,
        seed=0,
        root=config.root,
        widths=None if config.widths is None else list(config.widths),
    )
    found = []
    for method in config.methods:
        if method.name == DENSE or get_method(method.name).protocol == "search":
            continue
        for point in config.sparsities:
            try:
                match = match_sparsity(
                    setup.model,
                    method.name,
                    config.match,
                    point,
                    {"seed": 0, **method.options},
                    input_size=setup.input_size,
                    data=setup.splits,
                )
            except TopopruneError as err:  # no setting removes that much
                found.append(Reach(method.label, point, None, None, False, str(err)))
                continue
            close = abs(match.achieved - point) <= config.match_tolerance
            found.append(Reach(method.label, point, match.sparsity, match.achieved, close))
    return found


def out_of_reach(reach: list[Reach]) -> set[tuple[str, float]]:
    """The (label, point) cells that are not run."""
    return {(r.label, r.point) for r in reach if not r.reachable}
