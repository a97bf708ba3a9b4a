"""Block masks, masked convs, the native kernels' availability and thread counts for the
compact tests."""

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from topoprune.compact import slice_kernel
from topoprune.pruning.blocks import block_mask

needs_slice_kernel = pytest.mark.skipif(
    not slice_kernel.slice_kernel_available(),
    reason="no C++ compiler here: the native slice kernel cannot build",
)


def no_slice_library():
    """Patch the loader so the native slice kernel looks unavailable (as without a compiler)."""
    return mock.patch.object(slice_kernel, "load_slice_kernel", lambda: None)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with torch (and so the native kernels) on ``count`` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
