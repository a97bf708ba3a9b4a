"""The topology of small-world, RGP and random masks of the same density, on one scale.

Every mask is read as a layered graph over all conv and Linear layers (units = channels or
neurons, a link = a kept kernel slice or weight group; unmasked layers dense) and measured the
same way: square clustering (triangles do not exist between consecutive layers), the
characteristic path length L, and sigma/omega with square clustering against degree-preserving
references made by swaps inside each layer pair. Each pattern is pruned at the same true
fraction of params removed where it can reach it (RGP: the nearest degree).

    python benchmarks/smallworld_topology.py --model lenet5-caffe --removed 0.977
"""

from __future__ import annotations

import argparse
import time

from topoprune.models import create_model
from topoprune.pruning import match_sparsity, prune
from topoprune.pruning.smallworld import mask_topology

PATTERNS = (
    ("smallworld p=0", "smallworld", {"rewire_p": 0.0, "flatten": "position"}),
    ("smallworld p=0.1", "smallworld", {"rewire_p": 0.1, "flatten": "position"}),
    ("smallworld p=1", "smallworld", {"rewire_p": 1.0, "flatten": "position"}),
    (
        "random (small-world counts)",
        "random",
        {"like": "smallworld", "like_options": {"rewire_p": 0.1, "flatten": "position"}},
    ),
    ("rgp (nearest degree)", "rgp", {"nodes": 20, "steps": 20000}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lenet5-caffe")
    parser.add_argument("--input", default="1x28x28")
    parser.add_argument("--removed", type=float, default=0.977)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flatten", default="position", choices=("channel", "position"))
    args = parser.parse_args()
    size = tuple(int(part) for part in args.input.split("x"))
    print(
        "| pattern | params removed | nodes | links | square C | L | sigma (square) "
        "| omega (square) | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, method, options in PATTERNS:
        started = time.perf_counter()
        model = create_model(args.model, in_channels=size[0], seed=args.seed)
        found = match_sparsity(model, method, "params", args.removed, options, input_size=size)
        result = prune(model, method, found.sparsity, input_size=size, seed=args.seed, **options)
        t = mask_topology(
            model, result.masks, samples=args.samples, seed=args.seed, flatten=args.flatten
        )
        print(
            f"| {label} | {100 * result.metrics['params_reduction']:.2f}% | {t['nodes']} "
            f"| {t['links']} | {t['square_clustering']:.4f} | {t['path_length']:.3f} "
            f"| {_fmt(t['sigma_square'])} | {_fmt(t['omega_square'])} "
            f"| {time.perf_counter() - started:.1f} |"
        )


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
