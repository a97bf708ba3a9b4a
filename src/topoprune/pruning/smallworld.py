"""Small-world structural pruning: every layer trimmed into a locally clustered, sparse pattern.

Krishnan, Du and Cao, "Structural pruning in deep neural networks: a small-world approach"
(arXiv 1911.04453): the network is trimmed before training into a small-world model (high
clustering, short paths), trained, then "optimised". The paper has no public code; our reading,
every choice an option:

- The graph is layered: its nodes are the units of the masked layers (channels of a conv,
  neurons of a Linear layer). At a flatten step (a Linear layer whose inputs are the previous
  layer's channels times the spatial positions) a channel is one node, linked through all of its
  positions. A link is a whole kernel slice of a conv (``mask[o, i, :, :]``) or all the weights
  from one channel to one neuron.
- Each layer pair starts from local links (unit i of a layer with m units is linked to the units
  of the next layer nearest to position i·m'/m, wrapping around) and each link is rewired with
  probability ``rewire_p`` inside the same layer pair, Watts–Strogatz style
  (:mod:`topoprune.graphs.layered`). Every unit keeps at least one input and one output.
- Per-layer density: by default proportional to (fan_in · fan_out)^(−1/2) (``density="sqrt"``;
  ``"uniform"`` gives every layer the same density; ``"er"`` is the Erdős–Rényi rule of Mocanu
  et al., Nature Communications 2018, on units: (m_in + m_out)/(m_in · m_out), about the same
  number of links per unit in every layer), scaled so that the whole model loses
  ``sparsity`` of its parameters, biases and BatchNorm counted, to within 0.3 points. Because
  the graph spans input to output, the first conv and the classifier are masked too (the
  paper's 2.3% of LeNet-5 cannot be reached otherwise); ``keep_ends=True`` leaves them dense.
  So for this method ``sparsity`` is the true fraction of params removed; the nominal fraction
  (of the masked weights) is reported beside it.

The masks are irregular, so ``realize()`` keeps the dense form for them (outputs equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from topoprune.errors import TopopruneError
from topoprune.graphs.layered import layered_metrics, local_block, rewire_across, rewire_block
from topoprune.pruning.layers import PrunableLayer, prunable_layers
from topoprune.pruning.registry import PruneContext, Pruning, option, register_method

DENSITY_RULES = ("sqrt", "uniform", "er")
FLATTEN_UNITS = ("channel", "position")
TOLERANCE = 0.003  # of the model's params, the largest miss of the requested sparsity


@dataclass(frozen=True)
class SmallWorldOptions:
    """The layered small-world graph and its per-layer densities."""

    rewire_p: float = option(0.1, "probability that a local link is rewired inside its layer pair")
    density: str = option(
        "sqrt",
        "per-layer density: sqrt = (fan_in*fan_out)^-1/2, uniform, er = (m_in+m_out)/(m_in*m_out)",
        choices=DENSITY_RULES,
    )
    keep_ends: bool = option(False, "leave the first conv and the classifier dense")
    flatten: str = option(
        "channel",
        "at a flatten step a node is a channel (linked through all positions) or a position",
        choices=FLATTEN_UNITS,
    )
    topology: bool = option(True, "measure square clustering, L, sigma and omega of the graph")
    topology_samples: int = option(2, "reference graphs per small-world coefficient")
    cross_layer: bool = option(
        False, "rewired links of the final Linear stack may land in a later layer (skip links)"
    )


@dataclass(frozen=True)
class LayerUnits:
    """A masked layer seen as a layer pair of the graph.

    in_units: graph nodes on its input side (channels; for a Linear layer after a flatten, the
    previous layer's channels); spread: weights per link (kernel area, or spatial positions).
    """

    layer: PrunableLayer
    in_units: int
    out_units: int
    spread: int

    @property
    def pairs(self) -> int:
        return self.in_units * self.out_units


def layer_units(layers: list[PrunableLayer], flatten: str = "channel") -> list[LayerUnits]:
    """Each layer's graph sizes. A Linear layer whose inputs are a multiple of the previous
    layer's outputs follows a flatten step: with ``flatten="channel"`` a channel is one node,
    linked through all of its positions; with ``"position"`` every flattened input is a node."""
    found = []
    previous = None
    for layer in layers:
        weight = layer.module.weight
        in_units = weight.shape[1]
        if (
            flatten == "channel"
            and isinstance(layer.module, nn.Linear)
            and previous is not None
            and in_units != previous
            and in_units % previous == 0
        ):
            in_units = previous
        spread = weight.numel() // (weight.shape[0] * in_units)
        found.append(LayerUnits(layer, in_units, weight.shape[0], spread))
        previous = weight.shape[0]
    return found


def _kept_links(units: list[LayerUnits], scale: float, rates: np.ndarray) -> np.ndarray:
    """Links per layer at density ``min(1, scale·rate)``, at least one per unit on each side."""
    pairs = np.array([u.pairs for u in units], dtype=np.float64)
    low = np.array([max(u.in_units, u.out_units) for u in units], dtype=np.float64)
    wanted = np.round(np.minimum(1.0, scale * rates) * pairs)
    return np.clip(wanted, low, pairs).astype(np.int64)


def _density_rates(units: list[LayerUnits], rule: str) -> np.ndarray:
    """Each layer's density up to the common scale, shape (layers,)."""
    if rule == "uniform":
        return np.ones(len(units))
    if rule == "er":
        return np.array([(u.in_units + u.out_units) / u.pairs for u in units])
    fan = np.array(
        [
            (u.layer.module.weight.numel() / u.out_units)
            * (u.layer.module.weight.numel() / u.in_units)
            for u in units
        ]
    )
    return fan**-0.5


def plan_links(
    units: list[LayerUnits], total_params: int, sparsity: float, rule: str
) -> np.ndarray:
    """Links per layer so that ``sparsity`` of ``total_params`` are removed (bisection on the
    density scale); one clear error when the masked layers cannot remove that much."""
    rates = _density_rates(units, rule)
    spread = np.array([u.spread for u in units])
    masked = int(sum(u.layer.module.weight.numel() for u in units))
    target_kept = masked - sparsity * total_params

    def kept(scale: float) -> float:
        return float((_kept_links(units, scale, rates) * spread).sum())

    if kept(0.0) > target_kept + TOLERANCE * total_params:
        fewest = 1.0 - (total_params - masked + kept(0.0)) / total_params
        raise TopopruneError(
            f"smallworld can remove at most {fewest:.4f} of the params here (every unit keeps "
            f"a link; unmasked layers, biases and BatchNorm stay): lower the sparsity"
        )
    low, high = 0.0, 1.0 / rates.min()
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if kept(middle) < target_kept else (low, middle)
    best = min((low, high), key=lambda scale: abs(kept(scale) - target_kept))
    return _kept_links(units, best, rates)


def _weight_mask(block: np.ndarray, unit: LayerUnits) -> torch.Tensor:
    """The (m_out, m_in) block spread over the layer's weight: kernel slices or positions."""
    weight = unit.layer.module.weight
    links = torch.from_numpy(block)
    if weight.dim() == 2:
        return links.repeat_interleave(unit.spread, dim=1).clone()
    return links[:, :, None, None].expand_as(weight).clone()


def unit_blocks(masks: dict[str, torch.Tensor], units: list[LayerUnits]) -> list[np.ndarray]:
    """The graph block of every layer from its weight mask (dense where a layer has none): a
    link is kept when any weight of its kernel slice or of its positions is kept."""
    blocks = []
    for unit in units:
        mask = masks.get(unit.layer.name)
        if mask is None:
            blocks.append(np.ones((unit.out_units, unit.in_units), dtype=bool))
            continue
        grouped = mask.reshape(unit.out_units, unit.in_units, -1)
        blocks.append(grouped.any(dim=2).numpy())
    return blocks


def chain_blocks(
    units: list[LayerUnits], blocks: list[np.ndarray]
) -> tuple[list[np.ndarray], list[int]] | None:
    """The blocks of a layered graph through every layer in order and the index of each layer's
    block among them, or None when the layers do not form a chain. A position-level flatten step
    gets the fixed block that links each position to its channel (the feature map itself), so
    that paths run through it."""
    chained, offsets = [blocks[0]], [0]
    for before, unit, block in zip(units, units[1:], blocks[1:], strict=False):
        if unit.in_units != before.out_units:
            positions, rest = divmod(unit.in_units, before.out_units)
            if rest or not isinstance(unit.layer.module, nn.Linear):
                return None
            channel_of = np.arange(unit.in_units) // positions
            chained.append(channel_of[:, None] == np.arange(before.out_units)[None, :])
        offsets.append(len(chained))
        chained.append(block)
    return chained, offsets


def linear_stack(units: list[LayerUnits]) -> int:
    """Index of the first layer of the trailing run of chained Linear layers."""
    start = len(units)
    while (
        start > 0
        and isinstance(units[start - 1].layer.module, nn.Linear)
        and (start == len(units) or units[start].in_units == units[start - 1].out_units)
    ):
        start -= 1
    return start


def _skip_projections(
    units: list[LayerUnits], start: int, links: dict[tuple[int, int], np.ndarray]
) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """Skip specs and their masks for cross-layer links of the Linear stack from ``start``:
    stack link (f, t) runs from the input of layer ``start + f`` to the output of layer
    ``start + t - 1``."""
    specs, masks = [], {}
    for index, ((f, t), block) in enumerate(sorted(links.items())):
        source, target = units[start + f], units[start + t - 1]
        specs.append(
            {
                "source": source.layer.name,
                "target": target.layer.name,
                "in": source.layer.module.in_features,
                "out": target.out_units,
            }
        )
        spread = torch.from_numpy(block).repeat_interleave(source.spread, dim=1)
        masks[f"skip_projections.{index}.linear"] = spread.clone()
    return specs, masks


def mask_topology(
    model: nn.Module,
    masks: dict[str, torch.Tensor],
    *,
    samples: int = 2,
    seed: int = 0,
    flatten: str = "channel",
) -> dict[str, Any]:
    """Square clustering, L, sigma and omega of any masks read as a layered graph over every
    conv and Linear layer (unmasked layers dense; ``flatten`` as small-world's option), so that
    small-world, RGP and random masks of the same density compare on one scale.
    ``{"chain": False}`` where the layers do not form a chain.

    >>> from topoprune.models import create_model
    >>> from topoprune.pruning import prune
    >>> model = create_model("lenet5", in_channels=1)
    >>> result = prune(model, "random", 0.5)
    >>> mask_topology(model, result.masks, samples=1)["path_length"] > 1
    True
    """
    units = layer_units(prunable_layers(model, ends=True), flatten)
    chained = chain_blocks(units, unit_blocks(masks, units))
    if chained is None:
        return {"chain": False}
    return {"chain": True, **layered_metrics(chained[0], samples=samples, seed=seed)}


def _match_params(
    model: nn.Module, kind: str, target: float, checked: Any, **where: Any
) -> tuple[float, dict[str, Any]] | None:
    """Small-world's sparsity already is the true fraction of params removed."""
    return (target, {}) if kind == "params" else None


@register_method(
    "smallworld",
    protocol="at-init",
    options=SmallWorldOptions,
    match=_match_params,
    sweep={"rewire_p": (0.0, 0.03, 0.1, 0.3, 1.0), "density": DENSITY_RULES},
)
def smallworld(
    model: nn.Module, sparsity: float, options: SmallWorldOptions, context: PruneContext
) -> Pruning:
    """A layered small-world graph (local links, rewired with rewire_p) on every layer."""
    if not 0.0 <= options.rewire_p <= 1.0:
        raise TopopruneError(f"rewire_p must lie in [0, 1], got {options.rewire_p!r}")
    layers = prunable_layers(
        model, include=context.include, exclude=context.exclude, ends=not options.keep_ends
    )
    units = layer_units(layers, options.flatten)
    total = sum(p.numel() for p in model.parameters())
    links = plan_links(units, total, sparsity, options.density)
    rng = np.random.default_rng(context.seed)
    blocks = [
        local_block(u.in_units, u.out_units, int(c)) for u, c in zip(units, links, strict=True)
    ]
    start = linear_stack(units) if options.cross_layer else len(units)
    if options.cross_layer and len(units) - start < 2:
        raise TopopruneError(
            "cross_layer needs at least two chained Linear layers at the end of the model "
            "(e.g. LeNet's classifier)"
        )
    blocks[:start] = [rewire_block(block, options.rewire_p, rng) for block in blocks[:start]]
    skipping: dict[tuple[int, int], np.ndarray] = {}
    if options.cross_layer:
        blocks[start:], skipping = rewire_across(blocks[start:], options.rewire_p, rng)
    specs, masks = _skip_projections(units, start, skipping)
    rows = []
    for unit, block in zip(units, blocks, strict=True):
        masks[unit.layer.name] = _weight_mask(block, unit)
        rows.append(
            {
                "name": unit.layer.name,
                "shape": list(unit.layer.module.weight.shape),
                "units": [unit.in_units, unit.out_units],
                "links": int(block.sum()),
                "kept": int(block.sum()) / unit.pairs,
            }
        )
    masked = sum(u.layer.module.weight.numel() for u in units)
    removed = masked - sum(int(mask.sum()) for mask in masks.values())
    metrics: dict[str, Any] = {"nominal_reduction": removed / masked}
    if skipping:
        metrics["skip_links"] = {f"{f}->{t}": int(b.sum()) for (f, t), b in skipping.items()}
    chained = chain_blocks(units, blocks) if options.topology else None
    if chained is not None:
        chain, offsets = chained
        skips = {
            (offsets[start + f], offsets[start + t - 1] + 1): block
            for (f, t), block in skipping.items()
        }
        metrics["topology"] = {
            "chain": True,
            **layered_metrics(
                chain, skips=skips, samples=options.topology_samples, seed=context.seed
            ),
        }
    return Pruning(masks=masks, metrics=metrics, layers=rows, skips=specs or None)
