"""The PruningNet: weights for any width configuration, generated from the layer graph.

MetaPruning (Liu et al., ICCV 2019) trains a network that generates the weights of any width
configuration of a model; GraphPruning (Zhang et al., Applied Intelligence 2022) feeds it node
embeddings from a GCN over the layer graph instead of the bare width vector. Here:

- node features: kind, position, kernel, stride, full width and residual-stream flag
  (:meth:`LayerGraph.static_features`), and the node's sampled keep ratio;
- the aggregator (:class:`GCN`, two graph convolutions) turns them into embeddings (n, E);
- every conv and Linear layer has its own head, ``Linear(2E, hidden) → ReLU → Linear(hidden,
  numel)``, fed the embeddings of the node that sizes its output and of the node that sizes its
  input (zeros where the size is fixed: the image channels, the classes); its output is the
  layer's full-width weight tensor, cropped to the sampled widths (the first channels);
- biases and BatchNorm's affine parameters are shared full-width tensors, cropped likewise; BN
  statistics come from the batch while training and are recalibrated per candidate before it
  is scored (:func:`candidate_model`).

The last Linear of each head starts with its bias at a fresh Kaiming initialisation of the layer
and its weight at 0.1 × that scale, so the generated weights start as an ordinary initialisation
plus an embedding-dependent part that training grows. Sizes: the heads hold
``hidden · numel + numel`` parameters per layer (hidden = 16: 0.6M for a 64×64×3×3 conv).

>>> from topoprune.pruning.graphpruning.layer_graph import layer_graph
>>> net = PruningNet(layer_graph("lenet5", in_channels=1), seed=0)
>>> logits = net(torch.randn(2, 1, 28, 28), torch.full((4,), 0.5))
>>> tuple(logits.shape), net.widths(torch.full((4,), 0.5))
((2, 10), [3, 8, 60, 42])
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn
from torch.func import functional_call

from topoprune.models import create_model
from topoprune.pruning.graphpruning.gcn import GCN
from topoprune.pruning.graphpruning.layer_graph import STATIC_FEATURES, LayerGraph

RATIOS = tuple(round(0.10 + 0.03 * step, 2) for step in range(31))
"""The keep ratios a node may take: 0.10, 0.13, …, 1.00 (MetaPruning's 31 choices)."""
CACHED_MODELS = 64


def _key(name: str) -> str:
    return name.replace(".", "/")


class PruningNet(nn.Module):
    """Aggregator and heads over ``graph``'s model; ``gcn=False`` is the ablation with plain
    per-layer features (no message passing)."""

    def __init__(
        self,
        graph: LayerGraph,
        *,
        embedding: int = 32,
        hidden: int = 16,
        gcn: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.graph = graph
        self.embedding = embedding
        self.register_buffer("static", graph.static_features())
        size = len(graph.nodes)
        adjacency = graph.adjacency() if gcn else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.aggregator = GCN(adjacency, size, STATIC_FEATURES + 1, embedding, embedding)
            full = create_model(
                graph.model_name, **graph.model_kwargs, widths=graph.full_widths(), seed=seed
            )
            weighted = {layer.name for layer in graph.layers}
            self.heads = nn.ModuleDict()
            for layer in graph.layers:
                weight = dict(full.named_modules())[layer.name].weight.detach()
                head = nn.Sequential(
                    nn.Linear(2 * embedding, hidden), nn.ReLU(), nn.Linear(hidden, weight.numel())
                )
                scale = weight.std().item() if weight.numel() > 1 else 1.0
                nn.init.normal_(head[2].weight, std=0.1 * scale / math.sqrt(hidden))
                head[2].bias.data.copy_(weight.flatten())
                self.heads[_key(layer.name)] = head
            self.shared = nn.ParameterDict(
                {
                    _key(name): nn.Parameter(p.detach().clone())
                    for name, p in full.named_parameters()
                    if name.rsplit(".", 1)[0] not in weighted or not name.endswith("weight")
                }
            )
        self._models: OrderedDict[tuple[int, ...], nn.Module] = OrderedDict()

    def widths(self, ratios: torch.Tensor) -> list[int]:
        """The width list for keep ratios (n,)."""
        return self.graph.widths(ratios.tolist())

    def embeddings(self, ratios: torch.Tensor) -> torch.Tensor:
        """(n, E) node embeddings for keep ratios (n,)."""
        features = torch.cat([self.static, ratios.reshape(-1, 1).to(self.static)], dim=1)
        return self.aggregator(features)

    def parameters_for(self, ratios: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every parameter of the model at these ratios, generated or cropped, by name."""
        model = self.model_for(self.widths(ratios))
        embedded = self.embeddings(ratios)
        zeros = embedded.new_zeros(self.embedding)
        full: dict[str, torch.Tensor] = {}
        for layer in self.graph.layers:
            out_part = zeros if layer.out_node is None else embedded[layer.out_node]
            in_part = zeros if layer.in_node is None else embedded[layer.in_node]
            generated = self.heads[_key(layer.name)](torch.cat([out_part, in_part]))
            full[f"{layer.name}.weight"] = generated.view(layer.shape)
        for key, parameter in self.shared.items():
            full[key.replace("/", ".")] = parameter
        return {
            name: full[name][tuple(slice(0, size) for size in p.shape)]
            for name, p in model.named_parameters()
        }

    def model_for(self, widths: list[int]) -> nn.Module:
        """A narrow model of these widths (cached), whose parameters are overridden per call."""
        key = tuple(widths)
        if key not in self._models:
            model = create_model(self.graph.model_name, **self.graph.model_kwargs, widths=widths)
            self._models[key] = model.to(self.static.device)
            if len(self._models) > CACHED_MODELS:
                self._models.popitem(last=False)
        self._models.move_to_end(key)
        return self._models[key]

    def forward(self, images: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) of the configuration ``ratios`` (n,) on ``images`` (B, C, H, W),
        differentiable in the aggregator, the heads and the shared parameters."""
        model = self.model_for(self.widths(ratios))
        model.train(self.training)
        return functional_call(model, self.parameters_for(ratios), (images,))


@torch.no_grad()
def candidate_model(net: PruningNet, ratios: torch.Tensor) -> nn.Module:
    """A standalone narrow model holding the weights ``net`` generates for ``ratios`` (its BN
    statistics fresh: recalibrate before scoring)."""
    model = create_model(
        net.graph.model_name, **net.graph.model_kwargs, widths=net.widths(ratios)
    ).to(net.static.device)
    generated = net.parameters_for(ratios)
    for name, parameter in model.named_parameters():
        parameter.copy_(generated[name])
    return model
