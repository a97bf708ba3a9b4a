"""RGP against the dense model and the ring lattice on bundled MNIST, over several seeds.

Prints one table: final-epoch test accuracy mean ± std per method, true params/MACs removed, and
whether the issue's targets hold (RGP within 1.5 points of dense; the lowest-ASPL graph beats the
ring lattice on mean accuracy). Same model, data, budget and seeds for every method.

    python benchmarks/rgp_accuracy.py --epochs 8 --seeds 3 --out runs/bench-rgp
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from pathlib import Path

from topoprune.cli.demo import DEMO_MODEL, DEMO_NODES, DEMO_SPARSITY, DEMO_WIDTHS
from topoprune.cli.options import parse_widths
from topoprune.experiments.protocols import run_pruned
from topoprune.training import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--model", default=DEMO_MODEL)
    parser.add_argument("--nodes", type=int, default=DEMO_NODES)
    parser.add_argument("--sparsity", type=float, default=DEMO_SPARSITY)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--widths", help="comma-separated widths (default: the demo's for vgg11)")
    parser.add_argument("--methods", default="dense,rgp,lattice,random-regular")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--out", default="runs/bench-rgp")
    args = parser.parse_args()
    widths = parse_widths(args.widths)
    if widths is None and args.model == DEMO_MODEL:
        widths = DEMO_WIDTHS
    results: dict[str, list] = {}
    for label in args.methods.split(","):
        method = None if label == "dense" else label
        for seed in range(args.seeds):
            config = TrainConfig(epochs=args.epochs, batch_size=64, lr=args.lr, seed=seed)
            out_dir = Path(args.out) / f"{label}_seed{seed}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                run = run_pruned(
                    args.model,
                    args.dataset,
                    config,
                    method=method,
                    sparsity=args.sparsity,
                    prune_options={"nodes": args.nodes, "seed": seed},
                    out_dir=out_dir,
                    resume=(out_dir / "checkpoint.pt").exists(),
                    progress=False,
                    measure_speed=False,
                    widths=widths,
                    label=label,
                )
            results.setdefault(label, []).append(run)
            print(f"{label} seed {seed}: {run.summary.test_acc:.2f}%", flush=True)
    print(
        f"\n{args.model} on {args.dataset}, {args.epochs} epochs, seeds 0..{args.seeds - 1}, "
        f"nodes {args.nodes}, sparsity {args.sparsity}"
    )
    print("| method | ASPL | test acc mean ± std | params removed | MACs removed |")
    print("|---|---|---|---|---|")
    means = {}
    for label, runs in results.items():
        accs = [r.summary.test_acc for r in runs]
        means[label] = statistics.mean(accs)
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        s = runs[0].summary
        graph = runs[0].pruning.metrics.get("graph") if runs[0].pruning else None
        aspl = (
            f"{statistics.mean(r.pruning.metrics['graph']['aspl'] for r in runs):.3f}"
            if graph
            else "—"
        )
        print(
            f"| {label} | {aspl} | {means[label]:.2f} ± {std:.2f} | "
            f"{100 * (1 - s.params / s.dense_params):.2f}% | "
            f"{100 * (1 - s.macs / s.dense_macs):.2f}% |"
        )
    if "dense" in means and "rgp" in means:
        print(
            f"\nRGP within 1.5 points of dense: {means['dense'] - means['rgp'] <= 1.5} "
            f"(gap {means['dense'] - means['rgp']:+.2f})"
        )
    if "rgp" in means and "lattice" in means:
        print(
            f"RGP beats the ring lattice: {means['rgp'] > means['lattice']} "
            f"({means['rgp']:.2f} vs {means['lattice']:.2f})"
        )


if __name__ == "__main__":
    main()
