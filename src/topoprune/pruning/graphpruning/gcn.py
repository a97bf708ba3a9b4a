"""A graph convolutional network over a layer graph (Kipf and Welling, ICLR 2017).

One layer computes ``H' = σ(Â H W)`` with ``Â = D^-½ (A + I) D^-½``: each node mixes its own
features with its neighbours', weighted by their degrees.

>>> import numpy as np
>>> adjacency = np.array([[0, 1], [1, 0]], dtype=np.float32)
>>> normalized_adjacency(adjacency).tolist()
[[0.5, 0.5], [0.5, 0.5]]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def normalized_adjacency(adjacency: np.ndarray) -> torch.Tensor:
    """``D^-½ (A + I) D^-½`` of a symmetric 0/1 adjacency (n, n); D the degrees of A + I."""
    with_loops = torch.as_tensor(adjacency, dtype=torch.float64) + torch.eye(len(adjacency))
    scale = with_loops.sum(dim=1).rsqrt()
    return (scale[:, None] * with_loops * scale[None, :]).float()


class GraphConvolution(nn.Module):
    """One layer ``σ(Â H W)``: (n, in_features) -> (n, out_features); ``Â`` is fixed."""

    def __init__(
        self, propagation: torch.Tensor, in_features: int, out_features: int, activate: bool
    ) -> None:
        super().__init__()
        self.register_buffer("propagation", propagation)
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.activate = activate

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mixed = self.propagation @ self.linear(features)
        return torch.relu(mixed) if self.activate else mixed


class GCN(nn.Module):
    """Stacked graph convolutions, ReLU between them, none after the last.

    ``adjacency`` None gives the ablation without the graph: ``Â = I``, every node embedded from
    its own features only (the same layers and sizes otherwise).
    """

    def __init__(
        self,
        adjacency: np.ndarray | None,
        size: int,
        in_features: int,
        hidden: int,
        out_features: int,
        depth: int = 2,
    ) -> None:
        super().__init__()
        propagation = torch.eye(size) if adjacency is None else normalized_adjacency(adjacency)
        sizes = [in_features] + [hidden] * (depth - 1) + [out_features]
        self.layers = nn.ModuleList(
            GraphConvolution(propagation, a, b, activate=i < depth - 1)
            for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False))
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(n, in_features) -> (n, out_features) node embeddings."""
        for layer in self.layers:
            features = layer(features)
        return features
