"""GraphPruning as the ``search`` method ``graphpruning``: train the PruningNet, search, widths.

``prune(model, "graphpruning", macs=0.5, ...)`` keeps at most 50% of the dense MACs: it builds
the layer graph of ``model``'s architecture, trains a PruningNet on ``data`` (the aggregator
and the heads jointly, a random configuration per batch), searches the keep ratios with the
chosen search, and returns the best configuration's width list; the runner builds that narrower
model and trains it from scratch. ``search="uniform"`` skips the PruningNet: one keep ratio for
every node, the largest that fits (the uniform-scaling baseline). ``params=0.1`` sets the
budget on the true params instead (a bench's ``match: params``).

Zhang, Yu, Rong and Ou published no code; every choice this module makes is an option, with
MetaPruning's (Liu et al., ICCV 2019) values where the paper gives none.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.measure import count
from topoprune.pruning.graphpruning.layer_graph import layer_graph
from topoprune.pruning.graphpruning.pruning_net import RATIOS, PruningNet
from topoprune.pruning.graphpruning.search import (
    SEARCHES,
    SearchSpace,
    actor_critic,
    evolution,
    random_search,
)
from topoprune.pruning.graphpruning.training import NetSchedule, score, train_pruning_net
from topoprune.pruning.registry import (
    CheckedOptions,
    PruneContext,
    Pruning,
    option,
    register_method,
)


@dataclass(frozen=True)
class GraphPruningOptions:
    """The budget, the search and the PruningNet's sizes and training."""

    macs: float | None = option(
        None, "fraction of the dense MACs to keep (0.5 keeps half); default 1 − sparsity"
    )
    params: float | None = option(
        None, "fraction of the dense params to keep instead: the budget counts params, not MACs"
    )
    search: str = option(
        "evolution",
        "evolution (MetaPruning's), rl (actor-critic, AMC style), random (the control) or "
        "uniform (one ratio for every node, no PruningNet)",
        choices=(*SEARCHES, "uniform"),
    )
    population: int = option(
        50, "evolution: population; every search scores population x iterations"
    )
    iterations: int = option(20, "evolution: iterations")
    parents: int = option(10, "evolution: best candidates kept as parents")
    mutation: float = option(0.1, "evolution: probability of redrawing a node's ratio")
    net_epochs: int = option(10, "PruningNet training epochs")
    net_batch_size: int = option(128, "PruningNet training batch")
    net_lr: float = option(0.05, "PruningNet learning rate (SGD, cosine)")
    embedding: int = option(32, "node embedding size")
    hidden: int = option(16, "hidden units of each weight-generating head")
    gcn: bool = option(True, "aggregate over the layer graph (False: per-layer features only)")
    recalibration_batches: int = option(10, "training batches that recalibrate BN per candidate")


def _budget(sparsity: float, options: GraphPruningOptions) -> tuple[str, float]:
    """(the count the budget is set on, the fraction of its dense value kept)."""
    if options.params is not None:
        return "params", options.params
    return "macs", options.macs if options.macs is not None else 1.0 - sparsity


def _check(sparsity: float, options: GraphPruningOptions) -> None:
    if options.macs is not None and options.params is not None:
        raise TopopruneError("graphpruning takes one budget: macs or params, not both")
    kind, keep = _budget(sparsity, options)
    if not 0.0 < keep <= 1.0:
        what = "MACs" if kind == "macs" else "params"
        raise TopopruneError(f"graphpruning keeps a fraction of the {what} in (0, 1], got {keep}")
    if min(options.population, options.iterations, options.parents) < 1:
        raise TopopruneError("graphpruning needs population, iterations and parents >= 1")
    if options.parents > options.population:
        raise TopopruneError("graphpruning: parents cannot exceed the population")
    if not 0.0 <= options.mutation <= 1.0:
        raise TopopruneError(f"graphpruning mutation must lie in [0, 1], got {options.mutation}")
    if min(options.net_epochs, options.net_batch_size, options.recalibration_batches) < 1:
        raise TopopruneError(
            "graphpruning needs net_epochs, net_batch_size and recalibration_batches >= 1"
        )


