"""EXP's published FLOPs reductions against counts in one unit: a count, no training.

The authors' code (github.com/EXP-Pruning/EXP_Pruning, ``get_flops.py``) counts a conv with rate
r as ``in · (out − int(r · out)) · k² · H · W`` MACs (a nominal filter fraction, convs and
Linear layers only), prints the pruned model in units of 2^20 and divides by the dense model
in units of 10^6; Sun et al. (PeerJ Computer Science 2023) report those percentages. Each row
prints the claimed figure, that same formula with both counts in one unit, and topoprune's count
of the real masks (int(r · f · c) kernel slices removed per conv; BatchNorm, ReLU, pooling and
adds counted too) on our models at CIFAR's 32×32 input.

    python benchmarks/exp_counts.py
"""

from __future__ import annotations

from topoprune.measure import count
from topoprune.models import create_model
from topoprune.pruning import prune
from topoprune.pruning.exp import conv_rates

# (model, claimed % of FLOPs removed, rate string), from the authors' README
SETTINGS = (
    ("resnet56", 71.9, "[0.0]+[0.7]*17+[0.4]*2+[0.7]*16+[0.5]*2+[0.8]*17"),
    ("resnet56", 60.5, "[0.0]+[0.5]*17+[0.5]*2+[0.6]*16+[0.5]*2+[0.7]*17"),
    ("resnet56", 53.5, "[0.0]+[0.4]*17+[0.5]*2+[0.6]*16+[0.4]*2+[0.6]*17"),
    ("resnet110", 60.1, "[0.0]+[0.6]*35+[0.5]*2+[0.60]*34+[0.6]*2+[0.6]*35"),
    ("resnet110", 70.0, "[0.1]+[0.7]*35+[0.6]*2+[0.70]*34+[0.7]*2+[0.7]*35"),
    ("vgg16", 53.1, "[0.1]*2+[0.4]*2+[0.5]*2+[0.6]*2+[0.7]*3+[0.6]*2"),
    ("vgg16", 60.8, "[0.1]*2+[0.5]*2+[0.6]*2+[0.7]*2+[0.8]*3+[0.6]*2"),
    ("vgg16", 70.9, "[0.3]*2+[0.6]*2+[0.7]*2+[0.8]*2+[0.9]*3+[0.6]*2"),
)
INPUT = (3, 32, 32)


def published_formula(model_name: str, rates: str) -> tuple[float, float]:
    """(the authors' formula in one unit, the same as they printed it), % of MACs removed,
    over conv and Linear layers only."""
    model = create_model(model_name, num_classes=10, in_channels=3)
    per_conv = conv_rates(model, rates)
    layers = {row.name: row for row in count(model, INPUT).layers}
    dense = pruned = 0.0
    convs = [(n, m) for n, m in model.named_modules() if type(m).__name__ == "Conv2d"]
    for (name, conv), rate in zip(convs, per_conv, strict=True):
        macs = layers[name].dense_macs
        dense += macs
        pruned += macs * (conv.out_channels - int(rate * conv.out_channels)) / conv.out_channels
    for row in layers.values():
        if row.type == "Linear":
            dense += row.dense_macs
            pruned += row.dense_macs
    return 100 * (1 - pruned / dense), 100 * (1 - (pruned / 2**20) / (dense / 1e6))


def real_masks(model_name: str, rates: str) -> float:
    """% of the whole model's MACs removed by EXP's real masks, topoprune's counter."""
    model = create_model(model_name, num_classes=10, in_channels=3, seed=0)
    result = prune(model, "exp", rates=rates, input_size=INPUT)
    return 100 * result.metrics["macs_reduction"]


def main() -> None:
    print("| model | claimed | their formula, one unit | their formula as printed | real masks |")
    print("|---|---|---|---|---|")
    for model_name, claimed, rates in SETTINGS:
        consistent, printed = published_formula(model_name, rates)
        real = real_masks(model_name, rates)
        print(
            f"| {model_name} | {claimed:.1f}% | {consistent:.2f}% | {printed:.2f}% | {real:.2f}% |"
        )


if __name__ == "__main__":
    main()
