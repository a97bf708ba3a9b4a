"""Block masks and masked convs for the realize tests."""

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.pruning.blocks import block_mask


def circulant(n: int, k: int) -> np.ndarray:
    """Ring lattice: node i linked to i±1 … i±k/2 (k even), zero diagonal."""
    adj = np.zeros((n, n), dtype=np.int64)
    for step in range(1, k // 2 + 1):
        adj += np.roll(np.eye(n, dtype=np.int64), step, 1) + np.roll(
            np.eye(n, dtype=np.int64), -step, 1
        )
    return adj


def random_rows(n: int, k: int, seed: int) -> np.ndarray:
    """Regular-ish directed graph: every row links k distinct other nodes, chosen at random."""
    rng = np.random.default_rng(seed)
    adj = np.zeros((n, n), dtype=np.int64)
    for row in range(n):
        adj[row, rng.choice(np.delete(np.arange(n), row), size=k, replace=False)] = 1
    return adj


def masked_conv(
    adj: np.ndarray, in_channels: int, out_channels: int, seed: int = 0, **conv_options
) -> nn.Conv2d:
    """A random Conv2d with the block mask of ``adj`` applied the torch.nn.utils.prune way."""
    torch.manual_seed(seed)
    conv = nn.Conv2d(in_channels, out_channels, **conv_options)
    mask = block_mask(adj, out_channels, in_channels)[:, :, None, None].expand_as(conv.weight)
    return prune.custom_from_mask(conv, "weight", mask.contiguous())