def _match(
    model: nn.Module, kind: str, target: float, checked: CheckedOptions, **where: object
) -> tuple[float, dict[str, float]]:
    return target, {kind: 1.0 - target}


def uniform_widths(space: SearchSpace) -> np.ndarray:
    """The largest single grid ratio for every node that fits the budget."""
    for ratio in sorted(RATIOS, reverse=True):
        ratios = np.full(space.nodes, ratio)
        if space.fits(ratios):
            return ratios
    raise TopopruneError(
        f"even {RATIOS[0]} of every width exceeds {space.budget:,} {space.kind}: raise the budget"
    )


@register_method(
    "graphpruning",
    protocol="search",
    options=GraphPruningOptions,
    check=_check,
    match=_match,
    sets_budget=lambda options: options.macs is not None or options.params is not None,
)
def graphpruning(
    model: nn.Module, sparsity: float, options: GraphPruningOptions, context: PruneContext
) -> Pruning:
    """GCN aggregator + PruningNet + width search under a MACs (or params) budget."""
    input_size = context.require_input_size("graphpruning")
    config = model.config
    graph = layer_graph(
        config["name"],
        num_classes=config["num_classes"],
        in_channels=config["in_channels"],
        widths=config["widths"],
    )
    kind, keep = _budget(sparsity, options)
    budget = int(keep * getattr(count(model, input_size), kind))
    folder = context.work_dir
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, object] = {
        "nominal_reduction": None,  # no masks: the true counts of the narrower model say it
        f"budget_{kind}": budget,
        "nodes": len(graph.nodes),
    }
    if options.search == "uniform":
        space = SearchSpace(graph, _unused, budget, input_size, kind=kind)
        ratios = uniform_widths(space)
        metrics["ratios"] = ratios.tolist()
        return Pruning(widths=graph.widths(ratios), metrics=metrics)
    if context.data is None:
        raise TopopruneError("graphpruning trains its PruningNet on data: pass data=splits")
    net = PruningNet(
        graph,
        embedding=options.embedding,
        hidden=options.hidden,
        gcn=options.gcn,
        seed=context.seed,
    )
    schedule = NetSchedule(options.net_epochs, options.net_batch_size, options.net_lr)
    started = time.perf_counter()
    history = train_pruning_net(net, context.data, schedule, seed=context.seed, folder=folder)
    metrics["net_seconds"] = time.perf_counter() - started
    metrics["net_history"] = history
    metrics["net_params"] = sum(p.numel() for p in net.parameters())
    net.eval()

    def scorer(ratios: torch.Tensor) -> tuple[float, float]:
        batch = options.net_batch_size
        return score(net, ratios, context.data, options.recalibration_batches, batch)

    space = SearchSpace(graph, scorer, budget, input_size, folder, kind=kind)
    started = time.perf_counter()
    candidates = options.population * options.iterations
    if options.search == "evolution":
        best = evolution(
            space,
            population=options.population,
            iterations=options.iterations,
            parents=options.parents,
            mutation=options.mutation,
            seed=context.seed,
        )
    elif options.search == "random":
        best = random_search(space, candidates, context.seed)
    else:
        best = actor_critic(space, net, episodes=candidates, seed=context.seed)
    metrics["search_seconds"] = time.perf_counter() - started
    metrics["best"] = asdict(best)
    metrics["best_so_far"] = space.best_so_far()
    if folder is not None:
        from topoprune.experiments.plots import plot_best_so_far

        plot_best_so_far({options.search: metrics["best_so_far"]}, folder / "search.png")
    return Pruning(widths=best.widths, metrics=metrics)


def _unused(ratios: torch.Tensor) -> tuple[float, float]:
    raise AssertionError("the uniform baseline scores nothing")
