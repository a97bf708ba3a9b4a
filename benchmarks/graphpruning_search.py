"""GraphPruning's cost and whether its PruningNet is worth it, in one run.

1. Trains the PruningNet (GCN aggregator + heads) and times it with the evolutionary search
   (the issue's target: under 15 minutes for VGG-11 at 64 channels on mnist5k, 2 cores).
2. Runs random search and the actor-critic search on the same PruningNet with the same number
   of candidates, times each, and draws the best-so-far curves of all three in one PNG.
3. Takes ten random candidates within the budget, scores them with the PruningNet's generated
   weights, trains each from scratch for a few epochs, and reports the Spearman correlation
   between the two; then the same with a PruningNet trained without the GCN (plain per-layer
   features).

    python benchmarks/graphpruning_search.py --model vgg11 --widths 64 --dataset mnist5k \
        --macs 0.5 --out runs/graphpruning-search
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from topoprune.data import load_dataset
from topoprune.experiments.plots import plot_best_so_far
from topoprune.measure import count
from topoprune.models import create_model
from topoprune.pruning.graphpruning.layer_graph import layer_graph
from topoprune.pruning.graphpruning.pruning_net import PruningNet
from topoprune.pruning.graphpruning.search import (
    SearchSpace,
    actor_critic,
    evolution,
    random_search,
)
from topoprune.pruning.graphpruning.training import NetSchedule, score, train_pruning_net
from topoprune.training import TrainConfig
from topoprune.training.trainer import Trainer


def _net(graph, splits, args, gcn: bool) -> tuple[PruningNet, float]:
    net = PruningNet(graph, gcn=gcn, seed=args.seed)
    started = time.perf_counter()
    schedule = NetSchedule(args.net_epochs, args.batch_size, args.net_lr)
    train_pruning_net(net, splits, schedule, seed=args.seed, progress=True)
    return net.eval(), time.perf_counter() - started


def _space(net, graph, splits, args, budget, input_size) -> SearchSpace:
    def scorer(ratios: torch.Tensor) -> tuple[float, float]:
        return score(net, ratios, splits, args.recalibration_batches, args.batch_size)

    return SearchSpace(graph, scorer, budget, input_size, progress=True)


def _timed(function, *arguments, **keywords):
    started = time.perf_counter()
    result = function(*arguments, **keywords)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vgg11")
    parser.add_argument("--widths", type=int, default=64, help="every width of the model")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--macs", type=float, default=0.5)
    parser.add_argument("--net-epochs", type=int, default=10)
    parser.add_argument("--net-lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--recalibration-batches", type=int, default=10)
    parser.add_argument("--candidates", type=int, default=10, help="for the correlation")
    parser.add_argument("--train-epochs", type=int, default=3, help="per correlated candidate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/graphpruning-search"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    splits = load_dataset(args.dataset)
    kwargs = {"num_classes": splits.num_classes, "in_channels": splits.in_channels}
    input_size = (splits.in_channels, *splits.image_size)
    full = [args.widths] * len(create_model(args.model, **kwargs).widths)
    graph = layer_graph(args.model, **kwargs, widths=full)
    budget = int(
        args.macs * count(create_model(args.model, **kwargs, widths=full), input_size).macs
    )
    print(f"{args.model} at widths {args.widths}: {len(graph.nodes)} nodes, budget {budget:,} MACs")

    net, net_s = _net(graph, splits, args, gcn=True)
    space = _space(net, graph, splits, args, budget, input_size)
    settings = {"population": args.population, "iterations": args.iterations, "seed": args.seed}
    best, evolution_s = _timed(evolution, space, **settings)
    candidates = args.population * args.iterations
    control = _space(net, graph, splits, args, budget, input_size)
    best_random, random_s = _timed(random_search, control, candidates, args.seed)
    agent = _space(net, graph, splits, args, budget, input_size)
    best_rl, rl_s = _timed(actor_critic, agent, net, episodes=candidates, seed=args.seed)
    curves = {
        "evolution": space.best_so_far(),
        "random": control.best_so_far(),
        "actor-critic": agent.best_so_far(),
    }
    plot_best_so_far(curves, args.out / "best_so_far.png")

    rng = np.random.default_rng([args.seed, 9])
    picked = [space.random_ratios(rng) for _ in range(args.candidates)]
    plain, plain_s = _net(graph, splits, args, gcn=False)
    rows = []
    for ratios in picked:
        tensor = torch.tensor(ratios, dtype=torch.float32)
        widths = graph.widths(ratios)
        model = create_model(args.model, **kwargs, widths=widths, seed=args.seed)
        config = TrainConfig(epochs=args.train_epochs, batch_size=args.batch_size, lr=0.05)
        trained = Trainer(model, splits, config, progress=False).fit()
        rows.append(
            {
                "widths": widths,
                "macs": count(model, input_size).macs,
                "pruningnet_val_acc": score(
                    net, tensor, splits, args.recalibration_batches, args.batch_size
                )[1],  # fmt: skip
                "no_gcn_val_acc": score(
                    plain, tensor, splits, args.recalibration_batches, args.batch_size
                )[1],  # fmt: skip
                "trained_val_acc": trained.val_acc,
            }
        )
    trained = [row["trained_val_acc"] for row in rows]
    with_gcn = spearmanr([row["pruningnet_val_acc"] for row in rows], trained)
    without = spearmanr([row["no_gcn_val_acc"] for row in rows], trained)
    summary = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "seconds": {
            "pruningnet": net_s,
            "evolution": evolution_s,
            "pruningnet_plus_evolution": net_s + evolution_s,
            "random": random_s,
            "actor_critic": rl_s,
            "pruningnet_without_gcn": plain_s,
        },
        "distinct_scored": {
            "evolution": len(space.cache),
            "random": len(control.cache),
            "actor_critic": len(agent.cache),
        },
        "best": {
            "evolution": best.__dict__,
            "random": best_random.__dict__,
            "actor_critic": best_rl.__dict__,
        },  # fmt: skip
        "spearman": {
            "with_gcn": [float(with_gcn.statistic), float(with_gcn.pvalue)],
            "without_gcn": [float(without.statistic), float(without.pvalue)],
        },
        "candidates": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["seconds"], indent=2))
    print(
        f"best val acc: evolution {best.val_acc:.2f}, random {best_random.val_acc:.2f}, "
        f"actor-critic {best_rl.val_acc:.2f}"
    )
    (gcn_r, gcn_p), (plain_r, plain_p) = with_gcn, without
    print(
        f"Spearman, PruningNet score vs trained: GCN {gcn_r:.3f} (p {gcn_p:.3f}), "
        f"no GCN {plain_r:.3f} (p {plain_p:.3f})"
    )


if __name__ == "__main__":
    main()
