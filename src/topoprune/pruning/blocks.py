"""Channels to graph nodes: contiguous blocks whose sizes differ by at most one.

A layer with ``C`` channels is split into ``n`` blocks like ``numpy.array_split``: the first
``C % n`` blocks hold ``C // n + 1`` channels, the rest ``C // n``. Channel ``c`` belongs to node
``node_of_channel(C, n)[c]``.
"""

from __future__ import annotations

import numpy as np
import torch

from topoprune.errors import TopopruneError


def node_of_channel(channels: int, nodes: int) -> np.ndarray:
    """Node index of every channel, shape (channels,), non-decreasing.

    >>> node_of_channel(5, 2).tolist()
    [0, 0, 0, 1, 1]
    """
    if nodes < 1 or nodes > channels:
        raise TopopruneError(
            f"cannot split {channels} channels into {nodes} nodes: use 1 <= nodes <= {channels}"
        )
    sizes = np.full(nodes, channels // nodes)
    sizes[: channels % nodes] += 1
    return np.repeat(np.arange(nodes), sizes)


def block_mask(adj: np.ndarray, out_channels: int, in_channels: int) -> torch.Tensor:
    """The (out_channels, in_channels) 0/1 mask with ``mask[o, i] = adj[node(o), node(i)]``.

    ``adj`` is an (n, n) adjacency; a conv's weight mask is this expanded over the kernel:
    ``block_mask(...)[:, :, None, None].expand_as(weight)``.
    """
    nodes = adj.shape[0]
    rows = node_of_channel(out_channels, nodes)
    cols = node_of_channel(in_channels, nodes)
    return torch.from_numpy(np.ascontiguousarray(adj[np.ix_(rows, cols)], dtype=np.float32))
