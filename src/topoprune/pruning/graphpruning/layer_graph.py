"""The layer graph of a width-configurable model: one node per entry of its width list.

Every model of the zoo takes a width list (``create_model(name, widths=...)``) whose entries are
exactly the independent channel counts of the network: a residual stage's stream is one entry
shared by every conv that writes into it and the shortcut, so a width choice per node always
builds a valid model. The graph is read off the builder, not written per model: entry i is
changed by one and every layer whose output size follows is a layer of node i, every layer
whose input size follows reads node i, and node i links to every node that has such a reader
(sequential and shortcut links alike).

>>> graph = layer_graph("resnet20", in_channels=1)
>>> len(graph.nodes), graph.nodes[0].layers[:2], graph.nodes[3].layers
(12, ['conv1', 'bn1'], ['layer1.0.conv1', 'layer1.0.bn1'])
>>> sorted(graph.successors(3))
[0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from topoprune.models import create_model

BATCHNORM = nn.modules.batchnorm._BatchNorm
KINDS = ("conv", "depthwise", "linear")
"""Node kinds, by the first weighted layer of the node."""
STATIC_FEATURES = 8
"""Columns of :meth:`LayerGraph.static_features`; a node's input adds its sampled ratio."""


@dataclass
class Node:
    """One width entry: its full width, the layers whose outputs it sizes, its main layer's
    kind, kernel and stride, and the layers that read it."""

    index: int
    width: int
    layers: list[str]
    kind: str
    kernel: int
    stride: int
    readers: list[str] = field(default_factory=list)


@dataclass
class WeightedLayer:
    """A conv or Linear layer of the full-width model: which nodes size its output and input
    (None: fixed, the classes or the image channels) and its full weight shape."""

    name: str
    out_node: int | None
    in_node: int | None
    shape: tuple[int, ...]
    depthwise: bool


@dataclass
class LayerGraph:
    """Nodes, directed links (i, j: node j reads node i) and the model's weighted layers."""

    model_name: str
    model_kwargs: dict
    nodes: list[Node]
    edges: list[tuple[int, int]]
    layers: list[WeightedLayer]

    def successors(self, node: int) -> set[int]:
        return {j for i, j in self.edges if i == node}

    def adjacency(self) -> np.ndarray:
        """The symmetric 0/1 adjacency, (n, n), without self-loops."""
        size = len(self.nodes)
        matrix = np.zeros((size, size), dtype=np.float32)
        for i, j in self.edges:
            matrix[i, j] = matrix[j, i] = 1.0
        return matrix

    def full_widths(self) -> list[int]:
        return [node.width for node in self.nodes]

    def widths(self, ratios: list[float] | np.ndarray) -> list[int]:
        """The width list for one keep ratio per node (at least one channel each).

        >>> layer_graph("lenet5", in_channels=1).widths([0.5, 0.5, 0.1, 1.0])
        [3, 8, 12, 84]
        """
        return [max(1, round(r * node.width)) for r, node in zip(ratios, self.nodes, strict=True)]

    def static_features(self) -> torch.Tensor:
        """(n, 8) float: kind one-hot (3), position in [0, 1], kernel / 7, stride / 2,
        log2(width) / 10, 1 for a node sized by several layers (a residual stream)."""
        rows = []
        last = max(len(self.nodes) - 1, 1)
        for node in self.nodes:
            kind = [float(node.kind == k) for k in KINDS]
            weighted = sum(layer.out_node == node.index for layer in self.layers)
            rows.append(
                kind
                + [
                    node.index / last,
                    node.kernel / 7,
                    node.stride / 2,
                    float(np.log2(node.width)) / 10,
                    float(weighted > 1),
                ]
            )
        return torch.tensor(rows, dtype=torch.float32)


def _weighted(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d))
    }


def _sizes(module: nn.Module) -> tuple[int, int]:
    """(output size, input size) of a conv, Linear or BatchNorm layer."""
    if isinstance(module, nn.Conv2d):
        return module.out_channels, module.in_channels
    if isinstance(module, nn.Linear):
        return module.out_features, module.in_features
    return module.num_features, module.num_features


def layer_graph(
    model_name: str,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    widths: list[int] | None = None,
) -> LayerGraph:
    """The layer graph of ``model_name`` at ``widths`` (its own full widths by default), which
    the nodes' keep ratios then scale (see the module docstring)."""
    kwargs = {"num_classes": num_classes, "in_channels": in_channels}
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        base = create_model(model_name, **kwargs, widths=widths)
    full = list(base.widths)
    reference = {name: _sizes(m) for name, m in _weighted(base).items()}
    out_node: dict[str, int] = {}
    in_node: dict[str, int] = {}
    for entry in range(len(full)):
        changed = list(full)
        changed[entry] += 1
        with torch.device("meta"):
            variant = create_model(model_name, **kwargs, widths=changed)
        for name, module in _weighted(variant).items():
            out_size, in_size = _sizes(module)
            if out_size != reference[name][0]:
                out_node[name] = entry
            if in_size != reference[name][1] and not isinstance(module, BATCHNORM):
                in_node[name] = entry
    modules = _weighted(base)
    nodes, layers = [], []
    for entry, width in enumerate(full):
        names = [n for n in modules if out_node.get(n) == entry]
        main = next(m for n in names if not isinstance(m := modules[n], BATCHNORM))
        depthwise = isinstance(main, nn.Conv2d) and main.groups > 1
        kind = "linear" if isinstance(main, nn.Linear) else "depthwise" if depthwise else "conv"
        kernel = main.kernel_size[0] if isinstance(main, nn.Conv2d) else 1
        stride = main.stride[0] if isinstance(main, nn.Conv2d) else 1
        readers = [n for n in modules if in_node.get(n) == entry]
        nodes.append(Node(entry, width, names, kind, kernel, stride, readers))
    for name, module in modules.items():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            depthwise = isinstance(module, nn.Conv2d) and module.groups > 1
            source = out_node.get(name) if depthwise else in_node.get(name)
            layers.append(
                WeightedLayer(
                    name, out_node.get(name), source, tuple(module.weight.shape), depthwise
                )
            )
    edges = sorted(
        {
            (source, target)
            for target, node in enumerate(nodes)
            for name in node.layers
            if (source := in_node.get(name)) is not None and source != target
        }
    )
    return LayerGraph(model_name, kwargs, nodes, edges, layers)
